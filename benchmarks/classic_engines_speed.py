"""Steps/s of the classic engines next to turngym's own Household env, in one run.

Random play over admissible actions (computed every step, as an agent needs them), one
process, after a warm-up reset. Prints one row per engine and writes
``benchmarks/results/classic_engines_speed.json``.

    python -m turngym.benchmarks.classic_engines_speed [--seconds 20]
"""

from __future__ import annotations

import argparse
import time

import numpy as np

from turngym import envs
from turngym.harness.eval.results import write_result

ENGINES = {
    "turngym/Household-v0": "ours, pure Python",
    "turngym/ScienceWorld-v0": "ScienceWorld 1.2 (JVM)",
    "turngym/TextWorld-v0": "TextWorld 1.7 (Inform 7 / Jericho)",
}


def steps_per_second(env_id: str, seconds: float, seed: int = 0) -> dict[str, float]:
    env = envs.make(env_id, max_turns=10_000)
    rng = np.random.default_rng(seed)
    tasks = env.unwrapped.task_ids()
    task = tasks[0]
    _, info = env.reset(seed=seed, options={"task_id": task})  # warm-up: engine start, compile
    steps, resets, start = 0, 0, time.perf_counter()
    while time.perf_counter() - start < seconds:
        actions = info["admissible_actions"] or ["look"]
        _, _, term, trunc, info = env.step(actions[int(rng.integers(len(actions)))])
        steps += 1
        if term or trunc:
            _, info = env.reset(seed=seed, options={"task_id": task})
            resets += 1
    elapsed = time.perf_counter() - start
    env.close()
    return {"steps": steps, "resets": resets, "seconds": round(elapsed, 2),
            "steps_per_s": round(steps / elapsed, 1)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=20.0)
    args = parser.parse_args()
    results = {}
    for env_id, what in ENGINES.items():
        if env_id not in envs.list_ids():
            print(f"{env_id:28s} not installed, skipped")
            continue
        results[env_id] = {"engine": what, **steps_per_second(env_id, args.seconds)}
        print(f"{env_id:28s} {results[env_id]['steps_per_s']:>10.1f} steps/s   ({what})")
    base = results.get("turngym/Household-v0", {}).get("steps_per_s")
    if base:
        for env_id, row in results.items():
            row["household_speedup"] = round(base / row["steps_per_s"], 1)
        print("Household speed-up: " + ", ".join(
            f"{k.split('/')[1]} x{v['household_speedup']}" for k, v in results.items()))
    path = write_result("classic_engines_speed", results, config={"seconds": args.seconds,
                        "policy": "uniform random over admissible actions"}, seeds=[0])
    print(f"wrote {path}")


if __name__ == "__main__":
    main()
