"""Text mode: drive the shop over HTTP and simplify its HTML to text.

A page becomes lines of text in which each clickable is written ``[label]``; the clickables
are also returned in page order, lower-cased, so ``click[label]`` can be matched exactly.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from html.parser import HTMLParser

from turngym.errors import EnvError

_BLOCK = {"p", "div", "li", "h1", "h2", "h3", "nav", "form", "br", "ul", "main", "tr"}
_SKIP = {"head", "script", "style", "title"}


def normalize_label(text: str) -> str:
    """How clickables are compared: whitespace collapsed, lower case."""
    return re.sub(r"\s+", " ", text).strip().lower()


@dataclass(frozen=True)
class PageView:
    """What a client read from the current page."""

    url: str
    text: str
    """The page as text (text mode) or as an accessibility snapshot (browser mode)."""
    clickables: tuple[str, ...]
    """Normalised labels of the page's clickables, in page order."""
    reward: float | None
    """The score shown on a done page, else ``None``."""
    has_search: bool


class _Simplifier(HTMLParser):
    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.lines: list[str] = [""]
        self.links: list[tuple[str, str]] = []
        self.reward: float | None = None
        self.has_search = False
        self._skip = 0
        self._href: str | None = None
        self._label: list[str] = []
        self._in_reward = False

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        a = dict(attrs)
        if tag in _SKIP:
            self._skip += 1
        elif tag in _BLOCK:
            self.lines.append("")
        if tag == "a" and "click" in (a.get("class") or "").split():
            self._href, self._label = a.get("href") or "", []
        elif tag == "input" and a.get("id") == "search-input":
            self.has_search = True
            self.lines[-1] += " [search box]"
        elif tag == "span" and a.get("id") == "reward":
            self._in_reward = True

    def handle_endtag(self, tag: str) -> None:
        if tag in _SKIP:
            self._skip -= 1
        elif tag == "a" and self._href is not None:
            label = normalize_label("".join(self._label))
            self.links.append((label, self._href))
            self.lines[-1] += f" [{label}]"
            self._href = None
        elif tag == "span":
            self._in_reward = False
        if tag in _BLOCK:
            self.lines.append("")

    def handle_data(self, data: str) -> None:
        if self._skip:
            return
        if self._href is not None:
            self._label.append(data)
            return
        if self._in_reward:
            try:
                self.reward = float(data.strip())
            except ValueError:
                pass
        self.lines[-1] += " " + data


def simplify(html: str) -> tuple[str, list[tuple[str, str]], float | None, bool]:
    """``(text, [(label, href)], reward, has_search)`` of a shop page."""
    parser = _Simplifier()
    parser.feed(html)
    parser.close()
    lines = [re.sub(r"\s+", " ", line).strip() for line in parser.lines]
    text = "\n".join(line for line in lines if line)
    return text, parser.links, parser.reward, parser.has_search


class TextClient:
    """Loads shop pages with httpx; follows clickables by their ``href``."""

    def __init__(self, base_url: str, timeout_s: float = 30.0):
        import httpx

        self.base_url = base_url.rstrip("/")
        self._http = httpx.Client(base_url=self.base_url, timeout=timeout_s)
        self._links: list[tuple[str, str]] = []
        self.view: PageView | None = None

    def open(self, path: str) -> PageView:
        """Load ``path`` (a URL path with query string) and read it."""
        import httpx

        try:
            resp = self._http.get(path)
        except httpx.HTTPError as exc:
            raise EnvError(f"WebShop server {self.base_url} failed on {path}: {exc}") from exc
        if resp.status_code != 200:  # e.g. 404 "unknown or expired session ..."
            raise EnvError(f"WebShop server answered {resp.status_code} for {path}: "
                           f"{simplify(resp.text)[0][:300]}")
        text, self._links, reward, has_search = simplify(resp.text)
        self.view = PageView(str(resp.url), text, tuple(lbl for lbl, _ in self._links), reward,
                             has_search)
        return self.view

    def search(self, query: str, action_path: str) -> PageView:
        """Submit the search form (``action_path``) with ``query``."""
        import httpx

        params = httpx.QueryParams({"q": query, "page": "1"})
        return self.open(f"{action_path.split('?', 1)[0]}?{params}")

    def click(self, index: int) -> PageView:
        """Follow the ``index``-th clickable of the current page."""
        return self.open(self._links[index][1])

    def close(self) -> None:
        self._http.close()
