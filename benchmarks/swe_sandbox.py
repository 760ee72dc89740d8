"""SWE sandbox benchmark: start latency and test-run round trip per backend, with and
without the warm pool, and the expert's success rate (must be 100%).

    .venv/bin/python benchmarks/swe_sandbox.py                # every available backend
    .venv/bin/python benchmarks/swe_sandbox.py --backends bwrap --reps 5 --expert-limit 40

Baselines, measured in the same run: ``cold`` start (a new sandbox per episode) next to
``warm`` (taken from a pool that was filled in the background), and every backend next
to ``local-unsafe`` (no isolation). Results go to ``benchmarks/results/swe_sandbox.json``;
``--before FILE ...`` copies earlier result files (e.g. from before a change, with their
commit) into its ``before`` field, and prints the new figures next to them.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from turngym.harness.eval.results import write_result  # noqa: E402

UNSAFE = "local-unsafe"


def _available(backend: str) -> bool:
    import shutil

    from turngym.envs.swe.backends import docker_available

    if backend == "docker":
        if not docker_available():
            return False
        from turngym.envs.swe.docker_sandbox import image_exists

        return image_exists()
    return backend == UNSAFE or shutil.which("bwrap") is not None


def start_latency(backend: str, reps: int, warm: bool) -> list[float]:
    """Seconds from asking for a sandbox to the first command's result (``true``)."""
    from turngym.envs.swe.pool import SandboxPool

    pool = SandboxPool(backend, 2 if warm else 0, **({"allow_unsafe": True}
                                                     if backend == UNSAFE else {}))
    times = []
    try:
        for _ in range(reps):
            if warm:
                deadline = time.monotonic() + 60
                while pool.ready() < 1 and time.monotonic() < deadline:
                    time.sleep(0.01)  # the pool refills between episodes, as during rollouts
            start = time.perf_counter()
            box = pool.acquire()
            box.exec("true", timeout=30)
            times.append(time.perf_counter() - start)
            box.close()
    finally:
        pool.close()
    return times


def test_round_trip(backend: str, reps: int, pool_size: int = 0,
                    with_reset: bool = False) -> list[float]:
    """Seconds for one hidden-test run (``submit``) of a task in a started sandbox; with
    ``with_reset`` the clock starts before ``reset`` (which takes a sandbox: a new one, or
    one from a warm pool of ``pool_size``)."""
    from turngym import envs

    env = envs.make("turngym/SWE-v0", backend=backend, pool_size=pool_size,
                    unsafe_local=backend == UNSAFE)
    times = []
    try:
        for _ in range(reps):
            if pool_size:
                time.sleep(0.5)  # the pool refills between episodes, as during rollouts
            start = time.perf_counter()
            env.reset(seed=0, options={"task_id": "stats-0000"})
            if not with_reset:
                start = time.perf_counter()
            _, _, term, _, _ = env.step('{"name": "submit"}')
            times.append(time.perf_counter() - start)
            assert term
    finally:
        env.close()
    return times


