"""A small OpenAI-compatible server over any turngym backend (the ``hf`` backend by default).

``turngym serve --model DIR`` (or ``python -m turngym.agents.serve_hf --model DIR``) serves
``GET /v1/models`` and ``POST /v1/completions`` on 127.0.0.1. Prompts may be text or token
ids; responses carry ``token_ids`` (as vLLM's ``return_token_ids`` does) and the legacy
``logprobs`` block, and ``echo=True`` returns prompt log-probs (``None`` for the first
token; the raw model's, whatever the request temperature, as vLLM's server does), so
:class:`turngym.agents.openai_backend.OpenAIBackend` can both generate and score through it.

**Limits** (:class:`ServeLimits`; checked before any work starts, each violation a 4xx that
names the field and the limit). ``L`` is ``max_model_len`` (default 2,048):

===========================  ===============  ======  ====================================
what                         default          reply   note
===========================  ===============  ======  ====================================
body bytes                   8 MiB            413     ``Content-Length`` and streamed cap
prompts per request          64               413     ``prompt`` as a list
characters per text prompt   ``32 L``         413     checked before tokenising
tokens per prompt            ``L - 1``        413     ``L`` when ``max_tokens`` is 0
token ids                    ``0..V-1``       422     ``V``: the tokenizer's vocabulary
``max_tokens``               ``0..L``         422     cut to ``L - prompt`` as the backends do
``stop``                     16 x 256 chars   422     strings x characters each
``n``                        1                422
``logprobs``                 ``0..20``        422     only whether it is set matters
``top_k``                    ``-1`` or more   422
JSON                         strict           400     NaN/Infinity/1e999, lone surrogates,
                                                      deep nesting (:mod:`turngym.envs.http_guard`)
requests in flight           64               503     queued or running; ``Retry-After: 1``
connections + tasks          256              503     uvicorn ``limit_concurrency`` (serve)
===========================  ===============  ======  ====================================

**Fair scheduling** (:mod:`turngym.agents.serve_scheduler`): one worker thread owns the backend and
serves the requests in flight round-robin, 8 prompts x 64 tokens (or one echo-scoring
chunk of 8 prompts) at a time, so a short request sent during a maximum-size one waits for
about one such unit per request ahead of it, not for the whole request. Tokenising runs in
a thread too; the event loop only parses and answers.

**Memory** is bounded by ``requests in flight x (body + prompts x L token ids + a reply of
prompts x L tokens)`` plus the model and one work unit's activations (8 prompts x L
tokens). Measured: a 2,048-token choice with echo and log-probs holds 0.26 MB of Python
objects (0.07 MB of JSON), so a reply at the cap is about 17 MB and a request at most about
35 MB with its 8 MiB body and token ids: 64 x 35 MB, about 2.2 GB, at the very worst.
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import math
import threading
import time
import uuid
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from turngym.agents.backend import Backend, SamplingParams

logger = logging.getLogger(__name__)

LIMIT_CONCURRENCY = 256
"""Open connections + tasks before uvicorn answers 503 (``serve`` only)."""


class ServeLimits(BaseModel):
    """What one request may ask of the policy server (see the module docstring)."""

    model_config = ConfigDict(extra="forbid", frozen=True)
    max_body_bytes: int = Field(8 << 20, ge=1024)
    max_prompts: int = Field(64, ge=1)
    max_prompt_chars: int | None = Field(None, ge=1)
    """Characters per text prompt; ``None``: ``32 x max_model_len``."""
    max_stop: int = Field(16, ge=0)
    max_stop_chars: int = Field(256, ge=1)
    max_pending: int = Field(64, ge=1)
    """Requests in flight (queued or running); more get a 503."""
    chunk_prompts: int = Field(8, ge=1)
    """Prompts per work unit of the fair scheduler."""
    slice_tokens: int = Field(64, ge=1)
    """Tokens per work unit of the fair scheduler."""


class CompletionRequest(BaseModel):
    """The subset of OpenAI's ``/v1/completions`` request that turngym uses."""

    model: str | None = None
    prompt: str | list[int] | list[str] | list[list[int]]
    max_tokens: int = Field(16, ge=0)
    temperature: float = Field(1.0, ge=0.0, allow_inf_nan=False)
    top_p: float = Field(1.0, gt=0.0, le=1.0)
    top_k: int = Field(-1, ge=-1)
    stop: str | list[str] | None = None
    seed: int | None = Field(None, ge=-(2 ** 63), lt=2 ** 63)
    logprobs: int | None = Field(None, ge=0, le=20)
    echo: bool = False
    n: int = Field(1, ge=1, le=1)
    model_config = {"extra": "allow"}  # return_token_ids, skip_special_tokens, ...


