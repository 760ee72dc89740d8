"""GiGPO: group-in-group policy optimisation (Feng et al., arXiv 2505.10978).

Two levels of groups inside one task group (the trajectories that share ``task_id`` and
seed):

1. Turn rewards with the invalid-action penalty ``p`` (default 0.1) subtracted from the turn
   that made it: ``r'_t = r_t - p * [action invalid]``.
2. Episode advantage ``A_E``: GRPO over the trajectories' returns ``R = sum_t r'_t``
   (:func:`algos.grpo.episode_advantage`).
3. Step returns within each trajectory: ``R_t = sum_{k >= t} gamma^(k - t) r'_k``
   (gamma default 0.95; no bootstrap, so a truncated episode's return is what it earned).
4. Step groups: the turns of one task group whose ``state_N`` (the ``state_key`` the turn
   acted from) is equal. That is the paper's anchor-state grouping; a trajectory that loops
   back to a state puts several of its own turns in one step group. ``A_S`` normalises
   ``R_t`` within its step group; a singleton step group gives ``A_S = 0``.
5. ``A = A_E + omega * A_S`` (omega default 1).

``mode="mean_norm"`` subtracts the group mean at both levels; ``mode="mean_std_norm"``
also divides by the group std + eps (ddof 1, as ``torch.std`` in verl-agent). Rows with
``mask_N`` False (padding, duplicated rows, TCOD expert-prefix turns) are removed before
anything is computed: they are not part of any return, group or statistic, and get
``A = 0``. Step returns discount by position among a trajectory's kept rows. An empty batch
raises ``ConfigError``. Everything is vectorised (dense ids, np.bincount statistics, Horner's
rule over a turn-position table; see :mod:`algos.segments`);
``benchmarks/gigpo_speed.py`` measures it.

Worked example (``GiGPOConfig(mode="mean_norm", gamma=0.5)``; omega 1, penalty 0.1). One
task group, two trajectories; states ``s0, s1, s2``:

    traj A: s0 -> s1, s1 (invalid action, loops back), s1 -> won   rewards 0, 0, 1
    traj B: s0 -> s2, s2 -> truncated                               rewards 0, 0

- penalised rewards: A ``[0, -0.1, 1]``, B ``[0, 0]``; returns ``R_A = 0.9``, ``R_B = 0``,
  mean 0.45, so ``A_E = +0.45`` for A's turns and ``-0.45`` for B's.
- step returns (gamma 0.5): A ``[0.2, 0.4, 1.0]``, B ``[0, 0]``.
- step groups: s0 ``{A0: 0.2, B0: 0}`` (mean 0.1), s1 ``{A1: 0.4, A2: 1.0}`` (mean 0.7),
  s2 ``{B1}`` (singleton): ``A_S`` = A ``[0.1, -0.3, 0.3]``, B ``[-0.1, 0]``.
- ``A`` = A ``[0.55, 0.15, 0.75]``, B ``[-0.55, -0.45]``; 3 step groups, mean size 5/3,
  singleton fraction 1/3.
"""

from __future__ import annotations

from typing import Literal

import numpy as np
from pydantic import BaseModel, ConfigDict, Field

from algos.batch import TurnBatch
from algos.grouping import dense_ids, subtract_baseline
from algos.grpo import episode_advantage, episode_metrics, scatter
from algos.result import AdvantageResult
from algos.segments import discounted_suffix_sum, segments


class GiGPOConfig(BaseModel):
    """Config of :func:`gigpo_advantage`."""

    model_config = ConfigDict(extra="forbid", frozen=True)
    name: Literal["gigpo"] = "gigpo"
    mode: Literal["mean_norm", "mean_std_norm"] = "mean_std_norm"
    """Normalise by the group mean only, or by mean and std (the paper's main form)."""
    gamma: float = Field(0.95, ge=0.0, le=1.0)
    """Discount of the step returns."""
    step_weight: float = Field(1.0, ge=0.0, le=10.0)
    """omega, the weight of the step advantage."""
    invalid_penalty: float = Field(0.1, ge=0.0, le=10.0)
    """Subtracted from the reward of each turn whose action was invalid."""
    eps: float = Field(1e-6, gt=0.0, le=1.0)
    """Added to the std before dividing (mean_std_norm)."""
    episode_stats: Literal["trajectory", "turn"] = "trajectory"
    """Episode statistics over one value per trajectory, or per turn row (verl-agent)."""
    unbiased_std: bool = True
    """Use the unbiased (ddof=1) std, as torch.std does."""


def gigpo_advantage(batch: TurnBatch, cfg: GiGPOConfig) -> AdvantageResult:
    """GiGPO advantage ``A_E + omega * A_S`` of every turn row (see the module docstring)."""
    seg = segments(batch)
    rows = seg.rows_M
    reward_M = batch.reward_N[rows] - cfg.invalid_penalty * (~batch.valid_N[rows])
    norm = "mean" if cfg.mode == "mean_norm" else "mean_std"
    ddof = 1 if cfg.unbiased_std else 0

    # Episode level: GRPO over the trajectories of each task group.
    adv_e_M, return_J = episode_advantage(seg, reward_M, norm=norm, stats=cfg.episode_stats,
                                          eps=cfg.eps, unbiased_std=cfg.unbiased_std)
    # Step level: discounted returns, grouped by (task group, anchor state).
    step_return_M = discounted_suffix_sum(reward_M, seg.end_M, cfg.gamma)
    sid_M, num_steps = dense_ids(seg.group_J[seg.traj_M], batch.state_N[rows])
    adv_s_M = subtract_baseline(step_return_M, sid_M, num_steps, norm, eps=cfg.eps, ddof=ddof)

    adv_M = adv_e_M + cfg.step_weight * adv_s_M
    metrics = episode_metrics(seg, return_J, adv_M)
    metrics.update(step_metrics(sid_M, num_steps, adv_e_M, adv_s_M, step_return_M))
    metrics["algo/invalid_frac"] = float(np.mean(~batch.valid_N[rows]))
    return AdvantageResult(adv_N=scatter(adv_M, seg, len(batch)), metrics=metrics)


def step_metrics(sid_M: np.ndarray, num_steps: int, adv_e_M: np.ndarray, adv_s_M: np.ndarray,
                 step_return_M: np.ndarray) -> dict[str, float]:
    """Step-group size statistics and the spread of both advantage parts."""
    size_S = np.bincount(sid_M, minlength=num_steps)
    return {
        "algo/step_groups": float(num_steps),
        "algo/step_group_size_mean": float(size_S.mean()),
        "algo/step_group_size_max": float(size_S.max()),
        "algo/step_group_singleton_frac": float(np.mean(size_S == 1)),
        "algo/step_return_mean": float(step_return_M.mean()),
        "algo/episode_adv_std": float(adv_e_M.std()),
        "algo/step_adv_std": float(adv_s_M.std()),
    }
