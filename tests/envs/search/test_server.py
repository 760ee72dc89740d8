"""The retriever server, for real: uvicorn on 127.0.0.1 with a free port."""

from __future__ import annotations

import concurrent.futures as cf
import os
import subprocess
import sys
import threading
import time
from pathlib import Path

import httpx
import pytest

from turngym import envs
from turngym.envs.search.corpus import SHIPPED_CORPUS
from turngym.envs.search.index import default_index_dir, open_index
from turngym.envs.search.remote import RemoteRetriever
from turngym.envs.search.server import bind_socket, make_server
from turngym.errors import EnvError


def _wait_until(predicate, timeout_s: float = 30.0) -> None:
    deadline = time.monotonic() + timeout_s
    while not predicate():
        if time.monotonic() > deadline:
            raise TimeoutError("server did not become ready")
        time.sleep(0.02)


@pytest.fixture(scope="module")
def server_url():
    index = open_index(SHIPPED_CORPUS)
    sock = bind_socket("127.0.0.1", 0)
    server = make_server(index)
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    _wait_until(lambda: server.started)
    yield f"http://127.0.0.1:{sock.getsockname()[1]}"
    server.should_exit = True
    thread.join(timeout=10)
    sock.close()
    assert not thread.is_alive()


def test_health(server_url: str) -> None:
    doc = httpx.get(f"{server_url}/health").json()
    assert doc["status"] == "ok" and doc["passages"] == 20560


def test_remote_matches_in_process(server_url: str) -> None:
    queries = ["Mult Trerein born", "Brycheith Studios founded", "☃", "Zürich", "the of"]
    remote = RemoteRetriever(server_url).search(queries, 4)
    local = open_index(SHIPPED_CORPUS).search(queries, 4)
    assert remote == local
    assert remote[0][0].id == "p0006096" and remote[2] == [] and remote[4] == []


@pytest.mark.parametrize("body, status, needle", [
    ({"queries": [], "k": 3}, 422, "queries"),
    ({"queries": ["x"], "k": 0}, 422, "k"),
    ({"queries": ["x"], "k": 101}, 422, "k"),
    ({"queries": "x"}, 422, "queries"),
    ({"queries": ["x"], "k": 3, "kk": 1}, 422, "kk"),
    ({"queries": ["Vukix " * 1000], "k": 2}, 422, "the limit is 4096"),
    ({"queries": ["x"] * 1025, "k": 1}, 422, "queries"),
    ({"queries": ["x"] * 200, "k": 100}, 413, "the limit is 16384"),
])
def test_bad_requests_are_rejected_cleanly(server_url: str, body: dict, status: int,
                                           needle: str) -> None:
    resp = httpx.post(f"{server_url}/search", json=body)
    assert resp.status_code == status and needle in resp.text


@pytest.mark.parametrize("raw, needle", [
    (b'{"queries": ["x"], "k": NaN}', "NaN"),
    (b'{"queries": ["x"], "k": Infinity}', "Infinity"),
    (b'{"queries": ["x"], "k": 1e999}', "overflows"),
    (b'{"queries": ["\\ud800"], "k": 1}', "surrogate"),
    (b'{"queries": ["x"], "k": 1, "\\udfff": 2}', "surrogate"),
    (b'{"queries": ' + b"[" * 5000 + b"]" * 5000 + b"}", "nesting"),
    (b'{"queries": ["x"], "k": 1' + b"1" * 5000 + b"}", "digits"),
    (b'{"queries": ["\xff"]}', "UTF-8"),
    (b"{oops", "invalid JSON"),
])
def test_json_that_breaks_fastapi_is_a_clear_400(server_url: str, raw: bytes,
                                                 needle: str) -> None:
    resp = httpx.post(f"{server_url}/search", content=raw,
                      headers={"content-type": "application/json"})
    assert resp.status_code == 400 and needle in resp.json()["detail"], resp.text


def test_validation_errors_never_echo_the_input(server_url: str) -> None:
    """A value FastAPI's own 422 reply could not encode (bytes that are not UTF-8 sent as
    text/plain) gets a 422 without an ``input`` field."""
    resp = httpx.post(f"{server_url}/search", content=b"\xff\xfe" * 10,
                      headers={"content-type": "text/plain"})
    assert resp.status_code == 422 and "input" not in resp.json()["detail"][0]


def test_body_size_is_capped(server_url: str) -> None:
    from turngym.envs.search.server import MAX_BODY_BYTES

    big = b'{"queries": ["' + b"a" * MAX_BODY_BYTES + b'"]}'
    assert httpx.post(f"{server_url}/search", content=big).status_code == 413

    def chunks():  # no Content-Length: the streamed cap answers
        yield big[:1000]
        yield big[1000:]

    resp = httpx.post(f"{server_url}/search", content=chunks())
    assert resp.status_code == 413 and "limit" in resp.text


def test_remote_client_reports_the_limit_without_retrying(server_url: str) -> None:
    with pytest.raises(EnvError, match="refused the request .413.*16384"):
        RemoteRetriever(server_url).search(["x"] * 200, 100)


