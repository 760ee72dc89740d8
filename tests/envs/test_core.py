from __future__ import annotations

import gymnasium as gym
import pytest

from turngym import envs
from turngym.envs.core import TurnLimit


def test_step_before_reset_raises_reset_needed() -> None:
    env = envs.make("turngym/Maze-v0")
    with pytest.raises(gym.error.ResetNeeded):
        env.step("up")


def test_turn_limit_truncates_without_terminating() -> None:
    env = envs.make("turngym/Maze-v0", max_turns=2)
    env.reset(seed=0, options={"task_id": "train-00000"})
    _, _, term1, trunc1, info1 = env.step("xyzzy")
    _, _, term2, trunc2, info2 = env.step("xyzzy")
    assert (term1, trunc1, info1["turn"]) == (False, False, 1)
    assert (term2, trunc2, info2["turn"]) == (False, True, 2)


def test_termination_on_last_turn_is_not_truncation() -> None:
    env = envs.make("turngym/Maze-v0", size=2)
    env.reset(seed=0, options={"task_id": "train-00000"})
    path = []
    while (a := env.unwrapped.expert_action()) is not None:
        path.append(a)
        env.unwrapped._step(a)  # walk the plan on the inner env to learn its length
    env = envs.make("turngym/Maze-v0", size=2, max_turns=len(path))
    env.reset(seed=0, options={"task_id": "train-00000"})
    for a in path:
        _, reward, term, trunc, info = env.step(a)
    assert term and not trunc and info["won"] and reward == 1.0


def test_turn_limit_snapshot_keeps_turn_count() -> None:
    env = envs.make("turngym/Sokoban-v0", max_turns=5)
    env.reset(seed=0, options={"task_id": "train-00002"})
    env.step("up")
    blob = env.snapshot()
    env.step("up")
    env.step("up")
    env.restore(blob)
    assert env.turn == 1


def test_overlong_and_non_string_actions_are_invalid() -> None:
    env = envs.make("turngym/Sokoban-v0")
    env.reset(seed=0, options={"task_id": "train-00002"})
    obs, _, _, _, info = env.step("up" * 5000)
    assert not info["action_valid"] and "longer than" in obs
    obs, _, _, _, info = env.step(None)  # type: ignore[arg-type]
    assert not info["action_valid"] and "expected text" in obs


def test_wrapper_forwards_contract_attributes() -> None:
    env = envs.make("turngym/Maze-v0")
    assert isinstance(env, TurnLimit)
    assert env.family == "maze" and len(env.task_ids("test")) == 200
