"""The learner under ``torchrun`` with FSDP2 (``torch.distributed.fsdp.fully_shard``).

Launch (one node, two ranks)::

    torchrun --standalone --nproc_per_node 2 -m turngym.harness.distributed.fsdp_check --out DIR

Across nodes: ``torchrun --nnodes N --node_rank R --nproc_per_node G
--rdzv_backend c10d --rdzv_endpoint HOST:29500 ...`` (docs/scale-out.md).

* Process group: NCCL on GPU, gloo on CPU (:func:`init_distributed`).
* Sharding: every decoder layer is its own FSDP unit, then the root module; parameters are
  DTensors sharded over ranks, gathered for forward/backward and re-sharded after.
* Gradient accumulation across ranks: every rank gets the *same* samples and shuffling
  seed and trains on ``mini[rank::world]`` of each mini-batch
  (:func:`turngym.harness.learn.learner.ppo_update` with ``rank``/``world_size``). Loss shares are
  relative to the whole mini-batch, so W ranks x A micro-batches give the gradient of one
  rank with W x A micro-batches (tested to float tolerance).
* Checkpoints: :meth:`FSDPLearner.save_train_state` writes model + optimiser shards with
  ``torch.distributed.checkpoint`` (one file per rank, resharding on load allowed) into the
  trainer's checkpoint directory (:mod:`turngym.harness.learn.checkpoint`); :meth:`save_sharded` /
  :meth:`load_sharded` do the same standalone (``fsdp_check``).
* Weight sync: :meth:`FSDPLearner.sync_state_dict` all-gathers the full weights onto rank 0
  (:mod:`turngym.harness.distributed.weight_sync`).
"""

from __future__ import annotations

import datetime
import gc
import json
import logging
import os
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any

import torch
import torch.distributed as dist
from safetensors.torch import save_file

from turngym.errors import ConfigError
from turngym.harness.distributed.weight_sync import full_state_dict
from turngym.harness.learn.learner import Learner, Progressed, Sample, ppo_update

if TYPE_CHECKING:
    from turngym.algos.ppo_loss import PPOLossConfig
    from turngym.harness.config import TrainConfig

logger = logging.getLogger(__name__)


#: Whether :func:`init_distributed` started a process group in this process (then
#: :func:`end_worker` ends it without finalization).
_STARTED_GROUP = False


def init_distributed(timeout_min: float = 30.0) -> tuple[int, int, torch.device]:
    """Join the ``torchrun`` process group (env ``RANK``/``WORLD_SIZE``); NCCL on GPU, gloo
    on CPU. Returns ``(rank, world_size, device)``. Outside torchrun: ``(0, 1, device)``.
    ``timeout_min`` bounds every collective, including followers waiting for rank 0."""
    global _STARTED_GROUP
    cuda = torch.cuda.is_available()
    local = int(os.environ.get("LOCAL_RANK", "0"))
    device = torch.device(f"cuda:{local}") if cuda else torch.device("cpu")
    if "WORLD_SIZE" not in os.environ:
        return 0, 1, device
    if not dist.is_initialized():
        if cuda:
            torch.cuda.set_device(device)
        dist.init_process_group(backend="nccl" if cuda else "gloo",
                                timeout=datetime.timedelta(minutes=timeout_min))
        _STARTED_GROUP = True
    return dist.get_rank(), dist.get_world_size(), device


