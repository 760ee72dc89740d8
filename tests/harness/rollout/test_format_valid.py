"""``Turn.format_valid`` from the rollout to the GiGPO penalty: a response that does not parse
is a format error; a well-formed move into a Maze wall is only an invalid action."""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pytest

sys.path.insert(0, str(Path(__file__).parents[1]))  # rollout_fakes

import rollout_fakes

from turngym.agents.agent import Agent
from turngym.algos.gigpo import GiGPOConfig, gigpo_advantage
from turngym.harness.learn.samples import turn_batch
from turngym.harness.rollout.engine import RolloutConfig, RolloutEngine
from turngym.harness.rollout.summary import summarize as rollout_metrics

MAZE = "turngym/Maze-v0"
MOVES = ("up", "right", "down", "left")


def maze_responses(k: int, row: int, seed: int) -> str:
    """Turn 0 (and every 5th) does not parse; the others cycle through the four moves, so
    some of them walk into a wall."""
    if k % 5 == 0:
        return "I would rather not say"
    return f"<think>go</think><action>{MOVES[(k + row) % 4]}</action>"


@pytest.fixture(scope="module")
def groups():
    from turngym.agents.models import load_tokenizer, tiny_model_dir

    tok = load_tokenizer(tiny_model_dir())
    cfg = RolloutConfig.build(env_id=MAZE, group_size=2, max_turns=10, env_kwargs={"size": 3})
    backend = rollout_fakes.FakeBackend(tok, maze_responses)
    eng = RolloutEngine(MAZE, backend, Agent(tokenizer=tok, family="maze"), cfg)
    return eng.run([("train-00004", 0)], progress=False)


def test_rollout_records_format_errors_apart_from_invalid_actions(groups) -> None:
    turns = [u for t in groups[0].trajectories for u in t.turns]
    for u in turns:
        assert u.format_valid == ("parse_error" not in u.info)
        if not u.format_valid:
            assert not u.action_valid and u.action == ""
    assert any(not u.format_valid for u in turns)
    wall = [u for u in turns if u.format_valid and not u.action_valid]
    assert wall and all(u.observation.startswith("Nothing happens") for u in wall)
    m = rollout_metrics(t for g in groups for t in g.trajectories)
    assert m["rollout/format_error_rate"] == pytest.approx(
        np.mean([not u.format_valid for u in turns]))
    assert m["rollout/invalid_rate"] > m["rollout/format_error_rate"]


def test_turn_batch_carries_format_valid_and_gigpo_penalises_format_errors_only(groups) -> None:
    batch, rows = turn_batch(groups)
    assert batch.format_valid_N.tolist() == [u.format_valid for u in rows]
    assert batch.valid_N.tolist() == [u.action_valid for u in rows]
    base = gigpo_advantage(batch, GiGPOConfig(invalid_penalty=0.0)).adv_N
    fmt = gigpo_advantage(batch, GiGPOConfig()).adv_N
    act = gigpo_advantage(batch, GiGPOConfig(penalize="action")).adv_N
    np.testing.assert_allclose(base - fmt, 0.1 * ~batch.format_valid_N, rtol=0, atol=1e-12)
    np.testing.assert_allclose(base - act, 0.1 * ~batch.valid_N, rtol=0, atol=1e-12)


def test_scripted_and_expert_turns_are_format_valid() -> None:
    for step_mode in ("inline", "threads"):
        cfg = RolloutConfig.build(env_id="turngym/Sokoban-v0", group_size=2, max_turns=4,
                                  step_mode=step_mode)
        eng = RolloutEngine("turngym/Sokoban-v0", rollout_fakes.ExpertPolicy(), None, cfg)
        for prefix in (0, 1):
            groups = eng.run([("train-00001", 7)], expert_prefix=prefix, progress=False)
            turns = [u for t in groups[0].trajectories for u in t.turns]
            assert turns and all(u.format_valid for u in turns)
            assert all("format_valid" in vars(u) for u in turns)  # set, not the class default
