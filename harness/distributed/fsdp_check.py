"""PPO updates of the FSDP learner on fixed synthetic samples (run under ``torchrun``).

Used by the tests (two ranks == one rank with twice the accumulation; sharded save and
resume) and by ``benchmarks/scale_out.py`` (learner step time, 1 vs 2 ranks)::

    torchrun --standalone --nproc_per_node 2 -m turngym.harness.distributed.fsdp_check \\
        --model DIR --out OUT --steps 2 [--save-at 1] [--resume OUT/ckpt]

Every rank builds the same samples from ``--seed``; rank 0 writes ``OUT/params.pt`` (the
full weights after the last step) and ``OUT/result.json`` (per-step seconds, losses).
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path
from typing import Any

import torch

from turngym.algos.ppo_loss import PPOLossConfig
from turngym.harness.config import TrainConfig, load_config
from turngym.harness.distributed.fsdp import (
    FSDPLearner,
    end_worker,
    finish_distributed,
    gloo_threads,
    init_distributed,
)
from turngym.harness.learn.learner import Sample, load_model, response_logprobs


def synthetic_samples(model_dir: str, n: int, seed: int) -> list[Sample]:
    """``n`` samples with random prompts/responses, advantages ~ N(0, 1), and old log-probs
    from the initial model (so the first PPO ratio is 1)."""
    gen = torch.Generator().manual_seed(seed)
    prompts, responses = [], []
    for _ in range(n):
        p = int(torch.randint(4, 12, (1,), generator=gen))
        r = int(torch.randint(2, 8, (1,), generator=gen))
        prompts.append(torch.randint(100, 1000, (p,), generator=gen).tolist())
        responses.append(torch.randint(100, 1000, (r,), generator=gen).tolist())
    model = load_model(model_dir)
    with torch.no_grad():
        lp_BT, _, _ = response_logprobs(model, prompts, responses, pad_id=0)
    samples = []
    for i, (p, r) in enumerate(zip(prompts, responses)):
        a = float(torch.randn((1,), generator=gen))
        samples.append(Sample(prompt_ids=p, response_ids=r,
                              old_logprobs=lp_BT[i, :len(r)].tolist(), adv=[a] * len(r)))
    return samples


def train_config(model_dir: str, mini: int, micro: int, lr: float) -> TrainConfig:
    return load_config(None, [f"model.path={model_dir}", f"optim.mini_batch_size={mini}",
                              f"optim.micro_batch_size={micro}", f"optim.lr={lr}",
                              "optim.ppo_epochs=1", "optim.grad_clip=1.0",
                              "algo.loss.kl_coef=0"])  # the check's samples carry no reference


def main(argv: list[str] | None = None) -> dict[str, Any]:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--model", required=True)
    ap.add_argument("--out", required=True)
    ap.add_argument("--steps", type=int, default=2)
    ap.add_argument("--samples", type=int, default=8)
    ap.add_argument("--mini", type=int, default=8)
    ap.add_argument("--micro", type=int, default=2)
    ap.add_argument("--lr", type=float, default=1e-3)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--save-at", type=int, default=0, help="save a sharded checkpoint here")
    ap.add_argument("--resume", default=None, help="a sharded checkpoint dir to resume")
    args = ap.parse_args(argv)

    rank, world, device = init_distributed()
    result = _run(args, rank, world, device)
    finish_distributed()  # every rank waits for rank 0's files, then gloo is torn down
    _progress(rank, f"torn down ({len(gloo_threads())} gloo threads left for end_worker)")
    return result


def _progress(rank: int, msg: str) -> None:
    print(f"[fsdp_check rank {rank}] {msg}", file=sys.stderr, flush=True)


def _run(args: argparse.Namespace, rank: int, world: int, device: torch.device
         ) -> dict[str, Any]:
    torch.manual_seed(args.seed)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    cfg = train_config(args.model, args.mini, args.micro, args.lr)
    samples = synthetic_samples(args.model, args.samples, args.seed)
    learner = FSDPLearner(args.model, cfg, rank=rank, world_size=world, device=device)
    start = int(learner.load_sharded(args.resume)["step"]) if args.resume else 0
    loss_cfg = PPOLossConfig(**cfg.algo.loss.model_dump())
    step_s, losses, gnorms = [], [], []
    for step in range(start, args.steps):
        t0 = time.perf_counter()
        m = learner.update(samples, loss_cfg, seed=args.seed * 1000 + step, pad_id=0)
        step_s.append(time.perf_counter() - t0)
        losses.append(m.get("train/loss", m.get("algo/loss")))
        gnorms.append(m["train/grad_norm"])
        _progress(rank, f"step {step} done")
        if args.save_at and step + 1 == args.save_at:
            learner.save_sharded(out / "ckpt", {"step": step + 1})
            _progress(rank, "saved")
    sd = learner.sync_state_dict()
    result = {"world_size": world, "start": start, "step_s": step_s, "losses": losses,
              "grad_norm": gnorms}
    if rank == 0:
        torch.save({k: v.clone() for k, v in sd.items()}, out / "params.pt")
        (out / "result.json").write_text(json.dumps(result))
    _progress(rank, "finished")
    return result


if __name__ == "__main__":
    main()
    end_worker(0)  # without finalization while gloo threads live (see finish_distributed)
