"""Scripted-policy rollouts split over worker processes (``RolloutConfig.scripted_processes``).

A scripted policy (an env's expert, a random policy, a replay) needs no model, so a whole
episode can run where its env lives. With ``scripted_processes = W > 1`` the engine deals the
groups of a ``run`` out to W spawned worker processes, round robin; each worker holds an
inline :class:`~turngym.harness.rollout.engine.RolloutEngine` of its own (same env id,
kwargs, policy and run seed), plays its share to the end and sends the finished groups back
pickled. Group ids, trajectory ids and every episode's policy seed are the ones a
one-process run gives, so the trajectories are identical to ``step_mode=inline`` (tested);
only the wall time changes.

For microsecond envs (Household, Sokoban, Maze) the per-turn cost of recording a
:class:`~turngym.harness.rollout.trajectory.Turn` is as large as the step itself; W
processes spread both. Model-driven rollouts never take this path: they batch one
``generate`` per turn instead.

Faults: an env that raises ends its episode with ``env_error`` inside the worker, as inline.
A worker process that dies (a segfault, the OOM killer) breaks the pool: the shares it had
not returned are re-run in this process, so no episode is lost, and the pool is rebuilt on
the next run.
"""

from __future__ import annotations

import gc
import logging
import multiprocessing as mp
import pickle
from collections.abc import Callable
from concurrent.futures import ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from typing import Protocol

from turngym.envs.registration import EnvSpec
from turngym.harness.rollout.calls import Episode, Policy
from turngym.harness.rollout.config import RolloutConfig
from turngym.harness.rollout.trajectory import Group
from turngym.harness.rollout.workers import ensure_registered

logger = logging.getLogger(__name__)


class ShareEngine(Protocol):
    """What a share is played on: a :class:`~turngym.harness.rollout.engine.RolloutEngine`
    (named by this protocol because the engine module imports this one)."""

    last_metrics: dict[str, float]

    def make_episodes(self, tasks: list[tuple[str, int]], prefix: str,
                      group_index: list[int] | None = None) -> list[Episode]: ...

    def drive(self, episodes: list[Episode], horizon: int | None, expert_prefix: int,
              progress: bool, reset: bool) -> list[Group]: ...


#: Builds an engine: ``engine_cls(env_id, policy, agent=None, cfg)``.
EngineClass = Callable[[str, Policy, None, RolloutConfig], ShareEngine]

#: The worker's engine (built once per worker process by :func:`_init_worker`).
_ENGINE: ShareEngine | None = None

#: Shares per worker process in one run.
CHUNKS = 4

#: ``rollout/*`` metrics that add up over shares (the rest are recomputed by the parent).
ADDITIVE = ("rollout/episodes", "rollout/turns_total", "rollout/model_wall_s", "rollout/env_wait_s",
            "rollout/agent_wall_s", "rollout/env_errors", "rollout/backend_retries",
            "rollout/generate_calls", "rollout/env_timeouts", "rollout/env_rebuilds")


def _init_worker(engine_cls: EngineClass, env_id: str, spec: EnvSpec | None, policy: Policy,
                 cfg: RolloutConfig) -> None:
    """Worker initializer: register ``spec`` when the id is missing here, build the engine.

    ``engine_cls`` is the parent's engine class, pickled by reference (so this module needs
    no import of the engine, which imports it)."""
    global _ENGINE
    ensure_registered(env_id, spec)
    _ENGINE = engine_cls(env_id, policy, None, cfg)


def play_share(engine: ShareEngine, share: list[tuple[int, str, int]], horizon: int | None,
               expert_prefix: int, id_prefix: str) -> tuple[list[Group], dict[str, float]]:
    """Play the groups ``share`` = ``[(k, task_id, seed)]`` (``k``: the group's index in the
    whole run) on ``engine`` in its own process; returns ``(groups, rollout metrics)``."""
    episodes = engine.make_episodes([(t, s) for _, t, s in share], id_prefix,
                                    group_index=[k for k, _, _ in share])
    groups = engine.drive(episodes, horizon, expert_prefix, progress=False, reset=True)
    return groups, engine.last_metrics


