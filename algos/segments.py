"""Trajectory segments over per-turn rows: ordering, per-trajectory sums, discounted returns.

A :class:`Segments` view sorts the (kept) rows of a :class:`~turngym.algos.batch.TurnBatch` by
``(traj, turn)`` once, so rows may arrive in any order. The discounted suffix sum
``R_t = sum_{k >= t} gamma^(k - t) r_k`` runs Horner's rule backwards from each trajectory's
end, vectorised over trajectories (a table of distance-to-end x trajectory). When a few
trajectories are much longer than the rest (the table would be over 4x the rows), it
switches to a Hillis-Steele scan: ``ceil(log2 L)`` vectorised passes, each adding
``gamma^s`` times the value ``s`` rows ahead within the same trajectory. Both only multiply
by powers of ``gamma <= 1`` (no ``gamma^-t`` rescaling, no logs), so they stay exact to
rounding for trajectories of any length.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from turngym.algos.batch import TurnBatch
from turngym.errors import ConfigError


@dataclass(frozen=True)
class Segments:
    """Kept rows of a batch, sorted by trajectory then turn.

    ``rows_M`` are indices into the batch (M kept rows, sorted); every other ``_M`` array is
    aligned with them. ``_J`` arrays have one entry per trajectory.
    """

    rows_M: np.ndarray
    """Batch row index of each sorted kept row."""
    traj_M: np.ndarray
    """Dense trajectory id (0..J-1) of each sorted row."""
    end_M: np.ndarray
    """Sorted position of the last row of the row's trajectory."""
    start_J: np.ndarray
    """Sorted position of each trajectory's first row."""
    group_J: np.ndarray
    """Task group id (as given in the batch) of each trajectory."""

    @property
    def num_traj(self) -> int:
        """Number of trajectories J."""
        return len(self.start_J)


def segments(batch: TurnBatch) -> Segments:
    """Sort the rows with ``mask_N`` True by ``(traj, turn)`` and find trajectory bounds.

    Raises ``ConfigError`` when no row is kept, or when one trajectory spans two groups.
    """
    keep = np.flatnonzero(batch.mask_N)
    if len(keep) == 0:
        raise ConfigError("empty batch: every row has mask_N False, nothing to compute on")
    all_kept = len(keep) == len(batch)
    traj = batch.traj_N if all_kept else batch.traj_N[keep]
    turn = batch.turn_N if all_kept else batch.turn_N[keep]
    d_traj = np.diff(traj)
    in_order = bool(np.all(d_traj >= 0)) and bool(np.all((d_traj > 0) | (np.diff(turn) > 0)))
    if in_order:
        rows_M = keep
    else:
        rows_M = keep[np.lexsort((turn, traj))]
        d_traj = np.diff(batch.traj_N[rows_M])
    new = np.empty(len(rows_M), bool)
    new[0] = True
    np.not_equal(d_traj, 0, out=new[1:])
    start_J = np.flatnonzero(new)
    traj_M = np.cumsum(new) - 1
    end_J = np.append(start_J[1:], len(rows_M)) - 1
    group_M = batch.group_N if in_order and all_kept else batch.group_N[rows_M]
    group_J = group_M[start_J]
    bad = (np.diff(group_M) != 0) & ~new[1:]  # group changes inside a trajectory
    if bad.any():
        traj_id = int(batch.traj_N[rows_M[np.flatnonzero(bad)[0] + 1]])
        raise ConfigError(f"trajectory {traj_id} has rows in more than one group (group_N); "
                          "all turns of a trajectory must share its task group")
    return Segments(rows_M=rows_M, traj_M=traj_M, end_M=end_J[traj_M], start_J=start_J,
                    group_J=group_J)


def traj_sums(values_M: np.ndarray, seg: Segments) -> np.ndarray:
    """Sum of ``values_M`` over each trajectory (shape J)."""
    return np.add.reduceat(np.asarray(values_M, dtype=np.float64), seg.start_J)


def discounted_suffix_sum(values_M: np.ndarray, end_M: np.ndarray, gamma: float) -> np.ndarray:
    """``out[i] = sum_{k=i}^{end[i]} gamma^(k-i) values[k]`` for sorted segment rows.

    ``end_M[i]`` is the position of the last row of row i's segment. When the segments are
    of similar length, a (distance-to-end x segment) table is filled and Horner's rule runs
    over its rows, vectorised over segments (the same operations, in the same order, as a
    per-trajectory loop). Otherwise (a few very long segments) a log-depth scan is used.
    """
    out = np.asarray(values_M, dtype=np.float64)
    n = len(out)
    if n == 0:
        return out.copy()
    reach = end_M - np.arange(n)  # rows ahead of i within its segment
    longest = int(reach.max()) + 1
    new = np.empty(n, bool)
    new[0] = True
    np.not_equal(end_M[1:], end_M[:-1], out=new[1:])
    num_seg = int(new.sum())
    if longest * num_seg <= 4 * n + 1024:
        return _horner_table(out, reach, np.cumsum(new) - 1, longest, num_seg, gamma)
    return _doubling_scan(out, reach, longest, gamma)


def _horner_table(values: np.ndarray, reach: np.ndarray, seg: np.ndarray, longest: int,
                  num_seg: int, gamma: float) -> np.ndarray:
    """Horner's rule ``R = r + gamma * R`` from each segment's end, one table row per step."""
    flat = reach * num_seg + seg
    table = np.zeros(longest * num_seg)
    table[flat] = values
    table = table.reshape(longest, num_seg)
    running = np.zeros(num_seg)
    for k in range(longest):  # loop over distance to the segment end, not over rows
        running = table[k] + gamma * running
        table[k] = running
    return table.reshape(-1)[flat]


def _doubling_scan(values: np.ndarray, reach: np.ndarray, longest: int,
                   gamma: float) -> np.ndarray:
    """Hillis-Steele scan: ``out[i] += gamma^s * out[i+s]`` for s = 1, 2, 4, ..."""
    out = values.copy()
    n = len(out)
    step = 1
    while step < longest:
        ok = reach[: n - step] >= step
        # new[i] = old[i] + gamma^step * old[i + step]; the right side is built from `out`
        # before the assignment, so every pass reads the previous pass's values.
        add = np.where(ok, out[step:], 0.0) * (gamma ** step)
        out[: n - step] += add
        step *= 2
    return out
