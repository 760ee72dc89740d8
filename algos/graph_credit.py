"""Baselines from the persistent :class:`~turngym.algos.state_graph.StateGraph` for estimators.

Every function here only *reads* the graph. Call them before ``graph.update(...)`` with the
same batch, so that a row's own return is never part of its baseline and a batch never
baselines against itself (SPO also reads its estimate ``p = alpha / (alpha + beta)`` before
folding in the new reward). ``key_ids_N`` are
:func:`~turngym.algos.state_graph.stable_key_ids` of the rows' ``state_key`` (with ``task_ids`` when
a state's value depends on the task), never the per-batch ``TurnBatch.state_N`` ids.

In training, :func:`graph_credit` is what the ``state_graph`` credit modifier
(``turngym.harness.learn.credit``) runs on every batch, with ``algo.state_graph``
(:class:`~turngym.algos.state_graph.StateGraphConfig`); the modifier then folds the same
returns into the graph. Its two modes are the two helpers below on the batch's kept rows,
times ``weight``, added to the estimator's advantage:

1. :func:`singleton_step_advantage` (``mode="singleton"``), for GiGPO (arXiv 2505.10978)
   and HGPO. A step group of size 1 has no peer in the batch and gets ``A_S = 0`` there.
   With the graph it gets

       A_S = R_t - mean_graph(s_t)   if count_graph(s_t) >= min_count, else 0

   (``R_t`` the discounted step return). Rows in larger step groups get 0 from this
   function: the batch's own group already scores them. Add the result to GiGPO's ``A_S``.
   The graph's std is not used to scale it: with 0/1 rewards a state's past returns are
   often all equal (std 0), and dividing by ``std + eps`` would blow a single new outcome up
   to ``1 / eps``.

2. :func:`value_baseline_advantage` (``mode="value"``), SPO's single-stream advantage
   (arXiv 2509.13232):

       A = R - V(s),  V(s) = mean_graph(s)   if count_graph(s) >= min_count

   and for an unseen state ``R - prior``, or 0 when ``prior`` is None (no baseline, no
   signal; the trainer passes None). SPO starts every prompt at a prior (0.5 for 0/1
   rewards without offline estimates) and then normalises the advantages over the whole
   batch; ``global_norm=True`` does that, ``(A - mean(A)) / (std(A) + eps)`` over all rows
   (ddof 1, as SPO's ``torch.std``; a one-row batch has std 0). In training the term is
   added, un-normalised, to the estimator's advantage with ``weight``.

(GraphGPO, arXiv 2605.26684, builds a state-*transition* graph of the batch's rollouts and
scores each edge by how much it shortens the distance to the goal. This graph stores no
edges, so that is not one of these modes: it is an estimator of its own,
:mod:`turngym.algos.graphgpo` (``algo.name=graphgpo``), whose graph lives for one batch.)

Edge cases: an empty batch gives an empty array; a key the graph never saw (or evicted) has
count 0.

Worked example (graph with state ``a``: returns 1 and 3, so mean 2, count 2; state ``b``:
return 5, count 1). Rows ``a, a, b, c`` with returns ``4, 0, 7, 1`` in step groups
``0, 1, 2, 3`` (all singletons), ``min_count=2``: ``singleton_step_advantage`` =
``[2, -2, 0, 0]`` (``b`` has too few visits, ``c`` none). ``value_baseline_advantage`` with
``min_count=1``: ``[2, -2, 2, 0]``; with ``prior=0.5`` the unseen ``c`` gets ``0.5``.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

import numpy as np

from turngym.algos.batch import TurnBatch
from turngym.algos.grouping import dense_ids
from turngym.algos.segments import discounted_suffix_sum, segments
from turngym.algos.state_graph import StateGraph, StateGraphConfig


def singleton_step_advantage(graph: StateGraph, key_ids_N: np.ndarray, step_return_N: np.ndarray,
                             step_group_N: np.ndarray, *, min_count: int = 2) -> np.ndarray:
    """``R - mean_graph(s)`` on rows alone in their step group whose state has at least
    ``min_count`` graph visits; 0 on every other row. ``step_group_N`` are dense step-group
    ids (GiGPO's ``sid``)."""
    step_return_N = np.asarray(step_return_N, dtype=np.float64)
    step_group_N = np.asarray(step_group_N, dtype=np.int64)
    if len(step_return_N) == 0:
        return np.zeros(0)
    size_N = np.bincount(step_group_N)[step_group_N]
    mean_N, count_N = graph.baseline(key_ids_N)
    use_N = (size_N == 1) & (count_N >= min_count)
    return np.where(use_N, step_return_N - mean_N, 0.0)


def value_baseline_advantage(graph: StateGraph, key_ids_N: np.ndarray, returns_N: np.ndarray,
                             *, min_count: int = 1, prior: float | None = None,
                             global_norm: bool = False, eps: float = 1e-6) -> np.ndarray:
    """SPO-style ``A = R - V(s)`` with ``V`` the graph's running mean (see module docstring)."""
    returns_N = np.asarray(returns_N, dtype=np.float64)
    if len(returns_N) == 0:
        return np.zeros(0)
    mean_N, count_N = graph.baseline(key_ids_N)
    seen_N = count_N >= min_count
    if prior is None:
        adv_N = np.where(seen_N, returns_N - mean_N, 0.0)
    else:
        adv_N = returns_N - np.where(seen_N, mean_N, prior)
    if global_norm:  # SPO: over the whole batch, unbiased std as torch.std
        std = adv_N.std(ddof=1) if len(adv_N) > 1 else 0.0
        adv_N = (adv_N - adv_N.mean()) / (std + eps)
    return adv_N


@dataclass(frozen=True)
class GraphCredit:
    """What :func:`graph_credit` read off the graph for one batch."""

    adv_N: np.ndarray
    """float64 term to add to the estimator's advantage (0 on rows not kept or not scored)."""
    return_N: np.ndarray
    """float64 discounted return ``R_t`` of each kept row (0 elsewhere): what to fold in."""
    keep_N: np.ndarray
    """bool, the rows that were scored and are to be folded in."""
    metrics: dict[str, float]


def graph_credit(graph: StateGraph, batch: TurnBatch, keep_N: np.ndarray,
                 key_ids_N: np.ndarray, cfg: StateGraphConfig, gamma: float) -> GraphCredit:
    """The ``algo.state_graph`` term of every row of ``batch``; reads the graph only.

    Over the rows with ``keep_N`` (trainable turns of episodes that did not crash):
    ``R_t = sum_{k >= t} gamma^(k - t) r_k`` by position among a trajectory's kept rows
    (GiGPO's step return; a truncated episode's is what it earned, no bootstrap), step groups
    ``(task group, state)`` as GiGPO's, and with ``mean, count`` the graph's statistics of
    each row's key *before* this batch:

        mode="singleton":  term = weight * (R_t - mean)  if |step group| == 1 and count >= min_count
        mode="value":      term = weight * (R_t - mean)  if count >= min_count
        otherwise 0

    Metrics: ``algo/graph_hit_frac`` (kept rows whose key was stored before this batch),
    ``algo/graph_baselined_frac`` (kept rows that got a graph term), ``algo/graph_singleton_
    row_frac`` (kept rows alone in their step group: what GiGPO scores 0 at the step level),
    ``algo/graph_adv_abs_mean`` (mean ``|term|`` over the rows that got one; 0 if none).
    """
    n = len(batch)
    keep_N = np.asarray(keep_N, dtype=bool)
    key_ids_N = np.asarray(key_ids_N, dtype=np.int64)
    adv_N, return_N = np.zeros(n), np.zeros(n)
    if not keep_N.any():
        return GraphCredit(adv_N, return_N, keep_N, {
            "algo/graph_hit_frac": 0.0, "algo/graph_baselined_frac": 0.0,
            "algo/graph_singleton_row_frac": 0.0, "algo/graph_adv_abs_mean": 0.0})
    seg = segments(replace(batch, mask_N=keep_N))
    rows = seg.rows_M
    ret_M = discounted_suffix_sum(batch.reward_N[rows], seg.end_M, gamma)
    sid_M, _ = dense_ids(seg.group_J[seg.traj_M], batch.state_N[rows])
    size_M = np.bincount(sid_M)[sid_M]
    mean_M, count_M = graph.baseline(key_ids_N[rows])  # before this batch's update
    use_M = count_M >= cfg.min_count
    if cfg.mode == "singleton":
        use_M &= size_M == 1
    term_M = np.where(use_M, cfg.weight * (ret_M - mean_M), 0.0)
    adv_N[rows], return_N[rows] = term_M, ret_M
    metrics = {"algo/graph_hit_frac": float(np.mean(count_M >= 1)),
               "algo/graph_baselined_frac": float(np.mean(use_M)),
               "algo/graph_singleton_row_frac": float(np.mean(size_M == 1)),
               "algo/graph_adv_abs_mean": float(np.abs(term_M[use_M]).mean()) if use_M.any()
               else 0.0}
    return GraphCredit(adv_N, return_N, keep_N, metrics)
