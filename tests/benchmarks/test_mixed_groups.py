"""``benchmarks/mixed_groups.py``: what counts as a mixed group, and the probe end to end on
the tiny model (which never writes an action: no group is mixed, every turn a format
error)."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest

from turngym.benchmarks import mixed_groups


def test_only_groups_with_both_outcomes_are_mixed() -> None:
    assert mixed_groups.is_mixed([True, False, False])
    assert not mixed_groups.is_mixed([True, True])
    assert not mixed_groups.is_mixed([False, False, False])
    assert not mixed_groups.is_mixed([])


@pytest.mark.slow
def test_the_probe_writes_one_row_per_setting(tmp_path: Path) -> None:
    mixed_groups.main(["--model", "tiny", "--tasks", "2", "--temperatures", "1.0,1.5",
                       "--groups", "2", "--backend", "hf", "--results-dir", str(tmp_path)])
    doc = json.loads((tmp_path / "mixed_groups.json").read_text())
    rows = doc["results"]["rows"]
    assert [(r["temperature"], r["group"], r["tasks"]) for r in rows] == [(1.0, 2, 2),
                                                                        (1.5, 2, 2)]
    for r in rows:
        assert (r["mixed_frac"], r["success"], r["format_error_rate"]) == (0.0, 0.0, 1.0)
        assert r["mixed_lo"] == 0.0 and r["mixed_hi"] == pytest.approx(0.65761, abs=1e-5)


def test_gigpo_finds_signal_in_an_all_success_group_whose_paths_differ() -> None:
    """Two rollouts of one size-2 maze both win: the first walks the shortest path, the
    second bumps into the top wall first. GRPO's episode returns tie (no signal); GiGPO's
    discounted step returns from the shared start state differ (gamma^(L-1) vs gamma^L), so
    its step level gives the group signal."""
    sys.path.insert(0, str(Path(__file__).parents[1] / "harness"))
    import rollout_fakes

    from turngym.agents.agent import Agent
    from turngym.agents.models import load_tokenizer, tiny_model_dir
    from turngym.envs.maze.env import make_maze, shortest_path
    from turngym.harness.rollout.engine import RolloutConfig, RolloutEngine

    path = shortest_path(make_maze("train", 4, 2), (1, 1), (3, 3))
    moves = {0: list(path), 1: ["up", *path]}  # "up" from (1, 1) is the border wall
    seen: dict[int, int] = {0: 0, 1: 0}

    def responses(k: int, row: int, seed: int) -> str:
        # the longer rollout is the only one left once the shorter one has won
        traj = row if k < len(path) else 1
        move = moves[traj][seen[traj]]
        seen[traj] += 1
        return f"<think>go</think><action>{move}</action>"

    tok = load_tokenizer(tiny_model_dir())
    cfg = RolloutConfig.build(env_id="turngym/Maze-v0", group_size=2, max_turns=10,
                              env_kwargs={"size": 2})
    engine = RolloutEngine("turngym/Maze-v0", rollout_fakes.FakeBackend(tok, responses),
                           Agent(tokenizer=tok, family="maze"), cfg)
    groups = engine.run([("train-00004", 0)], progress=False)
    trajs = groups[0].trajectories
    assert [t.won for t in trajs] == [True, True]
    assert sorted(len(t.turns) for t in trajs) == [len(path), len(path) + 1]
    s = mixed_groups.signal(groups)
    assert (s["grpo_signal_groups_frac"], s["grpo_signal_rows_frac"]) == (0.0, 0.0)
    assert s["gigpo_signal_groups_frac"] == 1.0
    # the start state is visited twice by the bumper and once by the walker: those 3 rows
    # have differing step returns; every later state is one step group per rollout
    assert s["gigpo_signal_rows_frac"] == pytest.approx(3 / (2 * len(path) + 1))
