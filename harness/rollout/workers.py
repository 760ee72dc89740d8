"""Env worker pools: where the rollout engine's environments live and step.

A pool holds one env per *slot* (one slot per concurrent episode) and runs picklable
calls ``fn(env, *args)`` on them. :meth:`EnvPool.submit` starts a call and returns a
handle; :meth:`EnvPool.collect` waits for handles, each with its own deadline
(``timeout_s`` after it was submitted). A call that raises or times out comes back as a
failed :class:`CallResult` (never an exception) and the slot's env is rebuilt, so the next
episode on that slot starts from a fresh env.

Pools:

* :class:`InlinePool`: calls run at ``submit`` in the caller's thread. Fastest for
  microsecond envs (Sokoban, Maze); cannot enforce a timeout.
* :class:`ThreadPool`: a ``ThreadPoolExecutor``; envs live in this process. Good for envs
  that wait on I/O (HTTP, Docker, a browser). A call that times out keeps its thread busy
  until it returns; its env is abandoned and replaced.
* :class:`ProcessPool`: one process per slot (spawn), talking over a pipe. A timeout kills
  exactly that process. For heavy envs with modest concurrency.
* :class:`turngym.harness.rollout.ray_pool.RayPool`: envs in Ray actors; same semantics on many
  cores or nodes (registered in :data:`POOL_KINDS` by that module).
"""

from __future__ import annotations

import logging
import multiprocessing as mp
import time
import traceback
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from concurrent.futures import TimeoutError as FutureTimeout
from dataclasses import dataclass
from multiprocessing.connection import Connection
from multiprocessing.process import BaseProcess
from typing import Any, NamedTuple

import gymnasium as gym

from turngym import envs
from turngym.envs.registration import EnvSpec
from turngym.errors import ConfigError, EnvError

logger = logging.getLogger(__name__)

EnvFactoryFn = Callable[[], gym.Env]
"""A picklable zero-argument callable that builds one env."""


@dataclass(frozen=True)
class EnvFactory:
    """Builds ``envs.make(env_id, max_turns=..., **kwargs)``; picklable.

    In a fresh worker process an id registered at run time (not through an entry point) is
    missing from the registry; the factory carries the spec and registers it there first.
    """

    env_id: str
    kwargs: tuple[tuple[str, Any], ...] = ()
    max_turns: int | None = None
    spec: EnvSpec | None = None
    """The :class:`turngym.envs.registration.EnvSpec` to register in workers that lack it."""

    @classmethod
    def for_env(cls, env_id: str, kwargs: dict[str, Any], max_turns: int | None) -> EnvFactory:
        return cls(env_id, tuple(sorted(kwargs.items())), max_turns, envs.spec(env_id))

    def __call__(self) -> gym.Env:
        ensure_registered(self.env_id, self.spec)
        return envs.make(self.env_id, max_turns=self.max_turns, **dict(self.kwargs))


def ensure_registered(env_id: str, spec: EnvSpec | None) -> None:
    """Register ``spec`` (an :class:`turngym.envs.registration.EnvSpec`) when ``env_id`` is
    missing from this process's registry: an id registered at run time (not through an
    entry point) is missing in a fresh worker process."""
    if env_id not in envs.registry and spec is not None:
        envs.register(spec.id, spec.entry_point, max_turns=spec.max_turns, kwargs=spec.kwargs,
                      requires=spec.requires, extra=spec.extra, description=spec.description)


class CallResult(NamedTuple):
    """The outcome of one call on one slot's env (a NamedTuple: cheap on the hot path)."""

    ok: bool
    value: Any = None
    error: str | None = None
    """``"TypeName: message"`` (plus the last traceback line) when the call failed."""
    seconds: float = 0.0
    """Time the call itself took (measured where the env lives)."""
    timed_out: bool = False


