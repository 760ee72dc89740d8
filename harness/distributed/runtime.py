"""What ``distributed.mode: ray`` builds for the trainer (called by ``turngym.harness.components``).

The trainer's loop is unchanged: it gets a
:class:`~turngym.harness.distributed.router.RouterBackend` instead of an in-process backend
(generate, score and ``load_weights`` go to engine actors) and a :class:`RayRolloutEngine`
whose envs live in env-worker actors. The same YAML runs locally (``mode: local``) or on a
cluster (``mode: ray``, ``ray_address: auto``).
"""

from __future__ import annotations

import functools
import logging
from collections.abc import Callable
from pathlib import Path

from turngym.agents.agent import Agent
from turngym.agents.backend import Backend
from turngym.agents.models import load_tokenizer
from turngym.harness.config import TrainConfig
from turngym.harness.distributed.ray_engines import ensure_ray, start_engines
from turngym.harness.distributed.router import RouterBackend
from turngym.harness.rollout.calls import Policy
from turngym.harness.rollout.config import RolloutConfig
from turngym.harness.rollout.engine import RolloutEngine
from turngym.harness.rollout.ray_pool import RayPool
from turngym.harness.rollout.workers import EnvPool

logger = logging.getLogger(__name__)


class RayRolloutEngine(RolloutEngine):
    """A :class:`turngym.harness.rollout.engine.RolloutEngine` whose env pool is a
    :class:`~turngym.harness.rollout.ray_pool.RayPool` (``num_env_workers`` actors
    sized by ``resources_per_worker``). Everything else is the local engine's code."""

    def __init__(self, env_id: str, backend_or_policy: Backend | Policy,
                 agent: Agent | None = None, cfg: RolloutConfig | None = None,
                 *, num_env_workers: int = 1, resources: dict[str, float] | None = None):
        super().__init__(env_id, backend_or_policy, agent, cfg)
        self.num_env_workers = int(num_env_workers)
        self.resources = dict(resources or {"num_cpus": 1.0})
        self.mode = "ray-workers"

    def _get_pool(self, n_slots: int) -> EnvPool:
        if self._pool is not None and self._pool.n_slots >= n_slots:
            return self._pool
        self.close()
        self._pool = RayPool(self.factory, n_slots, self.cfg.env_timeout_s,
                             num_workers=self.num_env_workers, resources=self.resources,
                             config_key="distributed.resources_per_worker")
        return self._pool


def weight_sync_backend(name: str) -> str:
    """``broadcast`` -> ``nccl`` when the cluster has GPUs and this process sees one, else
    ``gloo``; ``object_store`` stays."""
    if name != "broadcast":
        return name
    import ray
    import torch

    gpus = ray.cluster_resources().get("GPU", 0) > 0
    return "nccl" if gpus and torch.cuda.is_available() else "gloo"


def ray_backend_and_engine(model_dir: Path, cfg: TrainConfig
                           ) -> tuple[RouterBackend, Callable[..., RayRolloutEngine]]:
    """Start Ray (or join ``distributed.ray_address``) and the engine actors.

    Returns ``(router_backend, engine_factory)``; ``engine_factory(env_id, backend, agent,
    rollout_cfg)`` builds a :class:`RayRolloutEngine`.
    """
    d = cfg.distributed
    ensure_ray(d.ray_address)
    kwargs = {"model": str(model_dir), "dtype": cfg.model.dtype}
    engines = start_engines(d.num_engines, cfg.model.backend, kwargs,
                            num_cpus=d.engine_num_cpus,
                            tensor_parallel_size=d.tensor_parallel_size)
    backend = RouterBackend(engines, load_tokenizer(model_dir),
                            weight_sync=weight_sync_backend(d.weight_sync))
    factory = functools.partial(RayRolloutEngine, num_env_workers=d.num_env_workers,
                                resources=dict(d.resources_per_worker))
    return backend, factory
