"""Weight sync: learner -> generation engines after every update.

Two paths with one interface, ``sync(learner_model_or_state_dict) -> seconds``:

* :class:`ObjectStoreSync` (CPU, and the default everywhere): every learner rank joins
  :func:`full_state_dict` (FSDP2 all-gathers the shards; rank 0 receives the full, CPU
  tensors), then rank 0 puts the dict into Ray's object store once and every engine actor
  calls ``backend.load_weights`` on it (:func:`push_to_engines`). Cost: one copy into the
  object store plus one read per engine; on one node Ray shares it through shared memory.
* :class:`NCCLSync` (GPU): rank 0 of the learner and the engine workers form one NCCL group
  (vLLM's ``StatelessProcessGroup`` + ``PyNcclCommunicator``, the pattern of vLLM's
  ``examples/offline_inference/rlhf.py``); rank 0 broadcasts tensor by tensor, and each
  engine's workers receive into their parameters through ``collective_rpc``. Tensors never
  leave the GPUs. **Untested here** (the project's machines have no GPU); it needs the
  ``vllm`` GPU package and engine actors started with ``model.backend: vllm``.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Mapping
from typing import Any

logger = logging.getLogger(__name__)


def full_state_dict(model: Any) -> dict[str, Any]:
    """The full (unsharded) state dict on CPU. Collective under FSDP: call on every rank;
    rank 0 gets the tensors, other ranks an empty dict. Without FSDP: the plain state dict."""
    import torch.distributed as dist

    if not (dist.is_available() and dist.is_initialized()):
        return {k: v.detach() for k, v in model.state_dict().items()}
    from torch.distributed.checkpoint.state_dict import StateDictOptions, get_model_state_dict

    sd = get_model_state_dict(model, options=StateDictOptions(full_state_dict=True,
                                                              cpu_offload=True))
    return sd if dist.get_rank() == 0 else {}


def push_to_engines(engines: list[Any], state_dict: Mapping[str, Any]) -> float:
    """Load ``state_dict`` into every engine actor; returns the wall seconds."""
    import ray

    t0 = time.perf_counter()
    ref = ray.put({k: v.detach().cpu() for k, v in state_dict.items()})
    ray.get([e.load_weights.remote(ref) for e in engines])
    return time.perf_counter() - t0


class ObjectStoreSync:
    """Gather on rank 0, then object store -> ``load_weights`` on each engine (CPU, gloo)."""

    def __init__(self, backend: Any, rank: int = 0):
        """``backend`` is the :class:`~harness.distributed.router.RouterBackend` (or any
        backend with ``load_weights``); only ``rank`` 0 talks to it."""
        self.backend, self.rank = backend, rank

    def sync(self, model_or_sd: Any) -> float:
        """Collective on every learner rank; returns seconds spent (0 on other ranks)."""
        t0 = time.perf_counter()
        sd = model_or_sd if isinstance(model_or_sd, Mapping) else full_state_dict(model_or_sd)
        if self.rank == 0:
            self.backend.load_weights(sd)
        return time.perf_counter() - t0


class NCCLSync:  # pragma: no cover  (GPU only; see the module docstring)
    """Broadcast from learner rank 0 to vLLM engine workers over one NCCL group.

    ``engines`` are engine actors running the ``vllm`` backend on GPU. ``master_address`` /
    ``master_port`` is a free TCP endpoint on learner rank 0's node. The group has
    ``1 + sum(tensor_parallel_size)`` ranks: the learner is rank 0, engine workers follow.
    """

    def __init__(self, engines: list[Any], master_address: str, master_port: int,
                 tensor_parallel_size: int = 1, device: Any = None):
        import ray
        import torch
        from vllm.distributed.device_communicators.pynccl import PyNcclCommunicator
        from vllm.distributed.utils import StatelessProcessGroup

        self.engines = engines
        world = 1 + len(engines) * tensor_parallel_size
        # Each engine's workers join with ranks 1 + e * tp + worker_rank (a worker extension
        # with ``init_weight_group`` / ``receive_weights``, installed through vLLM's
        # ``worker_extension_cls``).
        refs = [e.collective.remote("init_weight_group", master_address, master_port,
                                    1 + k * tensor_parallel_size, world)
                for k, e in enumerate(engines)]
        pg = StatelessProcessGroup.create(host=master_address, port=master_port, rank=0,
                                          world_size=world)
        self.comm = PyNcclCommunicator(pg, device=device or torch.device("cuda:0"))
        ray.get(refs)

    def sync(self, model_or_sd: Any) -> float:
        import ray
        import torch

        t0 = time.perf_counter()
        sd = model_or_sd if isinstance(model_or_sd, Mapping) else full_state_dict(model_or_sd)
        meta = [(k, str(v.dtype), tuple(v.shape)) for k, v in sd.items()]
        refs = [e.collective.remote("receive_weights", meta) for e in self.engines]
        for v in sd.values():
            self.comm.broadcast(v.to("cuda", non_blocking=True), src=0,
                                stream=torch.cuda.current_stream())
        torch.cuda.synchronize()
        ray.get(refs)
        return time.perf_counter() - t0
