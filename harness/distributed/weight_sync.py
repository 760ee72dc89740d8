"""Weight sync: learner -> generation engines after every update.

Two paths behind ``RouterBackend.load_weights`` (``distributed.weight_sync``):

* :class:`CollectiveSync` (``broadcast``, the default): the trainer process and every engine
  actor form one ``torch.distributed`` process group of their own (a ``TCPStore`` on the
  trainer's node, ranks ``0`` = trainer, ``1..E`` = engines): **gloo on CPU, NCCL when the
  engines hold GPUs**. Per sync the trainer sends the tensor names, dtypes and shapes with
  one actor call, packs the weights into one flat buffer per dtype and broadcasts those
  buffers; each engine unpacks them and calls its backend's ``load_weights``. The trainer
  never joins the learner's own torchrun group with the engines, so FSDP ranks are
  untouched. Tested on CPU (gloo) with a local Ray cluster; the NCCL variant is the same
  code with CUDA buffers and cannot be tested on one GPU (NCCL refuses two ranks on one
  device).
* :func:`push_to_engines` (``object_store``): the dict goes into Ray's object store once and
  each engine reads it (one node: shared memory). Simple, and works across any cluster.

Under torchrun, :func:`full_state_dict` all-gathers the FSDP shards onto learner rank 0 first
(:class:`ObjectStoreSync` wraps that for any backend).
"""

from __future__ import annotations

import logging
import math
import socket
import time
from collections.abc import Mapping
from datetime import timedelta
from typing import TYPE_CHECKING

from turngym.agents.backend import Backend

if TYPE_CHECKING:
    import torch
    from ray.actor import ActorHandle
    from torch.distributed import ProcessGroup

logger = logging.getLogger(__name__)


def full_state_dict(model: torch.nn.Module) -> dict[str, torch.Tensor]:
    """The full (unsharded) state dict on CPU. Collective under FSDP: call on every rank;
    rank 0 gets the tensors, other ranks an empty dict. Without FSDP: the plain state dict."""
    import torch.distributed as dist

    if not (dist.is_available() and dist.is_initialized()):
        return {k: v.detach() for k, v in model.state_dict().items()}
    from torch.distributed.checkpoint.state_dict import StateDictOptions, get_model_state_dict

    sd = get_model_state_dict(model, options=StateDictOptions(full_state_dict=True,
                                                              cpu_offload=True))
    return sd if dist.get_rank() == 0 else {}


def push_to_engines(engines: list[ActorHandle], state_dict: Mapping[str, torch.Tensor]
                    ) -> float:
    """Load ``state_dict`` into every engine actor; returns the wall seconds."""
    import ray

    t0 = time.perf_counter()
    ref = ray.put({k: v.detach().cpu() for k, v in state_dict.items()})
    ray.get([e.load_weights.remote(ref) for e in engines])
    return time.perf_counter() - t0


class ObjectStoreSync:
    """Gather on rank 0, then object store -> ``load_weights`` on each engine (CPU, gloo)."""

    def __init__(self, backend: Backend, rank: int = 0):
        """``backend`` is the :class:`~turngym.harness.distributed.router.RouterBackend` (or any
        backend with ``load_weights``); only ``rank`` 0 talks to it."""
        self.backend, self.rank = backend, rank

    def sync(self, model_or_sd: torch.nn.Module | Mapping[str, torch.Tensor]) -> float:
        """Collective on every learner rank; returns seconds spent (0 on other ranks)."""
        t0 = time.perf_counter()
        sd = model_or_sd if isinstance(model_or_sd, Mapping) else full_state_dict(model_or_sd)
        if self.rank == 0:
            self.backend.load_weights(sd)
        return time.perf_counter() - t0


def pack(state_dict: Mapping[str, torch.Tensor], device: torch.device | str = "cpu"
         ) -> tuple[list[tuple[str, str, tuple[int, ...]]], list[torch.Tensor]]:
    """``(meta, buffers)``: one flat buffer per dtype (in first-seen order) on ``device``;
    ``meta`` lists ``(name, dtype, shape)`` in state-dict order."""
    import torch

    meta, groups = [], {}
    for name, t in state_dict.items():
        t = t.detach()
        meta.append((name, str(t.dtype).removeprefix("torch."), tuple(t.shape)))
        groups.setdefault(t.dtype, []).append(t.reshape(-1).to(device))
    return meta, [torch.cat(ts) for ts in groups.values()]