def _describe(exc: BaseException) -> str:
    tb = traceback.extract_tb(exc.__traceback__)
    where = f" (at {tb[-1].filename}:{tb[-1].lineno})" if tb else ""
    return f"{type(exc).__name__}: {exc}{where}"


def run_call(env: gym.Env, fn: Callable[..., Any], args: tuple) -> CallResult:
    """Run ``fn(env, *args)`` and turn any exception into a failed :class:`CallResult`."""
    t0 = time.perf_counter()
    try:
        value = fn(env, *args)
    except Exception as exc:  # noqa: BLE001 - an env bug must end one episode, not the run
        return CallResult(False, None, _describe(exc), time.perf_counter() - t0)
    return CallResult(True, value, None, time.perf_counter() - t0)


def _close_quietly(env: gym.Env) -> None:
    try:
        env.close()
    except Exception as exc:  # noqa: BLE001 - closing a broken env may fail too; that is fine
        logger.debug("closing a failed env raised %s", exc)


class _BrokenEnv:
    """Stands in for an env whose rebuild failed: every use raises, so every call on the slot
    comes back as a failed CallResult (its episodes end with ``env_error``)."""

    def __init__(self, error: str):
        self.error = error

    def __getattr__(self, name: str) -> Any:
        raise EnvError(f"the env could not be rebuilt: {self.__dict__.get('error')}")


def _build(factory: EnvFactoryFn) -> gym.Env | _BrokenEnv:
    try:
        return factory()
    except Exception as exc:  # noqa: BLE001 - reported through every later call instead
        logger.error("rebuilding an env failed: %s", _describe(exc))
        return _BrokenEnv(_describe(exc))


class EnvPool:
    """Base class: ``n_slots`` envs built by ``factory``; see the module docstring."""

    #: Whether ``submit`` returns before the call finishes (so env time can overlap).
    concurrent: bool = True

    def __init__(self, factory: EnvFactoryFn, n_slots: int, timeout_s: float | None = None):
        self.factory, self.n_slots, self.timeout_s = factory, int(n_slots), timeout_s
        self.rebuilds = 0
        self.timeouts = 0

    def submit(self, slot: int, fn: Callable[..., Any], *args: Any) -> Any:
        """Start ``fn(env_of_slot, *args)``; return a handle for :meth:`collect`."""
        raise NotImplementedError

    def collect(self, handles: list[Any]) -> list[CallResult]:
        """Wait for ``handles`` (in order); failed or timed-out calls rebuild their env."""
        raise NotImplementedError

    def call(self, slot: int, fn: Callable[..., Any], *args: Any) -> CallResult:
        """``submit`` + ``collect`` of one call."""
        return self.collect([self.submit(slot, fn, *args)])[0]

    def map(self, slots: list[int], fn: Callable[..., Any], args: list[tuple]) -> list[CallResult]:
        """Run ``fn`` on many slots concurrently (one ``args`` tuple per slot)."""
        return self.collect([self.submit(s, fn, *a) for s, a in zip(slots, args)])

    def close(self) -> None:
        """Close every env and stop the workers. Safe to call twice."""

    def __enter__(self) -> EnvPool:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


class InlinePool(EnvPool):
    """Calls run at submit time in the caller's thread (no timeout)."""

    concurrent = False

    def __init__(self, factory: EnvFactoryFn, n_slots: int, timeout_s: float | None = None):
        super().__init__(factory, n_slots, None)
        self.envs = [factory() for _ in range(self.n_slots)]

    def submit(self, slot: int, fn: Callable[..., Any], *args: Any) -> Any:
        result = run_call(self.envs[slot], fn, args)
        if not result.ok:
            self._rebuild(slot)
        return result

    def collect(self, handles: list[Any]) -> list[CallResult]:
        return list(handles)

    def fail(self, slot: int, exc: Exception, seconds: float) -> CallResult:
        """A call on ``slot`` that the caller ran itself raised ``exc``: rebuild the slot's
        env and return the failed :class:`CallResult` (as :func:`run_call` + ``submit``)."""
        self._rebuild(slot)
        return CallResult(False, None, _describe(exc), seconds)

    def _rebuild(self, slot: int) -> None:
        _close_quietly(self.envs[slot])
        self.envs[slot] = _build(self.factory)
        self.rebuilds += 1

    def close(self) -> None:
        for env in self.envs:
            _close_quietly(env)
        self.envs = []