def finish_distributed() -> None:
    """Barrier, then tear the process group down while the interpreter is fully alive
    (exiting with live gloo work threads can abort the process). No-op outside torchrun.

    Once FSDP has run (DTensor collectives on the mesh's group), ``destroy_process_group``
    no longer frees the gloo backend: its threads (``pt_gloo_runloop``, ``gloo_tcp_loop``)
    stay alive (torch 2.13: measured after ``gc.collect()``, with DTensor's sharding caches
    cleared, no ``DeviceMesh`` left and no process group in ``distributed_c10d``; the
    reference is held outside Python). They are then destroyed during interpreter
    finalization, which is what aborted rank 1 of the FSDP test ("terminate called without
    an active exception"). A torchrun worker therefore ends with :func:`end_worker` after
    its last output; ``fsdp_check`` reports how many gloo threads were left."""
    if dist.is_available() and dist.is_initialized():
        dist.barrier()
        dist.destroy_process_group()
        gc.collect()
        left = gloo_threads()
        if left:
            logger.debug("gloo threads alive after destroy_process_group: %s", left)


def gloo_threads() -> list[str]:
    """Names of this process's live gloo threads (from ``/proc``; ``[]`` where there is none)."""
    names = []
    try:
        tasks = os.listdir("/proc/self/task")
    except OSError:
        return []
    for tid in tasks:
        try:
            with open(f"/proc/self/task/{tid}/comm") as fh:
                name = fh.read().strip()
        except OSError:  # the thread ended meanwhile
            continue
        if "gloo" in name:
            names.append(name)
    return sorted(names)


def end_worker(code: int = 0) -> None:
    """End a torchrun worker after its last output: flush logging and stdio, then
    ``os._exit(code)``, so the interpreter's finalization never destroys gloo threads that
    outlived :func:`finish_distributed`. Returns (and the process exits normally) when
    :func:`init_distributed` started no process group here (outside torchrun, e.g. a
    ``turngym train`` called in a test process, whatever threads that process has)."""
    if not _STARTED_GROUP:
        return
    logging.shutdown()
    for stream in (sys.stdout, sys.stderr):
        try:
            stream.flush()
        except (OSError, ValueError):  # closed or broken pipe: nothing more to save
            pass
    os._exit(code)


def shard_model(model: torch.nn.Module, device: torch.device) -> torch.nn.Module:
    """``fully_shard`` each decoder layer, then the root (FSDP2). Returns the model."""
    from torch.distributed.device_mesh import init_device_mesh
    from torch.distributed.fsdp import fully_shard

    world = torch.distributed.get_world_size()
    mesh = init_device_mesh(device.type, (world,))
    model.to(device)
    layers = getattr(getattr(model, "model", None), "layers", None)
    if layers is None:
        raise ConfigError(f"FSDP: {type(model).__name__} has no model.layers to shard")
    for layer in layers:
        fully_shard(layer, mesh=mesh)
    fully_shard(model, mesh=mesh)
    return model


