"""Where an episode is in the shop: :class:`PageState`, and its URL in both directions.

The server is stateless except for each session's goal, so a page is fully described by
its URL. Both clients read the state back from the URL they reached, and ``restore`` goes
back to a state by loading its URL.

URL scheme (``SID`` is the session id)::

    /s/SID                                   search page
    /s/SID/results?q=QUERY&page=N            results page N (10 per page)
    /s/SID/item/ASIN?q=..&page=N&view=V&opt=DIM:VALUE ...   item page (V: main, description,
                                                            features, reviews)
    /s/SID/buy/ASIN?q=..&page=N&opt=...      done page (the purchase and its score)
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from urllib.parse import parse_qs, quote, unquote, urlencode, urlsplit

PAGE_KINDS = ("search", "results", "item", "done")
ITEM_VIEWS = ("main", "description", "features", "reviews")
PAGE_SIZE = 10


@dataclass(frozen=True)
class PageState:
    """The page the agent is on. Equal states are the same decision point."""

    kind: str = "search"
    query: str = ""
    page: int = 1
    asin: str = ""
    options: tuple[tuple[str, str], ...] = ()
    """Selected options as sorted ``(dimension, value)`` pairs."""
    view: str = "main"

    def with_option(self, dim: str, value: str) -> PageState:
        """This item page with ``dim`` set to ``value`` (replacing an earlier choice)."""
        opts = dict(self.options)
        opts[dim] = value
        return replace(self, options=tuple(sorted(opts.items())))

    def key(self) -> str:
        """Canonical text form, used in the env's ``state_key``."""
        opts = ",".join(f"{d}={v}" for d, v in self.options)
        return (f"{self.kind}|q={self.query}|p={self.page}|item={self.asin}|opts={opts}"
                f"|view={self.view}")


def to_path(state: PageState, sid: str) -> str:
    """The URL path (with query string) of ``state`` in session ``sid``."""
    base = f"/s/{quote(sid)}"
    if state.kind == "search":
        return base
    params: list[tuple[str, str]] = [("q", state.query), ("page", str(state.page))]
    if state.kind == "results":
        return f"{base}/results?{urlencode(params)}"
    params += [("opt", f"{d}:{v}") for d, v in state.options]
    if state.kind == "item":
        params.append(("view", state.view))
        return f"{base}/item/{quote(state.asin)}?{urlencode(params)}"
    return f"{base}/buy/{quote(state.asin)}?{urlencode(params)}"


def parse_options(values: list[str]) -> tuple[tuple[str, str], ...]:
    """``["size:large", ...]`` -> sorted pairs; malformed entries are dropped."""
    pairs = dict(v.split(":", 1) for v in values if ":" in v)
    return tuple(sorted(pairs.items()))


def from_url(url: str) -> tuple[str, PageState] | None:
    """``(sid, state)`` of a shop URL, or ``None`` when it is not one."""
    parts = urlsplit(url)
    segs = [s for s in parts.path.split("/") if s]
    if len(segs) < 2 or segs[0] != "s":
        return None
    sid, rest = unquote(segs[1]), [unquote(s) for s in segs[2:]]
    qs = parse_qs(parts.query, keep_blank_values=True)
    query = qs.get("q", [""])[0]
    try:
        page = max(1, int(qs.get("page", ["1"])[0]))
    except ValueError:
        page = 1
    if not rest:
        return sid, PageState()
    if rest == ["results"]:
        return sid, PageState("results", query, page)
    if len(rest) == 2 and rest[0] in ("item", "buy"):
        view = qs.get("view", ["main"])[0]
        kind = "item" if rest[0] == "item" else "done"
        return sid, PageState(kind, query, page, rest[1], parse_options(qs.get("opt", [])),
                              view if kind == "item" and view in ITEM_VIEWS else "main")
    return None
