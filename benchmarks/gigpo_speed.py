"""GiGPO grouping + advantage time: vectorised numpy vs a dict-of-lists implementation.

Both compute the same maths (:mod:`turngym.algos.gigpo`) on the same synthetic batch, in one run:
task groups of 8 trajectories, 5..35 turns each, states drawn from a pool of 30 per task
(so step groups repeat across and within trajectories), 30% of trajectories won, 10%
invalid actions (about half of them format errors). Each implementation gets its natural
input (numpy arrays / Python lists); building the inputs is not timed. Prints the seconds
per call of each and the speedup, and writes ``benchmarks/results/gigpo_speed.json``.

    python benchmarks/gigpo_speed.py                 # 10^4, 10^5, 10^6 rows
    python benchmarks/gigpo_speed.py --sizes 10000 --rounds 1   # quick

The dict-of-lists function below is also the plain-loop reference the tests compare with.
"""

from __future__ import annotations

import argparse
import functools
import math
import os
import time
from collections import defaultdict

import numpy as np

from turngym.algos.batch import TurnBatch
from turngym.algos.gigpo import GiGPOConfig, gigpo_advantage
from turngym.errors import ConfigError


def _normalise(x: float, values: list[float], mean_norm: bool, eps: float, ddof: int) -> float:
    n = len(values)
    if n == 1:
        return 0.0
    mean = 0.0
    for v in values:
        mean += v
    mean /= n
    if mean_norm:
        return x - mean
    ss = 0.0
    for v in values:
        ss += (v - mean) * (v - mean)
    std = math.sqrt(ss / (n - ddof)) if n > ddof else 0.0
    return (x - mean) / (std + eps)


def gigpo_dict_of_lists(group: list, traj: list, turn: list, reward: list, state: list,
                        valid: list, mask: list, cfg: GiGPOConfig,
                        format_valid: list | None = None) -> list[float]:
    """GiGPO advantages with plain Python loops, dicts and lists (the reference).

    ``format_valid`` None means every response parsed.
    """
    rows_by_traj: dict = defaultdict(list)
    for i in range(len(group)):
        if mask[i]:
            rows_by_traj[traj[i]].append(i)
    if not rows_by_traj:
        raise ConfigError("empty batch")
    mean_norm, ddof = cfg.mode == "mean_norm", (1 if cfg.unbiased_std else 0)
    ok = valid if cfg.penalize == "action" else (format_valid or [True] * len(group))
    in_reward = cfg.penalty_stage == "reward"
    r = {i: reward[i] - (cfg.invalid_penalty if in_reward and not ok[i] else 0.0)
         for rows in rows_by_traj.values() for i in rows}
    ep_return, step_return = {}, {}
    for t in sorted(rows_by_traj):
        rows = sorted(rows_by_traj[t], key=lambda i: turn[i])
        rows_by_traj[t] = rows
        total = 0.0
        for i in rows:
            total += r[i]
        ep_return[t] = total
        running = 0.0
        for i in reversed(rows):
            running = r[i] + cfg.gamma * running
            step_return[i] = running
    # Episode groups: one value per trajectory (or per row, episode_stats="turn").
    ep_values: dict = defaultdict(list)
    for t in sorted(rows_by_traj):
        g = group[rows_by_traj[t][0]]
        reps = 1 if cfg.episode_stats == "trajectory" else len(rows_by_traj[t])
        ep_values[g].extend([ep_return[t]] * reps)
    n_traj: dict = defaultdict(int)
    for t in rows_by_traj:
        n_traj[group[rows_by_traj[t][0]]] += 1
    # Step groups: (task group, state) -> step returns, in row order.
    step_values: dict = defaultdict(list)
    for i in sorted(step_return):
        step_values[(group[i], state[i])].append(step_return[i])
    adv = [0.0] * len(group)
    for t, rows in rows_by_traj.items():
        g = group[rows[0]]
        a_e = (0.0 if n_traj[g] == 1 else
               _normalise(ep_return[t], ep_values[g], mean_norm, cfg.eps, ddof))
        for i in rows:
            a_s = _normalise(step_return[i], step_values[(g, state[i])], mean_norm, cfg.eps,
                             ddof)
            adv[i] = a_e + cfg.step_weight * a_s
            if not in_reward and not ok[i]:  # penalty after normalisation
                adv[i] -= cfg.invalid_penalty
    return adv


