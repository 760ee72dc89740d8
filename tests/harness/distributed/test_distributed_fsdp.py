"""The FSDP2 learner under ``torchrun --nproc_per_node 2`` with gloo on CPU.

* Two ranks (each 2 micro-batches of 2) give the same parameters and gradient norms as
  one plain learner with twice the accumulation (4 micro-batches of 2) on the same data.
* A sharded checkpoint saved by 2 ranks after step 1 and resumed by 1 rank (resharding)
  ends at the same parameters as the uninterrupted 2-rank run.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch

STEPS, SAMPLES, MINI, MICRO, LR, SEED = 2, 8, 8, 2, 1e-3, 0


def torchrun(nproc: int, out: Path, model_dir: Path, *extra: str) -> dict:
    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone",
           f"--nproc_per_node={nproc}", "-m", "turngym.harness.distributed.fsdp_check",
           "--model", str(model_dir), "--out", str(out), "--steps", str(STEPS),
           "--samples", str(SAMPLES), "--mini", str(MINI), "--micro", str(MICRO),
           "--lr", str(LR), "--seed", str(SEED), *extra]
    env = {**os.environ, "OMP_NUM_THREADS": "1", "HF_HUB_OFFLINE": "1"}
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=400, env=env, check=False,
                          cwd=Path(__file__).resolve().parents[3])
    progress = [ln for ln in proc.stderr.splitlines() if ln.startswith("[fsdp_check")]
    assert proc.returncode == 0, "\n".join(progress) + "\n...\n" + proc.stderr[-3000:]
    # every rank got through the teardown, and none aborted on the way out
    assert sum("torn down" in ln for ln in progress) == nproc, "\n".join(progress)
    assert "terminate called" not in proc.stderr, proc.stderr[-3000:]
    return json.loads((out / "result.json").read_text())


def reference_run(model_dir: Path) -> tuple[dict, list[float]]:
    """One plain (unsharded) learner in this process: 4 micro-batches per optimiser step."""
    from turngym.algos.ppo_loss import PPOLossConfig
    from turngym.harness.distributed.fsdp_check import synthetic_samples, train_config
    from turngym.harness.learn.learner import Learner, ppo_update

    torch.manual_seed(SEED)
    cfg = train_config(str(model_dir), MINI, MICRO, LR)
    samples = synthetic_samples(str(model_dir), SAMPLES, SEED)
    learner = Learner(model_dir, cfg)
    loss_cfg = PPOLossConfig(**cfg.algo.loss.model_dump())
    norms = [ppo_update(learner, samples, loss_cfg, seed=SEED * 1000 + s,
                        pad_id=0)["train/grad_norm"] for s in range(STEPS)]
    return learner.sync_state_dict(), norms


def max_diff(a: dict, b: dict) -> float:
    assert a.keys() == b.keys()
    return max(float((a[k].float() - b[k].float()).abs().max()) for k in a)


@pytest.mark.slow
def test_two_ranks_equal_one_rank_with_twice_the_accumulation(tmp_path: Path,
                                                              tiny_model_dir: Path) -> None:
    two = torchrun(2, tmp_path / "two", tiny_model_dir, "--save-at", "1")
    assert two["world_size"] == 2 and len(two["step_s"]) == STEPS
    ref_sd, ref_norms = reference_run(tiny_model_dir)
    two_sd = torch.load(tmp_path / "two" / "params.pt")
    from turngym.harness.learn.learner import load_model

    init = load_model(tiny_model_dir).state_dict()
    moved = max_diff(ref_sd, init)
    assert moved > 1e-3  # the updates really changed the weights
    assert max_diff(two_sd, ref_sd) < 0.05 * moved  # float noise only
    # the global gradient: a missing 1/world or x world scaling would be off by 2x
    assert two["grad_norm"] == pytest.approx(ref_norms, rel=1e-3)

    # ---- resume the sharded checkpoint of step 1 on ONE rank (DCP reshards)
    assert (tmp_path / "two" / "ckpt" / "DONE").is_file()
    assert len(list((tmp_path / "two" / "ckpt" / "dcp").glob("*.distcp"))) == 2  # one per rank
    res = torchrun(1, tmp_path / "resumed", tiny_model_dir, "--resume",
                   str(tmp_path / "two" / "ckpt"))
    assert res["start"] == 1 and len(res["step_s"]) == STEPS - 1
    res_sd = torch.load(tmp_path / "resumed" / "params.pt")
    assert max_diff(res_sd, two_sd) < 0.05 * moved
    assert res["grad_norm"][0] == pytest.approx(two["grad_norm"][1], rel=1e-3)
