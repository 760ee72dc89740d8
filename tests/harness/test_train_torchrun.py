"""``turngym train`` under ``torchrun --nproc_per_node 2`` (gloo on CPU, FSDP2 learner).

* Step 1 of the 2-rank run trains on the same batch as a one-process run with the same
  seed, with the same loss, and ends at the same weights (float noise): the sharded update
  with accumulation across ranks is the plain update.
* Its sharded checkpoint (one ``.distcp`` file per rank) resumes on 2 ranks and step 2
  then trains on exactly the batch of the uninterrupted 2-rank run.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from turngym.harness.config import load_config
from turngym.harness.train import train

ARGS = ["model.path=tiny", "env.id=turngym/Maze-v0", "env.kwargs={size: 2}", "steps=2",
        "rollout.tasks_per_step=2", "rollout.group_size=2", "rollout.max_turns=2",
        "rollout.max_tokens=6", "rollout.history_length=1", "eval.num_tasks=1",
        "eval.at_start=false", "optim.mini_batch_size=4", "optim.micro_batch_size=1",
        "optim.lr=1e-3", "checkpoint.every=1", "checkpoint.keep=3", "logging.plot=false",
        "logging.progress=false", "logging.tensorboard=false", "algo.name=grpo", "seed=5",
        "algo.loss.entropy_coef=0.01"]  # a gradient even when every return is equal
ROOT = Path(__file__).resolve().parents[2]


def torchrun_train(out: Path, *extra: str) -> subprocess.CompletedProcess:
    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node=2",
           "-m", "turngym.harness.cli.main", "train", *ARGS, f"out_dir={out}", *extra]
    env = {**os.environ, "OMP_NUM_THREADS": "1", "HF_HUB_OFFLINE": "1"}
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=900, env=env,
                          check=False, cwd=ROOT)
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-4000:]
    # rank 0's summary survives end_worker's exit, and no rank aborts on the way out
    assert "run dir:" in proc.stdout, proc.stdout[-2000:]
    assert "terminate called" not in proc.stderr, proc.stderr[-4000:]
    return proc


def batches(out: Path) -> dict[int, dict]:
    rows = [json.loads(line) for line in (out / "batches.jsonl").read_text().splitlines()]
    return {r["step"]: r for r in rows}


def weights(ck: Path) -> dict:
    from safetensors.torch import load_file

    return load_file(str(ck / "model" / "model.safetensors"))


@pytest.mark.slow
def test_two_rank_train_matches_one_process_and_resumes_sharded(tmp_path: Path) -> None:
    torchrun_train(tmp_path / "two")
    two = batches(tmp_path / "two")
    ck1 = tmp_path / "two" / "checkpoints" / "step-000001"
    assert len(list((ck1 / "dcp").glob("*.distcp"))) == 2  # one shard file per rank
    assert not (ck1 / "policy.safetensors").exists()

    one = train(load_config(None, [*ARGS, "steps=1", f"out_dir={tmp_path / 'one'}"]))
    step1 = one["history"][0]
    assert two[1]["tasks"] == [list(t) for t in step1["tasks"]]
    assert two[1]["digest"] == step1["digest"]  # same rollouts, same advantages
    assert two[1]["loss"] == pytest.approx(step1["loss"], rel=1e-4, abs=1e-6)
    w1, w2 = weights(tmp_path / "one" / "checkpoints" / "step-000001"), weights(ck1)
    assert w1.keys() == w2.keys()
    moved = max(float((w1[k] - w2[k]).abs().max()) for k in w1)
    from turngym.agents.models import resolve_model_dir
    from turngym.harness.learn.learner import load_model

    start = load_model(resolve_model_dir("tiny")).state_dict()
    step = max(float((w1[k] - start[k]).abs().max()) for k in w1)
    assert step > 1e-4 and moved < 0.02 * step  # float noise next to a real update

    # ---- kill after step 1 = resume from its sharded checkpoint on 2 ranks
    proc = torchrun_train(tmp_path / "two", "--resume", str(ck1))
    resumed = batches(tmp_path / "two")
    assert resumed[2]["tasks"] == two[2]["tasks"]
    assert resumed[2]["digest"] == two[2]["digest"]
    assert resumed[2]["loss"] == pytest.approx(two[2]["loss"], rel=1e-6, abs=1e-9)
    assert "held-out evaluation" in proc.stdout  # rank 0 alone prints the summary
    assert proc.stdout.count("held-out evaluation") == 1


def test_torchrun_refuses_lora_and_async_before_work() -> None:
    from turngym.errors import ConfigError
    from turngym.harness.distributed.leader import check_torchrun_config

    with pytest.raises(ConfigError, match="lora.enabled"):
        check_torchrun_config(load_config(None, [*ARGS, "lora.enabled=true"]))
    with pytest.raises(ConfigError, match="distributed.async_staleness"):
        check_torchrun_config(load_config(None, [*ARGS, "distributed.async_staleness=1"]))
    check_torchrun_config(load_config(None, ARGS))
