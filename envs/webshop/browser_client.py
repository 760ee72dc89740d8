"""Browser mode: drive the shop with Playwright in Debian's headless Chromium.

The observation is the page's accessibility snapshot (``locator("body").aria_snapshot()``)
with link URLs removed (they carry the session id, which must not reach the agent). Clicks
are real clicks on the page's ``a.click`` elements; search fills ``#search-input`` and
presses ``#search-button``. Playwright is imported only here, and ``playwright install`` is
never needed: the browser is ``executable_path`` (default ``/usr/bin/chromium``).
"""

from __future__ import annotations

import atexit
import logging
import os
import re
import shutil
import threading
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any, ClassVar

from turngym.envs.webshop.text_client import PageView, normalize_label
from turngym.errors import EnvError, MissingDependencyError

logger = logging.getLogger(__name__)

CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                 "--disable-background-networking", "--disable-component-update",
                 "--disable-sync", "--disable-dev-shm-usage"]
_READ_PAGE_JS = """() => ({
  labels: Array.from(document.querySelectorAll('a.click')).map(a => a.textContent),
  reward: (document.getElementById('reward') || {}).textContent || null,
  search: !!document.getElementById('search-input'),
  error: (document.getElementById('error') || {}).textContent || null,
})"""
_URL_LINE = re.compile(r"^\s*- /url: .*$\n?", re.MULTILINE)
_BARE_LINK = re.compile(r'^(\s*- link "[^"\n]*"):$', re.MULTILINE)  # its only child was /url


def find_chromium(path: str | None = None) -> str:
    """The Chromium binary: ``path``, ``$TURNGYM_CHROMIUM``, or Debian's ``chromium``."""
    for candidate in (path, os.environ.get("TURNGYM_CHROMIUM"), "/usr/bin/chromium",
                      shutil.which("chromium"), shutil.which("chromium-browser")):
        if candidate and os.path.exists(candidate):
            return candidate
    raise MissingDependencyError("browser mode needs Chromium: `apt-get install chromium` "
                                 "(or set TURNGYM_CHROMIUM to its path)")


class _Browser:
    """One Playwright driver and Chromium per process, owned by one worker thread.

    Playwright's sync API is bound to the thread that started it and refuses to run inside
    an asyncio loop, so every Playwright call goes through :meth:`call`, which runs it on this
    browser's own thread. Envs may then be stepped from any thread (or from async code).
    Each client gets its own browser *context* (cookies, page). The browser stays up when
    its last client closes (relaunching costs a second or more) and stops at exit.
    """

    _shared: ClassVar[_Browser | None] = None
    _lock: ClassVar[threading.Lock] = threading.Lock()

    def __init__(self, chromium: str | None):
        try:
            import playwright.sync_api  # noqa: F401
        except ImportError as exc:
            raise MissingDependencyError("browser mode needs playwright: "
                                         "`pip install turngym[web]`") from exc
        self.pid = os.getpid()
        self._pool = ThreadPoolExecutor(1, thread_name_prefix="webshop-browser")
        self.pw, self.browser = self.call(self._launch, find_chromium(chromium))

    @staticmethod
    def _launch(executable: str) -> tuple[Any, Any]:
        from playwright.sync_api import sync_playwright

        pw = sync_playwright().start()
        try:
            return pw, pw.chromium.launch(executable_path=executable, headless=True,
                                          args=CHROMIUM_ARGS)
        except Exception:
            pw.stop()
            raise

    def call(self, fn: Callable[..., Any], *args: Any) -> Any:
        """Run ``fn(*args)`` on the browser thread and return its result (or raise)."""
        return self._pool.submit(fn, *args).result()

    @classmethod
    def acquire(cls, chromium: str | None) -> _Browser:
        """The process's browser, launched on first use (again after a fork or a crash)."""
        with cls._lock:
            shared = cls._shared
            if shared is None or shared.pid != os.getpid() or \
                    not shared.call(shared.browser.is_connected):
                shared = cls._shared = cls(chromium)
            return shared

    @classmethod
    def stop_all(cls) -> None:
        """Stop the browser and its thread (registered with ``atexit``)."""
        shared, cls._shared = cls._shared, None
        if shared is None or shared.pid != os.getpid():
            return
        try:
            shared.call(shared.browser.close)
            shared.call(shared.pw.stop)
        except Exception:  # already gone: the OS reaps it
            logger.debug("could not stop the shared browser", exc_info=True)
        shared._pool.shutdown(wait=False)


atexit.register(_Browser.stop_all)


class BrowserClient:
    """One headless Chromium page (in its own browser context) on the shop. Thread-safe:
    each public method runs on the browser's thread."""

    def __init__(self, base_url: str, chromium: str | None = None, timeout_s: float = 30.0):
        self.base_url = base_url.rstrip("/")
        self._shared = _Browser.acquire(chromium)
        self._context, self._page = self._shared.call(self._new_page, timeout_s)
        self.view: PageView | None = None

    def _new_page(self, timeout_s: float) -> tuple[Any, Any]:
        context = self._shared.browser.new_context(viewport={"width": 1000, "height": 900})
        page = context.new_page()
        page.set_default_timeout(timeout_s * 1000)
        return context, page

    def _read(self) -> PageView:
        info = self._page.evaluate(_READ_PAGE_JS)
        if info["error"]:  # the shop's error page, e.g. "unknown or expired session ..."
            raise EnvError(f"WebShop server error at {self._page.url}: {info['error'][:300]}")
        snapshot = _URL_LINE.sub("", self._page.locator("body").aria_snapshot())
        snapshot = _BARE_LINK.sub(r"\1", snapshot)
        reward = None
        if info["reward"] is not None:
            try:
                reward = float(info["reward"].strip())
            except ValueError:
                reward = None
        labels = tuple(normalize_label(t) for t in info["labels"])
        self.view = PageView(self._page.url, snapshot, labels, reward, bool(info["search"]))
        return self.view

    def _open(self, path: str) -> PageView:
        try:
            resp = self._page.goto(self.base_url + path, wait_until="domcontentloaded")
        except Exception as exc:  # playwright's errors are not exported in one place
            raise EnvError(f"browser could not load {path}: {exc}") from exc
        if resp is None or resp.status != 200:  # e.g. 404 "unknown or expired session ..."
            raise EnvError(f"WebShop server answered {resp and resp.status} for {path}: "
                           f"{self._page.inner_text('body')[:300] if resp else ''}")
        return self._read()

    def _search(self, query: str) -> PageView:
        self._page.fill("#search-input", query)
        with self._page.expect_navigation(wait_until="domcontentloaded"):
            self._page.click("#search-button")
        return self._read()

    def _click(self, index: int) -> PageView:
        with self._page.expect_navigation(wait_until="domcontentloaded"):
            self._page.locator("a.click").nth(index).click()
        return self._read()

    def open(self, path: str) -> PageView:
        """Load ``path`` and read the page."""
        return self._shared.call(self._open, path)

    def search(self, query: str, action_path: str) -> PageView:
        """Type ``query`` into the search box and press Search (``action_path`` unused: the
        form knows where it goes)."""
        del action_path
        return self._shared.call(self._search, query)

    def click(self, index: int) -> PageView:
        """Click the ``index``-th clickable of the page."""
        return self._shared.call(self._click, index)

    def screenshot(self, path: str) -> bytes:
        """A PNG of the current page, also written to ``path``."""
        return self._shared.call(lambda: self._page.screenshot(path=path, full_page=True))

    def close(self) -> None:
        """Close this client's browser context (the shared browser stays up)."""
        self._shared.call(self._context.close)
