"""HGPO: hierarchy-of-groups policy optimisation (He, Feng et al., arXiv 2602.22817, ICLR 2026).

GiGPO (:mod:`turngym.algos.gigpo`) with context-aware step groups. GiGPO's step group pools every
turn of a task group taken from the same ``state_key``. When the policy sees a memory
window (``rollout.history_length > 0``), two turns from the same state with different recent
histories are different decision points, and pooling them biases the baseline. HGPO puts
each turn into a hierarchy of nested groups and averages their advantages, favouring the
more specific groups. Everything else (episode advantage, discounted step returns, invalid
penalty, masks, modes) is GiGPO's and is imported from there.

For turn t of a trajectory (positions among the trajectory's kept rows) in task group g:

1. ``A_E``, the step returns ``R_t = sum_{k >= t} gamma^(k - t) r_k`` and the penalty: as
   in GiGPO.
2. Context of level k (k = 0..K, ``K = history_levels``):
   ``c_k(t) = (g, s_t, s_{t-1}, ..., s_{t-k})``, with ``s_j = START`` (a sentinel) for
   ``j < 0``. Level-k group ``G_k(t)``: the rows with equal ``c_k``. Level 0 is GiGPO's
   step group, and the groups nest: ``G_0(t) ⊇ G_1(t) ⊇ ... ⊇ G_K(t)``.
3. ``a_k(t)``: ``R_t`` normalised within ``G_k(t)`` (``mode``, as GiGPO's ``A_S``).
4. Levels used: ``U(t) = {k : |G_k(t)| >= 2}`` (a singleton has no peers and contributes
   nothing; as the groups nest, ``U(t)`` is a prefix ``0..k*``). Weights
   ``w_k = (k + 2)^alpha`` (``alpha = level_alpha``, default 1: 2, 3, 4, ...), so deeper,
   more specific groups weigh more as long as they have peers:

       A_S(t) = sum_{k in U(t)} w_k a_k(t) / sum_{k in U(t)} w_k      (0 when U(t) is empty)

   ``alpha = 0`` averages the levels uniformly; a large alpha uses the deepest group with
   peers. A level whose group equals the one above it still counts (as in the recipe), so
   a context shared for longer weighs more. ``skip_zero_levels=True`` also leaves out a
   level with ``a_k(t) = 0``.
5. ``A = beta * A_E + omega * A_S - p * [penalised turn]`` (``beta = episode_weight``,
   default 1; the penalty's stage and target as in GiGPO).

``history_levels=0`` is GiGPO exactly (one level, weight ``w_0 / w_0 = 1``): the same
advantages bit for bit, under every mode and penalty setting. ``history_levels`` should
match ``rollout.history_length``: a level deeper than the window the policy sees splits
turns the policy cannot tell apart (less data per baseline, no bias removed). The context
holds states only, as the recipe's ``anchor_obs`` sequence does: two turns with the same
previous states but different previous responses are pooled.

Edge cases: rows with ``mask_N`` False are removed before anything (as in GiGPO), including
from the history window, which runs over a trajectory's kept rows (a masked TCOD expert
prefix is replayed alike in every trajectory of its task group, so it adds no context); a loop
puts several turns of one trajectory into one group, and the previous states tell the visits
apart; a truncated trajectory's returns are what it earned (no bootstrap); a batch of one
trajectory has ``A_E = 0`` and only within-trajectory step groups; an empty batch raises
``ConfigError``. Vectorised: one :func:`turngym.algos.grouping.dense_ids` and one
:func:`turngym.algos.grouping.subtract_baseline` per level; the loop runs over the K + 1 levels.

Metrics: GiGPO's (its ``algo/step_group*`` keys describe level 0), plus for each level k
``algo/step_level{k}_groups``, ``algo/step_level{k}_group_size_mean`` and
``algo/step_level{k}_singleton_frac``, and ``algo/step_levels_used_mean`` (the mean number
of levels with peers per row, ``|U(t)|``).

Differences from verl-agent's ``recipe/hgpo/core_hgpo.py`` (``hgpo_advantage_estimate``),
which uses the same discounted step returns, the same nested (state sequence) groups, skips
groups of one member and weighs the level of window length ``L = k + 1`` by
``(L + 1)^alpha``, i.e. ``w_k`` here:

- the episode advantage: the recipe's default (``base_group=False``) has none, ``A = A_S``;
  with ``base_group=True`` it enters the weighted mean as one more item of weight 1. Here it
  is added as in GiGPO, so that K = 0 is GiGPO; ``episode_weight=0`` gives the recipe's
  default.
- the start of a trajectory: the recipe gives turn t levels ``0..t`` only (a window that
  would reach before the first turn is skipped). Here the start is context (``START``):
  turns near the start whose states so far agree are pooled at the deeper levels, as the
  policy saw the same short history; a turn that loops back to the start state is not
  pooled with the first turns there (example in ``tests/algos/test_hgpo.py``).
- zero advantages: the recipe drops every level whose advantage is exactly 0
  (``advs != 0``); here only singleton groups are dropped by default. A context-consistent
  group whose members all earned the same return says the action was no better than its
  peers, and dropping it would make ``A_S`` jump as ``a_k`` goes from ``1e-12`` to ``0``.
  ``skip_zero_levels=True`` gives the recipe's rule.
- weight normalisation: the recipe divides by ``sum w + eps``; here by ``sum w``, so one
  level gives its own advantage exactly.
- std (``mean_std_norm``): the recipe uses the population std at every level
  (``unbiased=False``); here ``unbiased_std`` (default True, as GiGPO); False gives the
  recipe's.
- the recipe's core has no mask and no invalid-action penalty; GiGPO's handling is used.

Worked example (``HGPOConfig(mode="mean_norm", gamma=0.5, history_levels=1)``; alpha 1, so
``w_0 = 2``, ``w_1 = 3``; no invalid turn). One task group, three trajectories:

    A: s0 -> a, a -> x, x -> won          rewards 0, 0, 1
    B: s0 -> b, b -> x, x -> truncated    rewards 0, 0, 0
    C: s0 -> a, a -> x, x -> lost         rewards 0, 0, 0

- returns 1, 0, 0: ``A_E = 2/3, -1/3, -1/3``; step returns A ``[1/4, 1/2, 1]``, B and C 0.
- level 0 (GiGPO): s0 ``{A0, B0, C0}`` (mean 1/12), a ``{A1, C1}`` (mean 1/4), b ``{B1}``,
  x ``{A2, B2, C2}`` (mean 1/3): ``a_0`` = A ``[1/6, 1/4, 2/3]``, B ``[-1/12, 0, -1/3]``,
  C ``[-1/12, -1/4, -1/3]``.
- level 1: ``(s0, START)`` and ``(a, s0)`` have the same members as level 0; x splits by
  the previous state into ``(x, a) = {A2, C2}`` (mean 1/2: ``+-1/2``) and
  ``(x, b) = {B2}`` (singleton: B2 keeps level 0 only).
- ``A_S(A2) = (2 * 2/3 + 3 * 1/2) / 5 = 17/30``, ``A_S(C2) = (2 * -1/3 + 3 * -1/2) / 5 =
  -13/30``; every other row's levels agree (B1: none, B2: level 0 only), so
  ``A_S = a_0``.
- ``A`` = A ``[5/6, 11/12, 37/30]``, B ``[-5/12, -1/3, -2/3]``, C ``[-5/12, -7/12,
  -23/30]``; GiGPO gives A2 ``4/3`` and C2 ``-2/3``: B2's failure from b no longer lowers
  the baseline of x reached from a.
- metrics: level 0 has 4 groups, mean size 9/4, singleton fraction 1/4; level 1 has 5,
  9/5 and 2/5; 5/3 levels used per row on average.
"""

