"""The episode-end contract and ``reset(options=...)`` validation of ``envs/core.py``."""

from __future__ import annotations

import pytest

from turngym import envs
from turngym.envs.core import EPISODE_ENDED_NOTICE
from turngym.errors import ConfigError

SOKOBAN_TASK = "train-00002"


def _solve(env) -> tuple:
    """Follow the expert to the end; the last step's result."""
    for _ in range(50):
        out = env.step(env.unwrapped.expert_action())
        if out[2] or out[3]:
            return out
    raise AssertionError("the expert did not finish")


@pytest.mark.parametrize("env_id, task", [
    ("turngym/Sokoban-v0", SOKOBAN_TASK), ("turngym/Maze-v0", "train-00000"),
    ("turngym/Household-v0", "train-00000"), ("turngym/Search-v0", "test-00000"),
])
def test_steps_after_termination_pay_nothing_and_change_nothing(env_id, task) -> None:
    env = envs.make(env_id)
    env.reset(seed=0, options={"task_id": task})
    last_obs, reward, term, _, info = _solve(env)
    assert term and reward > 0
    key, won, turn = info["state_key"], info["won"], info["turn"]
    moves = ["up", "down", "left", "right", *(env.unwrapped.admissible_actions() or [])[:2],
             "<answer>x</answer>", "\ud800", None]
    for action in moves:
        obs, reward, term, trunc, info = env.step(action)
        assert (reward, term, trunc, info["action_valid"]) == (0.0, True, False, False)
        assert (info["state_key"], info["won"], info["turn"]) == (key, won, turn)
        assert obs == f"{EPISODE_ENDED_NOTICE}\n\n{last_obs}"
    obs, info = env.reset(seed=0, options={"task_id": task})  # reset starts over
    assert info["state_key"] != key and not info["won"]


def test_truncated_stays_truncated_and_the_turn_count_stops() -> None:
    env = envs.make("turngym/Maze-v0", max_turns=2)
    env.reset(seed=0, options={"task_id": "train-00000"})
    env.step("nonsense")
    last_obs, _, term, trunc, info = env.step("nonsense")
    assert trunc and not term and info["turn"] == 2
    for _ in range(3):  # the expert's move would be valid, but the budget is spent
        obs, reward, term, trunc, info2 = env.step(env.unwrapped.expert_action())
        assert (reward, term, trunc, info2["action_valid"], info2["turn"]) == \
            (0.0, False, True, False, 2)
        assert info2["state_key"] == info["state_key"] and obs.startswith(EPISODE_ENDED_NOTICE)


def test_a_snapshot_taken_at_the_end_restores_an_ended_env() -> None:
    env = envs.make("turngym/Sokoban-v0")
    env.reset(seed=0, options={"task_id": SOKOBAN_TASK})
    _solve(env)
    blob = env.snapshot()
    other = envs.make("turngym/Sokoban-v0")
    other.reset(seed=1, options={"task_id": "train-00003"})
    other.restore(blob)
    _, reward, term, trunc, info = other.step("up")
    assert (reward, term, trunc, info["action_valid"]) == (0.0, True, False, False)
    short = envs.make("turngym/Maze-v0", max_turns=1)
    short.reset(seed=0, options={"task_id": "train-00000"})
    short.step("nonsense")
    blob = short.snapshot()
    fresh = envs.make("turngym/Maze-v0", max_turns=1)
    fresh.reset(seed=0, options={"task_id": "train-00001"})
    fresh.restore(blob)
    _, reward, term, trunc, info = fresh.step(fresh.unwrapped.expert_action())
    assert (reward, term, trunc, info["action_valid"]) == (0.0, False, True, False)


def test_a_snapshot_taken_mid_episode_is_not_ended() -> None:
    env = envs.make("turngym/Sokoban-v0")
    env.reset(seed=0, options={"task_id": SOKOBAN_TASK})
    blob = env.snapshot()
    _solve(env)
    env.restore(blob)
    _, reward, term, _, _ = _solve(env)
    assert term and reward > 0


@pytest.mark.parametrize("options, needle", [
    ({"taskid": "train-00000"}, "'taskid'"),
    ({"task_id": "train-00000", "level": 3}, "'level'"),
    ("train-00000", "must be a dict"),
    (["task_id"], "must be a dict"),
])
def test_bad_reset_options_raise_config_error(options, needle) -> None:
    env = envs.make("turngym/Maze-v0")
    with pytest.raises(ConfigError, match="allowed keys: 'task_id'") as caught:
        env.reset(seed=0, options=options)
    assert needle in str(caught.value) and isinstance(caught.value, ValueError)
    _, info = env.reset(seed=0, options={"task_id": "train-00007"})
    assert info["task_id"] == "train-00007"
    env.reset(seed=0, options={})  # an empty dict and None still draw a task
    env.reset(seed=0, options=None)