class ThreadPool(InlinePool):
    """Envs in this process, calls on a thread pool with per-call deadlines."""

    concurrent = True

    def __init__(self, factory: EnvFactoryFn, n_slots: int, timeout_s: float | None = None,
                 num_workers: int = 8):
        super().__init__(factory, n_slots)
        self.timeout_s = timeout_s
        self.executor = ThreadPoolExecutor(max_workers=max(1, num_workers),
                                           thread_name_prefix="turngym-env")

    def submit(self, slot: int, fn: Callable[..., Any], *args: Any) -> Any:
        future = self.executor.submit(run_call, self.envs[slot], fn, args)
        return (slot, future, time.monotonic())

    def collect(self, handles: list[Any]) -> list[CallResult]:
        out = []
        for slot, future, t0 in handles:
            out.append(self._wait(slot, future, t0))
        return out

    def _wait(self, slot: int, future: Future, t0: float) -> CallResult:
        remaining = None if self.timeout_s is None else max(0.0, t0 + self.timeout_s
                                                            - time.monotonic())
        try:
            result = future.result(timeout=remaining)
        except FutureTimeout:
            self.timeouts += 1
            future.cancel()  # harmless if already running; the thread is abandoned
            self._rebuild_detached(slot)
            return CallResult(False, None, f"TimeoutError: env call took longer than "
                              f"{self.timeout_s:g}s", float(self.timeout_s or 0), True)
        if not result.ok:
            self._rebuild(slot)
        return result

    def _rebuild_detached(self, slot: int) -> None:
        # The stuck call still holds the old env; do not close it under its feet.
        self.envs[slot] = _build(self.factory)
        self.rebuilds += 1

    def close(self) -> None:
        self.executor.shutdown(wait=False, cancel_futures=True)
        super().close()


def _process_main(conn: Connection, factory: EnvFactoryFn) -> None:
    """Worker loop of :class:`ProcessPool`: build the env, then serve calls until EOF."""
    try:
        env = factory()
    except Exception as exc:  # noqa: BLE001
        conn.send(CallResult(False, None, f"env construction failed: {_describe(exc)}"))
        return
    conn.send(CallResult(True, "ready"))
    while True:
        try:
            msg = conn.recv()
        except (EOFError, OSError):
            break
        if msg is None:
            break
        fn, args = msg
        result = run_call(env, fn, args)
        try:
            conn.send(result)
        except Exception as exc:  # noqa: BLE001 - an unpicklable return value
            conn.send(CallResult(False, None, f"result not picklable: {_describe(exc)}"))
    _close_quietly(env)


