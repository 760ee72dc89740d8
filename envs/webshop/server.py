"""The shop: a FastAPI app over one catalogue, and a runner on a free 127.0.0.1 port.

Routes (pages are described in :mod:`turngym.envs.webshop.state`):

* ``GET /healthz`` -> ``{"ok", "catalog", "products", "goals"}`` (the catalogue fingerprint
  lets a client check that it talks to a shop with the same catalogue).
* ``POST /api/sessions`` with ``{"goal": INDEX}`` -> ``{"session": SID}``: one per episode
  (503 with ``Retry-After`` while ``max_sessions`` sessions are live).
* ``DELETE /api/sessions/SID`` drops a session now (optional: idle ones expire anyway).
* ``GET /start?goal=INDEX`` creates a session and redirects to its search page (for people).
* ``GET /s/SID``, ``/s/SID/results``, ``/s/SID/item/ASIN``, ``/s/SID/buy/ASIN``: the pages.

**Sessions** (:mod:`turngym.envs.webshop.sessions`): a session untouched for ``idle_timeout_s``
(default 1,800 s) expires and its pages answer 404 "unknown or expired session"; a live
session is never evicted: past ``max_sessions`` (default 100,000) live sessions, new ones
are refused with 503 until some expire.

**Limits** (checked before any work; each violation is a 4xx naming the field):

=====================  ==========  ======  ====================================
what                   limit       reply   note
=====================  ==========  ======  ====================================
body bytes             64 KiB      413     only ``POST /api/sessions`` has one
``q`` characters       1,000       422     search query (results/item/buy pages)
``page``               1..10,000   422     results page number
``opt`` values         32 x 200    422     selected options: count x characters
JSON                   strict      400     NaN/Infinity/1e999, lone surrogates,
                                           deep nesting (:mod:`turngym.envs.http_guard`)
connections + tasks    1,024       503     uvicorn ``limit_concurrency``
=====================  ==========  ======  ====================================

Memory is bounded by the catalogue, the session store (~200 bytes x ``max_sessions``), a
4,096-query search cache, and ``limit_concurrency`` pages in flight (each under 100 KB).
Page handlers are plain functions that Starlette runs in its thread pool, so a slow page
does not block the event loop.

:func:`start_server` runs uvicorn in a daemon thread on a socket bound to port 0 and polls
``/healthz`` until it answers; :func:`shared_server` keeps one such server per process and
catalogue.
"""

from __future__ import annotations

import logging
import os
import socket
import threading
import time
from collections import OrderedDict
from dataclasses import dataclass
from typing import Annotated, Any

from fastapi import FastAPI, HTTPException, Query, Request
from fastapi.responses import HTMLResponse, JSONResponse, RedirectResponse
from pydantic import BaseModel, ConfigDict

from turngym.envs.http_guard import guard_app, safe_text
from turngym.envs.webshop.catalog import Product, load_catalog
from turngym.envs.webshop.goals import Goal, load_goals
from turngym.envs.webshop.reward import score
from turngym.envs.webshop.search import SearchIndex, normalize_query
from turngym.envs.webshop.sessions import IDLE_TIMEOUT_S, MAX_SESSIONS, SessionsFull, SessionStore
from turngym.envs.webshop.state import ITEM_VIEWS, PageState, parse_options
from turngym.errors import EnvError

logger = logging.getLogger(__name__)

READY_TIMEOUT_S = 30.0
MAX_BODY_BYTES = 64 << 10
MAX_QUERY_CHARS = 1000
MAX_PAGE = 10_000
MAX_OPTIONS = 32
MAX_OPTION_CHARS = 200
LIMIT_CONCURRENCY = 1024

QueryText = Annotated[str, Query(max_length=MAX_QUERY_CHARS)]
PageNumber = Annotated[int, Query(ge=1, le=MAX_PAGE)]
Options = Annotated[list[str] | None, Query()]


def _options(opt: list[str] | None) -> tuple[tuple[str, str], ...]:
    """Parsed ``opt`` values, within :data:`MAX_OPTIONS` of :data:`MAX_OPTION_CHARS` each."""
    opt = opt or []
    if len(opt) > MAX_OPTIONS:
        raise HTTPException(422, f"opt has {len(opt)} values; the limit is {MAX_OPTIONS}")
    for value in opt:
        if len(value) > MAX_OPTION_CHARS:
            raise HTTPException(422, f"an opt value has {len(value)} characters; the limit "
                                     f"is {MAX_OPTION_CHARS}")
    return parse_options(opt)


