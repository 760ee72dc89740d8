"""The trainer's task sampler: uniform draws, difficulty sampling fed by rollouts, state."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).parents[1]))  # rollout_fakes

import rollout_fakes

from turngym.errors import CheckpointError
from turngym.harness.config import load_config
from turngym.harness.learn.tasks import TaskSampler
from turngym.harness.rollout.engine import RolloutConfig, RolloutEngine

SOKOBAN = "turngym/Sokoban-v0"
IDS = ["train-00000", "train-00001", "train-00002"]


def expert_groups(tasks):
    cfg = RolloutConfig.build(env_id=SOKOBAN, group_size=2)
    return RolloutEngine(SOKOBAN, rollout_fakes.ExpertPolicy(), None, cfg).run(
        tasks, progress=False)


def test_difficulty_estimates_follow_the_rollouts_by_hand() -> None:
    cfg = load_config(None, ["sampler.name=difficulty", "sampler.ema=0.5"]).sampler
    sampler = TaskSampler(IDS, seed=0, difficulty=cfg)
    groups = expert_groups([("train-00001", 7)])  # 2 rollouts, the expert wins both
    assert all(t.won for g in groups for t in g.trajectories)
    m = sampler.observe(groups)
    # prior 0.5 -> 0.5*0.5 + 0.5*1 = 0.75 -> 0.875; the other tasks stay at 0.5
    assert sampler.difficulty.success_K.tolist() == [0.5, 0.875, 0.5]
    assert m["algo/task_success_est_mean"] == pytest.approx((0.5 + 0.875 + 0.5) / 3)
    # weights p(1-p): 0.25, 0.109375, 0.25 -> the solved task is drawn less
    w = sampler.difficulty.weights()
    assert w.tolist() == pytest.approx([0.25 / 0.609375, 0.109375 / 0.609375, 0.25 / 0.609375])
    drawn = sampler.sample(2)
    assert len({t for t, _ in drawn}) == 2 and all(isinstance(s, int) for _, s in drawn)


def test_state_round_trip_draws_the_same_tasks() -> None:
    cfg = load_config(None, ["sampler.name=difficulty"]).sampler
    a = TaskSampler(IDS, seed=3, difficulty=cfg)
    a.observe(expert_groups([("train-00000", 1)]))
    a.sample(2)
    state = a.state_dict()
    b = TaskSampler(IDS, seed=99, difficulty=cfg)
    b.load_state_dict(state)
    assert [a.sample(2) for _ in range(5)] == [b.sample(2) for _ in range(5)]
    with pytest.raises(CheckpointError, match="sampler"):
        TaskSampler(IDS, seed=3).load_state_dict(state)  # uniform can't take it


def test_uniform_sampling_reports_nothing_and_ignores_outcomes() -> None:
    a, b = TaskSampler(IDS, seed=5), TaskSampler(IDS, seed=5)
    assert a.observe(expert_groups([("train-00001", 7)])) == {}
    assert a.sample(3) == b.sample(3)


def test_bad_sampler_config_names_the_key() -> None:
    from turngym.errors import ConfigError

    with pytest.raises(ConfigError, match="sampler.name"):
        load_config(None, ["sampler.name=hardest"])
    with pytest.raises(ConfigError, match="sampler.ema"):
        load_config(None, ["sampler.ema=1.5"])
