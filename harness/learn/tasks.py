"""Task sampling for training and the held-out eval split.

:class:`TaskSampler` draws ``(task_id, seed)`` pairs from the train split with its own numpy
generator, so its draws do not depend on anything else that uses randomness, and its
``state_dict`` makes a resumed run draw exactly the tasks the uninterrupted run would.
"""

from __future__ import annotations

import threading
from typing import Any

import numpy as np

from turngym import envs
from turngym.algos.task_sampler import DifficultySampler, TaskSamplerConfig
from turngym.envs.core import unwrapped_turn_env
from turngym.errors import CheckpointError, ConfigError
from turngym.harness.rollout.trajectory import Group


def split_task_ids(env_id: str, env_kwargs: dict[str, Any], split: str
                   ) -> tuple[list[str], str]:
    """The task ids of ``split`` for ``env_id`` and the env family (fails naming ``env.*``)."""
    try:
        env = envs.make(env_id, **env_kwargs)
    except TypeError as exc:
        raise ConfigError(f"env.kwargs: {exc}") from None
    try:
        base = unwrapped_turn_env(env)
        try:
            ids = base.task_ids(split)
        except (KeyError, ValueError) as exc:
            raise ConfigError(f"split {split!r} of {env_id}: {exc}") from None
        family = base.family
    finally:
        env.close()
    if not ids:
        raise ConfigError(f"env.{'train' if 'train' in split else 'eval'}_split: {env_id} has "
                          f"no tasks in split {split!r}")
    return list(ids), family


class TaskSampler:
    """Sampling of train tasks with per-draw env seeds: uniform, or by difficulty.

    ``difficulty`` (an :class:`turngym.algos.task_sampler.TaskSamplerConfig`) draws the ids with an
    :class:`turngym.algos.task_sampler.DifficultySampler` (favouring tasks solved about half the
    time), fed by :meth:`observe` after every rollout; seeds come from this sampler's own
    generator either way. Thread-safe (async mode samples from the producer thread).
    """

    def __init__(self, task_ids: list[str], seed: int,
                 difficulty: TaskSamplerConfig | None = None):
        if not task_ids:
            raise ConfigError("no train tasks to sample from")
        self.task_ids = list(task_ids)
        self.rng = np.random.default_rng(seed)
        self.difficulty: DifficultySampler | None = None
        if difficulty is not None:
            self.difficulty = DifficultySampler(self.task_ids, difficulty, seed=seed + 1)
        self._lock = threading.Lock()

    def sample(self, n: int) -> list[tuple[str, int]]:
        """``n`` distinct tasks (with replacement only when there are fewer than ``n``)."""
        with self._lock:
            if self.difficulty is not None:
                ids = self.difficulty.sample(n)
            else:
                idx = self.rng.choice(len(self.task_ids), size=n,
                                      replace=len(self.task_ids) < n)
                ids = [self.task_ids[int(i)] for i in idx]
            seeds = self.rng.integers(0, 2**31 - 1, size=n)
        return [(t, int(s)) for t, s in zip(ids, seeds)]

    def observe(self, groups: list[Group]) -> dict[str, float]:
        """Fold every trajectory's success into the difficulty estimates; returns the
        sampler's metrics (nothing for uniform sampling)."""
        if self.difficulty is None:
            return {}
        with self._lock:
            for g in groups:
                for t in g.trajectories:
                    self.difficulty.update(t.task_id, float(t.won))
            return self.difficulty.metrics()

    def state_dict(self) -> dict[str, Any]:
        state: dict[str, Any] = {"rng": self.rng.bit_generator.state}
        if self.difficulty is not None:
            state["difficulty"] = self.difficulty.state_dict()
        return state

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.rng.bit_generator.state = state["rng"]
        if (self.difficulty is None) != ("difficulty" not in state):
            raise CheckpointError("sampler: the checkpoint was saved with another "
                                  "sampler.name (uniform vs difficulty)")
        if self.difficulty is not None:
            self.difficulty.load_state_dict(state["difficulty"])


def eval_tasks(task_ids: list[str], n: int, seed: int = 12345) -> list[tuple[str, int]]:
    """The fixed held-out tasks: the first ``n`` ids of the eval split with fixed seeds."""
    rng = np.random.default_rng(seed)
    picked = task_ids[:n]
    return [(t, int(s)) for t, s in zip(picked, rng.integers(0, 2**31 - 1, size=len(picked)))]