class FSDPLearner(Learner):
    """:class:`turngym.harness.learn.learner.Learner` with its model sharded by FSDP2 over
    all ranks."""

    def __init__(self, model_dir: str | Path, cfg: TrainConfig, *, rank: int, world_size: int,
                 device: torch.device):
        if cfg.lora.enabled:
            raise ConfigError("lora.enabled: the FSDP learner trains full weights; "
                              "set lora.enabled=false or run one rank")
        super().__init__(model_dir, cfg)
        self.rank, self.world_size, self.device = rank, world_size, device
        shard_model(self.model, device)
        # the optimiser must hold the sharded (DTensor) parameters: rebuild it
        o = cfg.optim
        self.optimizer = torch.optim.AdamW(self.model.parameters(), lr=o.lr,
                                           betas=tuple(o.betas), weight_decay=o.weight_decay)
        warm = o.warmup_steps
        self.scheduler = torch.optim.lr_scheduler.LambdaLR(
            self.optimizer, lambda s: min(1.0, (s + 1) / warm) if warm else 1.0)

    def update(self, samples: list[Sample], loss_cfg: PPOLossConfig, *, seed: int, pad_id: int,
               on_progress: Progressed | None = None) -> dict[str, float]:
        """One PPO update on this rank's share (same ``samples`` and ``seed`` on all ranks).
        Collective. ``on_progress`` counts this rank's share, scaled to the whole batch."""
        w = self.world_size
        scaled = None if on_progress is None else (
            lambda done, total, tokens: on_progress(min(done * w, total), total, tokens * w))
        return ppo_update(self, samples, loss_cfg, seed=seed, pad_id=pad_id,
                          rank=self.rank, world_size=w, on_progress=scaled)

    def sync_state_dict(self) -> dict[str, torch.Tensor]:
        """Full weights on rank 0 (CPU), ``{}`` elsewhere. Collective: call on every rank."""
        return full_state_dict(self.model)

    def save_model(self, out_dir: str | Path) -> None:
        """Full HF weights (safetensors) + config, written by rank 0. Collective."""
        sd = self.sync_state_dict()
        if self.rank == 0:
            out_dir = Path(out_dir)
            out_dir.mkdir(parents=True, exist_ok=True)
            self.model.config.save_pretrained(str(out_dir))
            save_file({k: v.contiguous() for k, v in sd.items()},
                      str(out_dir / "model.safetensors"), metadata={"format": "pt"})
        torch.distributed.barrier()

    def save_train_state(self, ck_dir: Path) -> dict[str, Any]:
        """Model + optimiser shards into ``ck_dir/dcp`` (one ``.distcp`` file per rank);
        returns the scheduler state for rank 0's ``trainer_state.pt``. Collective."""
        import torch.distributed.checkpoint as dcp
        from torch.distributed.checkpoint.state_dict import get_state_dict

        model_sd, optim_sd = get_state_dict(self.model, self.optimizer)
        dcp.save({"model": model_sd, "optim": optim_sd}, checkpoint_id=str(Path(ck_dir) / "dcp"))
        return {"scheduler": self.scheduler.state_dict(), "world_size": self.world_size}

    def load_train_state(self, ck_dir: Path, state: dict[str, Any]) -> None:
        """Undo :meth:`save_train_state` on any world size (DCP reshards). Collective."""
        import torch.distributed.checkpoint as dcp
        from torch.distributed.checkpoint.state_dict import get_state_dict, set_state_dict

        if not (Path(ck_dir) / "dcp").is_dir():
            raise ConfigError(f"resume: {str(ck_dir)!r} has no dcp/ shards (a checkpoint of "
                              "a one-process run resumes in one process)")
        model_sd, optim_sd = get_state_dict(self.model, self.optimizer)
        sharded = {"model": model_sd, "optim": optim_sd}
        dcp.load(sharded, checkpoint_id=str(Path(ck_dir) / "dcp"))
        set_state_dict(self.model, self.optimizer, model_state_dict=sharded["model"],
                       optim_state_dict=sharded["optim"])
        self.scheduler.load_state_dict(state["scheduler"])

    def save_sharded(self, ckpt_dir: str | Path, extra: dict[str, Any] | None = None) -> Path:
        """:meth:`save_train_state` plus ``extra`` and a ``DONE`` marker (rank 0). Collective."""
        ckpt_dir = Path(ckpt_dir)
        states = self.save_train_state(ckpt_dir)
        if self.rank == 0:
            torch.save({**states, "extra": extra or {}}, ckpt_dir / "trainer_state.pt")
            (ckpt_dir / "DONE").write_text(json.dumps({"world_size": self.world_size}))
        torch.distributed.barrier()
        return ckpt_dir

    def load_sharded(self, ckpt_dir: str | Path) -> dict[str, Any]:
        """Load what :meth:`save_sharded` wrote (any world size); returns ``extra``."""
        ckpt_dir = Path(ckpt_dir)
        if not (ckpt_dir / "DONE").is_file():
            raise ConfigError(f"resume: {str(ckpt_dir)!r} is not a complete sharded checkpoint "
                              "(no DONE marker)")
        meta = torch.load(ckpt_dir / "trainer_state.pt", weights_only=False)
        self.load_train_state(ckpt_dir, meta)
        return dict(meta["extra"])
