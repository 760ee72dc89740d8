"""StateGraph update + lookup time and memory: sorted numpy arrays vs a Python dict.

A stream of key ids like ``stable_key_ids`` gives (random int64) and uniform returns. First
the graph is filled with ``--states`` distinct keys (``max_states = --states``); then each
timed step reads the baselines of a batch of ``--batch`` rows and folds the batch in:
``1 - --new-frac`` of the rows revisit keys of the recent window (some already evicted), the
rest are new keys, so every step inserts and evicts at the bound. Both implementations get
the same stream and their natural input (numpy arrays / Python lists); building it is not
timed. The dict is measured side by side with numpy at ``--dict-states`` (default
min(--states, 10^5): at 10^6 its eviction sort dominates), numpy alone at ``--states``.
Prints ms per step (lookup + update), bytes held, and the largest difference between the
two implementations' statistics; writes ``benchmarks/results/state_graph_speed.json``.

    python benchmarks/state_graph_speed.py                       # 10^6 states, 10^4 rows
    python benchmarks/state_graph_speed.py --quick               # 10^4 states, 10^3 rows
    python benchmarks/state_graph_speed.py --states 1000 --batch 500 --steps 5 \\
        --results-dir /tmp/sg                                    # tiny, elsewhere

The dict functions below are also the plain-loop reference the tests compare with.
"""

from __future__ import annotations

import argparse
import heapq
import os
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np

from turngym.algos.state_graph import StateGraph

Table = dict[int, list]  # key id -> [count, weight, mean, m2, last_step]


def dict_update(table: Table, keys: list[int], returns: list[float], step: int,
                max_states: int, decay: float) -> None:
    """Fold rows in one at a time (weighted Welford), then evict like :class:`StateGraph`."""
    for k, r in zip(keys, returns):
        e = table.get(k)
        if e is None:
            table[k] = [1, 1.0, r, 0.0, step]
            continue
        count, w, mean, m2, last = e
        s = decay ** (step - last)
        w = w * s + 1.0
        d = r - mean
        mean += d / w
        e[0], e[1], e[2], e[3], e[4] = count + 1, w, mean, m2 * s + d * (r - mean), step
    excess = len(table) - max_states
    if excess > 0:  # least recently updated first, ties: smaller key id
        for k in heapq.nsmallest(excess, table, key=lambda k: (table[k][4], k)):
            del table[k]


def dict_lookup(table: Table, keys: list[int]) -> tuple[list[float], list[int]]:
    """``(means, counts)``; a miss gives ``(0.0, 0)``."""
    means, counts = [], []
    for k in keys:
        e = table.get(k)
        means.append(0.0 if e is None else e[2])
        counts.append(0 if e is None else e[0])
    return means, counts


def dict_nbytes(table: Table) -> int:
    """Approximate bytes of the dict, its entry lists and their objects (sys.getsizeof)."""
    total = sys.getsizeof(table)
    for k, e in table.items():
        total += sys.getsizeof(k) + sys.getsizeof(e) + sum(sys.getsizeof(x) for x in e)
    return total


def make_stream(n_states: int, batch: int, steps: int, new_frac: float,
                seed: int) -> tuple[list[np.ndarray], list[np.ndarray]]:
    """Fill batches (each key new) then ``steps`` mixed batches: (keys per step, returns)."""
    rng = np.random.default_rng(seed)
    n_new = round(batch * new_frac)
    pool = rng.integers(np.iinfo(np.int64).min, np.iinfo(np.int64).max,
                        size=n_states + steps * n_new, dtype=np.int64)
    keys = [pool[i: min(i + batch, n_states)] for i in range(0, n_states, batch)]
    for t in range(steps):
        end = n_states + t * n_new  # keys handed out so far
        old = pool[rng.integers(max(0, end - n_states), end, size=batch - n_new)]
        keys.append(rng.permutation(np.concatenate([old, pool[end: end + n_new]])))
    return keys, [rng.random(len(k)) for k in keys]


def run_numpy(keys: list[np.ndarray], returns: list[np.ndarray], n_fill: int, n_states: int,
              decay: float) -> tuple[dict[str, Any], StateGraph]:
    graph = StateGraph(max_states=n_states, decay=decay)
    t0 = time.perf_counter()
    for step in range(n_fill):
        graph.update(keys[step], returns[step], step)
    fill_s = time.perf_counter() - t0
    look, upd = [], []
    for step in range(n_fill, len(keys)):
        t0 = time.perf_counter()
        graph.baseline(keys[step])
        t1 = time.perf_counter()
        graph.update(keys[step], returns[step], step)
        look.append(t1 - t0)
        upd.append(time.perf_counter() - t1)
    return _row("numpy", n_states, keys, fill_s, look, upd, graph.nbytes), graph


