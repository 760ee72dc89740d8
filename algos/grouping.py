"""Group rows by key and subtract a per-group baseline: the one helper GRPO, RLOO and GiGPO share.

Everything is vectorised with ``np.unique`` / ``np.bincount``; there is no Python loop over
rows or groups.

Baselines (``x`` the values of one group of size ``n``, ``mean`` and ``std`` over the group):

- ``mean``:     ``A = x - mean``
- ``mean_std``: ``A = (x - mean) / (std + eps)``, ``std`` with ``ddof`` (1: unbiased, as
  ``torch.std`` in the reference code)
- ``loo``:      ``A = x - mean_{j != i} x_j = n / (n - 1) * (x - mean)`` (RLOO)

A singleton group (``n == 1``) gets ``A = 0``: it has no peers to compare with. (verl's GRPO
special-cases singleton *episode* groups to ``A = x``; the GRPO config exposes that as
``singleton="reward"``.)
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import numpy as np

Baseline = Literal["mean", "mean_std", "loo"]


def dense_ids(*keys_N: np.ndarray) -> tuple[np.ndarray, int]:
    """Map rows with equal key tuples to one dense id in ``[0, num_groups)``.

    Returns ``(ids_N, num_groups)``. Ids follow the sorted order of the key tuples, so they
    do not depend on the order of the rows. Integer keys with a small range use a lookup
    table (O(N)); others are sorted once.
    """
    if not keys_N:
        raise ValueError("dense_ids needs at least one key array")
    n = len(keys_N[0])
    if n == 0:
        return np.zeros(0, np.int64), 0
    if len(keys_N) == 1:
        return _dense_one(np.asarray(keys_N[0]))
    # Densify each key, then fold them into one int64 code (mixed radix) when it fits.
    dense = [_dense_one(np.asarray(k)) for k in keys_N]
    # Shortcut, O(N): when one key determines all the others (e.g. every state id occurs in
    # one task group only), its ids already are the ids of the key tuples.
    for ids_j, size_j in reversed(dense):
        if all(_determines(ids_j, size_j, ids_i) for ids_i, _ in dense):
            return ids_j, size_j
    code = np.zeros(n, np.int64)
    radix = 1
    for ids, size in reversed(dense):
        if radix * size >= 2**62:  # would overflow int64: compare whole rows instead
            stacked = np.stack([d[0] for d in dense], axis=1)
            uniq, inv = np.unique(stacked, axis=0, return_inverse=True)
            return inv.reshape(n).astype(np.int64, copy=False), len(uniq)
        code += ids * radix
        radix *= size
    return _dense_one(code)


def _determines(ids_j: np.ndarray, size_j: int, ids_i: np.ndarray) -> bool:
    """Whether rows with equal ``ids_j`` always have equal ``ids_i``."""
    owner = np.empty(size_j, np.int64)
    owner[ids_j] = ids_i
    return bool(np.array_equal(owner[ids_j], ids_i))


def _dense_one(x_N: np.ndarray) -> tuple[np.ndarray, int]:
    """Dense ids of one key array."""
    n = len(x_N)
    if x_N.dtype.kind not in "iub":
        uniq, inv = np.unique(x_N, return_inverse=True)
        return inv.reshape(n).astype(np.int64, copy=False), len(uniq)
    x_N = x_N.astype(np.int64, copy=False)
    lo, hi = int(x_N.min()), int(x_N.max())
    span = hi - lo + 1
    if span <= 8 * n + 1024:  # lookup table: mark present values, rank them
        present = np.zeros(span, bool)
        present[x_N - lo] = True
        rank = np.cumsum(present) - 1
        return rank[x_N - lo], int(rank[-1]) + 1
    if span < 2**62 // max(n, 1):  # pack (value, row) into one int64 and sort it
        key = (x_N - lo) * n + np.arange(n)
        key.sort()
        order, sorted_x = key % n, key // n
        new = np.empty(n, bool)
        new[0] = True
        new[1:] = sorted_x[1:] != sorted_x[:-1]
        ids = np.empty(n, np.int64)
        ids[order] = np.cumsum(new) - 1
        return ids, int(new.sum())
    uniq, inv = np.unique(x_N, return_inverse=True)
    return inv.reshape(n).astype(np.int64, copy=False), len(uniq)


@dataclass(frozen=True)
class GroupStats:
    """Per-group count, mean and standard deviation (index = dense group id)."""

    count_K: np.ndarray
    mean_K: np.ndarray
    std_K: np.ndarray


def group_stats(values_N: np.ndarray, ids_N: np.ndarray, num_groups: int,
                ddof: int = 1) -> GroupStats:
    """Count, mean and std of ``values_N`` per group (two-pass variance, stable).

    A group with ``count <= ddof`` gets ``std = 0``.
    """
    values_N = np.asarray(values_N, dtype=np.float64)
    count_K = np.bincount(ids_N, minlength=num_groups).astype(np.float64)
    safe = np.maximum(count_K, 1.0)
    mean_K = np.bincount(ids_N, weights=values_N, minlength=num_groups) / safe
    dev_N = values_N - mean_K[ids_N]
    ss_K = np.bincount(ids_N, weights=dev_N * dev_N, minlength=num_groups)
    denom = count_K - ddof
    std_K = np.sqrt(np.divide(ss_K, denom, out=np.zeros_like(ss_K), where=denom > 0))
    return GroupStats(count_K=count_K, mean_K=mean_K, std_K=std_K)


def subtract_baseline(values_N: np.ndarray, ids_N: np.ndarray, num_groups: int,
                      baseline: Baseline, *, eps: float = 1e-6, ddof: int = 1) -> np.ndarray:
    """Advantage of each row relative to its group (see the module docstring).

    Same statistics as :func:`group_stats`, computed inline (the centred values serve the
    variance and the result). Singleton groups get exactly 0.
    """
    if baseline not in ("mean", "mean_std", "loo"):
        raise ValueError(f"unknown baseline {baseline!r}; use 'mean', 'mean_std' or 'loo'")
    values_N = np.asarray(values_N, dtype=np.float64)
    count_K = np.bincount(ids_N, minlength=num_groups).astype(np.float64)
    mean_K = np.bincount(ids_N, weights=values_N, minlength=num_groups) / np.maximum(count_K, 1.0)
    # A singleton's mean is its own value, so its centred value is exactly 0.
    centred_N = values_N - mean_K[ids_N]
    if baseline == "mean":
        return centred_N
    if baseline == "mean_std":
        ss_K = np.bincount(ids_N, weights=centred_N * centred_N, minlength=num_groups)
        denom = count_K - ddof
        std_K = np.sqrt(np.divide(ss_K, denom, out=np.zeros_like(ss_K), where=denom > 0))
        return centred_N / (std_K + eps)[ids_N]
    return centred_N * (count_K / np.maximum(count_K - 1.0, 1.0))[ids_N]