def synthetic_batch(n_rows: int, seed: int = 0, shared_states: bool = False) -> TurnBatch:
    """``n_rows`` turn rows of GiGPO-shaped data (see the module docstring).

    State ids are unique per task (like real ``state_key``s, which describe the task's
    world) unless ``shared_states``: then all tasks draw from one pool of 30 ids, which
    takes the general (sort-based) step-grouping path.
    """
    rng = np.random.default_rng(seed)
    lengths = rng.integers(5, 36, size=n_rows // 5 + 8)
    lengths = lengths[: int(np.searchsorted(np.cumsum(lengths), n_rows)) + 1]
    lengths[-1] -= int(lengths.sum()) - n_rows  # exactly n_rows rows
    lengths = lengths[lengths > 0]
    traj_N = np.repeat(np.arange(len(lengths)), lengths)
    starts = np.cumsum(lengths) - lengths
    turn_N = np.arange(n_rows) - np.repeat(starts, lengths)
    group_N = traj_N // 8
    base_N = 0 if shared_states else group_N * 30
    state_N = base_N + rng.integers(0, 30, size=n_rows)
    first = turn_N == 0  # every trajectory of a task starts from the task's first state
    state_N[first] = np.broadcast_to(base_N, state_N.shape)[first]
    last_N = turn_N == np.repeat(lengths - 1, lengths)
    won_N = np.repeat(rng.random(len(lengths)) < 0.3, lengths)
    reward_N = (last_N & won_N).astype(np.float64)
    valid_N = rng.random(n_rows) > 0.1
    format_valid_N = valid_N | (rng.random(n_rows) > 0.5)  # half the invalid ones unparsed
    return TurnBatch(group_N=group_N, traj_N=traj_N, turn_N=turn_N, reward_N=reward_N,
                     state_N=state_N, valid_N=valid_N, mask_N=np.ones(n_rows, bool),
                     format_valid_N=format_valid_N)


def _timed(fn) -> tuple[float, object]:
    t0 = time.perf_counter()
    out = fn()
    return time.perf_counter() - t0, out


def compare(batch: TurnBatch, cfg: GiGPOConfig, rounds: int) -> dict[str, float]:
    """Best-of-``rounds`` seconds of each implementation, run alternately.

    Alternating the two keeps a busy (shared) machine from favouring either one.
    """
    lists = [a.tolist() for a in (batch.group_N, batch.traj_N, batch.turn_N, batch.reward_N,
                                  batch.state_N, batch.valid_N, batch.mask_N)]
    fmt = batch.format_valid_N.tolist()
    t_np = t_ref = math.inf
    for _ in range(rounds):
        for _ in range(3):
            t, res = _timed(functools.partial(gigpo_advantage, batch, cfg))
            t_np = min(t_np, t)
        t, ref = _timed(functools.partial(gigpo_dict_of_lists, *lists, cfg, fmt))
        t_ref = min(t_ref, t)
    diff = float(np.max(np.abs(res.adv_N - np.asarray(ref))))
    return {"rows": len(batch), "numpy_s": t_np, "dict_of_lists_s": t_ref,
            "speedup": t_ref / t_np, "max_abs_diff": diff}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[10**4, 10**5, 10**6])
    parser.add_argument("--rounds", type=int, default=2,
                        help="alternating rounds (numpy x3, dict-of-lists x1 each)")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    cfg = GiGPOConfig()
    results = []
    print(f"{'states':>8} {'rows':>9} {'numpy s':>9} {'dict s':>9} {'speedup':>8} "
          f"{'max|diff|':>10}")
    cases = [(n, False) for n in args.sizes] + [(max(args.sizes), True)]
    for n, shared in cases:
        r = compare(synthetic_batch(n, args.seed, shared), cfg, args.rounds)
        r["states"] = "shared" if shared else "per_task"
        r["load_avg_1m"] = os.getloadavg()[0]  # the machine may be shared
        results.append(r)
        print(f"{r['states']:>8} {n:>9} {r['numpy_s']:>9.4f} {r['dict_of_lists_s']:>9.3f} "
              f"{r['speedup']:>7.1f}x {r['max_abs_diff']:>10.2e}")
    from turngym.harness.eval.results import write_result

    path = write_result("gigpo_speed", results, config=cfg.model_dump() | {
        "rounds": args.rounds, "traj_per_group": 8, "turns": "5..35", "states_per_task": 30},
        seeds=[args.seed])
    print(f"wrote {path}")


if __name__ == "__main__":
    main()
