"""``turngym train`` under ``torchrun``: rank 0 leads, the other ranks follow.

Rank 0 runs the whole training loop (:func:`turngym.harness.train.train`): rollouts, scoring,
advantages, logging, evaluation and checkpoint bookkeeping. Its learner is a
:class:`LeaderLearner`, which forwards every learner call to the other ranks before running
it itself; those ranks sit in :func:`follow` and run the same call on their own shard of the
:class:`~turngym.harness.distributed.fsdp.FSDPLearner`. So the PPO update, the weight gather for the
rollout backend and the sharded checkpoint writes are collective, and everything else is
rank 0 alone. The samples travel with the ``update`` call (``broadcast_object_list``), so
every rank trains on the same samples with the same shuffling seed
(:func:`turngym.harness.learn.learner.ppo_update` with ``rank`` / ``world_size``).

Followers wait in a broadcast while rank 0 rolls out and evaluates; the process group's
timeout (``distributed.timeout_min``) must exceed the longest such phase.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import TYPE_CHECKING, Any

import torch
import torch.distributed as dist

from turngym.errors import ConfigError
from turngym.harness.distributed.fsdp import FSDPLearner
from turngym.harness.learn.learner import Learner

if TYPE_CHECKING:
    from turngym.harness.config import TrainConfig

logger = logging.getLogger(__name__)

#: The learner calls rank 0 forwards (each is collective on the FSDP learner).
COMMANDS = ("update", "sync_state_dict", "save_model", "save_train_state", "load_train_state")


def _broadcast(obj: Any) -> Any:
    box = [obj]
    dist.broadcast_object_list(box, src=0)
    return box[0]


class LeaderLearner:
    """Rank 0's learner: each call in :data:`COMMANDS` is broadcast, then run locally."""

    def __init__(self, inner: FSDPLearner):
        self.inner = inner

    def __getattr__(self, name: str) -> Any:
        if name in COMMANDS:
            def collective(*args: Any, **kwargs: Any) -> Any:
                _broadcast((name, args, kwargs))
                return getattr(self.inner, name)(*args, **kwargs)
            return collective
        return getattr(self.inner, name)  # model, optimizer, scheduler, cfg, ...

    def close(self) -> None:
        """Release the followers (they return from :func:`follow`)."""
        _broadcast(("stop", (), {}))


def follow(inner: FSDPLearner) -> int:
    """Run rank 0's learner calls on this rank until it sends ``stop``; returns the count."""
    n = 0
    while True:
        name, args, kwargs = _broadcast(None)
        if name == "stop":
            return n
        getattr(inner, name)(*args, **kwargs)
        n += 1


def check_torchrun_config(cfg: TrainConfig) -> None:
    """What the torchrun path does not support fails before any work, naming the key."""
    if cfg.lora.enabled:
        raise ConfigError("lora.enabled: the FSDP learner under torchrun trains full weights; "
                          "set lora.enabled=false or run one process")
    if cfg.distributed.async_staleness:
        raise ConfigError("distributed.async_staleness: asynchronous mode runs in one process; "
                          "set it to 0 under torchrun")
    if cfg.algo.uses_critic:
        raise ConfigError("algo.name=ppo: the value head runs in one process; the FSDP "
                          "learner under torchrun has none")


def build_learner(model_dir: Path | None, cfg: TrainConfig, world: tuple[int, int, torch.device]
                  ) -> Learner | LeaderLearner:
    """The trainer's learner. One process: a plain
    :class:`turngym.harness.learn.learner.Learner`. Under torchrun with W > 1 ranks: rank 0
    (``model_dir`` given) broadcasts the resolved model dir, every rank builds its FSDP
    shard, and rank 0 gets a :class:`LeaderLearner`; other ranks (``model_dir=None``) get
    their plain :class:`FSDPLearner` to :func:`follow`.
    """
    rank, world_size, device = world
    if world_size == 1:
        return Learner(model_dir, cfg)
    model_dir = Path(_broadcast(str(model_dir) if rank == 0 else None))
    inner = FSDPLearner(model_dir, cfg, rank=rank, world_size=world_size, device=device)
    logger.info("rank %d/%d: FSDP learner on %s", rank, world_size, device)
    return LeaderLearner(inner) if rank == 0 else inner
