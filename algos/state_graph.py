"""A bounded map from ``state_key`` to running statistics of the returns earned from it.

GiGPO compares turns that acted from the same state *within one batch*; a state reached once
in a batch (a singleton step group) gets no step signal. :class:`StateGraph` keeps, across
training iterations, what earlier batches earned from each state, so an estimator can compare
a turn with the state's history instead (:mod:`turngym.algos.graph_credit`).
In training, ``algo.state_graph.enabled`` (:class:`StateGraphConfig`) makes the train loop
keep one graph across steps, the ``state_graph`` credit modifier read it and then update it
with every batch, and every checkpoint save it (docs/step-credit.md).

**Keys.** ``TurnBatch.state_N`` ids are dense per batch and mean nothing in the next one, so
the graph is keyed by :func:`stable_key_ids`: the first 8 bytes of a BLAKE2b digest of the
``state_key`` string, the same in every process and run (Python's ``hash()`` is salted per
process). With ``task_ids`` the key is the pair (task, state): a Household room can be the same
decision point for two goals and still be worth different returns. Two distinct keys collide
with probability about ``n^2 / 2^65`` (3e-8 at a million states).

**Statistics**, per key: ``count`` (rows ever folded in, an integer), and the exponentially
weighted mean and variance of the returns, with weight ``decay ** (steps since the row)``:

    rows of a batch at step t:  W_old, M2_old <- decay^(t - t_last) * (W_old, M2_old)
                                W = W_old + n_b,  delta = mean_b - mean_old
                                mean = mean_old + delta * n_b / W
                                M2 = M2_old + M2_b + delta^2 * W_old * n_b / W
    var = M2 / W                (weighted, ddof 0; with decay 1 it is np.var of all returns)

(``n_b, mean_b, M2_b``: the batch's rows of that key; the pairwise combine of Chan, Golub
and LeVeque 1979, which row by row is Welford's update.)

Why exponentially weighted: the policy moves every step, so a return earned k steps ago
describes an older policy. SPO (arXiv 2509.13232) tracks a per-prompt success rate the same
way, ``alpha <- rho * alpha + r``, ``beta <- rho * beta + (1 - r)``, i.e. an exponentially
weighted mean with effective count ``alpha + beta``. Why per elapsed training *step* rather
than per visit as in SPO: rows of one batch then all carry weight 1, so the result does not
depend on their order and one batched update equals row-by-row updates (tested); and
staleness grows with how far the policy moved, which the step count tracks (SPO measures that
with the KL since the prompt's last visit). ``decay = 1`` gives the plain running mean and
variance of every return seen (Welford). The M2 form (never ``E[x^2] - mean^2``) keeps the
variance free of cancellation.

**Storage.** Six parallel numpy arrays sorted by key id: ``key_ids, count, weight, mean, m2,
last_step`` (48 bytes a state; 48 MB at 10^6). With S stored states and a batch of N rows
with U distinct keys:

- ``lookup``: one ``searchsorted`` of the sorted batch keys, O(N log N + N log S).
- ``update``: ``np.unique`` of the batch, O(N log N); ``searchsorted``, O(U log S); in-place
  writes for known keys; when new keys arrive, one ``np.insert`` per array, O(S) memory
  moves; when the bound is passed, one ``np.partition`` and one compress per array, O(S).

No Python loop runs over rows or states. ``benchmarks/state_graph_speed.py`` measures it
against a dict implementation.

**Eviction.** After an update, while more than ``max_states`` keys are stored, the least
recently updated key goes first, ties broken by the smaller key id: deterministic, so a
resumed run evicts exactly what the uninterrupted run evicts.

**Resume.** ``state_dict`` holds the arrays, the clock and the config; after
``load_state_dict`` every later update and lookup is bit-identical to a run that never saved.
A state dict that is incomplete, inconsistent or from another config raises
:class:`StateDictError` (a ``ValueError`` and a ``CheckpointError``).

Steps must not decrease: ``update(..., step)`` with ``step`` below the last one raises.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Literal

import numpy as np
from pydantic import BaseModel, ConfigDict, Field

from turngym.errors import CheckpointError, ConfigError

STATE_DICT_VERSION = 1
_ARRAYS = {"key_ids": np.int64, "count": np.int64, "weight": np.float64, "mean": np.float64,
           "m2": np.float64, "last_step": np.int64}
_PERSON_KEY, _PERSON_PAIR = b"turngym-state", b"turngym-task-st"  # BLAKE2b domain separation


class StateDictError(CheckpointError, ValueError):
    """A :class:`StateGraph` state dict is incomplete, inconsistent, or from another config."""


def stable_key_ids(keys: Sequence[str | bytes] | np.ndarray,
                   task_ids: Sequence[str | bytes] | np.ndarray | None = None) -> np.ndarray:
    """int64 ids of ``state_key`` strings that are equal in every process and run.

    The id is the first 8 bytes (little-endian, signed) of ``blake2b(key)``; a ``str`` is
    hashed as UTF-8, so ``"a"`` and ``b"a"`` get the same id. With ``task_ids`` (one per key)
    the id is that of the pair, length-prefixed so that no two pairs share an encoding.
    Each distinct key is hashed once.
    """
    keys = list(keys)
    if task_ids is None:
        parts = keys
    else:
        task_ids = list(task_ids)
        if len(task_ids) != len(keys):
            raise ConfigError(f"stable_key_ids got {len(keys)} keys but {len(task_ids)} "
                              "task_ids; pass one task id per key")
        parts = list(zip(task_ids, keys))
    digests = {p: _digest(p) for p in dict.fromkeys(parts)}
    raw = b"".join(digests[p] for p in parts)
    return np.frombuffer(raw, dtype="<i8").astype(np.int64)


def _as_bytes(x: object) -> bytes:
    if isinstance(x, str):
        return x.encode("utf-8")
    if isinstance(x, bytes):
        return x
    raise ConfigError(f"state keys must be str or bytes, got {type(x).__name__} {x!r}; pass "
                      "the env's info['state_key'] strings")


def _digest(part: object) -> bytes:
    if isinstance(part, tuple):
        task, key = _as_bytes(part[0]), _as_bytes(part[1])
        data = len(task).to_bytes(8, "little") + task + key
        return hashlib.blake2b(data, digest_size=8, person=_PERSON_PAIR).digest()
    return hashlib.blake2b(_as_bytes(part), digest_size=8, person=_PERSON_KEY).digest()


class StateGraphConfig(BaseModel):
    """Config of :class:`StateGraph` and of the credit it gives (the train config's
    ``algo.state_graph`` section; :func:`turngym.algos.graph_credit.graph_credit`).

    ``max_states`` and ``decay`` shape the stored statistics (a checkpoint's graph only loads
    into a graph with the same two); the other fields say how the trainer uses it.
    """

    model_config = ConfigDict(extra="forbid", frozen=True)
    name: Literal["state_graph"] = "state_graph"
    enabled: bool = False
    """Keep a graph across training steps, change the advantages by ``mode`` and save the
    graph in every checkpoint (the ``state_graph`` credit modifier)."""
    max_states: int = Field(1_000_000, ge=1, le=10**9)
    """Most keys kept; the least recently updated go first beyond it."""
    decay: float = Field(0.95, gt=0.0, le=1.0)
    """Weight kept by a return per training step of age (1: plain running mean).
    0.95 halves a return's weight in about 13.5 steps (SPO clips its per-visit rho to 0.96)."""
    mode: Literal["singleton", "value"] = "singleton"
    """``singleton``: a row alone in its GiGPO step group (``A_S = 0`` there) gets
    ``weight * (R_t - mean_graph(s_t))`` added (GiGPO / HGPO only). ``value``: every row gets
    it added, an SPO-style persistent value baseline (arXiv 2509.13232)."""
    min_count: int = Field(2, ge=1, le=10**9)
    """Rows folded into a state before its mean is used as a baseline; fewer: no change."""
    weight: float = Field(1.0, ge=0.0, le=10.0)
    """The graph term's weight (like GiGPO's ``step_weight`` omega for ``A_S``)."""
    gamma: float | None = Field(None, ge=0.0, le=1.0)
    """Discount of the returns ``R_t`` folded in and compared (no bootstrap); None: the
    estimator's ``gamma`` (GiGPO and HGPO: 0.95), 1.0 for an estimator without one."""
    per_task: bool = True
    """Key by the pair (task_id, state_key): a state is worth different returns under
    different goals (Household). False pools a state across tasks, right when the key
    already names the task (Maze) or every task plays the same world."""

    def discount(self, estimator: object | None) -> float:
        """``gamma``, or the estimator config's ``gamma`` when None (1.0 without one)."""
        if self.gamma is not None:
            return self.gamma
        return float(getattr(estimator, "gamma", 1.0))


