"""Search env performance: index build, queries/s (in-process and through the server) at
20k and 200k passages, env steps/s, and expert vs random success per question type.

    python -m turngym.benchmarks.search_retrieval            # full run (20k and 200k)
    python -m turngym.benchmarks.search_retrieval --quick    # 20k only

Baselines measured in the same run: bm25s's own ``BM25.retrieve`` next to our sparse
top-k, one query per HTTP request next to 100-query requests and 16 concurrent clients,
answer steps (no retrieval) next to search steps, and a random policy next to the expert.
"""

from __future__ import annotations

import argparse
import concurrent.futures as cf
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

from turngym import envs
from turngym.envs.search.corpus import SHIPPED_CORPUS, load_corpus, load_shipped_qa
from turngym.envs.search.index import BM25Index, query_terms
from turngym.envs.search.remote import RemoteRetriever
from turngym.envs.search.world import build_world, world_passages
from turngym.harness.eval.results import write_result

QTYPES = ("1hop", "2hop", "comparison", "3hop")


def _rate(fn, n: int) -> float:
    start = time.perf_counter()
    fn()
    return n / (time.perf_counter() - start)


def _queries(passages: list[dict], n: int, seed: int) -> list[str]:
    rng = np.random.default_rng(seed)
    picks = rng.integers(len(passages), size=n)
    words = ["born", "founded", "headquartered", "published by", "population", "worked for"]
    return [f"{passages[i]['title']} {words[i % len(words)]}" for i in picks.tolist()]


def _start_server(index_dir: Path) -> tuple[subprocess.Popen, str]:
    cmd = [sys.executable, "-m", "turngym.harness.cli.main", "serve", "retriever", "--index",
           str(index_dir), "--port", "0"]
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, text=True,
                            env={**os.environ, "PYTHONUNBUFFERED": "1"})
    line = proc.stdout.readline()
    if " at " not in line:
        proc.kill()
        raise RuntimeError(f"retriever did not start: {line!r}")
    url = line.split(" at ")[1].strip()
    client = RemoteRetriever(url)
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        try:
            if client.health()["status"] == "ok":
                return proc, url
        except Exception:  # noqa: BLE001 - not listening yet
            time.sleep(0.05)
    proc.kill()
    raise RuntimeError("retriever never became healthy")


def bench_index(passages: list[dict], n_queries: int, seed: int) -> dict:
    """Build time; in-process q/s (ours vs ``bm25s.BM25.retrieve`` on the same index);
    server q/s (100-query requests, 16 concurrent clients, one query per request)."""
    start = time.perf_counter()
    index = BM25Index.build(passages)
    build_s = time.perf_counter() - start
    qs = _queries(passages, n_queries, seed)
    out = {"passages": len(passages), "build_s": round(build_s, 2)}
    out["inproc_qps"] = round(_rate(lambda: index.search(qs, 3), len(qs)), 1)
    single = qs[: n_queries // 4]
    vocab = index.retriever.vocab_dict
    terms = [[t for t in query_terms(q) if t in vocab] or ["born"] for q in single]
    out["bm25s_retrieve_qps"] = round(_rate(lambda: index.retriever.retrieve(
        terms, k=3, show_progress=False, n_threads=0), len(single)), 1)
    with tempfile.TemporaryDirectory() as tmp:
        index.save(Path(tmp) / "idx")
        proc, url = _start_server(Path(tmp) / "idx")
        try:
            client = RemoteRetriever(url, timeout_s=120)
            client.search(qs[:10], 3)  # warm-up
            out["server_batch_request_qps"] = round(_rate(
                lambda: [client.search(qs[i:i + 100], 3) for i in range(0, len(qs), 100)],
                len(qs)), 1)
            out["server_sequential_qps"] = round(_rate(
                lambda: [client.search([q], 3) for q in single], len(single)), 1)
            with cf.ThreadPoolExecutor(16) as pool:
                out["server_16_clients_qps"] = round(_rate(
                    lambda: list(pool.map(lambda q: client.search([q], 3), qs)), len(qs)), 1)
        finally:
            proc.terminate()
            proc.wait(timeout=30)
    return out


def bench_policies(seeds: list[int], split: str = "test") -> dict:
    """Success per question type: expert, and random (mean over seeds)."""
    env = envs.make("turngym/Search-v0", split=split)
    items = {q.id: q for q in load_shipped_qa(split)}
    won = {(p, t): [] for p in ("expert", "random") for t in QTYPES}
    for policy, policy_seeds in (("expert", [0]), ("random", seeds)):
        for seed in policy_seeds:
            rng = np.random.default_rng(seed)
            for task_id, item in items.items():
                obs, info = env.reset(seed=seed, options={"task_id": task_id})
                while True:
                    a = (env.unwrapped.expert_action() if policy == "expert"
                         else env.unwrapped.random_action(rng))
                    obs, _, term, trunc, info = env.step(a)
                    if term or trunc:
                        break
                won[(policy, item.type)].append(info["won"])
    return {p: {t: round(float(np.mean(won[(p, t)])), 4) for t in QTYPES}
            for p in ("expert", "random")}


def bench_steps(n: int = 300) -> dict:
    """Env steps/s: search steps (BM25 over 20.5k passages) vs answer steps (no retrieval)."""
    env = envs.make("turngym/Search-v0", split="test")
    ids = env.unwrapped.task_ids()
    env.reset(seed=0, options={"task_id": ids[0]})
    env.step("<search>warm up</search>")

    def run(kind: str) -> None:
        for i in range(n):
            env.reset(seed=i, options={"task_id": ids[i % len(ids)]})
            a = env.unwrapped.expert_action()
            env.step(a if kind == "search" else "<answer>x</answer>")

    return {"search_steps_per_s": round(_rate(lambda: run("search"), n), 1),
            "answer_steps_per_s": round(_rate(lambda: run("answer"), n), 1)}


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="20k passages only")
    parser.add_argument("--queries", type=int, default=2000)
    args = parser.parse_args(argv)
    seeds = [0, 1, 2]
    load_before = os.getloadavg()[0]  # the dev machine is shared: record how busy it was
    results: dict = {"index": {}}
    corpora = {"20k": lambda: load_corpus(SHIPPED_CORPUS)}
    if not args.quick:
        corpora["200k"] = lambda: world_passages(build_world(0, scale=10.0))[0]
    for name, load in corpora.items():
        r = results["index"][name] = bench_index(load(), args.queries, seed=0)
        print(f"[{name}] {r['passages']} passages: build {r['build_s']} s | in-process "
              f"{r['inproc_qps']} q/s vs bm25s.retrieve {r['bm25s_retrieve_qps']} q/s | "
              f"server {r['server_batch_request_qps']} q/s in 100-query requests, "
              f"{r['server_16_clients_qps']} q/s with 16 clients vs "
              f"{r['server_sequential_qps']} q/s sequential")
    results["env"] = bench_steps()
    print(f"env: {results['env']['search_steps_per_s']} search steps/s vs "
          f"{results['env']['answer_steps_per_s']} answer steps/s (no retrieval)")
    results["success"] = bench_policies(seeds)
    for t in QTYPES:
        print(f"success {t:>10}: expert {results['success']['expert'][t]:.3f} vs random "
              f"{results['success']['random'][t]:.3f}")
    path = write_result("search_retrieval", results, seeds=seeds,
                        config={"queries": args.queries, "k": 3, "quick": args.quick,
                                "split": "test", "server_clients": 16,
                                "loadavg_1min": [round(load_before, 2),
                                                 round(os.getloadavg()[0], 2)]})
    print(f"wrote {path}")


if __name__ == "__main__":
    main()
