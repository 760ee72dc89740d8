"""RLOO: REINFORCE with a leave-one-out baseline (Ahmadian et al., arXiv 2402.14740).

For the G trajectories of one task group with episode returns ``R_i``:

    A_i = R_i - 1/(G-1) * sum_{j != i} R_j  =  G/(G-1) * (R_i - mean(R))

Every kept turn row of trajectory i gets ``A_i``. The baseline of trajectory i never uses
its own return, so the estimate is unbiased. The advantages of one group sum to 0.

Edge cases: a singleton group has no other sample to form a baseline and gets 0; equal
returns give 0; rows with ``mask_N`` False are left out and get 0; an empty batch raises
``ConfigError``.

Worked example: returns ``[1, 0, 0, 1]`` give ``A = 4/3 * [0.5, -0.5, -0.5, 0.5]
= [2/3, -2/3, -2/3, 2/3]``.
"""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict

from turngym.algos.batch import TurnBatch
from turngym.algos.grpo import episode_advantage, episode_metrics, scatter
from turngym.algos.result import AdvantageResult
from turngym.algos.segments import segments


class RLOOConfig(BaseModel):
    """Config of :func:`rloo_advantage` (RLOO has no free parameters)."""

    model_config = ConfigDict(extra="forbid", frozen=True)
    name: Literal["rloo"] = "rloo"


def rloo_advantage(batch: TurnBatch, cfg: RLOOConfig) -> AdvantageResult:
    """RLOO advantage of every turn row (see the module docstring)."""
    seg = segments(batch)
    adv_M, return_J = episode_advantage(seg, batch.reward_N[seg.rows_M], norm="loo",
                                        stats="trajectory", eps=1e-6, unbiased_std=True)
    return AdvantageResult(adv_N=scatter(adv_M, seg, len(batch)),
                           metrics=episode_metrics(seg, return_J, adv_M))