def _split_prompts(req: CompletionRequest) -> list[str | list[int]]:
    """The request's prompts as a list (a text, or a list of token ids, each)."""
    p: Any = req.prompt
    if isinstance(p, str):
        return [p]
    if p and isinstance(p[0], int):
        return [p]
    return list(p)


def _check_request(req: CompletionRequest, limits: ServeLimits, max_len: int
                   ) -> tuple[list[str | list[int]], tuple[str, ...]]:
    """The prompts and stop strings of ``req``, within ``limits`` (else an HTTP error)."""
    from fastapi import HTTPException

    from turngym.envs.http_guard import too_large

    prompts = _split_prompts(req)
    if not prompts:
        raise HTTPException(400, "empty prompt")
    if len(prompts) > limits.max_prompts:
        raise too_large("prompt", len(prompts), limits.max_prompts, "prompts")
    max_chars = limits.max_prompt_chars or 32 * max_len
    for i, p in enumerate(prompts):
        if isinstance(p, str) and len(p) > max_chars:
            raise too_large(f"prompt[{i}]", len(p), max_chars, "characters")
        if isinstance(p, list) and len(p) > max_len:
            raise too_large(f"prompt[{i}]", len(p), max_len, "tokens")
    if req.max_tokens > max_len:
        raise HTTPException(422, f"max_tokens is {req.max_tokens}; the limit is "
                                 f"max_model_len={max_len}")
    stop = (req.stop,) if isinstance(req.stop, str) else tuple(req.stop or ())
    if len(stop) > limits.max_stop:
        raise HTTPException(422, f"stop has {len(stop)} strings; the limit is {limits.max_stop}")
    for s in stop:
        if not s or len(s) > limits.max_stop_chars:
            raise HTTPException(422, f"a stop string has {len(s)} characters; it must have "
                                     f"1..{limits.max_stop_chars}")
    return prompts, stop


def _check_tokens(prompts: list[list[int]], max_tokens: int, max_len: int, vocab: int) -> None:
    """Token counts and ids within the model (else an HTTP error)."""
    from fastapi import HTTPException

    from turngym.envs.http_guard import too_large

    room = max_len - 1 if max_tokens > 0 else max_len  # at least one token to generate
    for i, p in enumerate(prompts):
        if not p:
            raise HTTPException(400, "empty prompt")
        if len(p) > room:
            raise too_large(f"prompt[{i}]", len(p), room, "tokens (max_model_len - 1 when "
                                                        "max_tokens > 0)")
        bad = next((t for t in p if not 0 <= t < vocab), None)
        if bad is not None:
            raise HTTPException(422, f"prompt[{i}] holds token id {bad}; ids must be in "
                                     f"0..{vocab - 1}")


def _finite(x: float | None) -> float | None:
    """A log-prob JSON can carry: NaN -> ``None``, -inf -> -9999.0 (as vLLM's server)."""
    if x is None or math.isfinite(x):
        return x
    return None if math.isnan(x) else max(min(x, 0.0), -9999.0)


def _choice(index: int, prompt: list[int], gen: Any, prompt_lp: list[float] | None,
            tokenizer: Any, echo: bool, want_logprobs: bool) -> dict[str, Any]:
    ids = list(prompt) + list(gen.ids) if echo else list(gen.ids)
    tokens = [tokenizer.decode([i]) for i in ids]
    logprobs = None
    if want_logprobs:
        lp: list[float | None] = [_finite(x) for x in gen.logprobs]
        if echo:
            lp = [None] + [_finite(x) for x in prompt_lp or []] + lp
        offsets, pos = [], 0
        for t in tokens:
            offsets.append(pos)
            pos += len(t)
        logprobs = {"tokens": tokens, "token_logprobs": lp, "top_logprobs": None,
                    "text_offset": offsets}
    return {"index": index, "text": "".join(tokens) if echo else gen.text,
            "logprobs": logprobs, "finish_reason": gen.finish_reason,
            "token_ids": list(gen.ids), "prompt_token_ids": list(prompt)}