def expert_success(backend: str, limit: int) -> dict:
    """The expert on the first ``limit`` tasks of each project (0: every task)."""
    from turngym import envs

    env = envs.make("turngym/SWE-v0", backend=backend, unsafe_local=backend == UNSAFE)
    ids = env.unwrapped.task_ids()
    if limit:
        per = max(1, limit // 8)
        seen: dict[str, int] = {}
        picked = []
        for t in ids:
            project = t.rsplit("-", 1)[0]
            if seen.get(project, 0) < per:
                seen[project] = seen.get(project, 0) + 1
                picked.append(t)
        ids = picked
    won, start = 0, time.perf_counter()
    for task_id in ids:
        env.reset(seed=0, options={"task_id": task_id})
        info, done = {}, False
        while not done:
            _, _, term, trunc, info = env.step(env.unwrapped.expert_action())
            done = term or trunc
        won += bool(info["won"])
    env.close()
    return {"tasks": len(ids), "won": won, "success": won / len(ids),
            "seconds_per_episode": (time.perf_counter() - start) / len(ids)}


def _ms(xs: list[float]) -> dict:
    return {"median_ms": round(1000 * statistics.median(xs), 1),
            "min_ms": round(1000 * min(xs), 1), "n": len(xs)}


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--backends", nargs="*", default=[UNSAFE, "bwrap", "docker"])
    parser.add_argument("--reps", type=int, default=10)
    parser.add_argument("--expert-backend", default="bwrap")
    parser.add_argument("--expert-limit", type=int, default=0, help="0: all tasks")
    parser.add_argument("--docker-expert-limit", type=int, default=24)
    parser.add_argument("--no-write", action="store_true")
    parser.add_argument("--before", nargs="*", default=[],
                        help="earlier result files to keep in the 'before' field")
    args = parser.parse_args(argv)
    args.backends = ["local-unsafe" if b == "local" else b for b in args.backends]

    results: dict = {"backends": {}, "expert": {}}
    for backend in args.backends:
        if not _available(backend):
            print(f"{backend:12s} not available here; skipped")
            continue
        cold = _ms(start_latency(backend, args.reps, warm=False))
        warm = _ms(start_latency(backend, args.reps, warm=True))
        n = max(3, args.reps // 2)
        trip = _ms(test_round_trip(backend, n))
        ep_cold = _ms(test_round_trip(backend, n, 0, with_reset=True))
        ep_warm = _ms(test_round_trip(backend, n, 2, with_reset=True))
        results["backends"][backend] = {"start_cold": cold, "start_warm_pool": warm,
                                        "test_round_trip": trip,
                                        "reset_and_test_cold": ep_cold,
                                        "reset_and_test_warm_pool": ep_warm}
        print(f"{backend:7s} start: cold {cold['median_ms']:8.1f} ms   warm pool "
              f"{warm['median_ms']:8.1f} ms   | test run round trip {trip['median_ms']:8.1f} ms"
              f"   | reset + test run: cold {ep_cold['median_ms']:8.1f} ms, warm pool "
              f"{ep_warm['median_ms']:8.1f} ms")
    local = results["backends"].get(UNSAFE)
    if local:
        for backend, r in results["backends"].items():
            ratio = r["test_round_trip"]["median_ms"] / local["test_round_trip"]["median_ms"]
            print(f"{backend:7s} vs {UNSAFE} (no isolation): test run {ratio:.2f}x")
    runs = [(args.expert_backend, args.expert_limit)]
    if "docker" in results["backends"] and args.expert_backend != "docker":
        runs.append(("docker", args.docker_expert_limit))
    for backend, limit in runs:
        if _available(backend):
            r = expert_success(backend, limit)
            results["expert"][backend] = r
            print(f"expert on {backend}: {r['won']}/{r['tasks']} = {r['success']:.1%} "
                  f"({r['seconds_per_episode']:.2f} s/episode; baseline: 100%)")
    if args.before:
        results["before"] = [_before(Path(f)) for f in args.before]
        _print_before(results)
    if not args.no_write:
        path = write_result("swe_sandbox", results, config=vars(args), seeds=[0])
        print(f"wrote {path}")
    return results


def _before(path: Path) -> dict:
    """The figures of an earlier result file, with where they came from."""
    doc = json.loads(path.read_text())
    keep = ("commit", "time", "load_avg_1m", "dirty", "note")
    return {**{k: doc[k] for k in keep if k in doc}, "results": doc["results"]}


def _print_before(results: dict) -> None:
    for before in results["before"]:
        print(f"before (commit {str(before.get('commit'))[:10]}, {before.get('time')}):")
        old = before["results"]["backends"]
        for backend, new in results["backends"].items():
            prev = old.get(backend) or old.get("local" if backend == UNSAFE else backend)
            if not prev:
                continue
            cells = [f"{k} {prev[k]['median_ms']:.0f} -> {v['median_ms']:.0f} ms"
                     for k, v in new.items() if k in prev]
            print(f"  {backend:12s} " + ", ".join(cells))


if __name__ == "__main__":
    main()