def run_share(share: list[tuple[int, str, int]], horizon: int | None, expert_prefix: int,
              id_prefix: str) -> bytes:
    """:func:`play_share` on this worker's engine, pickled.

    Pickled here, so that the parent unpickles with the cyclic GC paused (:func:`_loads`):
    thousands of Turn records otherwise trigger collection after collection while loading.
    """
    out = play_share(_ENGINE, share, horizon, expert_prefix, id_prefix)
    return pickle.dumps(out, protocol=pickle.HIGHEST_PROTOCOL)


def _loads(blob: bytes) -> tuple[list[Group], dict[str, float]]:
    """``pickle.loads`` with the cyclic GC paused (see :func:`run_share`)."""
    was = gc.isenabled()
    gc.disable()
    try:
        return pickle.loads(blob)
    finally:
        if was:
            gc.enable()


class ScriptedProcessPool:
    """``n`` spawned worker processes, each with an inline ``engine_cls`` for ``env_id``."""

    def __init__(self, engine_cls: EngineClass, env_id: str, spec: EnvSpec | None,
                 policy: Policy, cfg: RolloutConfig, n: int):
        self.n = int(n)
        inline = cfg.model_copy(update={"scripted_processes": 0, "step_mode": "inline",
                                        "env_timeout_s": None})
        self._args = (engine_cls, env_id, spec, policy, inline)
        self._executor: ProcessPoolExecutor | None = None

    def _pool(self) -> ProcessPoolExecutor:
        if self._executor is None:
            self._executor = ProcessPoolExecutor(self.n, mp_context=mp.get_context("spawn"),
                                                 initializer=_init_worker, initargs=self._args)
        return self._executor

    def run(self, tasks: list[tuple[str, int]], horizon: int | None, expert_prefix: int,
            id_prefix: str, fallback: ShareEngine,
            on_done: Callable[[int], object] | None = None
            ) -> tuple[list[Group], list[dict[str, float]]]:
        """Groups of ``tasks`` in task order, and each share's metrics. ``fallback`` is an
        engine in this process that plays a share whose worker died; ``on_done(n_groups)``
        reports progress."""
        items = [(k, t, s) for k, (t, s) in enumerate(tasks)]
        # CHUNKS shares per worker: this process unpickles early shares while workers play
        # later ones
        n = min(len(items), self.n * CHUNKS)
        shares = [items[w::n] for w in range(n)]
        pool = self._pool()
        futures = [pool.submit(run_share, share, horizon, expert_prefix, id_prefix)
                   for share in shares]
        by_k: dict[int, Group] = {}
        metrics = []
        for share, fut in zip(shares, futures):
            try:
                groups, m = _loads(fut.result())
            except BrokenProcessPool as exc:
                logger.warning("a scripted rollout worker died (%s); re-running its %d "
                               "group(s) in this process", exc, len(share))
                self.close()
                groups, m = play_share(fallback, share, horizon, expert_prefix, id_prefix)
            by_k.update(zip((k for k, _, _ in share), groups))
            metrics.append(m)
            if on_done is not None:
                on_done(len(by_k))
        return [by_k[k] for k in range(len(items))], metrics

    def close(self) -> None:
        """Stop the workers (a later run starts new ones). Safe to call twice."""
        if self._executor is not None:
            self._executor.shutdown(wait=True, cancel_futures=True)
            self._executor = None


def merge_metrics(parts: list[dict[str, float]], wall_s: float) -> dict[str, float]:
    """The shares' ``rollout/*`` metrics as one run's: sums, then rates over ``wall_s``."""
    out: dict[str, float] = {}
    for m in parts:
        for k, v in m.items():
            if k in ADDITIVE or k not in out:
                out[k] = out.get(k, 0.0) + v if k in ADDITIVE else v
    out["rollout/wall_s"] = wall_s
    out["rollout/turns_per_s"] = out.get("rollout/turns_total", 0.0) / max(wall_s, 1e-9)
    return out
