"""The policy server (``turngym serve``) under abuse, in-process on the tiny hf backend:
strict JSON, per-field limits checked before any work, stop strings that cost little, and
fair scheduling (a short request is not stalled by a long one)."""

from __future__ import annotations

import threading
import time

import httpx
import pytest

from turngym.agents.serve_hf import ServeLimits, create_app
from turngym.envs.search.server import bind_socket

MAX_LEN = 256


def _serve(backend, limits: ServeLimits):
    import uvicorn

    sock = bind_socket("127.0.0.1", 0)
    server = uvicorn.Server(uvicorn.Config(create_app(backend, "tiny", limits, MAX_LEN),
                                           log_level="warning", lifespan="on"))
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    deadline = time.monotonic() + 30
    while not server.started:
        assert time.monotonic() < deadline, "server did not start"
        time.sleep(0.02)
    return server, thread, f"http://127.0.0.1:{sock.getsockname()[1]}/v1"


@pytest.fixture(scope="module")
def url(hf_backend):
    server, thread, base = _serve(hf_backend, ServeLimits(max_body_bytes=1 << 20))
    yield base
    server.should_exit = True
    thread.join(timeout=30)
    assert not thread.is_alive()


def _post(url: str, **body) -> httpx.Response:
    return httpx.post(f"{url}/completions", json={"max_tokens": 2, **body}, timeout=120)


@pytest.mark.parametrize("raw, needle", [
    (b'{"prompt": "hi", "temperature": NaN}', "NaN"),
    (b'{"prompt": "hi", "temperature": 1e999}', "overflows"),
    (b'{"prompt": "hi", "top_p": -Infinity}', "Infinity"),
    (b'{"prompt": "\\ud83d"}', "surrogate"),
    (b'{"prompt": "hi", "stop": ["\\udc00"]}', "surrogate"),
])
def test_json_that_breaks_fastapi_is_a_clear_400(url: str, raw: bytes, needle: str) -> None:
    resp = httpx.post(f"{url}/completions", content=raw,
                      headers={"content-type": "application/json"})
    assert resp.status_code == 400 and needle in resp.json()["detail"], resp.text


@pytest.mark.parametrize("body, status, needle", [
    ({"prompt": ["a"] * 65}, 413, "prompt is 65 prompts; the limit is 64"),
    ({"prompt": "a" * (32 * MAX_LEN + 1)}, 413, "the limit is 8192 characters"),
    ({"prompt": "hello " * 300}, 413, "the limit is 255 tokens"),
    ({"prompt": [1] * (MAX_LEN + 1)}, 413, "prompt[0] is 257 tokens"),
    ({"prompt": [5, 49152]}, 422, "token id 49152"),
    ({"prompt": [5, -1]}, 422, "token id -1"),
    ({"prompt": []}, 400, "empty prompt"),
    ({"prompt": [[5], []]}, 400, "empty prompt"),
    ({"prompt": "hi", "max_tokens": MAX_LEN + 1}, 422, "max_tokens is 257"),
    ({"prompt": "hi", "stop": [f"s{i}" for i in range(17)]}, 422, "the limit is 16"),
    ({"prompt": "hi", "stop": "x" * 257}, 422, "1..256"),
    ({"prompt": "hi", "n": 2}, 422, "n"),
    ({"prompt": "hi", "logprobs": 21}, 422, "logprobs"),
    ({"prompt": "hi", "top_k": -2}, 422, "top_k"),
    ({"prompt": "hi", "seed": 2 ** 63}, 422, "seed"),
    ({"prompt": "hi", "pad": "x" * (1 << 20)}, 413, "limit is 1048576"),
])
def test_limits_are_checked_before_work(url: str, body: dict, status: int,
                                        needle: str) -> None:
    resp = _post(url, **body)
    assert resp.status_code == status and needle in resp.text, resp.text[:300]
    assert "input" not in resp.text