def empty_buffers(meta: list[tuple[str, str, tuple[int, ...]]],
                  device: torch.device | str = "cpu") -> list[torch.Tensor]:
    """Receive buffers matching :func:`pack`'s for ``meta``."""
    import torch

    sizes: dict[str, int] = {}
    for _, dtype, shape in meta:
        sizes[dtype] = sizes.get(dtype, 0) + math.prod(shape)
    return [torch.empty(n, dtype=getattr(torch, d), device=device) for d, n in sizes.items()]


def unpack(meta: list[tuple[str, str, tuple[int, ...]]], buffers: list[torch.Tensor]
           ) -> dict[str, torch.Tensor]:
    """Undo :func:`pack`: views into ``buffers`` with the original names and shapes."""
    order = list(dict.fromkeys(d for _, d, _ in meta))
    offsets = dict.fromkeys(order, 0)
    out = {}
    for name, dtype, shape in meta:
        n, buf = math.prod(shape), buffers[order.index(dtype)]
        out[name] = buf[offsets[dtype]:offsets[dtype] + n].view(shape)
        offsets[dtype] += n
    return out


def buffer_device(backend: str) -> str:
    """Where a weight group's buffers live: CUDA for ``nccl``, the CPU for ``gloo``."""
    return "cuda" if backend == "nccl" else "cpu"


def open_group(host: str, port: int, rank: int, world_size: int, backend: str,
               timeout_s: float = 600.0) -> ProcessGroup:
    """A standalone process group (rank 0 hosts the ``TCPStore``); blocks until all joined."""
    import torch.distributed as dist

    timeout = timedelta(seconds=timeout_s)
    store = dist.TCPStore(host, port, world_size, is_master=rank == 0, timeout=timeout,
                          wait_for_workers=False)
    if backend == "gloo":
        return dist.ProcessGroupGloo(store, rank, world_size, timeout)
    if backend == "nccl":
        opts = dist.ProcessGroupNCCL.Options()
        opts._timeout = timeout
        return dist.ProcessGroupNCCL(store, rank, world_size, opts)
    raise ValueError(f"weight-sync backend {backend!r}: use gloo or nccl")


def free_port(host: str) -> int:
    """A free TCP port on ``host`` (for the weight group's store)."""
    with socket.socket() as s:
        s.bind((host, 0))
        return int(s.getsockname()[1])


class CollectiveSync:
    """Broadcast from the trainer (rank 0) to every engine actor (see the module docstring).

    Args:
        engines: :class:`~turngym.harness.distributed.ray_engines.EngineActor` handles.
        backend: ``gloo`` (CPU buffers) or ``nccl`` (CUDA buffers on both ends).
        host: an address of this node the engines can reach (default: Ray's node IP).
    """

    def __init__(self, engines: list[ActorHandle], backend: str = "gloo", host: str | None = None,
                 timeout_s: float = 600.0):
        import ray

        self.engines, self.backend = list(engines), backend
        self.device = buffer_device(backend)
        host = host or ray.util.get_node_ip_address()
        port = free_port(host)
        world = 1 + len(self.engines)
        refs = [e.join_weight_group.remote(host, port, k + 1, world, backend, timeout_s)
                for k, e in enumerate(self.engines)]
        self.group = open_group(host, port, 0, world, backend, timeout_s)
        ray.get(refs)
        self.syncs = 0

    def sync(self, state_dict: Mapping[str, torch.Tensor]) -> float:
        """Send ``state_dict`` to every engine; returns the wall seconds (all loaded)."""
        import ray

        t0 = time.perf_counter()
        meta, buffers = pack(state_dict, self.device)
        refs = [e.receive_weights.remote(meta) for e in self.engines]
        for buf in buffers:
            self.group.broadcast(buf, 0).wait()
        ray.get(refs)
        self.syncs += 1
        return time.perf_counter() - t0

    def close(self) -> None:
        """Drop the group (the engines drop theirs when they stop)."""
        self.group = None