def create_app(backend: Backend, model_name: str, limits: ServeLimits | None = None,
               max_model_len: int | None = None) -> Any:
    """The FastAPI app serving ``backend`` under ``model_name`` (``max_model_len``: the
    backend's own by default)."""
    from contextlib import asynccontextmanager

    from fastapi import FastAPI, HTTPException

    from turngym.agents.serve_scheduler import FairScheduler
    from turngym.envs.http_guard import guard_app, safe_text

    limits = limits or ServeLimits()
    max_len = int(max_model_len or getattr(backend, "max_model_len", 2048))
    tok = backend.tokenizer
    vocab = len(tok)
    encode_lock = threading.Lock()  # fast tokenizers may refuse concurrent use
    sched = FairScheduler(backend, max_model_len=max_len, chunk_prompts=limits.chunk_prompts,
                          slice_tokens=limits.slice_tokens, max_jobs=limits.max_pending)

    def tokenize(prompts: list[str | list[int]]) -> list[list[int]]:
        with encode_lock:
            return [tok(p, add_special_tokens=False)["input_ids"] if isinstance(p, str)
                    else list(p) for p in prompts]

    def busy() -> HTTPException:
        return HTTPException(503, f"{limits.max_pending} requests are in flight (the "
                                  "limit); retry shortly", headers={"Retry-After": "1"})

    @asynccontextmanager
    async def lifespan(_app: Any):
        yield
        sched.close()

    app = FastAPI(title="turngym policy server", lifespan=lifespan)
    guard_app(app, limits.max_body_bytes)
    app.state.scheduler, app.state.limits = sched, limits

    @app.get("/v1/models")
    async def models() -> dict[str, Any]:
        return {"object": "list", "data": [{"id": model_name, "object": "model",
                                            "owned_by": "turngym", "max_model_len": max_len}]}

    @app.post("/v1/completions")
    async def completions(req: CompletionRequest) -> dict[str, Any]:
        texts, stop = _check_request(req, limits, max_len)
        if sched.pending() >= limits.max_pending:
            raise busy()
        prompts = await asyncio.to_thread(tokenize, texts)
        _check_tokens(prompts, req.max_tokens, max_len, vocab)
        sampling = SamplingParams(temperature=req.temperature, top_p=req.top_p, top_k=req.top_k,
                                  max_tokens=req.max_tokens, stop=stop, seed=req.seed)
        want_lp = req.logprobs is not None
        future = sched.submit(prompts, sampling, score_prompts=req.echo and want_lp)
        if future is None:
            raise busy()
        try:
            gens, prompt_lps = await asyncio.wrap_future(future)
        except Exception as exc:  # answer with the reason, keep serving
            raise HTTPException(500, f"generation failed: {safe_text(exc, 500)}") from exc
        choices = await asyncio.to_thread(
            lambda: [_choice(i, p, g, plp, tok, req.echo, want_lp)
                     for i, (p, g, plp) in enumerate(zip(prompts, gens, prompt_lps))])
        n_out = sum(len(g.ids) for g in gens)
        n_in = sum(len(p) for p in prompts)
        return {"id": f"cmpl-{uuid.uuid4().hex[:12]}", "object": "text_completion",
                "created": int(time.time()), "model": model_name, "choices": choices,
                "usage": {"prompt_tokens": n_in, "completion_tokens": n_out,
                          "total_tokens": n_in + n_out}}

    return app


def serve(model: str | None = None, *, host: str = "127.0.0.1", port: int = 8000,
          backend: str = "hf", dtype: str = "auto", max_model_len: int = 2048) -> None:
    """Load ``model`` into ``backend`` and serve it until interrupted."""
    import uvicorn

    from turngym.agents import make_backend

    be = make_backend(backend, model=model, dtype=dtype, max_model_len=max_model_len)
    name = model or "default"
    logger.info("serving %s (%s backend) on http://%s:%d/v1", name, backend, host, port)
    try:
        uvicorn.run(create_app(be, name, max_model_len=max_model_len), host=host, port=port,
                    log_level="warning", limit_concurrency=LIMIT_CONCURRENCY)
    finally:
        be.close()


def main(argv: list[str] | None = None) -> None:
    """``python -m turngym.agents.serve_hf --model DIR --port 8000``."""
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--model", default=None, help="local HF dir, 'default' or 'tiny'")
    ap.add_argument("--host", default="127.0.0.1")
    ap.add_argument("--port", type=int, default=8000)
    ap.add_argument("--backend", default="hf", choices=["hf", "vllm"])
    ap.add_argument("--dtype", default="auto")
    ap.add_argument("--max-model-len", type=int, default=2048)
    a = ap.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    serve(a.model, host=a.host, port=a.port, backend=a.backend, dtype=a.dtype,
          max_model_len=a.max_model_len)


if __name__ == "__main__":
    main()
