"""Tokens/s of ``generate`` and ``score`` per backend, at batch sizes 1, 8 and 32.

All backends serve the same model in one run; the baseline is the ``hf`` backend (plain
transformers), and every other figure is printed next to it with the ratio.

    python benchmarks/backend_speed.py                       # default model, hf/vllm/openai
    python benchmarks/backend_speed.py --model tiny --backends hf,vllm

* generate: ``temperature=1``, ``max_tokens`` new tokens per prompt; tokens/s counts the
  tokens actually generated (a response can end early at EOS).
* score: log-probs of ``max_tokens`` response tokens per prompt; tokens/s counts response
  tokens (each request also runs its ~40-token prompt).
* ``openai`` talks to a server started here on 127.0.0.1: vLLM's (``--openai-server vllm``,
  the default) or ``turngym serve`` (``hf``).
"""

from __future__ import annotations

import argparse
import logging
import time
from typing import Any

TOPICS = ["apples", "rivers", "chess", "volcanoes", "jazz", "bridges", "owls", "tea"]


def _prompts(tokenizer: Any, n: int) -> list[list[int]]:
    out = []
    for i in range(n):
        msg = (f"Write a short note about {TOPICS[i % len(TOPICS)]} number {i}, then list "
               "three facts about it.")
        text = tokenizer.apply_chat_template([{"role": "user", "content": msg}], tokenize=False,
                                             add_generation_prompt=True)
        out.append(tokenizer(text, add_special_tokens=False)["input_ids"])
    return out


def _measure(backend: Any, batch: int, max_tokens: int) -> dict[str, float]:
    from turngym.agents.backend import SamplingParams

    prompts = _prompts(backend.tokenizer, batch)
    sp = SamplingParams(temperature=1.0, max_tokens=max_tokens, seed=0)
    start = time.perf_counter()
    gens = backend.generate(prompts, sp)
    gen_s = time.perf_counter() - start
    n_gen = sum(len(g.ids) for g in gens)
    responses = [(list(g.ids) + [backend.tokenizer.eos_token_id] * max_tokens)[:max_tokens]
                 for g in gens]  # score exactly max_tokens per prompt
    start = time.perf_counter()
    backend.score(prompts, responses)
    score_s = time.perf_counter() - start
    return {"generate_tok_s": n_gen / gen_s, "generate_tokens": n_gen, "generate_s": gen_s,
            "score_tok_s": batch * max_tokens / score_s, "score_s": score_s}


def _run_backend(name: str, backend: Any, batch_sizes: list[int], max_tokens: int
                 ) -> dict[str, Any]:
    _measure(backend, 2, 4)  # warm-up (first-call compilation, server warm-up)
    out = {}
    for bs in batch_sizes:
        out[str(bs)] = _measure(backend, bs, max_tokens)
        r = out[str(bs)]
        print(f"  {name:>7} bs={bs:<3} generate {r['generate_tok_s']:8.1f} tok/s   "
              f"score {r['score_tok_s']:9.1f} tok/s", flush=True)
    return out


def _open(name: str, model_dir: Any, args: argparse.Namespace) -> tuple[Any, Any, float]:
    """(backend, server or None, start seconds)."""
    from turngym.agents import make_backend

    start = time.perf_counter()
    if name == "openai":
        from turngym.agents.server_process import hf_server, vllm_server

        server = (vllm_server(model_dir, dtype=args.dtype) if args.openai_server == "vllm"
                  else hf_server(model_dir, dtype=args.dtype))
        backend = make_backend("openai", base_url=server.base_url, tokenizer=model_dir,
                               max_concurrency=32)
        return backend, server, time.perf_counter() - start
    backend = make_backend(name, model=model_dir, dtype=args.dtype)
    return backend, None, time.perf_counter() - start


def _table(results: dict[str, Any], batch_sizes: list[int]) -> None:
    base = results.get("hf", {}).get("per_batch")
    print("\nbackend  batch  generate tok/s (x hf)     score tok/s (x hf)")
    for name, res in results.items():
        for bs in batch_sizes:
            r = res["per_batch"][str(bs)]
            ratio_g = ratio_s = ""
            if base and name != "hf":
                ratio_g = f"(x{r['generate_tok_s'] / base[str(bs)]['generate_tok_s']:.2f})"
                ratio_s = f"(x{r['score_tok_s'] / base[str(bs)]['score_tok_s']:.2f})"
            print(f"{name:>7}  {bs:>5}  {r['generate_tok_s']:9.1f} {ratio_g:<9}"
                  f"      {r['score_tok_s']:9.1f} {ratio_s}")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--model", default="default", help="'default', 'tiny' or a local HF dir")
    ap.add_argument("--backends", default="hf,vllm,openai")
    ap.add_argument("--openai-server", default="vllm", choices=["vllm", "hf"])
    ap.add_argument("--batch-sizes", default="1,8,32")
    ap.add_argument("--max-tokens", type=int, default=32)
    ap.add_argument("--dtype", default="float32", help="float32 (CPU default) or bfloat16")
    args = ap.parse_args()
    logging.basicConfig(level=logging.WARNING)
    from turngym.agents.models import resolve_model_dir
    from turngym.harness.eval.results import write_result

    model_dir = resolve_model_dir(args.model)
    batch_sizes = [int(b) for b in args.batch_sizes.split(",")]
    results: dict[str, Any] = {}
    for name in args.backends.split(","):
        backend, server, start_s = _open(name, model_dir, args)
        print(f"{name}: ready in {start_s:.1f} s", flush=True)
        try:
            results[name] = {"start_s": start_s,
                             "per_batch": _run_backend(name, backend, batch_sizes,
                                                       args.max_tokens)}
        finally:
            backend.close()
            if server is not None:
                server.close()
    _table(results, batch_sizes)
    config = {k: v for k, v in vars(args).items()}
    config["model_dir"] = str(model_dir)
    path = write_result("backend_speed", results, config=config, seeds=[0])
    print(f"\nwrote {path}")


if __name__ == "__main__":
    main()
