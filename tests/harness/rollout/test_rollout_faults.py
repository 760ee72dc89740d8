"""Fault isolation and worker pools: env crashes and timeouts end one episode with
``env_error``, the env is rebuilt, nothing is dropped; threads, processes and Ray pools."""

from __future__ import annotations

import sys
import time
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).parents[1]))  # rollout_fakes

import rollout_fakes

from turngym.harness.rollout.engine import RolloutConfig, RolloutEngine
from turngym.harness.rollout.trajectory import StopReason
from turngym.harness.rollout.workers import EnvFactory, InlinePool, ProcessPool, ThreadPool

TASKS = [("train-00000", 0), ("train-00001", 1), ("train-00002", 2)]


def _engine(**kw) -> RolloutEngine:
    env_id = rollout_fakes.ensure_registered()
    cfg = RolloutConfig.build(env_id=env_id, **kw)
    return RolloutEngine(env_id, rollout_fakes.ExpertPolicy(), None, cfg)


def _by_task(groups):
    return {g.task_id: g.trajectories for g in groups}


@pytest.mark.parametrize("step_mode", ["inline", "threads"])
def test_env_exception_ends_only_that_episode(step_mode: str) -> None:
    eng = _engine(group_size=2, step_mode=step_mode,
                  env_kwargs={"explode_task": "train-00001", "explode_at": 1})
    groups = eng.run(TASKS, progress=False)
    by = _by_task(groups)
    assert sum(len(g.trajectories) for g in groups) == 6  # nothing dropped
    for traj in by["train-00001"]:
        assert traj.stop_reason is StopReason.ENV_ERROR
        assert traj.error.startswith("RuntimeError: boom")
        assert len(traj.turns) == 2 and not traj.turns[-1].trainable
        assert traj.turns[-1].info["env_error"] == traj.error
    for task in ("train-00000", "train-00002"):
        assert all(t.won and t.stop_reason is StopReason.TERMINATED for t in by[task])
    assert eng.last_metrics["rollout/env_errors"] == 2.0
    assert eng.last_metrics["rollout/env_rebuilds"] == 2.0
    # the rebuilt envs serve the next run
    again = _by_task(eng.run([("train-00000", 0), ("train-00002", 0)], progress=False))
    assert all(t.won for ts in again.values() for t in ts)
    eng.close()


def test_thread_timeout_ends_episode_quickly() -> None:
    eng = _engine(group_size=1, step_mode="threads", env_timeout_s=0.5,
                  env_kwargs={"hang_task": "train-00002", "hang_at": 0, "hang_s": 5.0})
    t0 = time.perf_counter()
    by = _by_task(eng.run(TASKS, progress=False))
    assert time.perf_counter() - t0 < 4.0
    (traj,) = by["train-00002"]
    assert traj.stop_reason is StopReason.ENV_ERROR and "TimeoutError" in traj.error
    assert by["train-00000"][0].won and by["train-00001"][0].won
    assert eng.last_metrics["rollout/env_timeouts"] == 1.0
    eng.close()


def test_auto_mode_inline_for_fast_threads_for_slow_envs() -> None:
    assert _engine().resolve_mode() == "inline"
    assert _engine(env_kwargs={"reset_latency_s": 0.02}).resolve_mode() == "threads"
    assert _engine(workers="ray").resolve_mode() == "ray"


def test_pools_turn_failures_into_results() -> None:
    factory = EnvFactory.for_env("turngym/Maze-v0", {}, None)
    for pool in (InlinePool(factory, 2), ThreadPool(factory, 2, 1.0, num_workers=2)):
        ok, bad = pool.map([0, 1], getattr, [("task_ids",), ("no_such_attribute",)])
        assert ok.ok and callable(ok.value)
        assert not bad.ok and bad.error.startswith("AttributeError")
        assert pool.rebuilds == 1
        pool.close()
        pool.close()  # twice is fine


@pytest.mark.slow
def test_process_pool_timeout_kills_only_that_worker() -> None:
    rollout_fakes.ensure_registered()
    factory = EnvFactory.for_env(rollout_fakes.FLAKY_ID, {"hang_task": "train-00001",
                                                          "hang_s": 30.0}, None)
    from turngym.harness.rollout import calls as calls

    with ProcessPool(factory, 2, timeout_s=1.0) as pool:
        r0, r1 = pool.map([0, 1], calls.reset_call, [(0, "train-00000"), (0, "train-00001")])
        assert r0.ok and r1.ok
        t0 = time.perf_counter()
        s0, s1 = pool.map([0, 1], calls.step_call, [("down",), ("down",)])
        assert time.perf_counter() - t0 < 10
        assert s0.ok and s0.value.action == "down"
        assert s1.timed_out and "TimeoutError" in s1.error
        assert pool.timeouts == 1 and pool.rebuilds == 1
        again = pool.call(1, calls.reset_call, 0, "train-00002")  # a fresh worker
        assert again.ok


@pytest.mark.slow
def test_engine_with_processes_matches_inline() -> None:
    from turngym.agents.scripted import ScriptedPolicy

    runs = {}
    for mode in ("inline", "processes"):
        env_id = rollout_fakes.ensure_registered()
        cfg = RolloutConfig.build(env_id=env_id, group_size=2, step_mode=mode, seed=2)
        # a random policy: its RNG state must travel to the worker process and back
        eng = RolloutEngine(env_id, ScriptedPolicy("random", seed=1), None, cfg)
        groups = eng.run(TASKS[:2], progress=False)
        runs[mode] = [[t.action for t in tr.turns] for g in groups for tr in g.trajectories]
        eng.close()
    assert runs["inline"] == runs["processes"]


@pytest.mark.ray
@pytest.mark.slow
def test_ray_workers_same_api_and_fault_isolation() -> None:
    ray = pytest.importorskip("ray")
    import os

    here = str(Path(__file__).parents[1])  # rollout_fakes
    pypath = os.pathsep.join([here, os.environ.get("PYTHONPATH", "")])
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False,
             runtime_env={"env_vars": {"PYTHONPATH": pypath}})
    try:
        eng = _engine(group_size=2, workers="ray", env_timeout_s=20.0,
                      env_kwargs={"explode_task": "train-00001", "explode_at": 0})
        by = _by_task(eng.run(TASKS[:2], progress=False))
        assert eng.mode == "ray"
        assert all(t.won for t in by["train-00000"])
        assert [t.stop_reason for t in by["train-00001"]] == [StopReason.ENV_ERROR] * 2
        assert all("boom" in t.error for t in by["train-00001"]), [
            t.error for t in by["train-00001"]]
        eng.close()
    finally:
        ray.shutdown()


def test_failed_rebuild_fails_later_calls_not_the_run() -> None:
    real = EnvFactory.for_env("turngym/Maze-v0", {}, None)
    built = []

    def factory():
        if built:
            raise OSError("disk full")
        built.append(1)
        return real()

    pool = InlinePool(factory, 1)
    assert not pool.call(0, getattr, "no_such_attribute").ok  # triggers the rebuild
    r = pool.call(0, getattr, "task_ids")
    assert not r.ok and "could not be rebuilt: OSError: disk full" in r.error
    pool.close()