class NewSession(BaseModel):
    """Body of ``POST /api/sessions``."""

    model_config = ConfigDict(extra="forbid")
    goal: int


class Shop:
    """The shop's data: catalogue, goals, search index and sessions (session -> goal)."""

    def __init__(self, catalog_path: str | None = None, max_sessions: int = MAX_SESSIONS,
                 idle_timeout_s: float = IDLE_TIMEOUT_S):
        self.catalog = load_catalog(catalog_path)
        self.goals = load_goals(catalog_path)
        self.index = SearchIndex(self.catalog)
        self.sessions = SessionStore(max_sessions, idle_timeout_s)
        self._hits: OrderedDict[str, list] = OrderedDict()
        self._lock = threading.Lock()

    def new_session(self, goal: int) -> str:
        """A new session for ``goal``; a 503 (with ``Retry-After``) while the store is full."""
        try:
            return self.sessions.new(goal)
        except SessionsFull as exc:
            raise HTTPException(503, f"the shop has {self.sessions.max_sessions} live sessions "
                                     "(its max_sessions); live sessions are never evicted, "
                                     f"idle ones expire after {self.sessions.idle_timeout_s:g}"
                                     " s: retry later",
                                headers={"Retry-After": str(round(exc.retry_after_s))}) from None

    def goal_of(self, sid: str) -> Goal:
        """The goal of session ``sid`` (marking it used); unknown or expired is a 404."""
        goal = self.sessions.touch(sid)
        if goal is None:
            raise HTTPException(404, f"unknown or expired session {safe_text(sid, 40)!r} "
                                     "(sessions expire after "
                                     f"{self.sessions.idle_timeout_s:g} s idle)")
        return self.goals[goal]

    def product_of(self, asin: str) -> Product:
        """The product ``asin``; an unknown id is a 404."""
        product = self.catalog.get(asin)
        if product is None:
            raise HTTPException(404, f"unknown product {asin!r}")
        return product

    def hits(self, query: str) -> list:
        """Search results for ``query``, cached."""
        with self._lock:
            if query in self._hits:
                return self._hits[query]
        found = self.index.search(query)
        with self._lock:
            self._hits[query] = found
            while len(self._hits) > 4096:
                self._hits.popitem(last=False)
        return found


def create_app(catalog_path: str | None = None, *, max_sessions: int = MAX_SESSIONS,
               idle_timeout_s: float = IDLE_TIMEOUT_S) -> Any:
    """The FastAPI app of a shop over ``catalog_path`` (default: the shipped catalogue);
    sessions as in :class:`turngym.envs.webshop.sessions.SessionStore`."""
    from turngym.envs.webshop import pages

    shop = Shop(catalog_path, max_sessions, idle_timeout_s)
    app = FastAPI(title="turngym WebShop", docs_url=None, redoc_url=None)
    guard_app(app, MAX_BODY_BYTES)
    app.state.shop = shop

    @app.get("/healthz")
    def healthz() -> dict:
        return {"ok": True, "catalog": shop.catalog.fingerprint,
                "products": len(shop.catalog), "goals": len(shop.goals),
                "sessions": len(shop.sessions), "max_sessions": shop.sessions.max_sessions,
                "idle_timeout_s": shop.sessions.idle_timeout_s}

    @app.post("/api/sessions")
    def new_session(body: NewSession) -> dict:
        if not 0 <= body.goal < len(shop.goals):
            raise HTTPException(422, f"goal must be in 0..{len(shop.goals) - 1}")
        return {"session": shop.new_session(body.goal)}

    @app.delete("/api/sessions/{sid}")
    def end_session(sid: str) -> dict:
        return {"closed": shop.sessions.close(sid)}

    @app.get("/start")
    def start(goal: int = 0) -> RedirectResponse:
        goal = min(max(goal, 0), len(shop.goals) - 1)
        return RedirectResponse(f"/s/{shop.new_session(goal)}", status_code=303)

    @app.exception_handler(HTTPException)
    def error_reply(request: Request, exc: HTTPException) -> Any:
        if request.url.path.startswith("/api/"):
            return JSONResponse({"detail": safe_text(exc.detail, 500)},
                                status_code=exc.status_code, headers=exc.headers)
        return HTMLResponse(pages.error_page(safe_text(exc.detail, 500)),
                            status_code=exc.status_code, headers=exc.headers)

    _add_page_routes(app, shop)
    return app


