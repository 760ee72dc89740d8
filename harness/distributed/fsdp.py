"""The learner under ``torchrun`` with FSDP2 (``torch.distributed.fsdp.fully_shard``).

Launch (one node, two ranks)::

    torchrun --standalone --nproc_per_node 2 -m harness.distributed.fsdp_check --out DIR

Across nodes: ``torchrun --nnodes N --node_rank R --nproc_per_node G
--rdzv_backend c10d --rdzv_endpoint HOST:29500 ...`` (docs/scale-out.md).

* Process group: NCCL on GPU, gloo on CPU (:func:`init_distributed`).
* Sharding: every decoder layer is its own FSDP unit, then the root module; parameters are
  DTensors sharded over ranks, gathered for forward/backward and re-sharded after.
* Gradient accumulation across ranks: every rank gets the *same* samples and shuffling
  seed and trains on ``mini[rank::world]`` of each mini-batch
  (:func:`harness.learner.ppo_update` with ``rank``/``world_size``). Loss shares are
  relative to the whole mini-batch, so W ranks x A micro-batches give the gradient of one
  rank with W x A micro-batches (tested to float tolerance).
* Checkpoints: :meth:`FSDPLearner.save_sharded` writes model + optimiser shards with
  ``torch.distributed.checkpoint`` (one file per rank, resharding on load allowed) plus the
  scheduler and caller state on rank 0; :meth:`FSDPLearner.load_sharded` resumes them.
* Weight sync: :meth:`FSDPLearner.sync_state_dict` all-gathers the full weights onto rank 0
  (:mod:`harness.distributed.weight_sync`).
"""

from __future__ import annotations

import json
import logging
import os
from pathlib import Path
from typing import Any

import torch

from envs.errors import ConfigError
from harness.learner import Learner, ppo_update

logger = logging.getLogger(__name__)


def init_distributed() -> tuple[int, int, torch.device]:
    """Join the ``torchrun`` process group (env ``RANK``/``WORLD_SIZE``); NCCL on GPU, gloo
    on CPU. Returns ``(rank, world_size, device)``. Outside torchrun: ``(0, 1, device)``."""
    import torch.distributed as dist

    cuda = torch.cuda.is_available()
    local = int(os.environ.get("LOCAL_RANK", "0"))
    device = torch.device(f"cuda:{local}") if cuda else torch.device("cpu")
    if "WORLD_SIZE" not in os.environ:
        return 0, 1, device
    if not dist.is_initialized():
        if cuda:
            torch.cuda.set_device(device)
        dist.init_process_group(backend="nccl" if cuda else "gloo")
    return dist.get_rank(), dist.get_world_size(), device


def shard_model(model: Any, device: torch.device) -> Any:
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
    """:class:`harness.learner.Learner` with its model sharded by FSDP2 over all ranks."""

    def __init__(self, model_dir: str | Path, cfg: Any, *, rank: int, world_size: int,
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

    def update(self, samples: list[Any], loss_cfg: Any, *, seed: int, pad_id: int
               ) -> dict[str, float]:
        """One PPO update on this rank's share (same ``samples`` and ``seed`` on all ranks)."""
        return ppo_update(self, samples, loss_cfg, seed=seed, pad_id=pad_id,
                          rank=self.rank, world_size=self.world_size)

    def sync_state_dict(self) -> dict[str, torch.Tensor]:
        """Full weights on rank 0 (CPU), ``{}`` elsewhere. Collective: call on every rank."""
        from harness.distributed.weight_sync import full_state_dict

        return full_state_dict(self.model)

    def save_sharded(self, ckpt_dir: str | Path, extra: dict[str, Any] | None = None) -> Path:
        """Save model + optimiser shards (DCP) and scheduler/``extra`` (rank 0). Collective."""
        import torch.distributed.checkpoint as dcp
        from torch.distributed.checkpoint.state_dict import get_state_dict

        ckpt_dir = Path(ckpt_dir)
        model_sd, optim_sd = get_state_dict(self.model, self.optimizer)
        dcp.save({"model": model_sd, "optim": optim_sd}, checkpoint_id=str(ckpt_dir / "dcp"))
        if self.rank == 0:
            torch.save({"scheduler": self.scheduler.state_dict(), "extra": extra or {},
                        "world_size": self.world_size}, ckpt_dir / "trainer_state.pt")
            (ckpt_dir / "DONE").write_text(json.dumps({"world_size": self.world_size}))
        torch.distributed.barrier()
        return ckpt_dir

    def load_sharded(self, ckpt_dir: str | Path) -> dict[str, Any]:
        """Load what :meth:`save_sharded` wrote (any world size); returns ``extra``."""
        import torch.distributed.checkpoint as dcp
        from torch.distributed.checkpoint.state_dict import get_state_dict, set_state_dict

        ckpt_dir = Path(ckpt_dir)
        if not (ckpt_dir / "DONE").is_file():
            raise ConfigError(f"resume: {str(ckpt_dir)!r} is not a complete sharded checkpoint "
                              "(no DONE marker)")
        model_sd, optim_sd = get_state_dict(self.model, self.optimizer)
        state = {"model": model_sd, "optim": optim_sd}
        dcp.load(state, checkpoint_id=str(ckpt_dir / "dcp"))
        set_state_dict(self.model, self.optimizer, model_state_dict=state["model"],
                       optim_state_dict=state["optim"])
        meta = torch.load(ckpt_dir / "trainer_state.pt", weights_only=False)
        self.scheduler.load_state_dict(meta["scheduler"])
        return dict(meta["extra"])
