"""The Ray env pool: envs in Ray actors (``rollout.workers: ray`` and ``distributed.mode: ray``).

One pool class, :class:`RayPool`, for both uses:

* ``workers: ray`` (:func:`turngym.harness.rollout.workers.make_pool`): one actor per slot,
  reserving no CPU (``num_cpus=0``), as many actors as concurrent episodes;
* ``distributed.mode: ray`` (:class:`turngym.harness.distributed.runtime.RayRolloutEngine`):
  ``num_workers`` actors, each sized by ``resources`` (``distributed.resources_per_worker``)
  and holding an equal share of the slots (slot ``s`` is env ``s // W`` of worker ``s % W``).
  A worker steps its envs one after another; workers step in parallel.

Same API and semantics as the local pools in :mod:`turngym.harness.rollout.workers`: a call
that raises comes back as a failed :class:`CallResult` and its env is rebuilt (inside the
actor); a call that times out, or whose actor died, kills and replaces that actor, and the
other episodes on it fail on their next call with ``env worker restarted``.

Ray is imported only when a pool is built (``pip install 'turngym[ray]'``).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from types import ModuleType
from typing import TYPE_CHECKING, Any

from turngym.errors import ConfigError, EnvError, MissingDependencyError
from turngym.harness.rollout import calls
from turngym.harness.rollout.workers import (
    POOL_KINDS,
    CallResult,
    EnvFactoryFn,
    EnvPool,
    _build,
    _close_quietly,
    run_call,
)

if TYPE_CHECKING:
    from ray import ObjectRef
    from ray.actor import ActorHandle

logger = logging.getLogger(__name__)

#: Seconds to wait for actors to be scheduled and started before failing with a message.
READY_TIMEOUT_S = 600.0


def import_ray(what: str) -> ModuleType:
    """``import ray``, or :class:`MissingDependencyError` saying that ``what`` needs it."""
    try:
        import ray
    except ImportError as exc:
        raise MissingDependencyError(f"{what} needs Ray: pip install 'turngym[ray]'") from exc
    return ray


def wait_ready(refs: list[ObjectRef], what: str, key: str, opts: dict[str, Any],
               timeout_s: float = READY_TIMEOUT_S) -> list[Any]:
    """``ray.get(refs)`` of readiness probes, failing after ``timeout_s`` with a message
    naming the config ``key`` (actors that never fit the cluster wait forever)."""
    import ray

    need = {"CPU": len(refs) * float(opts.get("num_cpus", 0)),
            "GPU": len(refs) * float(opts.get("num_gpus", 0))}
    free = ray.available_resources()
    short = {r: v for r, v in need.items() if v > free.get(r, 0.0) + 1e-9}
    if short:
        logger.warning("%d %s need %s but only %s is free now; they wait until it is (lower %s"
                       " on a small cluster)", len(refs), what, short,
                       {r: free.get(r, 0.0) for r in short}, key)
    _, pending = ray.wait(refs, num_returns=len(refs), timeout=timeout_s)
    if pending:
        raise ConfigError(f"{len(pending)} of {len(refs)} {what} did not start within "
                          f"{timeout_s:.0f} s; they need {need} and the cluster has "
                          f"{ray.cluster_resources()} (check {key})")
    return ray.get(refs)


class EnvWorker:
    """Body of an env-worker actor: ``n_envs`` envs, stepped one call at a time."""

    def __init__(self, factory: EnvFactoryFn, n_envs: int, num_threads: int = 0):
        if num_threads > 0:  # an actor that reserves CPUs uses that many torch threads
            try:
                import torch

                torch.set_num_threads(num_threads)
            except ImportError:
                pass
        self.factory = factory
        self.envs = [factory() for _ in range(n_envs)]

    def ready(self) -> int:
        """Readiness probe: the number of envs built."""
        return len(self.envs)

    def call(self, local: int, fn: Callable[..., Any], args: tuple) -> CallResult:
        result = run_call(self.envs[local], fn, args)
        if not result.ok:  # the env is rebuilt, as every pool does after a failure
            _close_quietly(self.envs[local])
            self.envs[local] = _build(self.factory)
        return result

    def close(self) -> None:
        for env in self.envs:
            _close_quietly(env)
        self.envs = []


def actor_options(resources: dict[str, float]) -> dict[str, Any]:
    """``ray.remote(...).options`` of an env-worker actor from its resources (``num_cpus``,
    ``num_gpus``, ``memory``, custom resources)."""
    res = dict(resources)
    opts: dict[str, Any] = {"num_cpus": res.pop("num_cpus", 1.0), "max_concurrency": 1}
    for key in ("num_gpus", "memory"):
        if key in res:
            opts[key] = res.pop(key)
    if res:
        opts["resources"] = res
    return opts


class RayPool(EnvPool):
    """Envs in ``num_workers`` Ray actors (default: one per slot); slot ``s`` is env
    ``s // W`` of worker ``s % W``. See the module docstring.

    Args:
        resources: each actor's Ray resources; default ``{"num_cpus": 0}`` (one actor per
            env that reserves nothing). An actor with ``num_cpus >= 1`` sets that many torch
            threads, one with less sets one (and ``0`` leaves torch alone).
        start_timeout_s: how long actors may take to be scheduled and build their envs.
        config_key: the setting an error about actors that do not start names.

    Starts a local Ray cluster with defaults when Ray is not initialised.
    """

    def __init__(self, factory: EnvFactoryFn, n_slots: int, timeout_s: float | None = None, *,
                 num_workers: int | None = None, resources: dict[str, float] | None = None,
                 start_timeout_s: float = READY_TIMEOUT_S,
                 config_key: str = "rollout.workers"):
        super().__init__(factory, n_slots, timeout_s)
        ray = self.ray = import_ray("workers=ray")
        if not ray.is_initialized():
            ray.init(include_dashboard=False, log_to_driver=False)
        n = self.n_slots if num_workers is None else int(num_workers)
        self.W = max(1, min(n, self.n_slots))
        self.opts = actor_options(resources if resources is not None else {"num_cpus": 0.0})
        cpus = float(self.opts["num_cpus"])
        self.threads = max(1, int(cpus)) if cpus > 0 else 0
        self.start_timeout_s, self.config_key = start_timeout_s, config_key
        self.actor_cls = ray.remote(EnvWorker).options(**self.opts)
        self.sizes = [len(range(w, self.n_slots, self.W)) for w in range(self.W)]
        self.actors = [self.actor_cls.remote(factory, n, self.threads) for n in self.sizes]
        self._await_ready(self.actors)
        self.broken: set[int] = set()

    def _await_ready(self, actors: list[ActorHandle]) -> None:
        """Wait until actors have built their envs, so call deadlines exclude start-up."""
        try:
            wait_ready([a.ready.remote() for a in actors], "env-worker actors",
                       self.config_key, self.opts, self.start_timeout_s)
        except self.ray.exceptions.RayError as exc:
            raise EnvError(f"a Ray env actor failed to start: {exc}") from None

    def submit(self, slot: int, fn: Callable[..., Any], *args: Any) -> Any:
        if slot in self.broken:
            self.broken.discard(slot)
            if fn not in (calls.reset_call, calls.restore_call):  # mid-episode: state lost
                return (slot, None, 0.0)
        w, local = slot % self.W, slot // self.W
        return (slot, self.actors[w].call.remote(local, fn, args), time.monotonic())

    def collect(self, handles: list[Any]) -> list[CallResult]:
        return [self._wait(*h) for h in handles]

    def _wait(self, slot: int, ref: ObjectRef | None, t0: float) -> CallResult:
        if ref is None:
            return CallResult(False, None, "env worker restarted: this episode's env was lost")
        ray = self.ray
        left = None if self.timeout_s is None else max(0.0, t0 + self.timeout_s
                                                       - time.monotonic())
        try:
            result = ray.get(ref, timeout=left)
        except ray.exceptions.GetTimeoutError:
            self.timeouts += 1
            self._restart(slot)
            return CallResult(False, None, f"TimeoutError: env call took longer than "
                              f"{self.timeout_s:g}s", float(self.timeout_s or 0), True)
        except ray.exceptions.RayError as exc:  # the actor died (e.g. the env segfaulted)
            self._restart(slot)
            first = str(exc).splitlines()[0] if str(exc) else ""
            return CallResult(False, None, f"env worker died: {type(exc).__name__}: {first}")
        if not result.ok:  # the actor rebuilt the env
            self.rebuilds += 1
        return result

    def _restart(self, slot: int) -> None:
        """Kill and replace the actor of ``slot``; its other slots lose their episodes."""
        w = slot % self.W
        self.ray.kill(self.actors[w], no_restart=True)
        self.actors[w] = self.actor_cls.remote(self.factory, self.sizes[w], self.threads)
        self._await_ready([self.actors[w]])
        self.rebuilds += 1
        self.broken |= {s for s in range(w, self.n_slots, self.W) if s != slot}

    def close(self) -> None:
        for actor in self.actors:
            try:
                self.ray.kill(actor, no_restart=True)
            except Exception as exc:  # noqa: BLE001 - already dead
                logger.debug("killing env actor: %s", exc)
        self.actors = []


def _ray_pool(factory: EnvFactoryFn, n_slots: int, *, timeout_s: float | None,
              num_workers: int) -> RayPool:
    """``workers: ray``: one actor per slot (``num_workers`` sizes the thread pool only)."""
    return RayPool(factory, n_slots, timeout_s)


POOL_KINDS["ray"] = _ray_pool
