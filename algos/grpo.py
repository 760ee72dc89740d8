"""GRPO: group-relative outcome advantage (Shao et al., arXiv 2402.03300).

For the G trajectories of one task group with episode returns ``R_i = sum_t r_{i,t}``:

    norm="mean":      A_i = R_i - mean(R)
    norm="mean_std":  A_i = (R_i - mean(R)) / (std(R) + eps)       (eps = 1e-6)

Every kept turn row of trajectory i gets ``A_i``.

``stats`` chooses what the group statistics are taken over:

- ``"trajectory"`` (default): one value per trajectory, so a long trajectory weighs as much
  as a short one.
- ``"turn"``: one value per turn row (each row carries its trajectory's return), which is
  verl-agent's default (``compute_mean_std_cross_steps=True``): longer trajectories weigh
  more in the mean and std.

Edge cases: a singleton group (one trajectory) has no peers and gets 0
(``singleton="reward"`` gives ``A = R`` instead, as verl's reference code does); a group
whose returns are all equal gets 0 in both norms; rows with ``mask_N`` False are left out
of the returns and statistics and get 0; an empty batch raises ``ConfigError``.
``std`` is unbiased (ddof 1, as ``torch.std``) unless ``unbiased_std=False``.

Worked example (norm="mean_std"): one group with returns ``[1, 0, 0, 1]`` has mean 0.5 and
unbiased std ``sqrt(1/3) = 0.57735``, so ``A = [0.866025, -0.866025, -0.866025, 0.866025]``.
"""

from __future__ import annotations

from typing import Literal

import numpy as np
from pydantic import BaseModel, ConfigDict, Field

from turngym.algos.batch import TurnBatch
from turngym.algos.grouping import dense_ids, subtract_baseline
from turngym.algos.result import AdvantageResult
from turngym.algos.segments import Segments, segments, traj_sums


class GRPOConfig(BaseModel):
    """Config of :func:`grpo_advantage`."""

    model_config = ConfigDict(extra="forbid", frozen=True)
    name: Literal["grpo"] = "grpo"
    norm: Literal["mean", "mean_std"] = "mean_std"
    """Subtract the group mean only, or also divide by the group std."""
    stats: Literal["trajectory", "turn"] = "trajectory"
    """Group statistics over one value per trajectory, or per turn row (verl-agent)."""
    eps: float = Field(1e-6, gt=0.0, le=1.0)
    """Added to the std before dividing."""
    unbiased_std: bool = True
    """Use the unbiased (ddof=1) std, as torch.std does."""
    singleton: Literal["zero", "reward"] = "zero"
    """Advantage of a group with one trajectory: 0, or its raw return (verl)."""


def episode_advantage(seg: Segments, reward_M: np.ndarray, *, norm: str, stats: str,
                      eps: float, unbiased_std: bool, singleton: str = "zero",
                      ) -> tuple[np.ndarray, np.ndarray]:
    """Group-normalised episode advantage of each sorted kept row, and the returns ``R_J``.

    ``norm`` is ``"mean"``, ``"mean_std"`` or ``"loo"`` (see :mod:`turngym.algos.grouping`).
    """
    return_J = traj_sums(reward_M, seg)
    gid_J, k = dense_ids(seg.group_J)
    ddof = 1 if unbiased_std else 0
    if stats == "trajectory":
        adv_M = subtract_baseline(return_J, gid_J, k, norm, eps=eps, ddof=ddof)[seg.traj_M]
    else:
        gid_M = gid_J[seg.traj_M]
        adv_M = subtract_baseline(return_J[seg.traj_M], gid_M, k, norm, eps=eps, ddof=ddof)
        # A group with one trajectory but several turns has count > 1 yet zero spread, so
        # "mean" and "mean_std" already give 0 there; "loo" needs the trajectory count.
        adv_M = np.where(np.bincount(gid_J, minlength=k)[gid_M] > 1, adv_M, 0.0)
    if singleton == "reward":
        alone_J = np.bincount(gid_J, minlength=k)[gid_J] == 1
        adv_M = np.where(alone_J[seg.traj_M], return_J[seg.traj_M], adv_M)
    return adv_M, return_J


def scatter(values_M: np.ndarray, seg: Segments, n: int) -> np.ndarray:
    """Put sorted kept-row values back in batch order; masked rows get 0."""
    out_N = np.zeros(n, np.float64)
    out_N[seg.rows_M] = values_M
    return out_N


def grpo_advantage(batch: TurnBatch, cfg: GRPOConfig) -> AdvantageResult:
    """GRPO advantage of every turn row (see the module docstring)."""
    seg = segments(batch)
    adv_M, return_J = episode_advantage(
        seg, batch.reward_N[seg.rows_M], norm=cfg.norm, stats=cfg.stats, eps=cfg.eps,
        unbiased_std=cfg.unbiased_std, singleton=cfg.singleton)
    return AdvantageResult(adv_N=scatter(adv_M, seg, len(batch)),
                           metrics=episode_metrics(seg, return_J, adv_M))


def episode_metrics(seg: Segments, return_J: np.ndarray, adv_M: np.ndarray) -> dict[str, float]:
    """Metrics shared by the outcome estimators (GRPO, RLOO, REINFORCE++, GiGPO)."""
    gid_J, k = dense_ids(seg.group_J)
    size_K = np.bincount(gid_J, minlength=k)
    return {
        "algo/episode_return_mean": float(return_J.mean()),
        "algo/episode_groups": float(k),
        "algo/episode_group_size_mean": float(size_K.mean()),
        "algo/adv_mean": float(adv_M.mean()),
        "algo/adv_std": float(adv_M.std()),
        "algo/adv_abs_max": float(np.abs(adv_M).max()),
    }
