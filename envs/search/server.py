"""The retriever HTTP server that many env workers share (``turngym serve retriever``).

``create_app(index)`` is a FastAPI app:

* ``GET /health`` -> ``{"status": "ok", "passages": N, "batches": B}``
* ``POST /search`` with ``{"queries": [str, ...], "k": int}`` ->
  ``{"results": [[{"id", "title", "text", "score"}, ...], ...]}``, one list per query.

**Limits** (checked before any search runs; each violation is a 4xx naming the field):

=========================  ===========  ======  ==========================================
what                       limit        reply   why
=========================  ===========  ======  ==========================================
body bytes                 1 MiB        413     read cap (``Content-Length`` and streamed)
``queries`` per request    1,024        422     bounds one request's work (~20 s at k=100)
characters per query       4,096        422     BM25 cost grows with the query's terms
``k``                      1..100       422     retrieval depth
``len(queries) x k``       16,384       413     bounds the reply (about 2.2 MB of JSON)
JSON                       strict       400     NaN/Infinity/1e999, lone surrogates, deep
                                                nesting (:mod:`turngym.envs.http_guard`)
open connections + tasks   1,024        503     uvicorn ``limit_concurrency``
=========================  ===========  ======  ==========================================

Memory on top of the index is then bounded by ``limit_concurrency x (1 MiB body + 16,384
hits)`` plus the replies being encoded: measured on the shipped corpus, 16,384 hits hold
2.3 MB (they point into the index's passages), and encoding them peaks at 8.8 MB for a
2.2 MB reply, in the default thread pool (``min(32, cores + 4)`` threads). Worst case with
the defaults: about 1,024 x 3.3 MB + 6 x 8.8 MB, 3.4 GB, on a 2-core machine.

**Fair scheduling.** Searches run off the event loop in one worker thread, in rounds: each
round takes up to ``chunk`` queries (default 16) from every request in flight, at most
``max_batch`` in all, so a one-query request that arrives while a 1,024-query request runs
waits for one round (about 16 x 20 ms), not for the whole request. Requests that arrive
together still share rounds. Replies are encoded to JSON in a thread too.
"""

from __future__ import annotations

import asyncio
import json
import logging
import socket
from collections import deque
from contextlib import asynccontextmanager
from dataclasses import asdict, dataclass, field

from pydantic import BaseModel, ConfigDict, Field, field_validator

from turngym.envs.search.index import BM25Index

logger = logging.getLogger(__name__)

MAX_QUERIES_PER_REQUEST = 1024
MAX_QUERY_CHARS = 4096
MAX_K = 100
MAX_HITS_PER_REQUEST = 16_384
MAX_BODY_BYTES = 1 << 20
LIMIT_CONCURRENCY = 1024
CHUNK_QUERIES = 16


class SearchRequest(BaseModel):
    """Body of ``POST /search``."""

    model_config = ConfigDict(extra="forbid")
    queries: list[str] = Field(min_length=1, max_length=MAX_QUERIES_PER_REQUEST)
    k: int = Field(default=3, ge=1, le=MAX_K)

    @field_validator("queries")
    @classmethod
    def _short_queries(cls, queries: list[str]) -> list[str]:
        for i, q in enumerate(queries):
            if len(q) > MAX_QUERY_CHARS:
                raise ValueError(f"queries[{i}] has {len(q)} characters; the limit is "
                                 f"{MAX_QUERY_CHARS}")
        return queries


@dataclass
class _Job:
    """One request: its queries, depth, future, and how far the rounds have got."""

    queries: list[str]
    k: int
    future: asyncio.Future
    done: int = 0
    rows: list = field(default_factory=list)