def test_prompt_of_max_model_len_is_scored_with_max_tokens_0(url: str) -> None:
    resp = _post(url, prompt=[5] * MAX_LEN, max_tokens=0, echo=True, logprobs=0)
    choice = resp.json()["choices"][0]
    assert resp.status_code == 200 and len(choice["logprobs"]["token_logprobs"]) == MAX_LEN
    assert choice["logprobs"]["token_logprobs"][0] is None and choice["token_ids"] == []


def test_many_stop_strings_cost_little_and_cut_like_the_backend(url: str, hf_backend) -> None:
    """16 distinct stop strings (transformers' stop-string criterion cost about 1 s each);
    the cut matches the backend's own stop handling."""
    from turngym.agents.backend import SamplingParams

    ids = hf_backend.tokenizer("The capital of France is", add_special_tokens=False)["input_ids"]
    free = _post(url, prompt=ids, max_tokens=12, temperature=0.0).json()["choices"][0]
    stop = hf_backend.tokenizer.decode(free["token_ids"][3:4]).strip()[:1] or "e"
    stops = [stop] + [f"never-{i}-{time.time_ns()}" for i in range(15)]
    t0 = time.perf_counter()
    resp = _post(url, prompt=ids, max_tokens=12, temperature=0.0, stop=stops)
    elapsed = time.perf_counter() - t0
    want = hf_backend.generate([ids], SamplingParams(temperature=0.0, max_tokens=12,
                                                     stop=(stop,)))[0]
    got = resp.json()["choices"][0]
    assert got["token_ids"] == want.ids and got["finish_reason"] == want.finish_reason
    assert elapsed < 10.0, elapsed


def test_sliced_generation_matches_one_backend_call(hf_backend) -> None:
    """Greedy output over many 4-token slices and 2-prompt groups equals one call."""
    from turngym.agents.backend import SamplingParams
    from turngym.agents.serve_scheduler import FairScheduler

    tok = hf_backend.tokenizer
    prompts = [tok(t, add_special_tokens=False)["input_ids"] for t in
               ["Hello there", "One two three four", "x", "The quick brown fox"]]
    sampling = SamplingParams(temperature=0.0, max_tokens=12)
    sched = FairScheduler(hf_backend, max_model_len=MAX_LEN, chunk_prompts=2, slice_tokens=4)
    try:
        gens, _ = sched.submit(prompts, sampling, score_prompts=False).result(timeout=120)
    finally:
        sched.close()
    whole = hf_backend.generate(prompts, sampling)
    assert [g.ids for g in gens] == [g.ids for g in whole]
    assert [g.finish_reason for g in gens] == [g.finish_reason for g in whole]
    for g, w in zip(gens, whole):
        assert g.logprobs == pytest.approx(w.logprobs, abs=1e-4)


def test_a_short_request_is_not_stalled_by_a_long_one(hf_backend) -> None:
    """Fair scheduling: a 1-prompt, 2-token request sent while a 16-prompt, 64-token one
    runs (work units of 4 prompts x 8 tokens) comes back first, in a fraction of the time."""
    server, thread, base = _serve(hf_backend, ServeLimits(chunk_prompts=4, slice_tokens=8))
    app = server.config.app
    done: dict[str, float] = {}
    try:
        def long() -> None:
            t0 = time.perf_counter()
            resp = _post(base, prompt=[[5 + i, 6, 7] for i in range(16)], max_tokens=64,
                         seed=1)
            assert resp.status_code == 200 and len(resp.json()["choices"]) == 16
            done["long"], done["long_s"] = time.perf_counter(), time.perf_counter() - t0

        worker = threading.Thread(target=long)
        worker.start()
        deadline = time.monotonic() + 60
        while app.state.scheduler.units < 2:  # the long request is running
            assert time.monotonic() < deadline
            time.sleep(0.01)
        t0 = time.perf_counter()
        resp = _post(base, prompt="hi", max_tokens=2)
        done["short"], short_s = time.perf_counter(), time.perf_counter() - t0
        worker.join()
        assert resp.status_code == 200
        assert done["short"] < done["long"], (short_s, done["long_s"])
        assert short_s < done["long_s"] / 4, (short_s, done["long_s"])
    finally:
        server.should_exit = True
        thread.join(timeout=30)
