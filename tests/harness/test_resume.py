"""Exact resume: a run killed during a step, resumed from its last checkpoint, trains on the
same next batch with the same loss as an uninterrupted run with the same seed."""

from __future__ import annotations

from pathlib import Path

import pytest

from turngym.errors import CheckpointError
from turngym.harness.config import load_config
from turngym.harness.train import train

ARGS = ["model.path=tiny", "env.id=turngym/Maze-v0", "env.kwargs={size: 2}", "steps=3",
        "rollout.tasks_per_step=2", "rollout.group_size=2", "rollout.max_turns=2",
        "rollout.max_tokens=6", "rollout.history_length=1", "eval.num_tasks=1",
        "eval.at_start=false", "optim.mini_batch_size=4", "optim.micro_batch_size=2",
        "optim.lr=1e-3", "optim.warmup_steps=2", "checkpoint.every=1", "checkpoint.keep=3",
        "logging.plot=false", "logging.progress=false", "algo.name=gigpo", "seed=3"]


class Killed(Exception):
    """Stands in for SIGKILL: raised inside step 2, after step 1's checkpoint."""


#: PPO: from the SFT'd tiny model at temperature 1.5, which wins some mazes, so the critic
#: has returns to learn (its head, its Adam moments and the values enter the digest).
PPO = ["algo.name=ppo", "rollout.temperature=1.5", "rollout.tasks_per_step=4",
       "rollout.group_size=4", "rollout.max_turns=4", "rollout.history_length=0",
       "rollout.max_tokens=8"]


@pytest.mark.slow
@pytest.mark.parametrize("algo", ["gigpo", "ppo"])
def test_resume_continues_exactly(tmp_path: Path, algo: str, request) -> None:
    args = ARGS if algo == "gigpo" else [
        *ARGS, *PPO, f"model.path={request.getfixturevalue('sft_run')['model_dir']}"]
    full = train(load_config(None, [*args, f"out_dir={tmp_path / 'a'}"]))

    def die(step: int, metrics: dict) -> None:
        if step == 2:  # step 2 updated the model in memory but never checkpointed
            raise Killed

    cfg_b = load_config(None, [*args, f"out_dir={tmp_path / 'b'}"])
    with pytest.raises(Killed):
        train(cfg_b, progress_cb=die)
    assert (tmp_path / "b" / "checkpoints" / "latest").read_text() == "step-000001"

    resumed = train(cfg_b, resume=tmp_path / "b")
    assert [h["step"] for h in resumed["history"]] == [2, 3]
    for want, got in zip(full["history"][1:], resumed["history"]):
        assert got["tasks"] == want["tasks"]
        assert got["digest"] == want["digest"]  # same prompts, responses, advantages
        assert got["loss"] == want["loss"]  # bit-identical loss
        assert got["metrics"]["train/lr"] == want["metrics"]["train/lr"]  # scheduler state
        for key in ("algo/value_mean", "algo/value_loss"):  # the critic resumed too
            assert got["metrics"].get(key) == want["metrics"].get(key)
    if algo == "ppo":
        assert any(h["metrics"]["algo/value_loss"] > 0 for h in full["history"])


def test_resume_from_nothing_fails_clearly(tmp_path: Path) -> None:
    from turngym.harness.learn.checkpoint import find_checkpoint

    with pytest.raises(CheckpointError, match="no checkpoint"):
        find_checkpoint(tmp_path)


def test_checkpoints_are_atomic_pruned_and_reloadable(tmp_path: Path) -> None:
    import torch

    from turngym.agents.models import tiny_model_dir
    from turngym.harness.learn.checkpoint import find_checkpoint, load_checkpoint, save_checkpoint
    from turngym.harness.learn.learner import Learner, load_model

    cfg = load_config(None, ["model.path=tiny"])
    learner = Learner(tiny_model_dir(), cfg)
    for step in (1, 2, 3):
        with torch.no_grad():
            next(learner.model.parameters()).add_(1.0)
        save_checkpoint(tmp_path, step, learner, {"sampler": {"n": step}}, keep=2)
    names = sorted(p.name for p in (tmp_path / "checkpoints").iterdir())
    assert names == ["latest", "step-000002", "step-000003"]  # no temp dirs left over
    assert find_checkpoint(tmp_path).name == "step-000003"
    assert find_checkpoint(tmp_path / "checkpoints" / "step-000002").name == "step-000002"
    fresh = Learner(tiny_model_dir(), cfg)
    state = load_checkpoint(tmp_path, fresh)
    assert state["step"] == 3 and state["sampler"] == {"n": 3}
    for a, b in zip(learner.model.state_dict().values(), fresh.model.state_dict().values()):
        assert torch.equal(a, b)
    hf = load_model(tmp_path / "checkpoints" / "step-000003" / "model")  # HF-loadable copy
    assert torch.equal(next(hf.parameters()), next(learner.model.parameters()))