from __future__ import annotations

from dataclasses import replace
from typing import Literal

import numpy as np
from pydantic import Field

from turngym.algos.batch import TurnBatch
from turngym.algos.gigpo import GiGPOConfig, gigpo_parts, gigpo_result, step_advantage
from turngym.algos.grouping import dense_ids
from turngym.algos.result import AdvantageResult
from turngym.algos.segments import Segments


class HGPOConfig(GiGPOConfig):
    """Config of :func:`hgpo_advantage`: GiGPO's fields (same meanings and defaults; the
    normalisation ``mode`` applies at every level, and ``unbiased_std=False`` is the HGPO
    recipe's population std) plus the levels'."""

    name: Literal["hgpo"] = "hgpo"  # type: ignore[assignment]
    history_levels: int = Field(2, ge=0, le=32)
    """K, the most previous states a group shares; match ``rollout.history_length``.
    0 is GiGPO."""
    level_alpha: float = Field(1.0, ge=0.0, le=10.0)
    """alpha: level k weighs ``(k + 2)^alpha`` among the levels with peers (0: uniform)."""
    skip_zero_levels: bool = False
    """Also leave out levels whose advantage is exactly 0 (the HGPO recipe's rule)."""
    episode_weight: float = Field(1.0, ge=0.0, le=10.0)
    """beta, the weight of the episode advantage (1: GiGPO's form; 0: the recipe's default)."""

    def gigpo_config(self) -> GiGPOConfig:
        """The GiGPO config with this config's shared fields (what K = 0 computes)."""
        shared = set(GiGPOConfig.model_fields) - {"name"}
        return GiGPOConfig(**self.model_dump(include=shared))


