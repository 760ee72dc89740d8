"""The flat per-turn arrays that advantage estimators read.

``algos`` depends on numpy/torch only, so the trainer converts rollout records
(``turngym.harness.rollout.trajectory``) into a :class:`TurnBatch` before calling an
estimator. Every array has one row per turn (N rows). Rows of one trajectory are contiguous
and in turn order.

Shape suffixes: ``_N`` per turn row.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from turngym.errors import ConfigError


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
    """bool, whether the env could apply the action (``Turn.action_valid``; a Maze wall
    bump is False, and so is a response that did not parse)."""
    mask_N: np.ndarray
    """bool, False for rows that must not enter group statistics or the loss
    (padding, duplicated rows, TCOD expert-prefix turns)."""
    format_valid_N: np.ndarray | None = None
    """bool, whether the model's response parsed into an action (``Turn.format_valid``).
    None (the default) becomes all True on construction, so it is never None afterwards.
    A row with ``format_valid_N`` False must have ``valid_N`` False: an unparseable
    response never reaches the env."""
    value_N: np.ndarray | None = None
    """float64 critic value ``V(s_t)`` of each row's prompt (PPO with GAE, ``turngym.algos.gae``);
    None for the critic-free estimators, which ignore it."""

    def __post_init__(self) -> None:
        n = len(self.group_N)
        if n == 0:
            raise ConfigError("empty batch: no turn rows to compute advantages on")
        if self.format_valid_N is None:
            object.__setattr__(self, "format_valid_N", np.ones(n, bool))
        for name in ("traj_N", "turn_N", "reward_N", "state_N", "valid_N", "mask_N",
                     "format_valid_N"):
            if len(getattr(self, name)) != n:
                raise ConfigError(f"TurnBatch.{name} has {len(getattr(self, name))} rows, "
                                  f"expected {n}")
        if self.value_N is not None and len(self.value_N) != n:
            raise ConfigError(f"TurnBatch.value_N has {len(self.value_N)} rows, expected {n}")
        bad = np.flatnonzero(~np.asarray(self.format_valid_N, bool)
                             & np.asarray(self.valid_N, bool))
        if len(bad):
            raise ConfigError(f"TurnBatch row {int(bad[0])} has format_valid_N False but "
                              "valid_N True; a response that did not parse cannot be a valid "
                              "action (set valid_N False for it)")

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
        format_valid: list[bool] | None = None,
        value: list[float] | None = None,
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
            format_valid_N=(np.ones(n, bool) if format_valid is None
                            else np.asarray(format_valid, dtype=bool)),
            value_N=None if value is None else np.asarray(value, dtype=np.float64),
        )
