"""The retriever HTTP server that many env workers share (``turngym serve retriever``).

``create_app(index)`` is a FastAPI app:

* ``GET /health`` -> ``{"status": "ok", "passages": N}``
* ``POST /search`` with ``{"queries": [str, ...], "k": int}`` ->
  ``{"results": [[{"id", "title", "text", "score"}, ...], ...]}``, one list per query.

Requests that arrive together are merged into one batched BM25 call: a single worker task
takes every query waiting in the queue (up to ``max_batch``) and runs them at once in a
thread, so concurrent env workers share the index's batched scoring.
"""

from __future__ import annotations

import asyncio
import logging
import socket
from contextlib import asynccontextmanager
from dataclasses import asdict

from pydantic import BaseModel, Field

from envs.search.index import BM25Index

logger = logging.getLogger(__name__)

MAX_QUERIES_PER_REQUEST = 1024
MAX_QUERY_CHARS = 4096


class SearchRequest(BaseModel):
    """Body of ``POST /search``."""

    queries: list[str] = Field(min_length=1, max_length=MAX_QUERIES_PER_REQUEST)
    k: int = Field(default=3, ge=1, le=100)


class _Batcher:
    """Collects ``(queries, k, future)`` jobs and answers them in merged batches."""

    def __init__(self, index: BM25Index, max_batch: int):
        self.index, self.max_batch = index, max_batch
        self.queue: asyncio.Queue = asyncio.Queue()
        self.batches = 0
        self.task: asyncio.Task | None = None

    async def run(self) -> None:
        while True:
            jobs = [await self.queue.get()]
            count = len(jobs[0][0])
            while not self.queue.empty() and count < self.max_batch:
                jobs.append(self.queue.get_nowait())
                count += len(jobs[-1][0])
            await self._answer(jobs)

    async def _answer(self, jobs: list) -> None:
        k = max(job[1] for job in jobs)
        queries = [q for job in jobs for q in job[0]]
        try:
            hits = await asyncio.to_thread(self.index.search, queries, k)
        except Exception as exc:  # noqa: BLE001 - keep serving; the callers get the error
            for job in jobs:
                job[2].set_exception(exc)
            return
        self.batches += 1
        start = 0
        for qs, job_k, fut in jobs:
            fut.set_result([row[:job_k] for row in hits[start:start + len(qs)]])
            start += len(qs)

    async def search(self, queries: list[str], k: int) -> list:
        fut = asyncio.get_running_loop().create_future()
        await self.queue.put((queries, k, fut))
        return await fut


def create_app(index: BM25Index, max_batch: int = 256):
    """The FastAPI app serving ``index``."""
    from fastapi import FastAPI

    batcher = _Batcher(index, max_batch)

    @asynccontextmanager
    async def lifespan(app):
        batcher.task = asyncio.create_task(batcher.run())
        yield
        batcher.task.cancel()

    app = FastAPI(title="turngym retriever", lifespan=lifespan)
    app.state.batcher = batcher

    @app.get("/health")
    async def health() -> dict:
        return {"status": "ok", "passages": len(index), "batches": batcher.batches}

    @app.post("/search")
    async def search(req: SearchRequest) -> dict:
        queries = [q[:MAX_QUERY_CHARS] for q in req.queries]
        rows = await batcher.search(queries, req.k)
        return {"results": [[asdict(h) for h in row] for row in rows]}

    return app


def bind_socket(host: str = "127.0.0.1", port: int = 0) -> socket.socket:
    """A listening TCP socket; ``port=0`` picks a free port (read it from ``getsockname``)."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind((host, port))
    sock.listen(128)
    return sock


def make_server(index: BM25Index, max_batch: int = 256, log_level: str = "warning"):
    """A ``uvicorn.Server`` for :func:`create_app`; run it with ``server.run(sockets=[s])``."""
    import uvicorn

    config = uvicorn.Config(create_app(index, max_batch), log_level=log_level,
                            access_log=False, lifespan="on")
    return uvicorn.Server(config)
