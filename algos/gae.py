"""Turn-level GAE for PPO with a critic (Schulman et al., arXiv 1506.02438). Optional.

For the kept turn rows of each trajectory, with values ``V_t`` from a critic:

    delta_t = r_t + gamma * V_{t+1} - V_t
    A_t     = sum_{k >= t} (gamma * lam)^(k - t) delta_k
    G_t     = A_t + V_t        (the critic's regression target)

``V_{T}`` after the last kept row is 0 when the episode terminated, or the critic's value of
the final state when it was cut (truncated / curriculum horizon): pass it as
``next_value_N`` on that row. Masked rows get 0. An empty batch raises ``ConfigError``.

Worked example (gamma 1, lam 1): rewards ``[0, 1]``, values ``[0.5, 0.5]``, terminated:
``delta = [0 + 0.5 - 0.5, 1 + 0 - 0.5] = [0, 0.5]``, ``A = [0.5, 0.5]``, ``G = [1, 1]`` (the
Monte-Carlo returns, as lam = 1 must give).
"""

from __future__ import annotations

from typing import Literal

import numpy as np
from pydantic import BaseModel, ConfigDict, Field

from algos.batch import TurnBatch
from algos.grpo import scatter
from algos.segments import discounted_suffix_sum, segments
from envs.errors import ConfigError


class GAEConfig(BaseModel):
    """Config of :func:`gae_advantage`."""

    model_config = ConfigDict(extra="forbid", frozen=True)
    name: Literal["gae"] = "gae"
    gamma: float = Field(1.0, ge=0.0, le=1.0)
    """Discount."""
    lam: float = Field(0.95, ge=0.0, le=1.0)
    """GAE lambda (1: Monte-Carlo advantage, 0: one-step TD)."""


def gae_advantage(batch: TurnBatch, value_N: np.ndarray, cfg: GAEConfig,
                  next_value_N: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
    """``(adv_N, return_N)`` of every turn row (see the module docstring)."""
    value_N = np.asarray(value_N, dtype=np.float64)
    if len(value_N) != len(batch):
        raise ConfigError(f"gae_advantage: value_N has {len(value_N)} rows, batch {len(batch)}")
    seg = segments(batch)
    rows = seg.rows_M
    v_M = value_N[rows]
    next_M = np.zeros_like(v_M)
    next_M[:-1] = v_M[1:]
    last_M = seg.end_M == np.arange(len(rows))
    boot = (np.zeros(len(batch)) if next_value_N is None
            else np.asarray(next_value_N, dtype=np.float64))[rows]
    next_M = np.where(last_M, boot, next_M)
    delta_M = batch.reward_N[rows] + cfg.gamma * next_M - v_M
    adv_M = discounted_suffix_sum(delta_M, seg.end_M, cfg.gamma * cfg.lam)
    return scatter(adv_M, seg, len(batch)), scatter(adv_M + v_M, seg, len(batch))
