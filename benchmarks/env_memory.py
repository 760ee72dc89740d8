"""Leak benchmark: resident memory of each env family over a long run of episodes.

Each family runs in its own subprocess, so its RSS is its own: the process plus its
children (ScienceWorld's JVM, TextWorld's interpreter, SWE's sandboxes). An episode is a
``reset`` to a random task and up to ``steps`` actions: the expert's action (every other
step, where the env has one, so the episodes make progress and reach new states), else a
random admissible or well-formed action, and every third step an adversarial action, a
*distinct* random text of 4,000 characters (a model's garbage; an env that caches action
strings grows with these). Every ``episodes_per_env`` episodes the env is closed and a new
one built, so memory kept after ``close()`` shows too.

Tasks are drawn from a fixed pool of ``--task-pool`` tasks per family (default 20), so
that what grows is what episodes leave behind, not bounded per-task caches filling up
(``--task-pool 0`` draws from every task). RSS is sampled at intervals. The baseline is the
RSS after the first ``warmup`` episodes of the same run (engines started, caches warm); the
figure is the growth per 1,000 episodes past it,
``(rss_end - rss_base) / (episodes - warmup) * 1000``, next to the peak RSS. For the
families with few, slow episodes (ALFWorld-PDDL, SWE, ScienceWorld) the per-1,000 figure
extrapolates a few MB of noise (the JVM's heap also shrinks after a collection); their
peak against the baseline is the figure to read.

    python -m turngym.benchmarks.env_memory                 # every family (a few minutes)
    python -m turngym.benchmarks.env_memory --quick         # a smoke run
    python -m turngym.benchmarks.env_memory --families household,maze --scale 4

Writes ``benchmarks/results/env_memory.json``.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

from turngym.harness.eval.results import write_result

#: family -> (env id, make kwargs, episodes at scale 1, steps per episode, episodes per env,
#: python modules it needs). Episode counts keep each family under ~2 minutes on 2 cores.
FAMILIES: dict[str, tuple[str, dict[str, Any], int, int, int, tuple[str, ...]]] = {
    "household": ("turngym/Household-v0", {}, 5000, 20, 50, ()),
    "alfworld_pddl": ("turngym/ALFWorld-PDDL-v0", {}, 100, 4, 5, ("textworld", "alfworld")),
    "maze": ("turngym/Maze-v0", {}, 5000, 20, 50, ()),
    "sokoban": ("turngym/Sokoban-v0", {}, 5000, 20, 50, ()),
    "search": ("turngym/Search-v0", {}, 600, 4, 50, ()),
    "webshop": ("turngym/WebShop-v0", {"mode": "text"}, 120, 8, 20, ()),
    "swe": ("turngym/SWE-v0", {"backend": "bwrap"}, 40, 4, 10, ()),
    "textworld": ("turngym/TextWorld-v0", {}, 100, 10, 25, ("textworld",)),
    # tasks whose gold paths are found in seconds (some take minutes); each episode is a
    # new task, so each expert call searches a new gold path in the JVM
    "scienceworld": ("turngym/ScienceWorld-v0",
                     {"tasks": ["boil", "melt", "find-animal", "find-living-thing",
                                "use-thermometer", "test-conductivity"]}, 40, 4, 8,
                     ("scienceworld",)),
}
ADVERSARIAL_CHARS = 4000
#: Families drawing from fewer tasks than ``--task-pool`` (a TextWorld game is compiled on
#: its first use, seconds each).
POOL_OVERRIDE = {"textworld": 6}


def rss_mb(pid: int | None = None) -> float:
    """Resident memory of ``pid`` (default: this process) plus all its descendants, MB."""
    total, todo, seen = 0, [pid or os.getpid()], set()
    while todo:
        p = todo.pop()
        if p in seen:
            continue
        seen.add(p)
        try:
            with open(f"/proc/{p}/statm") as f:
                total += int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")
            for tid in os.listdir(f"/proc/{p}/task"):
                with open(f"/proc/{p}/task/{tid}/children") as f:
                    todo.extend(int(c) for c in f.read().split())
        except (OSError, ValueError):  # the process ended meanwhile
            continue
    return total / 2**20


def _action(env: Any, info: dict[str, Any], rng: Any, step: int) -> str:
    if step % 3 == 2:  # distinct every time: nothing should keep it
        letters = rng.integers(97, 123, ADVERSARIAL_CHARS)
        return f"go to {step} " + bytes(letters.astype("uint8")).decode()
    inner = env.unwrapped
    if step % 2 == 0:
        expert = inner.expert_action()
        if expert is not None:
            return expert
    actions = info.get("admissible_actions")
    if actions:
        return actions[int(rng.integers(len(actions)))]
    return inner.random_action(rng) or inner.expert_action() or "look"


def run_family(family: str, episodes: int, warmup: int, samples: int, pool: int = 20,
               seed: int = 0) -> dict[str, Any]:
    """Play ``episodes`` episodes of ``family`` in this process; RSS at ``samples`` points."""
    import numpy as np

    from turngym import envs

    env_id, kwargs, _, steps, per_env, _ = FAMILIES[family]
    rng = np.random.default_rng(seed)
    marks = sorted({warmup, episodes} | {warmup + (episodes - warmup) * k // samples
                                          for k in range(1, samples)})
    series: list[tuple[int, float, float]] = []
    env, tasks, start = None, None, time.perf_counter()
    for ep in range(1, episodes + 1):
        if env is None:
            env = envs.make(env_id, max_turns=steps, **kwargs)
            if tasks is None:
                tasks = env.unwrapped.task_ids()
                size = POOL_OVERRIDE.get(family, pool)
                if size and size < len(tasks):
                    picked = rng.choice(len(tasks), size=size, replace=False)
                    tasks = [tasks[int(i)] for i in sorted(picked)]
        _, info = env.reset(seed=ep, options={"task_id": tasks[int(rng.integers(len(tasks)))]})
        for t in range(steps):
            _, _, term, trunc, info = env.step(_action(env, info, rng, t))
            if term or trunc:
                break
        if ep % per_env == 0:
            env.close()
            env = None
        if ep in marks:
            series.append((ep, round(rss_mb(), 1), round(time.perf_counter() - start, 1)))
    if env is not None:
        env.close()
    base_ep, base = series[0][0], series[0][1]
    end_ep, end = series[-1][0], series[-1][1]
    per_1000 = (end - base) / max(1, end_ep - base_ep) * 1000
    return {"env_id": env_id, "episodes": episodes, "steps_per_episode": steps,
            "episodes_per_env": per_env, "baseline_episode": base_ep, "rss_baseline_mb": base,
            "rss_end_mb": end, "rss_max_mb": max(r for _, r, _ in series),
            "tasks": len(tasks or ()), "growth_mb_per_1000_episodes": round(per_1000, 2),
            "series": [{"episode": e, "rss_mb": r, "seconds": s} for e, r, s in series]}


def _available(family: str) -> str | None:
    """Why ``family`` cannot run here, or None."""
    import importlib.util
    import shutil

    missing = [m for m in FAMILIES[family][5] if importlib.util.find_spec(m) is None]
    if missing:
        return f"needs {', '.join(missing)} (pip install turngym[classic])"
    if family == "swe" and not shutil.which("bwrap"):
        return "needs bwrap"
    return None


def main(argv: list[str] | None = None) -> dict[str, Any]:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--families", default=",".join(FAMILIES),
                   help=f"comma-separated subset of {', '.join(FAMILIES)}")
    p.add_argument("--scale", type=float, default=1.0,
                   help="multiply every family's episode count (default 1: a few minutes)")
    p.add_argument("--quick", action="store_true", help="a smoke run (scale 0.05)")
    p.add_argument("--samples", type=int, default=5, help="RSS samples after the baseline")
    p.add_argument("--task-pool", type=int, default=20,
                   help="tasks per family to draw episodes from (0: every task)")
    p.add_argument("--timeout", type=float, default=600.0, help="seconds per family")
    p.add_argument("--out-dir", type=Path, default=None, help="where env_memory.json goes")
    p.add_argument("--worker", help=argparse.SUPPRESS)  # internal: run one family, print JSON
    args = p.parse_args(argv)
    scale = 0.05 if args.quick else args.scale

    def counts(family: str) -> tuple[int, int]:
        episodes = max(4, int(FAMILIES[family][2] * scale))
        return episodes, max(2, min(10, episodes // 5))

    if args.worker:
        episodes, warmup = counts(args.worker)
        print(json.dumps(run_family(args.worker, episodes, warmup, args.samples,
                                    args.task_pool)))
        return {}

    families = [f.strip() for f in args.families.split(",") if f.strip()]
    unknown = sorted(set(families) - set(FAMILIES))
    if unknown:
        p.error(f"unknown families {unknown}; known: {', '.join(FAMILIES)}")
    results: dict[str, Any] = {}
    print(f"{'family':<14}{'episodes':>9}{'baseline MB':>13}{'end MB':>9}{'peak MB':>9}"
          f"{'growth MB/1k ep':>17}{'seconds':>9}")
    for family in families:
        why = _available(family)
        if why:
            results[family] = {"skipped": why}
            print(f"{family:<14} skipped: {why}")
            continue
        cmd = [sys.executable, "-m", "turngym.benchmarks.env_memory", "--worker", family,
               "--scale", str(scale), "--samples", str(args.samples),
               "--task-pool", str(args.task_pool)]
        env = {**os.environ, "OMP_NUM_THREADS": os.environ.get("OMP_NUM_THREADS", "1")}
        try:
            out = subprocess.run(cmd, capture_output=True, text=True, timeout=args.timeout,
                                 check=False, cwd=Path(__file__).resolve().parents[1], env=env)
        except subprocess.TimeoutExpired:
            results[family] = {"error": f"timed out after {args.timeout:.0f} s"}
            print(f"{family:<14} timed out")
            continue
        lines = out.stdout.strip().splitlines()
        if out.returncode != 0 or not lines:
            results[family] = {"error": out.stderr.strip()[-2000:] or f"rc {out.returncode}"}
            print(f"{family:<14} failed (rc {out.returncode}): {out.stderr.strip()[-300:]}")
            continue
        r = results[family] = json.loads(lines[-1])
        print(f"{family:<14}{r['episodes']:>9}{r['rss_baseline_mb']:>13.1f}"
              f"{r['rss_end_mb']:>9.1f}{r['rss_max_mb']:>9.1f}"
              f"{r['growth_mb_per_1000_episodes']:>17.2f}{r['series'][-1]['seconds']:>9.1f}")
    print("baseline = RSS (process + children) after the first episodes of the same run")
    config = {"families": families, "scale": scale, "quick": args.quick,
              "samples": args.samples, "task_pool": args.task_pool,
              "pool_override": POOL_OVERRIDE, "adversarial_chars": ADVERSARIAL_CHARS,
              "counts": {f: dict(zip(("episodes", "warmup"), counts(f))) for f in families}}
    path = write_result("env_memory", results, config=config, seeds=[0], out_dir=args.out_dir)
    print(f"wrote {path}")
    return results


if __name__ == "__main__":
    main()
