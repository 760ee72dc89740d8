"""Baselines from the persistent :class:`~turngym.algos.state_graph.StateGraph` for estimators.

Both functions only *read* the graph. Call them before ``graph.update(...)`` with the same
batch, so that a row's own return is never part of its baseline (SPO also reads its estimate
``p = alpha / (alpha + beta)`` before folding in the new reward). ``key_ids_N`` are
:func:`~turngym.algos.state_graph.stable_key_ids` of the rows' ``state_key`` (with ``task_ids`` when
a state's value depends on the task), never the per-batch ``TurnBatch.state_N`` ids.

1. :func:`singleton_step_advantage`, for GiGPO (arXiv 2505.10978). A step group of size 1
   has no peer in the batch and gets ``A_S = 0`` there. With the graph it gets

       A_S = R_t - mean_graph(s_t)   if count_graph(s_t) >= min_count, else 0

   (``R_t`` the discounted step return). Rows in larger step groups get 0 from this
   function: the batch's own group already scores them. Add the result to GiGPO's ``A_S``.
   The graph's std is not used to scale it: with 0/1 rewards a state's past returns are
   often all equal (std 0), and dividing by ``std + eps`` would blow a single new outcome up
   to ``1 / eps``.

2. :func:`value_baseline_advantage`, SPO's single-stream advantage (arXiv 2509.13232):

       A = R - V(s),  V(s) = mean_graph(s)   if count_graph(s) >= min_count

   and for an unseen state ``R - prior``, or 0 when ``prior`` is None (no baseline, no
   signal). SPO starts every prompt at a prior (0.5 for 0/1 rewards without offline
   estimates) and then normalises the advantages over the whole batch; ``global_norm=True``
   does that, ``(A - mean(A)) / (std(A) + eps)`` over all rows (ddof 1, as SPO's
   ``torch.std``; a one-row batch has std 0).

Edge cases: an empty batch gives an empty array; a key the graph never saw (or evicted) has
count 0.

Worked example (graph with state ``a``: returns 1 and 3, so mean 2, count 2; state ``b``:
return 5, count 1). Rows ``a, a, b, c`` with returns ``4, 0, 7, 1`` in step groups
``0, 1, 2, 3`` (all singletons), ``min_count=2``: ``singleton_step_advantage`` =
``[2, -2, 0, 0]`` (``b`` has too few visits, ``c`` none). ``value_baseline_advantage`` with
``min_count=1``: ``[2, -2, 2, 0]``; with ``prior=0.5`` the unseen ``c`` gets ``0.5``.
"""

from __future__ import annotations

import numpy as np

from turngym.algos.state_graph import StateGraph


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