class _Batcher:
    """Answers requests in rounds of at most ``max_batch`` queries, ``chunk`` from each job
    in flight (round-robin), so one large request cannot hold the others back."""

    def __init__(self, index: BM25Index, max_batch: int, chunk: int = CHUNK_QUERIES):
        self.index, self.max_batch, self.chunk = index, max_batch, max(1, chunk)
        self.queue: asyncio.Queue = asyncio.Queue()
        self.active: deque[_Job] = deque()
        self.batches = 0
        self.task: asyncio.Task | None = None

    def _drain(self) -> None:
        while not self.queue.empty():
            self.active.append(self.queue.get_nowait())

    async def run(self) -> None:
        while True:
            if not self.active:
                self.active.append(await self.queue.get())
            self._drain()
            await self._round()

    def _take(self) -> list[tuple[_Job, int, int]]:
        """``(job, start, stop)`` slices for one round, fair across jobs."""
        picks, total = [], 0
        for job in list(self.active):
            if job.future.done():  # the client went away: drop it
                self.active.remove(job)
                continue
            n = min(self.chunk, len(job.queries) - job.done, self.max_batch - total)
            if n <= 0:
                break
            picks.append((job, job.done, job.done + n))
            total += n
        return picks

    async def _round(self) -> None:
        picks = self._take()
        if not picks:
            return
        k = max(job.k for job, _, _ in picks)
        queries = [q for job, a, b in picks for q in job.queries[a:b]]
        try:
            hits = await asyncio.to_thread(self.index.search, queries, k)
        except Exception as exc:  # noqa: BLE001 - keep serving; the callers get the error
            for job, _, _ in picks:
                self.active.remove(job)
                if not job.future.done():
                    job.future.set_exception(exc)
            return
        self.batches += 1
        start = 0
        for job, a, b in picks:
            job.rows += [row[:job.k] for row in hits[start:start + b - a]]
            job.done, start = b, start + b - a
            self.active.remove(job)
            if job.done == len(job.queries):
                if not job.future.done():
                    job.future.set_result(job.rows)
            else:
                self.active.append(job)  # back of the line: the others go first

    async def search(self, queries: list[str], k: int) -> list:
        fut = asyncio.get_running_loop().create_future()
        await self.queue.put(_Job(list(queries), int(k), fut))
        return await fut


def _encode(rows: list) -> bytes:
    doc = {"results": [[asdict(h) for h in row] for row in rows]}
    return json.dumps(doc, ensure_ascii=False, allow_nan=False).encode("utf-8")


def create_app(index: BM25Index, max_batch: int = 256, chunk: int = CHUNK_QUERIES):
    """The FastAPI app serving ``index`` (limits in the module docstring)."""
    from fastapi import FastAPI, HTTPException
    from fastapi.responses import Response

    from turngym.envs.http_guard import guard_app

    batcher = _Batcher(index, max_batch, chunk)

    @asynccontextmanager
    async def lifespan(app):
        batcher.task = asyncio.create_task(batcher.run())
        yield
        batcher.task.cancel()

    app = FastAPI(title="turngym retriever", lifespan=lifespan)
    guard_app(app, MAX_BODY_BYTES)
    app.state.batcher = batcher

    @app.get("/health")
    async def health() -> dict:
        return {"status": "ok", "passages": len(index), "batches": batcher.batches}

    @app.post("/search")
    async def search(req: SearchRequest) -> Response:
        hits = len(req.queries) * req.k
        if hits > MAX_HITS_PER_REQUEST:
            raise HTTPException(413, f"len(queries) x k is {len(req.queries)} x {req.k} = "
                                     f"{hits}; the limit is {MAX_HITS_PER_REQUEST}")
        rows = await batcher.search(req.queries, req.k)
        body = await asyncio.to_thread(_encode, rows)
        return Response(body, media_type="application/json")

    return app


def bind_socket(host: str = "127.0.0.1", port: int = 0) -> socket.socket:
    """A listening TCP socket; ``port=0`` picks a free port (read it from ``getsockname``)."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind((host, port))
    sock.listen(128)
    return sock


def make_server(index: BM25Index, max_batch: int = 256, log_level: str = "warning",
                limit_concurrency: int = LIMIT_CONCURRENCY):
    """A ``uvicorn.Server`` for :func:`create_app`; run it with ``server.run(sockets=[s])``."""
    import uvicorn

    config = uvicorn.Config(create_app(index, max_batch), log_level=log_level,
                            access_log=False, lifespan="on",
                            limit_concurrency=limit_concurrency)
    return uvicorn.Server(config)
