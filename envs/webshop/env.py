"""``turngym/WebShop-v0``: shop on a real web server for a product that fits an instruction."""

from __future__ import annotations

import re
from dataclasses import replace
from typing import Any

from turngym.envs.core import TurnEnv
from turngym.envs.webshop.catalog import load_catalog
from turngym.envs.webshop.goals import Goal, load_goals, split_of
from turngym.envs.webshop.reward import best_reward
from turngym.envs.webshop.search import normalize_query
from turngym.envs.webshop.state import PageState, from_url, to_path
from turngym.envs.webshop.text_client import PageView, normalize_label
from turngym.errors import ConfigError, EnvError

MODES = ("text", "browser")
SPLITS = ("train", "test", "all")
SEARCH_TEMPLATE = "search[<your query>]"
#: Longest search query (after normalisation) the env sends; longer ones are invalid
#: actions. Below the server's own bound (``turngym.envs.webshop.server.MAX_QUERY_CHARS``), so a
#: long query never becomes a 422 and an ``EnvError``.
MAX_QUERY_CHARS = 500
_ACTION = re.compile(r"^\s*(search|click)\s*\[(.*)\]\s*$", re.IGNORECASE | re.DOTALL)


class WebShopEnv(TurnEnv):
    """A WebShop-like shop served by a real HTTP server (FastAPI + uvicorn on 127.0.0.1).

    **Description.** The instruction asks for a product with attributes, options and a price
    bound ("i need a machine washable cotton t-shirt in size large, and price lower than
    30.00 dollars"). The agent searches the catalogue (BM25), pages through results (10 a
    page), opens items, picks options and buys. Each episode is a server session.

    **Actions.** ``search[query]`` (only on the search page) and ``click[element]``, where
    ``element`` is one of the page's clickables (case-insensitive): ``back to search``,
    ``next >``, ``< prev``, a product id, an option value, ``description``, ``features``,
    ``reviews``, ``buy now``. Anything else, a clickable not on the page, or a query over
    500 characters (:data:`MAX_QUERY_CHARS`) is invalid (``action_valid=False``, state
    unchanged, the observation says why).

    **Observations.** ``mode="text"``: the page's HTML simplified to text, each clickable
    written ``[label]``. ``mode="browser"``: the page's accessibility snapshot in Chromium.
    Every page starts with the instruction.

    **Tools.** None.

    **Rewards.** 0 until ``buy now``; then WebShop's score in [0, 1]
    (:mod:`turngym.envs.webshop.reward`), read from the server's done page. 1 only for a full match.

    **Episode end.** ``terminated`` after buying; the turn budget (15) truncates.

    **Info keys.** ``state_key`` (task, page kind, query, page number, item, selected options,
    item view), ``action_valid``, ``won`` (bought with score 1), ``task_id``,
    ``admissible_actions`` (``click[...]`` for each clickable, plus ``search[<your query>]``
    on the search page; ``[]`` after buying), ``task_type`` (the goal's product category),
    ``page_type`` (``search``, ``results``, ``item`` or ``done``).

    **Arguments.** ``mode`` (``text`` or ``browser``), ``split`` (``train``, ``test`` or
    ``all``: the tasks ``reset`` draws from when no ``task_id`` is given; ``task_ids()``
    lists all, ``task_ids("test")`` one split), ``catalog_path`` (a
    product JSON file; default the shipped 2,400-product catalogue), ``server_url`` (use a
    running ``turngym serve webshop`` instead of starting one in-process), ``chromium``
    (browser binary; default ``/usr/bin/chromium``), ``timeout_s`` (per request).

    **Version history.** v0: first version.
    """

    family = "webshop"
    slow_steps = True
    splits = ("train", "test")
    extra_info_keys = ("task_type", "page_type")

    def __init__(self, mode: str = "text", split: str = "train", catalog_path: str | None = None,
                 server_url: str | None = None, chromium: str | None = None,
                 timeout_s: float = 30.0, render_mode: str | None = None):
        super().__init__(render_mode)
        if mode not in MODES:
            raise ConfigError(f"mode must be one of {MODES}, got {mode!r}")
        if split not in SPLITS:
            raise ConfigError(f"split must be one of {SPLITS}, got {split!r}")
        if not timeout_s > 0:
            raise ConfigError(f"timeout_s must be > 0, got {timeout_s!r}")
        self.mode, self.split, self.catalog_path = mode, split, catalog_path
        self.server_url, self.chromium, self.timeout_s = server_url, chromium, float(timeout_s)
        try:
            self.catalog = load_catalog(catalog_path)
            self.goals = load_goals(catalog_path)
        except ConfigError as exc:
            raise ConfigError(f"catalog_path: {exc}") from exc
        self._ids = {s: [f"goal-{g.index:05d}" for g in self.goals
                         if s == "all" or split_of(g.index, len(self.goals)) == s]
                     for s in SPLITS}
        self._client: Any = None
        self._sid: str | None = None
        self._sid_goal = -1
        self._goal: Goal = self.goals[0]
        self._page = PageState()
        self._view: PageView | None = None
        self._reward = 0.0

    # ------------------------------------------------------------------ connection
    def _connect(self) -> Any:
        if self._client is not None:
            return self._client
        if self.server_url:
            from turngym.envs.webshop.server import wait_ready

            health = wait_ready(self.server_url.rstrip("/"), timeout_s=self.timeout_s)
            if health.get("catalog") != self.catalog.fingerprint:
                raise ConfigError(f"server_url {self.server_url} serves catalogue "
                                  f"{health.get('catalog')}, not {self.catalog.fingerprint}; "
                                  "start it with the same catalog_path")
            url = self.server_url.rstrip("/")
        else:
            from turngym.envs.webshop.server import shared_server

            url = shared_server(self.catalog_path).url
        if self.mode == "text":
            from turngym.envs.webshop.text_client import TextClient

            self._client = TextClient(url, self.timeout_s)
        else:
            from turngym.envs.webshop.browser_client import BrowserClient

            self._client = BrowserClient(url, self.chromium, self.timeout_s)
        self._sid = None
        return self._client

    def _session(self, goal: int) -> str:
        """A server session for ``goal`` (reused while the goal is the same)."""
        client = self._connect()
        if self._sid is None or self._sid_goal != goal:
            import httpx

            try:
                resp = httpx.post(f"{client.base_url}/api/sessions", json={"goal": goal},
                                  timeout=self.timeout_s)
                resp.raise_for_status()
            except httpx.HTTPError as exc:
                raise EnvError(f"WebShop server refused a session: {exc}") from exc
            self._sid, self._sid_goal = resp.json()["session"], goal
        return self._sid

    def _end_session(self) -> None:
        """Drop this env's server session now (``DELETE /api/sessions/SID``) instead of
        leaving it to expire after ``idle_timeout_s``: a long run opens one per episode, and
        a shared server's store is bounded (``max_sessions``). Best effort: a server that is
        gone or slow only leaves the session to expire."""
        sid, self._sid, self._sid_goal = self._sid, None, -1
        if sid is None or self._client is None:
            return
        import httpx

        try:
            httpx.delete(f"{self._client.base_url}/api/sessions/{sid}",
                         timeout=min(self.timeout_s, 5.0))
        except httpx.HTTPError:
            pass

    def _goto(self, page: PageState) -> None:
        sid = self._session(self._goal.index)
        self._absorb(self._client.open(to_path(page, sid)))

    def _absorb(self, view: PageView) -> None:
        parsed = from_url(view.url)
        if parsed is None:
            raise EnvError(f"the shop sent the client to a foreign URL {view.url!r}")
        page = parsed[1]
        self._view, self._page = view, replace(page, query=normalize_query(page.query))
        if self._page.kind == "done":
            self._reward = float(view.reward or 0.0)

    # ------------------------------------------------------------------ contract
    def task_ids(self, split: str | None = None) -> list[str]:
        key = split or self.split  # None: this env's own split, the pool reset draws from
        if key not in self._ids:
            raise ConfigError(f"split must be one of {SPLITS}, got {split!r}")
        return list(self._ids[key])

    def _reset(self, task_id: str) -> str:
        self._goal = self.goals[int(task_id.rsplit("-", 1)[1])]
        self._reward = 0.0
        self._end_session()  # a new session per episode
        self._goto(PageState())
        return self._observation()

    def _observation(self) -> str:
        assert self._view is not None
        return self._view.text

    def _invalid(self, why: str) -> tuple[str, float, bool, bool, bool]:
        return f"Invalid action: {why}\n{self._observation()}", 0.0, False, False, False

    def _step(self, action: str) -> tuple[str, float, bool, bool, bool]:
        if self._client is None or self._view is None:  # unpickled: reconnect lazily
            self._goto(self._page)
        if self._page.kind == "done":
            return self._invalid("the purchase is done; the episode is over.")
        match = _ACTION.match(action)
        if match is None:
            return self._invalid(f"{action[:60]!r} is not search[query] or click[element].")
        verb, arg = match.group(1).lower(), match.group(2)
        if verb == "search":
            query = normalize_query(arg)
            if not self._view.has_search:
                return self._invalid("search is only possible on the search page; "
                                     "click[back to search] first.")
            if not query:
                return self._invalid("search[] needs a query, e.g. search[red cotton t-shirt].")
            if len(query) > MAX_QUERY_CHARS:
                return self._invalid(f"the query has {len(query)} characters; the limit is "
                                     f"{MAX_QUERY_CHARS}.")
            self._absorb(self._client.search(query, to_path(PageState("results"), self._sid)))
        else:
            label = normalize_label(arg)
            if label not in self._view.clickables:
                listed = ", ".join(f"[{c}]" for c in self._view.clickables) or "none"
                return self._invalid(f"{label[:60]!r} is not clickable here; clickables: {listed}.")
            self._absorb(self._client.click(self._view.clickables.index(label)))
        done = self._page.kind == "done"
        reward = self._reward if done else 0.0
        return self._observation(), reward, done, True, done and reward == 1.0

    def won(self) -> bool:
        return self._page.kind == "done" and self._reward == 1.0

    def state_key(self) -> str:
        return f"webshop|{self.task_id}|{self._page.key()}"

    def admissible_actions(self) -> list[str]:
        if self._view is None or self._page.kind == "done":
            return []
        acts = [SEARCH_TEMPLATE] if self._view.has_search else []
        return acts + [f"click[{c}]" for c in self._view.clickables]

    def extra_info(self) -> dict[str, Any]:
        return {"task_type": self._goal.category, "page_type": self._page.kind}

    @property
    def goal(self) -> Goal:
        """The current task's goal (instruction, attributes, options, price bound)."""
        return self._goal

    def expert_action(self) -> str | None:
        page, goal = self._page, self._goal
        clickables = self._view.clickables if self._view else ()
        if page.kind == "done" or self._view is None:
            return None
        if page.kind == "search":
            return f"search[{goal.query}]"
        if page.kind == "results":
            if page.query != normalize_query(goal.query):
                return "click[back to search]"
            for label in clickables:
                product = self.catalog.get(label)
                if product is not None and best_reward(goal, product) == 1.0:
                    return f"click[{label}]"
            return "click[next >]" if "next >" in clickables else "click[back to search]"
        product = self.catalog.get(page.asin)
        if product is None or best_reward(goal, product) < 1.0 or page.view != "main":
            return "click[< prev]"
        chosen = dict(page.options)
        for dim, value in goal.options.items():
            if chosen.get(dim) != value:
                return f"click[{value}]"
        return "click[buy now]"

    # ------------------------------------------------------------------ state copy
    def _state(self) -> Any:
        return (self._goal.index, self._page, self._reward)

    def _set_state(self, state: Any) -> None:
        goal, page, reward = state
        self._goal = self.goals[goal]
        self._goto(page)
        self._reward = reward

    def __getstate__(self) -> dict[str, Any]:
        state = self.__dict__.copy()
        state.update(_client=None, _sid=None, _sid_goal=-1, catalog=None, goals=None)
        return state

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.__dict__.update(state)
        self.catalog = load_catalog(self.catalog_path)  # cached: not carried in the pickle
        self.goals = load_goals(self.catalog_path)

    def close(self) -> None:
        self._end_session()
        if self._client is not None:
            client, self._client = self._client, None
            client.close()
        super().close()

    def screenshot(self, path: str) -> bytes:
        """A PNG of the current page (browser mode only)."""
        if self.mode != "browser":
            raise ConfigError("screenshot needs mode='browser'")
        if self._client is None:
            self._goto(self._page)
        return self._client.screenshot(path)
