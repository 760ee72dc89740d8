"""Household benchmark: env speed against ALFWorld's PDDL engine, expert and random success.

    python -m turngym.benchmarks.household_speed               # full run (about 2-3 minutes)
    python -m turngym.benchmarks.household_speed --quick       # smaller samples

Prints, measured in the same run on the same tasks:

* steps/s of random play with admissible actions, ours (``turngym/Household-v0``) next to
  ALFWorld's PDDL engine (``turngym/ALFWorld-PDDL-v0``, TextWorld + alfred.pddl), and the
  speed-up (target >= 100x, and >= 20,000 steps/s for ours);
* the expert's success on every split (must be 100%);
* a uniform-random agent's success per task type (50 turns, admissible actions).

Results go to ``benchmarks/results/household_speed.json``.
"""

from __future__ import annotations

import argparse
import time
from collections import defaultdict

import numpy as np

from turngym import envs
from turngym.envs.household.tasks import TASK_TYPES
from turngym.harness.eval.results import write_result


def random_play(env_id: str, task_ids: list[str], steps: int, seed: int,
                max_turns: int = 50) -> dict[str, float]:
    """Random admissible actions over ``task_ids`` round-robin until ``steps`` steps.
    Step time excludes resets; resets are timed on their own."""
    env = envs.make(env_id, split="valid_unseen", max_turns=max_turns)
    rng = np.random.default_rng(seed)
    step_wall = step_cpu = reset_wall = 0.0
    done_steps, episodes, k = 0, 0, 0
    while done_steps < steps:
        t0 = time.perf_counter()
        _, info = env.reset(seed=seed, options={"task_id": task_ids[k % len(task_ids)]})
        reset_wall += time.perf_counter() - t0
        k, episodes = k + 1, episodes + 1
        term = trunc = False
        w0, c0 = time.perf_counter(), time.process_time()
        while not (term or trunc) and done_steps < steps:
            adm = info["admissible_actions"]
            _, _, term, trunc, info = env.step(adm[int(rng.integers(len(adm)))])
            done_steps += 1
        step_wall += time.perf_counter() - w0
        step_cpu += time.process_time() - c0
    env.close()
    return {"steps": done_steps, "episodes": episodes, "steps_per_s": done_steps / step_wall,
            "steps_per_cpu_s": done_steps / max(step_cpu, 1e-9),
            "reset_ms": 1000 * reset_wall / episodes}


def expert_success(split: str) -> dict[str, float]:
    """Run the expert on every task of ``split``; success rate and mean plan length."""
    env = envs.make("turngym/Household-v0", split=split)
    wins, turns = 0, []
    ids = env.unwrapped.task_ids()
    for tid in ids:
        _, info = env.reset(seed=0, options={"task_id": tid})
        term = trunc = False
        n = 0
        while not (term or trunc):
            action = env.unwrapped.expert_action()
            if action is None:
                break
            _, _, term, trunc, info = env.step(action)
            n += 1
        wins += bool(info["won"])
        turns.append(n)
    return {"tasks": len(ids), "success": wins / len(ids), "mean_turns": float(np.mean(turns))}


def expert_speed(task_ids: list[str], seed: int) -> dict[str, float]:
    """``expert_action()`` calls per second along expert episodes (TCOD/SFT call it every
    turn), timed apart from the steps."""
    env = envs.make("turngym/Household-v0", split="valid_unseen")
    calls, spent = 0, 0.0
    for tid in task_ids:
        env.reset(seed=seed, options={"task_id": tid})
        while True:
            t0 = time.perf_counter()
            action = env.unwrapped.expert_action()
            spent += time.perf_counter() - t0
            calls += 1
            if action is None or env.step(action)[2]:
                break
    return {"calls": calls, "calls_per_s": calls / spent, "us_per_call": 1e6 * spent / calls}


def random_success(splits: list[str], episodes_per_task: int, seed: int) -> dict[str, float]:
    """A uniform-random agent over admissible actions, 50 turns, per task type."""
    rng = np.random.default_rng(seed)
    wins: dict[str, list[bool]] = defaultdict(list)
    for split in splits:
        env = envs.make("turngym/Household-v0", split=split)
        for tid in env.unwrapped.task_ids():
            for _ in range(episodes_per_task):
                _, info = env.reset(seed=seed, options={"task_id": tid})
                term = trunc = False
                while not (term or trunc):
                    adm = info["admissible_actions"]
                    _, _, term, trunc, info = env.step(adm[int(rng.integers(len(adm)))])
                wins[info["task_type"]].append(bool(info["won"]))
    return {t: float(np.mean(wins[t])) for t in TASK_TYPES}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--quick", action="store_true", help="smaller samples")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    ours_steps, engine_steps = (20_000, 40) if args.quick else (200_000, 150)
    tasks = [f"valid_unseen-{i:05d}" for i in range(12)]  # two of each task type

    # --- speed: both engines, same tasks, same run
    ours = random_play("turngym/Household-v0", tasks, ours_steps, args.seed)
    engine = None
    if envs.spec("turngym/ALFWorld-PDDL-v0").available():
        engine = random_play("turngym/ALFWorld-PDDL-v0", tasks, engine_steps, args.seed)
    print("\nRandom play with admissible actions, single process, valid_unseen tasks 0-11")
    print(f"{'engine':<28}{'steps/s':>12}{'steps/CPU-s':>14}{'reset ms':>10}{'steps':>9}")
    for name, r in (("turngym/Household-v0", ours), ("ALFWorld PDDL (TextWorld)", engine)):
        if r is None:
            print(f"{name:<28}{'not installed: pip install turngym[classic]':>45}")
            continue
        print(f"{name:<28}{r['steps_per_s']:>12,.0f}{r['steps_per_cpu_s']:>14,.0f}"
              f"{r['reset_ms']:>10.1f}{r['steps']:>9,}")
    speedup = ours["steps_per_s"] / engine["steps_per_s"] if engine else None
    if speedup:
        print(f"speed-up: {speedup:,.0f}x (target >= 100x); ours "
              f"{ours['steps_per_s']:,.0f} steps/s (target >= 20,000)")

    speed = expert_speed([f"valid_unseen-{i:05d}" for i in range(134)], args.seed)
    print(f"expert_action(): {speed['calls_per_s']:,.0f} calls/s "
          f"({speed['us_per_call']:.1f} us per call, {speed['calls']} calls)")

    # --- expert upper bound on every split
    print("\nExpert success per split")
    expert = {s: expert_success(s) for s in ("train", "valid_seen", "valid_unseen")}
    for split, r in expert.items():
        print(f"  {split:<14}{r['success']:>8.1%}  over {r['tasks']} tasks, "
              f"{r['mean_turns']:.1f} turns on average")

    # --- random agent per task type
    per_task = 1 if args.quick else 4
    rand = random_success(["valid_seen", "valid_unseen"], per_task, args.seed)
    print(f"\nRandom agent success per task type (valid_seen + valid_unseen, {per_task} "
          "episode(s) per task, 50 turns)")
    for t, v in rand.items():
        print(f"  {t:<26}{v:>8.1%}")

    write_result("household_speed" + ("_quick" if args.quick else ""),
                 {"ours": ours, "alfworld_pddl": engine, "speedup": speedup,
                  "expert_speed": speed,
                  "expert_success": expert, "random_success_per_type": rand},
                 config={"ours_steps": ours_steps, "engine_steps": engine_steps, "tasks": tasks,
                         "random_episodes_per_task": per_task, "max_turns": 50},
                 seeds=[args.seed])


if __name__ == "__main__":
    main()
