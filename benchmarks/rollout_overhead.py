"""Rollout engine overhead: turns/s of the engine vs a naive loop, same envs, same policy.

A zero-latency scripted policy (uniform random over the admissible actions, from
``agents.scripted.ScriptedPolicy``) plays 256 concurrent episodes (64 tasks x G=4). The
baseline steps the same 256 envs one by one in a plain Python loop (reset all, then step
every live env until all are done) and records nothing. The engine does the same work and
also builds every :class:`~harness.trajectory.Turn`. Both are timed in this run, after one
warm-up pass each; the best of ``--repeats`` is reported. Target: engine >= 0.8x naive.

    python -m benchmarks.rollout_overhead            # Sokoban and Household
    python -m benchmarks.rollout_overhead --envs turngym/Maze-v0 --repeats 5
"""

from __future__ import annotations

import argparse
import time

import envs
from agents.scripted import ScriptedPolicy
from benchmarks._common import write_result
from harness.rollout import RolloutConfig, RolloutEngine, episode_seed

DEFAULT_ENVS = ("turngym/Sokoban-v0", "turngym/Household-v0")


def tasks_for(env_id: str, n_tasks: int) -> list[tuple[str, int]]:
    env = envs.make(env_id)
    ids = env.unwrapped.task_ids()[:n_tasks]
    env.close()
    return [(task_id, k) for k, task_id in enumerate(ids)]


def naive_loop(env_list: list, tasks: list[tuple[str, int]], group: int, seed: int) -> int:
    """Reset every env, then step each live env in turn until all are done; return turns.

    Episode ``i`` uses the same policy seed as the engine's episode ``i`` (run seed
    ``seed``), so both play exactly the same actions.
    """
    policies, live = [], []
    for i, env in enumerate(env_list):
        task_id, task_seed = tasks[i // group]
        env.reset(seed=task_seed, options={"task_id": task_id})
        policies.append(ScriptedPolicy("random", seed=episode_seed(0, seed, i)))
        live.append(i)
    turns = 0
    while live:
        still = []
        for i in live:
            _, _, term, trunc, _ = env_list[i].step(policies[i].act(env_list[i]))
            turns += 1
            if not (term or trunc):
                still.append(i)
        live = still
    return turns


def bench_env(env_id: str, n_tasks: int, group: int, repeats: int) -> dict:
    tasks = tasks_for(env_id, n_tasks)
    env_list = [envs.make(env_id) for _ in range(len(tasks) * group)]
    cfg = RolloutConfig.build(env_id=env_id, group_size=group, seed=0)
    engine = RolloutEngine(env_id, ScriptedPolicy("random", seed=0), None, cfg)
    naive_loop(env_list, tasks, group, 0)  # warm-up: caches, imports, the engine's env pool
    engine.run(tasks, progress=False)
    best = {"naive": 0.0, "engine": 0.0}
    turns = {}
    for _ in range(repeats):  # same seeds each repeat: identical games, best-of timing
        t0 = time.perf_counter()
        n = naive_loop(env_list, tasks, group, 0)
        best["naive"] = max(best["naive"], n / (time.perf_counter() - t0))
        t0 = time.perf_counter()
        groups = engine.run(tasks, progress=False)
        wall = time.perf_counter() - t0
        m = sum(t.num_turns for g in groups for t in g.trajectories)
        best["engine"] = max(best["engine"], m / wall)
        turns = {"naive": n, "engine": m}
        if n != m:
            raise RuntimeError(f"naive and engine played different games: {n} vs {m} turns")
    engine.close()
    for env in env_list:
        env.close()
    return {"env_id": env_id, "episodes": len(tasks) * group, "step_mode": engine.mode,
            "naive_turns_per_s": round(best["naive"], 1),
            "engine_turns_per_s": round(best["engine"], 1),
            "ratio": round(best["engine"] / best["naive"], 3), "turns_last_repeat": turns}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--envs", nargs="+", default=list(DEFAULT_ENVS))
    parser.add_argument("--tasks", type=int, default=64)
    parser.add_argument("--group", type=int, default=4)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--no-write", action="store_true", help="Do not write results JSON.")
    args = parser.parse_args()
    rows = []
    for env_id in args.envs:
        if env_id not in envs.list_ids():
            print(f"skip {env_id}: not registered or unavailable")
            continue
        row = bench_env(env_id, args.tasks, args.group, args.repeats)
        rows.append(row)
        print(f"{env_id:28s} {row['episodes']} episodes  naive {row['naive_turns_per_s']:9.1f} "
              f"turns/s  engine ({row['step_mode']}) {row['engine_turns_per_s']:9.1f} turns/s  "
              f"ratio {row['ratio']:.2f} (target >= 0.80)")
    if not args.no_write:
        path = write_result("rollout_overhead", rows, seeds=[0], config=vars(args))
        print(f"wrote {path}")


if __name__ == "__main__":
    main()
