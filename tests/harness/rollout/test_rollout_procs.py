"""Scripted rollouts in worker processes (``RolloutConfig.scripted_processes``): the same
trajectories as one process, and no episode lost when a worker process dies."""

from __future__ import annotations

import logging
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).parents[1]))  # rollout_fakes

import rollout_fakes

from turngym.agents.scripted import ScriptedPolicy
from turngym.harness.rollout.engine import RolloutConfig, RolloutEngine

TASKS = [("train-00000", 0), ("train-00003", 4), ("train-00005", 1), ("train-00008", 2),
         ("train-00011", 3)]


def _content(groups) -> list:
    out = []
    for g in groups:
        for t in g.trajectories:
            d = t.to_dict()
            del d["metrics"]  # timings
            out.append(d)
    return out


def _run(env_id: str, processes: int, tasks=TASKS, **env_kwargs):
    cfg = RolloutConfig.build(env_id=env_id, env_kwargs=env_kwargs, group_size=3, seed=5,
                              max_turns=12, scripted_processes=processes)
    eng = RolloutEngine(env_id, ScriptedPolicy("random", seed=1), None, cfg)
    try:
        groups = eng.run(tasks, progress=processes > 1)
        return groups, dict(eng.last_metrics)
    finally:
        eng.close()


@pytest.mark.slow
@pytest.mark.parametrize("env_id", ["turngym/Sokoban-v0", "turngym/Household-v0"])
def test_processes_play_the_same_trajectories_as_one_process(env_id: str) -> None:
    one, m1 = _run(env_id, 0)
    two, m2 = _run(env_id, 2)
    assert [g.group_id for g in two] == [g.group_id for g in one]  # task order kept
    assert _content(two) == _content(one)
    assert m2["rollout/processes"] == 2.0
    assert m2["rollout/turns_total"] == m1["rollout/turns_total"] > len(TASKS) * 3
    assert m2["rollout/episodes"] == len(TASKS) * 3


@pytest.mark.slow
def test_a_dead_worker_process_loses_no_episode(caplog) -> None:
    env_id = rollout_fakes.ensure_registered()
    # train-00003's env exits hard in a worker; re-run here, where it steps normally
    want, _ = _run(env_id, 0)
    with caplog.at_level(logging.WARNING, logger="turngym.harness.rollout.procs"):
        got, m = _run(env_id, 2, die_in_worker_task="train-00003")
    assert "worker died" in caplog.text
    assert _content(got) == _content(want)
    assert m["rollout/episodes"] == len(TASKS) * 3