def hgpo_advantage(batch: TurnBatch, cfg: HGPOConfig) -> AdvantageResult:
    """HGPO advantage ``beta * A_E + omega * A_S`` (``- p`` on penalised rows) of every row.

    See the module docstring for the levels, their weights and the worked example.
    """
    gcfg = cfg.gigpo_config()
    parts = gigpo_parts(batch, gcfg)  # A_E, step returns, penalised rows
    seg = parts.seg
    levels = context_levels(seg, batch.state_N[seg.rows_M], cfg.history_levels)
    adv_s_M, used_M = combine_levels(parts.step_return_M, levels, cfg, gcfg)
    parts = replace(parts, adv_e_M=cfg.episode_weight * parts.adv_e_M)
    ids0_M, size0_G = levels[0]
    res = gigpo_result(batch, gcfg, parts, adv_s_M, ids0_M, len(size0_G))
    return AdvantageResult(adv_N=res.adv_N, metrics={**res.metrics,
                                                     **level_metrics(levels, used_M)})


def context_levels(seg: Segments, state_M: np.ndarray,
                   history_levels: int) -> list[tuple[np.ndarray, np.ndarray]]:
    """``(ids_M, size_G)`` of the step groups of levels ``0..history_levels``.

    Level 0 groups by (task group, state), exactly as GiGPO; level k refines level k - 1 by
    the state k kept rows earlier in the same trajectory, or ``START`` before its first row.
    """
    ids_M, num = dense_ids(seg.group_J[seg.traj_M], state_M)
    levels = [(ids_M, np.bincount(ids_M, minlength=num))]
    if history_levels == 0:
        return levels
    code_M, _ = dense_ids(state_M)  # codes >= 0, so -1 can stand for START
    row_M = np.arange(len(state_M))
    pos_M = row_M - seg.start_J[seg.traj_M]  # position among the trajectory's kept rows
    for k in range(1, history_levels + 1):
        prev_M = np.where(pos_M >= k, code_M[np.maximum(row_M - k, 0)], -1)
        ids_M, num = dense_ids(ids_M, prev_M)
        levels.append((ids_M, np.bincount(ids_M, minlength=num)))
    return levels


def combine_levels(step_return_M: np.ndarray, levels: list[tuple[np.ndarray, np.ndarray]],
                   cfg: HGPOConfig, gcfg: GiGPOConfig) -> tuple[np.ndarray, np.ndarray]:
    """``A_S``, the weighted mean of the levels' advantages, and the levels each row used."""
    adv_L, use_L = [], []
    for ids_M, size_G in levels:
        adv_M = step_advantage(step_return_M, ids_M, len(size_G), gcfg)
        use_M = size_G[ids_M] >= 2  # a singleton group has no peers: it contributes nothing
        if cfg.skip_zero_levels:
            use_M &= adv_M != 0.0
        adv_L.append(adv_M)
        use_L.append(use_M)
    weight_L = (np.arange(len(levels)) + 2.0) ** cfg.level_alpha
    total_M = np.zeros(len(step_return_M))
    for weight, use_M in zip(weight_L, use_L):
        total_M += weight * use_M
    adv_s_M = np.zeros(len(step_return_M))
    for weight, adv_M, use_M in zip(weight_L, adv_L, use_L):
        # w_k / W(t) first: with one level used it is exactly 1, so K = 0 is GiGPO bit for bit
        share_M = np.divide(weight, total_M, out=np.zeros_like(total_M), where=use_M)
        adv_s_M += share_M * adv_M
    return adv_s_M, np.sum(use_L, axis=0)


def level_metrics(levels: list[tuple[np.ndarray, np.ndarray]],
                  used_M: np.ndarray) -> dict[str, float]:
    """Group count, mean size and singleton fraction of each level; levels used per row."""
    metrics = {}
    for k, (_, size_G) in enumerate(levels):
        metrics[f"algo/step_level{k}_groups"] = float(len(size_G))
        metrics[f"algo/step_level{k}_group_size_mean"] = float(size_G.mean())
        metrics[f"algo/step_level{k}_singleton_frac"] = float(np.mean(size_G == 1))
    metrics["algo/step_levels_used_mean"] = float(used_M.mean())
    return metrics
