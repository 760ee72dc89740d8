"""A warm pool of sandboxes, to hide start latency (a container takes ~0.5 s to start)."""

from __future__ import annotations

import atexit
import logging
import threading
import weakref

from turngym.envs.swe.backends import make_sandbox, resolve_backend
from turngym.envs.swe.sandbox import Limits, Sandbox
from turngym.errors import ConfigError

logger = logging.getLogger(__name__)


class SandboxPool:
    """Keeps ``size`` started sandboxes ready, refilled by a background thread, so that
    :meth:`acquire` does not wait for a container to start. ``kwargs`` go to
    :func:`~turngym.envs.swe.backends.make_sandbox` (``allow_unsafe=True`` for ``local-unsafe``)."""

    def __init__(self, backend: str, size: int, limits: Limits | None = None, **kwargs):
        if size < 0:
            raise ConfigError(f"pool_size must be >= 0, got {size}")
        # A bad or unsafe-without-consent backend fails here, not in the refill thread.
        backend = resolve_backend(backend, bool(kwargs.get("allow_unsafe", False)))
        self.backend, self.size, self.limits, self.kwargs = backend, size, limits, kwargs
        self._ready: list[Sandbox] = []
        self._lock = threading.Lock()
        self._wake = threading.Event()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        if size:
            self._thread = threading.Thread(target=self._fill, daemon=True, name="swe-pool")
            self._thread.start()
            _POOLS.add(self)

    def _fill(self) -> None:
        while not self._stop.is_set():
            with self._lock:
                need = self.size - len(self._ready)
            if need > 0:
                try:
                    box = make_sandbox(self.backend, self.limits, **self.kwargs)
                except Exception as exc:  # keep the pool alive; acquire() builds directly
                    logger.warning("warm pool could not start a sandbox: %s", exc)
                    self._stop.wait(1.0)
                    continue
                with self._lock:
                    if self._stop.is_set():
                        box.close()
                        return
                    self._ready.append(box)
                continue
            self._wake.wait(1.0)
            self._wake.clear()

    def acquire(self) -> Sandbox:
        """A ready sandbox (from the pool when one is there, else a new one)."""
        with self._lock:
            box = self._ready.pop(0) if self._ready else None
        self._wake.set()
        return box or make_sandbox(self.backend, self.limits, **self.kwargs)

    def ready(self) -> int:
        """How many sandboxes are waiting."""
        with self._lock:
            return len(self._ready)

    def close(self) -> None:
        """Stop refilling and close the waiting sandboxes."""
        self._stop.set()
        self._wake.set()
        if self._thread is not None:
            self._thread.join(timeout=30)
        with self._lock:
            boxes, self._ready = self._ready, []
        for box in boxes:
            box.close()


_POOLS: "weakref.WeakSet[SandboxPool]" = weakref.WeakSet()


@atexit.register
def _close_pools() -> None:
    for pool in list(_POOLS):
        pool.close()
