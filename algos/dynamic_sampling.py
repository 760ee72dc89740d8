"""DAPO dynamic sampling: drop groups whose rewards are all equal (Yu et al., arXiv 2503.14476).

A group whose trajectories all earned the same return (all solved, or all failed) has
zero group-relative advantage, so it adds no gradient, only noise in the batch size. DAPO
drops such groups. (The paper also re-samples until the batch is full again; turngym's
trainer does not: with ``algo.dynamic_sampling=true`` it masks the dropped groups out of the
update and logs how many were dropped, ``algo/groups_dropped``.)

A group is kept when ``max(R) - min(R) > atol`` over its trajectories' returns. A group with
one trajectory is always dropped (its rewards are trivially all equal).

Worked example: groups ``g0: [1, 1]``, ``g1: [0, 1]``, ``g2: [0, 0]`` keep only ``g1``;
2 of 3 groups are dropped.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

import numpy as np
from pydantic import BaseModel, ConfigDict, Field

from turngym.algos.batch import TurnBatch
from turngym.algos.grouping import dense_ids
from turngym.algos.segments import segments, traj_sums
from turngym.errors import ConfigError


class DynamicSamplingConfig(BaseModel):
    """Config of DAPO dynamic sampling."""

    model_config = ConfigDict(extra="forbid", frozen=True)
    name: Literal["dynamic_sampling"] = "dynamic_sampling"
    atol: float = Field(0.0, ge=0.0, le=1e3)
    """Returns closer than this count as equal."""


@dataclass(frozen=True)
class GroupFilter:
    """Which trajectories survive and how many groups were dropped."""

    keep_J: np.ndarray
    """bool per input trajectory (or per row for :func:`filter_batch`)."""
    kept_groups: int
    """Groups whose returns differ."""
    dropped_groups: int
    """Groups dropped because all their returns are equal (or they have one trajectory)."""
    metrics: dict[str, float] = field(default_factory=dict)


def filter_groups(group_J: np.ndarray, return_J: np.ndarray, atol: float = 0.0) -> GroupFilter:
    """Keep the trajectories of groups whose returns differ by more than ``atol``.

    Inputs have one entry per trajectory. Raises ``ConfigError`` on an empty input.
    """
    group_J, return_J = np.asarray(group_J), np.asarray(return_J, dtype=np.float64)
    if len(group_J) == 0:
        raise ConfigError("empty batch: filter_groups got no trajectories")
    if len(group_J) != len(return_J):
        raise ConfigError(f"filter_groups: {len(group_J)} group ids but {len(return_J)} returns")
    gid_J, k = dense_ids(group_J)
    hi_K = np.full(k, -np.inf)
    lo_K = np.full(k, np.inf)
    np.maximum.at(hi_K, gid_J, return_J)
    np.minimum.at(lo_K, gid_J, return_J)
    keep_K = (hi_K - lo_K) > atol
    kept = int(keep_K.sum())
    metrics = {"algo/groups_kept": float(kept), "algo/groups_dropped": float(k - kept),
               "algo/groups_dropped_frac": float((k - kept) / k)}
    return GroupFilter(keep_J=keep_K[gid_J], kept_groups=kept, dropped_groups=k - kept,
                       metrics=metrics)


def filter_batch(batch: TurnBatch, atol: float = 0.0) -> GroupFilter:
    """:func:`filter_groups` on a turn batch; ``keep_J`` is then one bool per row.

    Returns sum the kept (``mask_N``) rows; masked rows are never kept.
    """
    seg = segments(batch)
    res = filter_groups(seg.group_J, traj_sums(batch.reward_N[seg.rows_M], seg), atol)
    keep_N = np.zeros(len(batch), bool)
    keep_N[seg.rows_M] = res.keep_J[seg.traj_M]
    return GroupFilter(keep_J=keep_N, kept_groups=res.kept_groups,
                       dropped_groups=res.dropped_groups, metrics=res.metrics)
