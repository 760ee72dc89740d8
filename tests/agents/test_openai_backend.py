"""The ``openai`` backend against real OpenAI-compatible servers on 127.0.0.1.

* ``turngym serve`` (the hf backend in a FastAPI server), started once per module;
* vLLM's own server (marked ``vllm``/``slow``);
* a counting stub that fails twice, for the retry logic (beside the real-server tests).
"""

from __future__ import annotations

import http.server
import json
import threading
from typing import ClassVar

import numpy as np
import pytest

from turngym.agents import backend_checker as checks
from turngym.agents.backend import SamplingParams
from turngym.agents.openai_backend import OpenAIBackend
from turngym.agents.server_process import free_port, hf_server, vllm_server
from turngym.errors import BackendError


@pytest.fixture(scope="module")
def served(tiny_model_dir):
    with hf_server(tiny_model_dir) as server:
        backend = OpenAIBackend(server.base_url, tokenizer=tiny_model_dir, max_concurrency=4)
        yield backend
        backend.close()


def test_generate_logprobs_match_score(served):
    checks.check_generate_logprobs(served)


def test_logprobs_match_hf_backend(served, hf_backend):
    ids = checks.prompt_ids(served.tokenizer)
    gens = served.generate(ids, SamplingParams(temperature=1.0, max_tokens=8, seed=9))
    for g, s in zip(gens, hf_backend.score(ids, [g.ids for g in gens])):
        np.testing.assert_allclose(g.logprobs, s, atol=1e-3)


def test_seed_and_stop(served):
    checks.check_seed_determinism(served)
    checks.check_stop_string(served)


def test_concurrent_requests_keep_order(served):
    ids = [served.tokenizer(f"prompt number {i}")["input_ids"] for i in range(12)]
    gens = served.generate(ids, SamplingParams(temperature=0.0, max_tokens=4))
    alone = [served.generate([p], SamplingParams(temperature=0.0, max_tokens=4))[0]
             for p in ids[:3]]
    assert len(gens) == 12
    assert [g.ids for g in gens[:3]] == [g.ids for g in alone]


class _FlakyModels(http.server.BaseHTTPRequestHandler):
    """Answers /v1/models with 503 twice, then 200 (a stub for the retry test only)."""

    calls = 0

    def do_GET(self):
        type(self).calls += 1
        ok = type(self).calls > 2
        body = json.dumps({"object": "list", "data": [{"id": "stub", "object": "model"}]})
        self.send_response(200 if ok else 503)
        self.send_header("Content-Type", "application/json")
        self.end_headers()
        self.wfile.write(body.encode() if ok else b'{"error": "busy"}')

    def log_message(self, *args):
        pass


def test_retries_with_backoff(tiny_model_dir):
    server = http.server.HTTPServer(("127.0.0.1", 0), _FlakyModels)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        url = f"http://127.0.0.1:{server.server_port}/v1"
        backend = OpenAIBackend(url, tokenizer=tiny_model_dir, max_retries=3, backoff_s=0.01)
        assert backend.model == "stub" and _FlakyModels.calls == 3
        backend.close()
    finally:
        server.shutdown()


def test_unreachable_server_raises_after_retries(tiny_model_dir):
    url = f"http://127.0.0.1:{free_port()}/v1"
    with pytest.raises(BackendError, match="after 3 attempts"):
        OpenAIBackend(url, tokenizer=tiny_model_dir, max_retries=2, backoff_s=0.01)


@pytest.mark.vllm
@pytest.mark.slow
def test_vllm_server(tiny_model_dir, hf_backend):
    """vLLM's OpenAI server: token ids + log-probs come back; echo scoring agrees with hf."""
    with vllm_server(tiny_model_dir) as server:
        backend = OpenAIBackend(server.base_url, tokenizer=tiny_model_dir, max_concurrency=4)
        try:
            gens = checks.check_generate_logprobs(backend)
            ids = checks.prompt_ids(backend.tokenizer)
            for g, s in zip(gens, hf_backend.score(ids, [g.ids for g in gens])):
                np.testing.assert_allclose(g.logprobs, s, atol=1e-3)
        finally:
            backend.close()


class _CaptureCompletions(http.server.BaseHTTPRequestHandler):
    """Records each /v1/completions body; answers one token "a" (id 64) at log-prob -0.5."""

    bodies: ClassVar[list[dict]] = []

    def do_POST(self):
        body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
        type(self).bodies.append(body)
        choice = {"index": 0, "text": "a", "finish_reason": "stop", "token_ids": [64],
                  "logprobs": {"tokens": ["a"], "token_logprobs": [-0.5],
                               "top_logprobs": None, "text_offset": [0]}}
        out = json.dumps({"id": "c", "object": "text_completion", "created": 0,
                          "model": "stub", "choices": [choice]})
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.end_headers()
        self.wfile.write(out.encode())

    def log_message(self, *args):
        pass


def test_requests_pin_every_sampling_knob_and_score_is_t1_only(tiny_model_dir):
    """Unused knobs go out at their neutral values (vLLM's server would fill unset ones from
    the model's generation_config.json); score refuses T != 1 (echo log-probs are raw)."""
    server = http.server.HTTPServer(("127.0.0.1", 0), _CaptureCompletions)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        backend = OpenAIBackend(f"http://127.0.0.1:{server.server_port}/v1", model="stub",
                                tokenizer=tiny_model_dir, max_retries=0)
        for top_k, sent in [(-1, 0), (5, 5)]:
            gen = backend.generate([[1, 2]], SamplingParams(temperature=0.7, top_k=top_k))[0]
            assert gen.ids == [64] and gen.logprobs == [-0.5]
            body = _CaptureCompletions.bodies[-1]
            assert {k: body[k] for k in ("temperature", "top_p", "top_k", "min_p",
                                         "repetition_penalty", "presence_penalty",
                                         "frequency_penalty")} == {
                "temperature": 0.7, "top_p": 1.0, "top_k": sent, "min_p": 0.0,
                "repetition_penalty": 1.0, "presence_penalty": 0.0, "frequency_penalty": 0.0}
        n = len(_CaptureCompletions.bodies)
        with pytest.raises(BackendError, match="only at temperature 1"):
            backend.score([[1, 2]], [[64]], temperature=0.7)
        assert len(_CaptureCompletions.bodies) == n  # refused before any request
        assert backend.score([[1, 2]], [[]], temperature=0.0) == [[]]  # T <= 1e-6 is T=1
        backend.close()
    finally:
        server.shutdown()
