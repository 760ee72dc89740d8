"""A small OpenAI-compatible server over any turngym backend (the ``hf`` backend by default).

``turngym serve --model DIR`` (or ``python -m agents.serve_hf --model DIR``) serves
``GET /v1/models`` and ``POST /v1/completions`` on 127.0.0.1. Prompts may be text or token
ids; responses carry ``token_ids`` (as vLLM's ``return_token_ids`` does) and the legacy
``logprobs`` block, and ``echo=True`` returns prompt log-probs (``None`` for the first
token), so :class:`agents.openai_backend.OpenAIBackend` can both generate and score
through it. Requests are served one at a time (a lock around the backend); each request's
prompts are batched.
"""

from __future__ import annotations

import argparse
import logging
import threading
import time
import uuid
from typing import Any

from pydantic import BaseModel, Field

from agents.backend import Backend, SamplingParams

logger = logging.getLogger(__name__)


class CompletionRequest(BaseModel):
    """The subset of OpenAI's ``/v1/completions`` request that turngym uses."""

    model: str | None = None
    prompt: str | list[int] | list[str] | list[list[int]]
    max_tokens: int = Field(16, ge=0)
    temperature: float = Field(1.0, ge=0.0)
    top_p: float = Field(1.0, gt=0.0, le=1.0)
    top_k: int = -1
    stop: str | list[str] | None = None
    seed: int | None = None
    logprobs: int | None = None
    echo: bool = False
    n: int = Field(1, ge=1, le=1)
    model_config = {"extra": "allow"}  # return_token_ids, skip_special_tokens, ...


def _prompts(req: CompletionRequest, tokenizer: Any) -> list[list[int]]:
    p = req.prompt
    if isinstance(p, str):
        p = [p]
    if p and isinstance(p[0], int):
        p = [p]
    return [tokenizer(x, add_special_tokens=False)["input_ids"] if isinstance(x, str)
            else list(x) for x in p]


def _choice(index: int, prompt: list[int], gen: Any, prompt_lp: list[float] | None,
            tokenizer: Any, echo: bool, want_logprobs: bool) -> dict[str, Any]:
    ids = list(prompt) + list(gen.ids) if echo else list(gen.ids)
    tokens = [tokenizer.decode([i]) for i in ids]
    logprobs = None
    if want_logprobs:
        lp: list[float | None] = list(gen.logprobs)
        if echo:
            lp = [None] + list(prompt_lp or []) + lp
        offsets, pos = [], 0
        for t in tokens:
            offsets.append(pos)
            pos += len(t)
        logprobs = {"tokens": tokens, "token_logprobs": lp, "top_logprobs": None,
                    "text_offset": offsets}
    return {"index": index, "text": "".join(tokens) if echo else gen.text,
            "logprobs": logprobs, "finish_reason": gen.finish_reason,
            "token_ids": list(gen.ids), "prompt_token_ids": list(prompt)}


def create_app(backend: Backend, model_name: str) -> Any:
    """The FastAPI app serving ``backend`` under ``model_name``."""
    from fastapi import FastAPI, HTTPException

    from agents.backend import Generation

    app = FastAPI(title="turngym policy server")
    lock = threading.Lock()

    @app.get("/v1/models")
    def models() -> dict[str, Any]:
        return {"object": "list", "data": [{"id": model_name, "object": "model",
                                            "owned_by": "turngym"}]}

    @app.post("/v1/completions")
    def completions(req: CompletionRequest) -> dict[str, Any]:
        tok = backend.tokenizer
        prompts = _prompts(req, tok)
        if any(not p for p in prompts):
            raise HTTPException(400, "empty prompt")
        stop = (req.stop,) if isinstance(req.stop, str) else tuple(req.stop or ())
        sampling = SamplingParams(temperature=req.temperature, top_p=req.top_p, top_k=req.top_k,
                                  max_tokens=max(req.max_tokens, 1), stop=stop, seed=req.seed)
        with lock:
            if req.max_tokens > 0:
                gens = backend.generate(prompts, sampling)
            else:
                gens = [Generation(ids=[], logprobs=[], text="", finish_reason="length")
                        for _ in prompts]
            prompt_lps = (backend.score([p[:1] for p in prompts], [p[1:] for p in prompts])
                          if req.echo and req.logprobs is not None else [None] * len(prompts))
        choices = [_choice(i, p, g, plp, tok, req.echo, req.logprobs is not None)
                   for i, (p, g, plp) in enumerate(zip(prompts, gens, prompt_lps))]
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

    from agents import make_backend

    be = make_backend(backend, model=model, dtype=dtype, max_model_len=max_model_len)
    name = model or "default"
    logger.info("serving %s (%s backend) on http://%s:%d/v1", name, backend, host, port)
    try:
        uvicorn.run(create_app(be, name), host=host, port=port, log_level="warning")
    finally:
        be.close()


def main(argv: list[str] | None = None) -> None:
    """``python -m agents.serve_hf --model DIR --port 8000``."""
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