@dataclass(frozen=True)
class StateStats:
    """What the graph knows about each queried key (zeros and ``last_step = -1`` on a miss)."""

    mean_N: np.ndarray
    """float64 exponentially weighted mean return."""
    var_N: np.ndarray
    """float64 exponentially weighted variance of the returns (ddof 0)."""
    count_N: np.ndarray
    """int64 number of rows ever folded in; 0 for a key not stored."""
    last_step_N: np.ndarray
    """int64 training step of the key's last update; -1 for a key not stored."""


class StateGraph:
    """Running return statistics per stable key id, bounded to ``max_states`` keys.

    See the module docstring for the statistics, the storage and their costs.
    """

    def __init__(self, max_states: int = 1_000_000, decay: float = 0.95) -> None:
        self.cfg = StateGraphConfig(max_states=max_states, decay=decay)
        self.step = -1
        """Step of the last update (-1 before the first)."""
        for name, dtype in _ARRAYS.items():
            setattr(self, name, np.zeros(0, dtype))
        self.key_ids: np.ndarray  # (S,) int64, strictly increasing
        self.count: np.ndarray  # (S,) int64 rows folded in
        self.weight: np.ndarray  # (S,) float64 decayed weight W, as of last_step
        self.mean: np.ndarray  # (S,) float64
        self.m2: np.ndarray  # (S,) float64 decayed sum of squared deviations, as of last_step
        self.last_step: np.ndarray  # (S,) int64

    @classmethod
    def from_config(cls, cfg: StateGraphConfig) -> StateGraph:
        """A graph holding all of ``cfg`` (the credit settings too, as ``graph.cfg``)."""
        graph = cls(max_states=cfg.max_states, decay=cfg.decay)
        graph.cfg = cfg
        return graph

    def __len__(self) -> int:
        return len(self.key_ids)

    @property
    def nbytes(self) -> int:
        """Bytes held by the arrays."""
        return sum(getattr(self, name).nbytes for name in _ARRAYS)

    # -- reading ---------------------------------------------------------------------------

    def lookup(self, key_ids_N: np.ndarray) -> StateStats:
        """Statistics of each key; a key not stored gets count 0 (and mean 0)."""
        key_ids_N = _key_array(key_ids_N)
        n = len(key_ids_N)
        if len(self.key_ids) == 0 or n == 0:
            z = np.zeros(n)
            return StateStats(z, z.copy(), np.zeros(n, np.int64), np.full(n, -1, np.int64))
        order_N = np.argsort(key_ids_N)  # sorted needles search about 2x faster
        pos_N = np.empty(n, np.int64)
        pos_N[order_N] = np.searchsorted(self.key_ids, key_ids_N[order_N])
        pos_N = np.minimum(pos_N, len(self.key_ids) - 1)
        hit_N = self.key_ids[pos_N] == key_ids_N
        weight_N = self.weight[pos_N]
        var_N = np.divide(self.m2[pos_N], weight_N, out=np.zeros(n), where=hit_N & (weight_N > 0))
        return StateStats(mean_N=np.where(hit_N, self.mean[pos_N], 0.0), var_N=var_N,
                          count_N=np.where(hit_N, self.count[pos_N], 0),
                          last_step_N=np.where(hit_N, self.last_step[pos_N], -1))

    def baseline(self, key_ids_N: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """``(mean_N, count_N)`` of each key; a miss gives ``(0.0, 0)``."""
        stats = self.lookup(key_ids_N)
        return stats.mean_N, stats.count_N

    # -- writing ---------------------------------------------------------------------------

    def update(self, key_ids_N: np.ndarray, returns_N: np.ndarray, step: int) -> dict[str, float]:
        """Fold one batch of ``(key id, return)`` rows in at training ``step``.

        Rows with the same key are combined as if folded in one by one (equal up to float
        rounding). Eviction runs once, after the whole batch, so no key of the batch is
        evicted halfway through it. Returns the metrics ``algo/graph_states``,
        ``algo/graph_new_states`` and ``algo/graph_evicted``.
        """
        key_ids_N = _key_array(key_ids_N)
        returns_N = np.asarray(returns_N, dtype=np.float64)
        if returns_N.shape != key_ids_N.shape:
            raise ConfigError(f"StateGraph.update got {len(key_ids_N)} key ids but returns of "
                              f"shape {returns_N.shape}; pass one return per key id")
        if not np.all(np.isfinite(returns_N)):
            bad = int(np.flatnonzero(~np.isfinite(returns_N))[0])
            raise ConfigError(f"StateGraph.update: return {returns_N[bad]} at row {bad} is not "
                              "finite; it would poison the state's statistics for good")
        step = int(step)
        if step < 0 or step < self.step:
            raise ConfigError(f"StateGraph.update at step {step} after step {self.step}; steps "
                              "must be >= 0 and never decrease (pass the trainer's global step)")
        self.step = step
        if len(key_ids_N) == 0:
            return self._metrics(0, 0)
        uniq_U, n_U, mean_U, m2_U = _batch_moments(key_ids_N, returns_N)
        u = len(uniq_U)
        # The stored statistics of those keys, decayed to `step` (zero for new keys).
        pos_U = np.searchsorted(self.key_ids, uniq_U)
        found_U = np.zeros(u, bool)
        if len(self.key_ids):
            found_U = self.key_ids[np.minimum(pos_U, len(self.key_ids) - 1)] == uniq_U
        old = pos_U[found_U]
        w_old_U, mean_old_U, m2_old_U = np.zeros(u), np.zeros(u), np.zeros(u)
        scale = self.cfg.decay ** (step - self.last_step[old]).astype(np.float64)
        w_old_U[found_U] = self.weight[old] * scale
        m2_old_U[found_U] = self.m2[old] * scale
        mean_old_U[found_U] = self.mean[old]
        # Chan et al.'s pairwise combine of (w_old, mean_old, m2_old) with (n, mean, m2).
        w_U = w_old_U + n_U
        delta_U = mean_U - mean_old_U
        new_mean_U = mean_old_U + delta_U * (n_U / w_U)
        new_m2_U = m2_old_U + m2_U + delta_U * delta_U * (w_old_U * n_U / w_U)
        count_U = n_U.astype(np.int64)
        count_U[found_U] += self.count[old]
        values = {"key_ids": uniq_U, "count": count_U, "weight": w_U, "mean": new_mean_U,
                  "m2": new_m2_U, "last_step": np.full(u, step, np.int64)}
        for name, v_U in values.items():  # known keys: in place
            if name != "key_ids":
                getattr(self, name)[old] = v_U[found_U]
        new_U = ~found_U
        if new_U.any():  # new keys: insert, keeping the arrays sorted by key id
            at = pos_U[new_U]
            for name, v_U in values.items():
                setattr(self, name, np.insert(getattr(self, name), at, v_U[new_U]))
        return self._metrics(int(new_U.sum()), self._evict())

    def _evict(self) -> int:
        """Drop the least recently updated keys (ties: smaller key id first) beyond the bound."""
        k = len(self.key_ids) - self.cfg.max_states
        if k <= 0:
            return 0
        cutoff = np.partition(self.last_step, k - 1)[k - 1]  # the k-th smallest last_step
        drop_S = self.last_step < cutoff
        tied = np.flatnonzero(self.last_step == cutoff)  # in key order
        drop_S[tied[: k - int(drop_S.sum())]] = True
        keep_S = ~drop_S
        for name in _ARRAYS:
            setattr(self, name, getattr(self, name)[keep_S])
        return k

    def _metrics(self, new: int, evicted: int) -> dict[str, float]:
        return {"algo/graph_states": float(len(self)), "algo/graph_new_states": float(new),
                "algo/graph_evicted": float(evicted)}

    # -- checkpoints -----------------------------------------------------------------------

    def state_dict(self) -> dict[str, Any]:
        """Config, clock and copies of the arrays: ``dict[str, np.ndarray | int | float]``."""
        state: dict[str, Any] = {"version": STATE_DICT_VERSION, "max_states": self.cfg.max_states,
                                 "decay": self.cfg.decay, "step": self.step}
        state.update({name: getattr(self, name).copy() for name in _ARRAYS})
        return state

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Restore :meth:`state_dict`; raises :class:`StateDictError` when it does not fit."""
        arrays = _check_state_dict(state, self.cfg)
        self.step = int(state["step"])
        for name, arr in arrays.items():
            setattr(self, name, arr)


def _batch_moments(key_ids_N: np.ndarray, returns_N: np.ndarray
                   ) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Per distinct key (sorted): row count, mean, and sum of squared deviations (two-pass)."""
    uniq_U, inv_N = np.unique(key_ids_N, return_inverse=True)
    inv_N = inv_N.reshape(-1)
    n_U = np.bincount(inv_N, minlength=len(uniq_U)).astype(np.float64)
    mean_U = np.bincount(inv_N, weights=returns_N, minlength=len(uniq_U)) / n_U
    dev_N = returns_N - mean_U[inv_N]
    return uniq_U, n_U, mean_U, np.bincount(inv_N, weights=dev_N * dev_N, minlength=len(uniq_U))


def _key_array(key_ids_N: np.ndarray) -> np.ndarray:
    key_ids_N = np.asarray(key_ids_N)
    if key_ids_N.ndim != 1 or (key_ids_N.size and key_ids_N.dtype.kind not in "iu"):
        raise ConfigError(f"key ids must be a 1-D integer array, got dtype {key_ids_N.dtype} "
                          f"shape {key_ids_N.shape}; build them with stable_key_ids(state_keys)")
    return key_ids_N.astype(np.int64, copy=False)


def _check_state_dict(state: dict[str, Any], cfg: StateGraphConfig) -> dict[str, np.ndarray]:
    """Validated copies of the arrays of ``state``."""
    want = {"version", "max_states", "decay", "step", *_ARRAYS}
    if not isinstance(state, dict) or set(state) != want:
        got = set(state) if isinstance(state, dict) else type(state).__name__
        raise StateDictError(f"state graph state dict has keys {got}, expected {sorted(want)}")
    if state["version"] != STATE_DICT_VERSION:
        raise StateDictError(f"state graph state dict has version {state['version']!r}, this "
                             f"code reads version {STATE_DICT_VERSION}")
    for key in ("max_states", "decay"):
        if state[key] != getattr(cfg, key):
            raise StateDictError(f"state graph state dict has {key}={state[key]!r} but this "
                                 f"graph has {getattr(cfg, key)!r}; resume with the same config")
    arrays = {}
    for name, dtype in _ARRAYS.items():
        arr = state[name]
        if not isinstance(arr, np.ndarray) or arr.dtype != dtype or arr.ndim != 1:
            raise StateDictError(f"state graph array {name!r} must be a 1-D {np.dtype(dtype)} "
                                 f"array, got {getattr(arr, 'dtype', type(arr).__name__)}")
        arrays[name] = arr.copy()
    s = len(arrays["key_ids"])
    step = np.asarray(state["step"])
    problems = [
        (any(len(a) != s for a in arrays.values()), "arrays of different lengths"),
        (s > cfg.max_states, f"{s} states, more than max_states={cfg.max_states}"),
        (np.any(arrays["key_ids"][1:] <= arrays["key_ids"][:-1]), "key ids not strictly sorted"),
        (step.ndim != 0 or step.dtype.kind not in "iu" or step < (0 if s else -1),
         f"step {state['step']!r} is not an integer >= 0 (-1 for an empty graph)"),
    ]
    for bad, what in problems:
        if bad:
            raise StateDictError(f"corrupted state graph state dict: {what}")
    weight, m2 = arrays["weight"], arrays["m2"]
    checks = [(arrays["count"] >= 1, "count >= 1"), (np.isfinite(arrays["mean"]), "finite mean"),
              (np.isfinite(weight) & (weight > 0), "finite weight > 0"),
              (np.isfinite(m2) & (m2 >= 0), "finite m2 >= 0"),
              ((arrays["last_step"] >= 0) & (arrays["last_step"] <= step),
               "0 <= last_step <= step")]
    for ok, what in checks:
        if not np.all(ok):
            raise StateDictError(f"corrupted state graph state dict: {what} fails at row "
                                 f"{int(np.flatnonzero(~ok)[0])}")
    return arrays
