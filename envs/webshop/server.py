"""The shop: a FastAPI app over one catalogue, and a runner on a free 127.0.0.1 port.

Routes (pages are described in :mod:`envs.webshop.state`):

* ``GET /healthz`` -> ``{"ok", "catalog", "products", "goals"}`` (the catalogue fingerprint
  lets a client check that it talks to a shop with the same catalogue).
* ``POST /api/sessions`` with ``{"goal": INDEX}`` -> ``{"session": SID}``: one per episode.
* ``GET /start?goal=INDEX`` creates a session and redirects to its search page (for people).
* ``GET /s/SID``, ``/s/SID/results``, ``/s/SID/item/ASIN``, ``/s/SID/buy/ASIN``: the pages.

:func:`start_server` runs uvicorn in a daemon thread on a socket bound to port 0 and polls
``/healthz`` until it answers; :func:`shared_server` keeps one such server per process and
catalogue.
"""

from __future__ import annotations

import logging
import os
import secrets
import socket
import threading
import time
from collections import OrderedDict
from dataclasses import dataclass
from typing import Annotated, Any

from fastapi import FastAPI, HTTPException, Query
from fastapi.responses import HTMLResponse, RedirectResponse
from pydantic import BaseModel

from envs.errors import EnvError
from envs.webshop.catalog import Product, load_catalog
from envs.webshop.goals import Goal, load_goals
from envs.webshop.reward import score
from envs.webshop.search import SearchIndex, normalize_query
from envs.webshop.state import ITEM_VIEWS, PageState, parse_options

logger = logging.getLogger(__name__)

MAX_SESSIONS = 20_000
READY_TIMEOUT_S = 30.0


class NewSession(BaseModel):
    """Body of ``POST /api/sessions``."""

    goal: int


class Shop:
    """The shop's data: catalogue, goals, search index and sessions (session -> goal)."""

    def __init__(self, catalog_path: str | None = None):
        self.catalog = load_catalog(catalog_path)
        self.goals = load_goals(catalog_path)
        self.index = SearchIndex(self.catalog)
        self.sessions: OrderedDict[str, int] = OrderedDict()
        self._hits: OrderedDict[str, list] = OrderedDict()
        self._lock = threading.Lock()

    def new_session(self, goal: int) -> str:
        sid = secrets.token_hex(8)
        with self._lock:
            self.sessions[sid] = goal
            while len(self.sessions) > MAX_SESSIONS:
                self.sessions.popitem(last=False)
        return sid

    def goal_of(self, sid: str) -> Goal:
        """The goal of session ``sid``; an unknown session is a 404."""
        goal = self.sessions.get(sid)
        if goal is None:
            raise HTTPException(404, f"unknown session {sid!r}")
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


def create_app(catalog_path: str | None = None) -> Any:
    """The FastAPI app of a shop over ``catalog_path`` (default: the shipped catalogue)."""
    from envs.webshop import pages

    shop = Shop(catalog_path)
    app = FastAPI(title="turngym WebShop", docs_url=None, redoc_url=None)
    app.state.shop = shop

    @app.get("/healthz")
    def healthz() -> dict:
        return {"ok": True, "catalog": shop.catalog.fingerprint,
                "products": len(shop.catalog), "goals": len(shop.goals)}

    @app.post("/api/sessions")
    def new_session(body: NewSession) -> dict:
        if not 0 <= body.goal < len(shop.goals):
            raise HTTPException(422, f"goal must be in 0..{len(shop.goals) - 1}")
        return {"session": shop.new_session(body.goal)}

    @app.get("/start")
    def start(goal: int = 0) -> RedirectResponse:
        goal = min(max(goal, 0), len(shop.goals) - 1)
        return RedirectResponse(f"/s/{shop.new_session(goal)}", status_code=303)

    @app.exception_handler(HTTPException)
    def not_found(_request: Any, exc: HTTPException) -> HTMLResponse:
        return HTMLResponse(pages.error_page(str(exc.detail)), status_code=exc.status_code)

    _add_page_routes(app, shop)
    return app


def _add_page_routes(app: FastAPI, shop: Shop) -> None:
    """The shop's HTML pages (see :mod:`envs.webshop.state` for the URLs)."""
    from envs.webshop import pages

    goal_of, product_of = shop.goal_of, shop.product_of

    @app.get("/s/{sid}", response_class=HTMLResponse)
    def search(sid: str) -> str:
        return pages.search_page(goal_of(sid), sid)

    @app.get("/s/{sid}/results", response_class=HTMLResponse)
    def results(sid: str, q: str = "", page: int = 1) -> str:
        goal, query = goal_of(sid), normalize_query(q)
        return pages.results_page(goal, sid, PageState("results", query, max(page, 1)),
                                  shop.hits(query))

    @app.get("/s/{sid}/item/{asin}", response_class=HTMLResponse)
    def item(sid: str, asin: str, q: str = "", page: int = 1, view: str = "main",
             opt: Annotated[list[str] | None, Query()] = None) -> str:
        goal, product = goal_of(sid), product_of(asin)
        state = PageState("item", normalize_query(q), max(page, 1), product.asin,
                          parse_options(opt or []), view if view in ITEM_VIEWS else "main")
        return pages.item_page(goal, sid, state, product)

    @app.get("/s/{sid}/buy/{asin}", response_class=HTMLResponse)
    def buy(sid: str, asin: str, q: str = "", page: int = 1,
            opt: Annotated[list[str] | None, Query()] = None) -> str:
        goal, product = goal_of(sid), product_of(asin)
        state = PageState("done", normalize_query(q), max(page, 1), product.asin,
                          parse_options(opt or []))
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


def start_server(catalog_path: str | None = None) -> ShopServer:
    """Start a shop on a free 127.0.0.1 port in a daemon thread; return once it answers."""
    import uvicorn

    app = create_app(catalog_path)
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    config = uvicorn.Config(app, log_level="warning", access_log=False, lifespan="off")
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
