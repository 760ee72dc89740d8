"""The flat per-turn arrays that advantage estimators read.

``algos`` depends on numpy/torch only, so the trainer converts rollout records
(``harness.trajectory``) into a :class:`TurnBatch` before calling an estimator. Every array
has one row per turn (N rows). Rows of one trajectory are contiguous and in turn order.

Shape suffixes: ``_N`` per turn row.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from envs.errors import ConfigError


@dataclass(frozen=True)
class TurnBatch:
    """Per-turn rows of a batch of trajectories."""

    group_N: np.ndarray
    """int64 index of the task group (trajectories sharing ``task_id`` and seed)."""
    traj_N: np.ndarray
    """int64 index of the trajectory; rows of one trajectory are contiguous."""
    turn_N: np.ndarray
    """int64 turn index within the trajectory (0-based)."""
    reward_N: np.ndarray
    """float64 env reward of the step."""
    state_N: np.ndarray
    """int64 id of the ``state_key`` the turn acted from (equal ids = equal keys)."""
    valid_N: np.ndarray
    """bool, whether the action was valid."""
    mask_N: np.ndarray
    """bool, False for rows that must not enter group statistics or the loss
    (padding, duplicated rows, TCOD expert-prefix turns)."""

    def __post_init__(self) -> None:
        n = len(self.group_N)
        if n == 0:
            raise ConfigError("empty batch: no turn rows to compute advantages on")
        for name in ("traj_N", "turn_N", "reward_N", "state_N", "valid_N", "mask_N"):
            if len(getattr(self, name)) != n:
                raise ConfigError(f"TurnBatch.{name} has {len(getattr(self, name))} rows, "
                                  f"expected {n}")

    def __len__(self) -> int:
        return len(self.group_N)

    @classmethod
    def from_lists(
        cls,
        group: list[int],
        traj: list[int],
        turn: list[int],
        reward: list[float],
        state: list[object],
        valid: list[bool] | None = None,
        mask: list[bool] | None = None,
    ) -> TurnBatch:
        """Build a batch from Python lists; ``state`` may hold any hashable keys."""
        if len(group) == 0:
            raise ConfigError("empty batch: no turn rows to compute advantages on")
        _, state_ids = np.unique(np.asarray([str(s) for s in state], dtype=object),
                                 return_inverse=True)
        n = len(group)
        return cls(
            group_N=np.asarray(group, dtype=np.int64),
            traj_N=np.asarray(traj, dtype=np.int64),
            turn_N=np.asarray(turn, dtype=np.int64),
            reward_N=np.asarray(reward, dtype=np.float64),
            state_N=np.asarray(state_ids, dtype=np.int64).reshape(n),
            valid_N=np.ones(n, bool) if valid is None else np.asarray(valid, dtype=bool),
            mask_N=np.ones(n, bool) if mask is None else np.asarray(mask, dtype=bool),
        )
