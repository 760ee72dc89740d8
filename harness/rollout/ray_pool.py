"""Ray execution of env workers: one Ray actor per env slot (``workers: ray``).

Same API and semantics as the local pools in :mod:`turngym.harness.rollout.workers`: a call that
raises or times out comes back as a failed :class:`CallResult`, and that slot's actor is
killed and replaced.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from typing import Any

from turngym.harness.rollout.workers import CallResult, EnvFactoryFn, EnvPool, _close_quietly, run_call

logger = logging.getLogger(__name__)


class _EnvActor:
    """The body of a Ray actor holding one env (wrapped by ``ray.remote`` lazily)."""

    def __init__(self, factory: EnvFactoryFn):
        self.env = factory()

    def ready(self) -> bool:
        return True

    def call(self, fn: Callable[..., Any], args: tuple) -> CallResult:
        return run_call(self.env, fn, args)

    def close(self) -> None:
        _close_quietly(self.env)

class RayPool(EnvPool):
    """One Ray actor per slot. Needs ``ray.init`` (done here with defaults when Ray is not
    initialised). A failed or timed-out call kills that actor and starts a new one."""

    def __init__(self, factory: EnvFactoryFn, n_slots: int, timeout_s: float | None = None,
                 num_cpus_per_env: float = 0.0, start_timeout_s: float = 300.0):
        super().__init__(factory, n_slots, timeout_s)
        try:
            import ray
        except ImportError as exc:
            from turngym.errors import MissingDependencyError

            raise MissingDependencyError("workers=ray needs Ray: pip install 'turngym[ray]'"
                                         ) from exc
        self.ray = ray
        if not ray.is_initialized():
            ray.init(include_dashboard=False, log_to_driver=False)
        self.actor_cls = ray.remote(num_cpus=num_cpus_per_env)(_EnvActor)
        self.start_timeout_s = start_timeout_s
        self.actors = [self.actor_cls.remote(factory) for _ in range(self.n_slots)]
        self._await_ready(self.actors)

    def _await_ready(self, actors: list[Any]) -> None:
        """Wait until actors have built their envs, so call deadlines exclude start-up."""
        from turngym.errors import EnvError

        try:
            self.ray.get([a.ready.remote() for a in actors], timeout=self.start_timeout_s)
        except self.ray.exceptions.GetTimeoutError:
            raise EnvError(f"Ray env actors did not start in {self.start_timeout_s:g}s") from None
        except self.ray.exceptions.RayError as exc:
            raise EnvError(f"a Ray env actor failed to start: {exc}") from None

    def submit(self, slot: int, fn: Callable[..., Any], *args: Any) -> Any:
        return (slot, self.actors[slot].call.remote(fn, args), time.monotonic())

    def collect(self, handles: list[Any]) -> list[CallResult]:
        return [self._wait(*h) for h in handles]

    def _wait(self, slot: int, ref: Any, t0: float) -> CallResult:
        ray = self.ray
        remaining = None if self.timeout_s is None else max(0.0, t0 + self.timeout_s
                                                            - time.monotonic())
        try:
            result = ray.get(ref, timeout=remaining)
        except ray.exceptions.GetTimeoutError:
            self.timeouts += 1
            self._restart(slot)
            return CallResult(False, None, f"TimeoutError: env call took longer than "
                              f"{self.timeout_s:g}s", float(self.timeout_s or 0), True)
        except ray.exceptions.RayError as exc:  # actor died (e.g. the env segfaulted)
            self._restart(slot)
            return CallResult(False, None, f"env worker died: {type(exc).__name__}: "
                              f"{str(exc).splitlines()[0] if str(exc) else ''}")
        if not result.ok:
            self._restart(slot)
        return result

    def _restart(self, slot: int) -> None:
        self.ray.kill(self.actors[slot], no_restart=True)
        self.actors[slot] = self.actor_cls.remote(self.factory)
        self._await_ready([self.actors[slot]])
        self.rebuilds += 1

    def close(self) -> None:
        for actor in self.actors:
            try:
                self.ray.kill(actor, no_restart=True)
            except Exception as exc:  # noqa: BLE001 - already dead
                logger.debug("killing env actor: %s", exc)
        self.actors = []

