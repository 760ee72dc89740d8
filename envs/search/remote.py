"""Client of the retriever server (``turngym serve retriever``), same interface as
:class:`turngym.envs.search.index.BM25Index.search`."""

from __future__ import annotations

import logging

from turngym.envs.search.index import Hit
from turngym.errors import EnvError

logger = logging.getLogger(__name__)


class RemoteRetriever:
    """``search(queries, k)`` over HTTP; connection failures and 5xx replies raise
    :class:`EnvError` after ``retries`` attempts (the rollout ends that episode with
    ``env_error``). A 4xx (a request over the server's limits, see
    :mod:`turngym.envs.search.server`) raises at once with the server's message: retrying cannot
    help."""

    def __init__(self, url: str, timeout_s: float = 10.0, retries: int = 2):
        self.url = url.rstrip("/")
        self.timeout_s, self.retries = float(timeout_s), int(retries)
        self._client = None

    def _http(self):
        if self._client is None:
            import httpx

            self._client = httpx.Client(base_url=self.url, timeout=self.timeout_s)
        return self._client

    def search(self, queries: list[str], k: int) -> list[list[Hit]]:
        """Top-``k`` hits per query from the server's ``POST /search``."""
        import httpx

        last: Exception | None = None
        for attempt in range(self.retries + 1):
            try:
                resp = self._http().post("/search", json={"queries": queries, "k": int(k)})
                if 400 <= resp.status_code < 500:
                    raise EnvError(f"retriever server {self.url} refused the request "
                                   f"({resp.status_code}): {_detail(resp)}")
                resp.raise_for_status()
                rows = resp.json()["results"]
                return [[Hit(**h) for h in row] for row in rows]
            except (httpx.HTTPError, KeyError, ValueError, TypeError) as exc:
                last = exc
                logger.warning("retriever %s failed (attempt %d): %s", self.url, attempt + 1, exc)
        raise EnvError(f"retriever server {self.url} failed: {last}")

    def health(self) -> dict:
        """The server's ``GET /health`` document."""
        resp = self._http().get("/health")
        resp.raise_for_status()
        return resp.json()

    def close(self) -> None:
        """Close the HTTP connection pool."""
        if self._client is not None:
            self._client.close()
            self._client = None

    def __getstate__(self) -> dict:
        return {"url": self.url, "timeout_s": self.timeout_s, "retries": self.retries,
                "_client": None}


def _detail(resp) -> str:
    """The ``detail`` of a FastAPI error reply, else the start of its body."""
    try:
        return str(resp.json()["detail"])[:500]
    except (ValueError, KeyError, TypeError):
        return resp.text[:500]