def _add_page_routes(app: FastAPI, shop: Shop) -> None:
    """The shop's HTML pages (see :mod:`turngym.envs.webshop.state` for the URLs)."""
    from turngym.envs.webshop import pages

    goal_of, product_of = shop.goal_of, shop.product_of

    @app.get("/s/{sid}", response_class=HTMLResponse)
    def search(sid: str) -> str:
        return pages.search_page(goal_of(sid), sid)

    @app.get("/s/{sid}/results", response_class=HTMLResponse)
    def results(sid: str, q: QueryText = "", page: PageNumber = 1) -> str:
        goal, query = goal_of(sid), normalize_query(q)
        return pages.results_page(goal, sid, PageState("results", query, page),
                                  shop.hits(query))

    @app.get("/s/{sid}/item/{asin}", response_class=HTMLResponse)
    def item(sid: str, asin: str, q: QueryText = "", page: PageNumber = 1, view: str = "main",
             opt: Options = None) -> str:
        options = _options(opt)
        goal, product = goal_of(sid), product_of(asin)
        state = PageState("item", normalize_query(q), page, product.asin, options,
                          view if view in ITEM_VIEWS else "main")
        return pages.item_page(goal, sid, state, product)

    @app.get("/s/{sid}/buy/{asin}", response_class=HTMLResponse)
    def buy(sid: str, asin: str, q: QueryText = "", page: PageNumber = 1,
            opt: Options = None) -> str:
        options = _options(opt)
        goal, product = goal_of(sid), product_of(asin)
        state = PageState("done", normalize_query(q), page, product.asin, options)
        parts = score(goal, product, dict(state.options))
        logger.debug("session %s bought %s: reward %.3f", sid, product.asin, parts.reward)
        return pages.done_page(goal, state, product, parts)


@dataclass
class ShopServer:
    """A running shop: its base URL and a handle to stop it."""

    url: str
    catalog_path: str | None
    pid: int
    _server: Any = None
    _thread: threading.Thread | None = None

    def stop(self) -> None:
        """Ask uvicorn to exit and wait for its thread."""
        if self._server is not None:
            self._server.should_exit = True
        if self._thread is not None:
            self._thread.join(timeout=10)


def wait_ready(url: str, timeout_s: float = READY_TIMEOUT_S) -> dict:
    """Poll ``url/healthz`` until it answers; return its JSON. Raises :class:`EnvError`."""
    import httpx

    deadline = time.monotonic() + timeout_s
    last: Exception | None = None
    while time.monotonic() < deadline:
        try:
            resp = httpx.get(f"{url}/healthz", timeout=2.0)
            if resp.status_code == 200:
                return resp.json()
        except httpx.HTTPError as exc:
            last = exc
        threading.Event().wait(0.02)  # poll interval, not a readiness guess
    raise EnvError(f"WebShop server at {url} did not become ready in {timeout_s}s: {last}")


def start_server(catalog_path: str | None = None, *, max_sessions: int = MAX_SESSIONS,
                 idle_timeout_s: float = IDLE_TIMEOUT_S) -> ShopServer:
    """Start a shop on a free 127.0.0.1 port in a daemon thread; return once it answers."""
    import uvicorn

    app = create_app(catalog_path, max_sessions=max_sessions, idle_timeout_s=idle_timeout_s)
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    config = uvicorn.Config(app, log_level="warning", access_log=False, lifespan="off",
                            limit_concurrency=LIMIT_CONCURRENCY)
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True,
                              name=f"webshop-{port}")
    thread.start()
    url = f"http://127.0.0.1:{port}"
    wait_ready(url)
    logger.info("WebShop server ready at %s", url)
    return ShopServer(url, catalog_path, os.getpid(), server, thread)


_SHARED: dict[str | None, ShopServer] = {}
_SHARED_LOCK = threading.Lock()


def shared_server(catalog_path: str | None = None) -> ShopServer:
    """One server per process and catalogue, started on first use (also after a fork)."""
    with _SHARED_LOCK:
        server = _SHARED.get(catalog_path)
        if server is None or server.pid != os.getpid():
            server = _SHARED[catalog_path] = start_server(catalog_path)
        return server
