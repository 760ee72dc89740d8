"""Rollout engine overhead: turns/s of the engine vs a naive loop, same envs, same policy.

A zero-latency scripted policy (uniform random over the admissible actions, from
``turngym.agents.scripted.ScriptedPolicy``) plays 256 concurrent episodes (64 tasks x G=4). The
baseline steps the same 256 envs one by one in a plain Python loop (reset all, then step
every live env until all are done) and records nothing. The engine does the same work and
also builds every :class:`~turngym.harness.rollout.trajectory.Turn`, in two settings:

* ``inline``: one process, envs stepped one after another (``step_mode=inline``);
* ``processes``: ``scripted_processes = --processes`` (default: the machine's cores) worker
  processes play whole groups (:mod:`turngym.harness.rollout.procs`); same trajectories (checked).

All three are timed in this run, interleaved, after one warm-up pass each; the best of
``--repeats`` is reported. Target: engine >= 0.8x naive.

    python -m turngym.benchmarks.rollout_overhead            # Sokoban and Household
    python -m turngym.benchmarks.rollout_overhead --envs turngym/Maze-v0 --repeats 5
"""

from __future__ import annotations

import argparse
import os
import time

from turngym import envs
from turngym.agents.scripted import ScriptedPolicy
from turngym.harness.eval.results import write_result
from turngym.harness.rollout.engine import RolloutConfig, RolloutEngine, episode_seed

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


def engine_turns(groups) -> list:
    return [(t.traj_id, [(u.action, u.reward, u.state_key) for u in t.turns], t.stop_reason)
            for g in groups for t in g.trajectories]


def bench_env(env_id: str, n_tasks: int, group: int, repeats: int, processes: int) -> dict:
    tasks = tasks_for(env_id, n_tasks)
    env_list = [envs.make(env_id) for _ in range(len(tasks) * group)]
    engines = {"inline": RolloutEngine(env_id, ScriptedPolicy("random", seed=0), None,
                                       RolloutConfig.build(env_id=env_id, group_size=group,
                                                           seed=0)),
               "processes": RolloutEngine(env_id, ScriptedPolicy("random", seed=0), None,
                                          RolloutConfig.build(env_id=env_id, group_size=group,
                                                              seed=0,
                                                              scripted_processes=processes))}
    naive_loop(env_list, tasks, group, 0)  # warm-up: caches, imports, pools, worker processes
    played = {name: engine_turns(e.run(tasks, progress=False)) for name, e in engines.items()}
    if played["inline"] != played["processes"]:
        raise RuntimeError("the process engine played other games than the inline engine")
    best = {"naive": 0.0, **{name: 0.0 for name in engines}}
    for _ in range(repeats):  # same seeds each repeat: identical games, best-of timing
        t0 = time.perf_counter()
        n = naive_loop(env_list, tasks, group, 0)
        best["naive"] = max(best["naive"], n / (time.perf_counter() - t0))
        for name, engine in engines.items():
            t0 = time.perf_counter()
            groups = engine.run(tasks, progress=False)
            wall = time.perf_counter() - t0
            m = sum(t.num_turns for g in groups for t in g.trajectories)
            if n != m:
                raise RuntimeError(f"naive and {name} engine played different games: "
                                   f"{n} vs {m} turns")
            best[name] = max(best[name], m / wall)
    for engine in engines.values():
        engine.close()
    for env in env_list:
        env.close()
    return {"env_id": env_id, "episodes": len(tasks) * group, "turns": n,
            "processes": processes, "naive_turns_per_s": round(best["naive"], 1),
            "engine_inline_turns_per_s": round(best["inline"], 1),
            "engine_processes_turns_per_s": round(best["processes"], 1),
            "ratio_inline": round(best["inline"] / best["naive"], 3),
            "ratio_processes": round(best["processes"] / best["naive"], 3)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--envs", nargs="+", default=list(DEFAULT_ENVS))
    parser.add_argument("--tasks", type=int, default=64)
    parser.add_argument("--group", type=int, default=4)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--processes", type=int, default=os.cpu_count() or 2,
                        help="worker processes of the process engine (default: cores)")
    parser.add_argument("--no-write", action="store_true", help="Do not write results JSON.")
    args = parser.parse_args()
    rows = []
    for env_id in args.envs:
        if env_id not in envs.list_ids():
            print(f"skip {env_id}: not registered or unavailable")
            continue
        row = bench_env(env_id, args.tasks, args.group, args.repeats, args.processes)
        rows.append(row)
        print(f"{env_id:24s} {row['episodes']} episodes, {row['turns']} turns: naive "
              f"{row['naive_turns_per_s']:8.0f} turns/s | engine inline "
              f"{row['engine_inline_turns_per_s']:8.0f} ({row['ratio_inline']:.2f}x) | engine "
              f"{row['processes']} processes {row['engine_processes_turns_per_s']:8.0f} "
              f"({row['ratio_processes']:.2f}x)  target >= 0.80x")
    if not args.no_write:
        path = write_result("rollout_overhead", rows, seeds=[0], config=vars(args))
        print(f"wrote {path}")


if __name__ == "__main__":
    main()