def test_a_small_request_is_not_stalled_by_a_large_one(server_url: str) -> None:
    """Fair scheduling: a one-query request sent while a maximum-work request (16,384 hits
    of long queries) runs is answered long before the large one finishes."""
    index = open_index(SHIPPED_CORPUS)
    long_qs = [" ".join(index.passages[i]["text"] for i in range(j, j + 8))[:4000]
               for j in range(256)]
    done: dict[str, float] = {}
    batches = httpx.get(f"{server_url}/health").json()["batches"]

    def large() -> None:
        t0 = time.perf_counter()
        resp = httpx.post(f"{server_url}/search", json={"queries": long_qs, "k": 64},
                          timeout=300)
        assert resp.status_code == 200 and len(resp.json()["results"]) == 256
        done["large"], done["large_s"] = time.perf_counter(), time.perf_counter() - t0

    thread = threading.Thread(target=large)
    thread.start()
    _wait_until(lambda: httpx.get(f"{server_url}/health").json()["batches"] > batches)
    t0 = time.perf_counter()
    small = RemoteRetriever(server_url, timeout_s=300).search(["Mult Trerein born"], 1)
    done["small"], small_s = time.perf_counter(), time.perf_counter() - t0
    thread.join()
    assert small[0][0].id == "p0006096"
    assert done["small"] < done["large"]
    assert small_s < max(2.0, done["large_s"] / 4), (small_s, done["large_s"])


def test_concurrent_requests_are_batched(server_url: str) -> None:
    before = httpx.get(f"{server_url}/health").json()["batches"]
    client = RemoteRetriever(server_url)
    names = ["Mult Trerein born"] * 40 + ["Brycheith Studios founded"] * 40
    with cf.ThreadPoolExecutor(16) as pool:
        results = list(pool.map(lambda q: client.search([q], 2 + len(q) % 3), names))
    after = httpx.get(f"{server_url}/health").json()["batches"]
    assert all(r[0][0].id == "p0006096" for r in results[:40])
    assert all(r[0][0].id == "p0001983" for r in results[40:])
    assert [len(r[0]) for r in results[:1]] == [2 + len(names[0]) % 3]  # each keeps its k
    assert 1 <= after - before <= len(names)


def test_batcher_merges_waiting_requests() -> None:
    """Requests queued while the worker is busy are answered by one merged call."""
    import asyncio

    from turngym.envs.search.server import _Batcher

    index = open_index(SHIPPED_CORPUS)

    async def run() -> tuple[list, int]:
        batcher = _Batcher(index, max_batch=256)
        jobs = [batcher.search([q], k) for q, k in
                [("Mult Trerein born", 1), ("Brycheith Studios founded", 3), ("☃", 2)]]
        pending = asyncio.gather(*jobs)
        await asyncio.sleep(0)  # let all three enqueue before the worker starts
        worker = asyncio.create_task(batcher.run())
        out = await pending
        worker.cancel()
        return out, batcher.batches

    (a, b, c), batches = asyncio.run(run())
    assert batches == 1
    assert [h.id for h in a[0]] == ["p0006096"]
    assert [h.id for h in b[0]] == ["p0001983", "p0001984", "p0001985"]
    assert c == [[]]


def test_env_through_server_wins_like_in_process(server_url: str) -> None:
    remote = envs.make("turngym/Search-v0", retriever_url=server_url)
    local = envs.make("turngym/Search-v0")
    for env in (remote, local):
        env.reset(seed=0, options={"task_id": "test-00000"})
    while True:
        action = local.unwrapped.expert_action()
        assert remote.unwrapped.expert_action() == action
        a, b = remote.step(action), local.step(action)
        assert a[:4] == b[:4] and a[4]["state_key"] == b[4]["state_key"]
        if a[2] or a[3]:
            break
    assert a[4]["won"] is True
    remote.close()
    remote.close()


def test_unreachable_server_raises_env_error() -> None:
    sock = bind_socket("127.0.0.1", 0)
    port = sock.getsockname()[1]
    sock.close()  # nothing listens there now
    env = envs.make("turngym/Search-v0", retriever_url=f"http://127.0.0.1:{port}")
    env.reset(seed=0, options={"task_id": "test-00000"})
    with pytest.raises(EnvError, match="retriever server"):
        env.step("<search>Vukix</search>")


@pytest.mark.slow
def test_cli_serves_a_saved_index(tmp_path: Path) -> None:
    open_index(SHIPPED_CORPUS)  # make sure the index folder exists
    index_dir = default_index_dir(SHIPPED_CORPUS)
    cmd = [sys.executable, "-m", "turngym.harness.cli.main", "serve", "retriever", "--index",
           str(index_dir), "--port", "0"]
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                            env={**os.environ, "PYTHONUNBUFFERED": "1"})
    try:
        line = proc.stdout.readline()
        assert line.startswith("retriever: 20560 passages at http://127.0.0.1:"), line
        url = line.split(" at ")[1].strip()
        client = RemoteRetriever(url)
        _wait_until(lambda: _healthy(client))
        assert client.search(["Mult Trerein born"], 1)[0][0].id == "p0006096"
    finally:
        proc.terminate()
        proc.wait(timeout=20)


def _healthy(client: RemoteRetriever) -> bool:
    try:
        return client.health()["status"] == "ok"
    except httpx.HTTPError:
        return False


def test_cli_rejects_a_folder_that_is_not_an_index(tmp_path: Path) -> None:
    from turngym.harness.cli.main import main

    assert main(["serve", "retriever", "--index", str(tmp_path)]) == 2


def test_bare_serve_still_runs_the_policy_server(monkeypatch) -> None:
    """``turngym serve`` without a subcommand keeps calling turngym.agents.serve_hf.serve (a
    fake here; the agents tests run the real policy server)."""
    import turngym.agents.serve_hf
    from turngym.harness.cli.main import main

    calls = []
    monkeypatch.setattr(turngym.agents.serve_hf, "serve",
                        lambda model, **kw: calls.append((model, kw)))
    assert main(["serve", "--model", "tiny", "--port", "0"]) == 0
    assert calls == [("tiny", {"host": "127.0.0.1", "port": 0, "backend": "hf", "dtype": "auto",
                               "max_model_len": 2048})]