class ProcessPool(EnvPool):
    """One spawned process per slot; a timeout kills and restarts only that process."""

    def __init__(self, factory: EnvFactoryFn, n_slots: int, timeout_s: float | None = None,
                 start_timeout_s: float = 120.0):
        super().__init__(factory, n_slots, timeout_s)
        self.ctx = mp.get_context("spawn")
        self.start_timeout_s = start_timeout_s
        self.procs: list[BaseProcess | None] = [None] * self.n_slots
        self.conns: list[Connection | None] = [None] * self.n_slots
        for slot in range(self.n_slots):
            self._start(slot)
        for slot in range(self.n_slots):
            self._await_ready(slot)

    def _start(self, slot: int) -> None:
        parent, child = self.ctx.Pipe()
        proc = self.ctx.Process(target=_process_main, args=(child, self.factory), daemon=True,
                                name=f"turngym-env-{slot}")
        proc.start()
        child.close()
        self.procs[slot], self.conns[slot] = proc, parent

    def _await_ready(self, slot: int) -> None:
        conn = self.conns[slot]
        if not conn.poll(self.start_timeout_s):
            raise EnvError(f"env worker {slot} did not start in {self.start_timeout_s:g}s")
        ready = conn.recv()
        if not ready.ok:
            raise EnvError(f"env worker {slot}: {ready.error}")

    def _restart(self, slot: int) -> None:
        proc = self.procs[slot]
        if proc is not None and proc.is_alive():
            proc.kill()
        if proc is not None:
            proc.join(5)
        self.conns[slot].close()
        self._start(slot)
        self._await_ready(slot)
        self.rebuilds += 1

    def submit(self, slot: int, fn: Callable[..., Any], *args: Any) -> Any:
        try:
            self.conns[slot].send((fn, args))
        except (OSError, BrokenPipeError) as exc:
            return (slot, CallResult(False, None, f"env worker died: {_describe(exc)}"), 0.0)
        return (slot, None, time.monotonic())

    def collect(self, handles: list[Any]) -> list[CallResult]:
        return [self._wait(*h) for h in handles]

    def _wait(self, slot: int, early: CallResult | None, t0: float) -> CallResult:
        if early is not None:
            self._restart(slot)
            return early
        conn = self.conns[slot]
        remaining = None if self.timeout_s is None else max(0.0, t0 + self.timeout_s
                                                            - time.monotonic())
        try:
            ready = conn.poll(remaining)
            result = conn.recv() if ready else None
        except (EOFError, OSError) as exc:
            result = CallResult(False, None, f"env worker died: {_describe(exc)}")
        if result is None:
            self.timeouts += 1
            self._restart(slot)
            return CallResult(False, None, f"TimeoutError: env call took longer than "
                              f"{self.timeout_s:g}s", float(self.timeout_s or 0), True)
        if not result.ok:
            self._restart(slot)
        return result

    def close(self) -> None:
        for slot, (proc, conn) in enumerate(zip(self.procs, self.conns)):
            if proc is None:
                continue
            try:
                conn.send(None)
            except (OSError, BrokenPipeError):
                pass
            proc.join(2)
            if proc.is_alive():
                proc.kill()
                proc.join(2)
            conn.close()
            self.procs[slot] = None


def _inline(factory: EnvFactoryFn, n_slots: int, *, timeout_s: float | None,
            num_workers: int) -> EnvPool:
    return InlinePool(factory, n_slots)


def _threads(factory: EnvFactoryFn, n_slots: int, *, timeout_s: float | None,
             num_workers: int) -> EnvPool:
    return ThreadPool(factory, n_slots, timeout_s, num_workers=num_workers)


def _processes(factory: EnvFactoryFn, n_slots: int, *, timeout_s: float | None,
               num_workers: int) -> EnvPool:
    return ProcessPool(factory, n_slots, timeout_s)


#: Step mode -> pool builder ``(factory, n_slots, *, timeout_s, num_workers)``. The local
#: kinds are here; :mod:`turngym.harness.rollout.ray_pool` adds ``ray`` when imported (the
#: engine imports it), so this module never imports the layer that knows Ray.
POOL_KINDS: dict[str, Callable[..., EnvPool]] = {
    "inline": _inline, "threads": _threads, "processes": _processes}


def make_pool(mode: str, factory: EnvFactoryFn, n_slots: int, *, timeout_s: float | None,
              num_workers: int) -> EnvPool:
    """Build the pool for a resolved ``mode`` (a key of :data:`POOL_KINDS`: inline, threads,
    processes or ray)."""
    build = POOL_KINDS.get(mode)
    if build is None:
        raise ConfigError(f"step_mode {mode!r} is not one of {', '.join(POOL_KINDS)}")
    return build(factory, n_slots, timeout_s=timeout_s, num_workers=num_workers)
