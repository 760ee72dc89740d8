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

Registry entry (:func:`gae_advantage_result`, name ``gae``; ``algo.name: ppo`` in the
trainer): reads the values from ``batch.value_N`` (the trainer's critic pass fills it; a
batch without values raises ``ConfigError``), returns ``G_t`` as
``AdvantageResult.return_N`` (the value head's targets) and, with ``whiten`` (default on,
as in PPO implementations), whitens the advantages over all kept rows of the batch:

    A_t <- (A_t - mean_batch(A)) / (std_batch(A) + eps)        (std with ddof 0)

so a batch whose advantages are all equal gets all-zero advantages. The returns are never
whitened. Metrics: ``algo/value_mean``, ``algo/return_mean``, ``algo/explained_variance``
``= 1 - Var(G - V) / Var(G)`` over the kept rows (the critic *before* this update; 0 when
``Var(G) = 0``), and the episode metrics of the outcome estimators.
"""

from __future__ import annotations

from typing import Literal

import numpy as np
from pydantic import BaseModel, ConfigDict, Field

from turngym.algos.batch import TurnBatch
from turngym.algos.grpo import episode_metrics, scatter
from turngym.algos.result import AdvantageResult
from turngym.algos.segments import discounted_suffix_sum, segments, traj_sums
from turngym.errors import ConfigError


class GAEConfig(BaseModel):
    """Config of :func:`gae_advantage`."""

    model_config = ConfigDict(extra="forbid", frozen=True)
    name: Literal["gae"] = "gae"
    gamma: float = Field(1.0, ge=0.0, le=1.0)
    """Discount."""
    lam: float = Field(0.95, ge=0.0, le=1.0)
    """GAE lambda (1: Monte-Carlo advantage, 0: one-step TD)."""
    whiten: bool = True
    """Whiten the advantages over the batch's kept rows (registry entry only)."""
    eps: float = Field(1e-8, gt=0.0, le=1.0)
    """Added to the batch std before dividing (``whiten``)."""


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


def gae_advantage_result(batch: TurnBatch, cfg: GAEConfig) -> AdvantageResult:
    """The registry entry: GAE on ``batch.value_N``, optionally whitened (module docstring)."""
    if batch.value_N is None:
        raise ConfigError("gae: the batch has no critic values (TurnBatch.value_N); PPO with "
                          "GAE needs the trainer's value head (algo.name=ppo)")
    adv_N, return_N = gae_advantage(batch, batch.value_N, cfg)
    seg = segments(batch)
    rows = seg.rows_M
    adv_M, g_M = adv_N[rows], return_N[rows]
    v_M = np.asarray(batch.value_N, dtype=np.float64)[rows]
    if cfg.whiten:
        adv_M = (adv_M - adv_M.mean()) / (adv_M.std() + cfg.eps)
    var_g = float(g_M.var())
    metrics = episode_metrics(seg, traj_sums(batch.reward_N[rows], seg), adv_M)
    metrics["algo/value_mean"] = float(v_M.mean())
    metrics["algo/return_mean"] = float(g_M.mean())
    metrics["algo/explained_variance"] = (float(1.0 - (g_M - v_M).var() / var_g)
                                          if var_g > 0 else 0.0)
    return AdvantageResult(adv_N=scatter(adv_M, seg, len(batch)), metrics=metrics,
                           return_N=return_N)
