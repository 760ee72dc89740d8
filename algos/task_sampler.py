"""Task sampling by difficulty: favour tasks the policy solves about half the time.

Each task keeps an exponential moving average of its success rate ``p`` (prior
``prior``, updated with ``p <- ema * p + (1 - ema) * success``). A task is drawn with
probability proportional to

    weight = max(p * (1 - p), min_weight)

which peaks at ``p = 0.5`` (the tasks that give the largest group-relative signal) and never
starves solved or hopeless tasks entirely (``min_weight``). Sampling is without replacement
within one call when ``n <= number of tasks``.

``state_dict`` holds the success estimates and the sampler's RNG state, so a resumed run
draws the same tasks as an uninterrupted one.

Worked example (ema 0.5, prior 0.5): after one success on task ``a``, ``p_a = 0.75`` and its
weight is ``0.1875``; an untouched task keeps ``p = 0.5`` and weight ``0.25``.
"""

from __future__ import annotations

from typing import Any, Literal

import numpy as np
from pydantic import BaseModel, ConfigDict, Field

from turngym.errors import CheckpointError, ConfigError


class TaskSamplerConfig(BaseModel):
    """Config of :class:`DifficultySampler`."""

    model_config = ConfigDict(extra="forbid", frozen=True)
    name: Literal["difficulty"] = "difficulty"
    ema: float = Field(0.9, ge=0.0, lt=1.0)
    """Weight of the old estimate in the success-rate moving average."""
    prior: float = Field(0.5, ge=0.0, le=1.0)
    """Success estimate of a task never played."""
    min_weight: float = Field(0.01, gt=0.0, le=0.25)
    """Floor of a task's sampling weight."""


class DifficultySampler:
    """Draws task ids, favouring tasks with a success rate near 0.5."""

    def __init__(self, task_ids: list[str], cfg: TaskSamplerConfig | None = None,
                 seed: int = 0) -> None:
        if not task_ids:
            raise ConfigError("DifficultySampler needs at least one task id")
        if len(set(task_ids)) != len(task_ids):
            raise ConfigError("DifficultySampler: task_ids contain duplicates")
        self.cfg = cfg or TaskSamplerConfig()
        self.task_ids = list(task_ids)
        self._index = {t: i for i, t in enumerate(self.task_ids)}
        self.success_K = np.full(len(task_ids), self.cfg.prior)
        self.rng = np.random.default_rng(seed)

    def weights(self) -> np.ndarray:
        """Sampling probability of each task (sums to 1)."""
        w_K = np.maximum(self.success_K * (1.0 - self.success_K), self.cfg.min_weight)
        return w_K / w_K.sum()

    def sample(self, n: int) -> list[str]:
        """Draw ``n`` task ids (distinct when ``n`` <= number of tasks)."""
        if n < 1:
            raise ConfigError(f"sample(n) needs n >= 1, got {n}")
        replace = n > len(self.task_ids)
        idx = self.rng.choice(len(self.task_ids), size=n, replace=replace, p=self.weights())
        return [self.task_ids[i] for i in idx]

    def update(self, task_id: str, success: float) -> None:
        """Fold one episode's success (0..1) into the task's estimate."""
        if task_id not in self._index:
            raise ConfigError(f"DifficultySampler: unknown task id {task_id!r}")
        i = self._index[task_id]
        self.success_K[i] = self.cfg.ema * self.success_K[i] + (1 - self.cfg.ema) * float(success)

    def metrics(self) -> dict[str, float]:
        """``algo/task_success_est_mean`` and the share of tasks near 0.5 (0.2..0.8)."""
        p = self.success_K
        return {"algo/task_success_est_mean": float(p.mean()),
                "algo/task_frac_learnable": float(np.mean((p > 0.2) & (p < 0.8)))}

    def state_dict(self) -> dict[str, Any]:
        """Task list, success estimates and RNG state, for checkpoints."""
        return {"task_ids": list(self.task_ids), "success": self.success_K.tolist(),
                "rng": self.rng.bit_generator.state}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Restore :meth:`state_dict`; raises ``CheckpointError`` for another task list."""
        if state.get("task_ids") != self.task_ids:
            raise CheckpointError("task sampler state was saved for a different task list")
        self.success_K = np.asarray(state["success"], dtype=np.float64)
        self.rng.bit_generator.state = state["rng"]
