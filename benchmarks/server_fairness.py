"""Head-of-line blocking and abuse replies of the retriever and the policy server.

    python -m turngym.benchmarks.server_fairness            # both servers, in-process on loopback

For each server: the latency of a small request alone (the baseline, same run), the
duration of a large request, and the latency of the same small request sent while the
large one runs (fair scheduling keeps it near one work unit, not the large request's
duration). Then how fast abusive requests are refused (a 50 MB body, 100 stop strings).
The policy server runs the tiny model (fp32, CPU); results in
``benchmarks/results/server_fairness.json``.
"""

from __future__ import annotations

import statistics
import threading
import time
from typing import Any

import httpx

from turngym.envs.search.server import bind_socket
from turngym.harness.eval.results import write_result


def _serve(app: Any) -> tuple[Any, threading.Thread, str]:
    import uvicorn

    sock = bind_socket("127.0.0.1", 0)
    server = uvicorn.Server(uvicorn.Config(app, log_level="warning", lifespan="on"))
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    while not server.started:
        time.sleep(0.02)  # poll interval; readiness is server.started
    return server, thread, f"http://127.0.0.1:{sock.getsockname()[1]}"


def _timed(url: str, body: Any) -> tuple[int, float]:
    start = time.perf_counter()
    if isinstance(body, bytes):
        resp = httpx.post(url, content=body, timeout=900,
                          headers={"content-type": "application/json"})
    else:
        resp = httpx.post(url, json=body, timeout=900)
    return resp.status_code, time.perf_counter() - start


def _contention(url: str, large: dict, small: dict, wait_s: float) -> dict[str, float]:
    alone = statistics.median(_timed(url, small)[1] for _ in range(5))
    out: dict[str, float] = {}

    def run_large() -> None:
        status, out["large_s"] = _timed(url, large)
        out["large_end"] = time.perf_counter()
        assert status == 200, status

    thread = threading.Thread(target=run_large)
    thread.start()
    time.sleep(wait_s)  # let the large request start; the figure is measured, not assumed
    status, during = _timed(url, small)
    small_end = time.perf_counter()
    thread.join()
    assert status == 200
    return {"small_alone_s": round(alone, 3), "large_s": round(out["large_s"], 2),
            "small_during_large_s": round(during, 3),
            "small_finished_first": small_end < out["large_end"]}


def retriever() -> dict[str, Any]:
    from turngym.envs.search.corpus import SHIPPED_CORPUS
    from turngym.envs.search.index import open_index
    from turngym.envs.search.server import MAX_BODY_BYTES, create_app

    index = open_index(SHIPPED_CORPUS)
    server, thread, base = _serve(create_app(index))
    url = f"{base}/search"
    long_qs = [" ".join(index.passages[i]["text"] for i in range(j, j + 8))[:4000]
               for j in range(1024)]
    res = _contention(url, {"queries": long_qs, "k": 16},
                      {"queries": ["Mult Trerein born"], "k": 1}, wait_s=0.5)
    big = b'{"queries": ["' + b"a" * (50 << 20) + b'"]}'
    res["body_50mb"] = dict(zip(("status", "s"), _timed(url, big)))
    res["max_body_bytes"] = MAX_BODY_BYTES
    server.should_exit = True
    thread.join(timeout=30)
    return res


def policy() -> dict[str, Any]:
    from turngym.agents.hf import HFBackend
    from turngym.agents.models import tiny_model_dir
    from turngym.agents.serve_hf import create_app

    backend = HFBackend(tiny_model_dir(), dtype="float32", max_model_len=2048)
    server, thread, base = _serve(create_app(backend, "tiny"))
    url = f"{base}/v1/completions"
    ids = backend.tokenizer("The capital of France is", add_special_tokens=False)["input_ids"]
    res = _contention(url, {"prompt": [ids] * 32, "max_tokens": 128, "seed": 0},
                      {"prompt": ids, "max_tokens": 2}, wait_s=1.0)
    res["stop_16"] = dict(zip(("status", "s"), _timed(
        url, {"prompt": ids, "max_tokens": 16, "stop": [f"zz{i}q" for i in range(16)]})))
    res["stop_100"] = dict(zip(("status", "s"), _timed(
        url, {"prompt": ids, "max_tokens": 16, "stop": [f"zz{i}q" for i in range(100)]})))
    res["prompt_50mb"] = dict(zip(("status", "s"), _timed(
        url, b'{"prompt": "' + b"word " * (10 << 20) + b'"}')))
    server.should_exit = True
    thread.join(timeout=60)
    backend.close()
    return res


def main() -> None:
    results = {"retriever": retriever(), "policy_tiny_cpu": policy()}
    for name, res in results.items():
        print(f"{name}: small request alone {res['small_alone_s']} s; during a "
              f"{res['large_s']} s large request {res['small_during_large_s']} s "
              f"(finished first: {res['small_finished_first']})")
        for key in ("body_50mb", "stop_16", "stop_100", "prompt_50mb"):
            if key in res:
                print(f"  {key}: HTTP {res[key]['status']} in {res[key]['s']:.2f} s")
    write_result("server_fairness", results, config={
        "retriever_large": "1024 passage-text queries (<=4000 chars), k=16",
        "policy_large": "32 prompts x 128 tokens, tiny model fp32 CPU",
        "small": "1 query k=1 / 1 prompt 2 tokens"})


if __name__ == "__main__":
    main()