def run_dict(keys: list[np.ndarray], returns: list[np.ndarray], n_fill: int, n_states: int,
             decay: float) -> tuple[dict[str, Any], Table]:
    keys_l, returns_l = [k.tolist() for k in keys], [r.tolist() for r in returns]
    table: Table = {}
    t0 = time.perf_counter()
    for step in range(n_fill):
        dict_update(table, keys_l[step], returns_l[step], step, n_states, decay)
    fill_s = time.perf_counter() - t0
    look, upd = [], []
    for step in range(n_fill, len(keys)):
        t0 = time.perf_counter()
        dict_lookup(table, keys_l[step])
        t1 = time.perf_counter()
        dict_update(table, keys_l[step], returns_l[step], step, n_states, decay)
        look.append(t1 - t0)
        upd.append(time.perf_counter() - t1)
    return _row("dict", n_states, keys, fill_s, look, upd, dict_nbytes(table)), table


def _row(impl: str, n_states: int, keys: list[np.ndarray], fill_s: float, look: list[float],
         upd: list[float], nbytes: int) -> dict[str, Any]:
    step_ms = 1e3 * (np.asarray(look) + np.asarray(upd))
    return {"impl": impl, "states": n_states, "batch": len(keys[-1]), "steps": len(look),
            "fill_s": fill_s, "step_ms_median": float(np.median(step_ms)),
            "step_ms_mean": float(step_ms.mean()),
            "lookup_ms_median": float(1e3 * np.median(look)),
            "update_ms_median": float(1e3 * np.median(upd)),
            "bytes": int(nbytes), "bytes_per_state": nbytes / n_states,
            "load_avg_1m": os.getloadavg()[0]}  # the machine may be shared


def max_abs_diff(graph: StateGraph, table: Table) -> float:
    """Largest difference of count, mean and var between the two; inf if the keys differ."""
    keys = np.array(sorted(table), dtype=np.int64)
    if not np.array_equal(keys, graph.key_ids):
        return float("inf")
    ref = np.array([table[k] for k in keys.tolist()], dtype=np.float64).reshape(-1, 5)
    stats = graph.lookup(keys)
    return float(max(np.max(np.abs(stats.count_N - ref[:, 0]), initial=0.0),
                     np.max(np.abs(stats.mean_N - ref[:, 2]), initial=0.0),
                     np.max(np.abs(stats.var_N - ref[:, 3] / ref[:, 1]), initial=0.0)))


def main(argv: list[str] | None = None) -> list[dict[str, Any]]:
    from turngym.harness.eval.results import RESULTS_DIR, write_result

    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--states", type=int, default=10**6, help="distinct states (= max_states)")
    ap.add_argument("--dict-states", type=int, default=10**5,
                    help="size of the side-by-side numpy vs dict run (capped at --states)")
    ap.add_argument("--batch", type=int, default=10**4, help="rows per step")
    ap.add_argument("--steps", type=int, default=20, help="timed steps after the fill")
    ap.add_argument("--new-frac", type=float, default=0.2, help="share of new keys per step")
    ap.add_argument("--decay", type=float, default=0.95)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--quick", action="store_true",
                    help="smoke run: 10^4 states, 10^3 rows a step, 5 steps")
    ap.add_argument("--results-dir", default=str(RESULTS_DIR))
    args = ap.parse_args(argv)
    if args.quick:
        args.states, args.dict_states, args.batch, args.steps = 10**4, 10**4, 10**3, 5

    small = min(args.dict_states, args.states)
    cases = [(small, True)] + ([(args.states, False)] if args.states > small else [])
    results = []
    print(f"{'impl':>6} {'states':>9} {'batch':>6} {'ms/step':>9} {'lookup':>8} {'update':>8} "
          f"{'fill s':>8} {'MB':>8} {'B/state':>8} {'max|diff|':>10}")
    for n, with_dict in cases:
        keys, returns = make_stream(n, args.batch, args.steps, args.new_frac, args.seed)
        n_fill = len(keys) - args.steps
        row, graph = run_numpy(keys, returns, n_fill, n, args.decay)
        rows = [row]
        if with_dict:
            ref, table = run_dict(keys, returns, n_fill, n, args.decay)
            row["max_abs_diff"] = ref["max_abs_diff"] = max_abs_diff(graph, table)
            ref["speedup"] = ref["step_ms_median"] / row["step_ms_median"]
            rows.append(ref)
        for r in rows:
            results.append(r)
            print(f"{r['impl']:>6} {r['states']:>9} {r['batch']:>6} {r['step_ms_median']:>9.2f} "
                  f"{r['lookup_ms_median']:>8.2f} {r['update_ms_median']:>8.2f} "
                  f"{r['fill_s']:>8.2f} {r['bytes'] / 2**20:>8.1f} {r['bytes_per_state']:>8.1f} "
                  f"{r.get('max_abs_diff', float('nan')):>10.2e}")
        if with_dict:
            print(f"numpy is {ref['speedup']:.1f}x faster than the dict at {n} states")
    path = write_result("state_graph_speed", results, config=vars(args), seeds=[args.seed],
                        out_dir=Path(args.results_dir))
    print(f"wrote {path}")
    return results


if __name__ == "__main__":
    main()
