"""Atomic training checkpoints that resume exactly.

A checkpoint is a directory ``OUT/checkpoints/step-000007/``:

- ``model/``: HF-loadable full weights (safetensors) + config + tokenizer, usable as a
  teacher, an eval model or the start of another run;
- ``policy.safetensors``: the raw trainable module's weights (LoRA adapters included), which
  is what ``--resume`` loads (the FSDP learner writes ``dcp/``, one shard file per rank,
  instead, and its optimizer state there too);
- ``trainer_state.pt``: optimizer, LR scheduler, curriculum and task-sampler state, RNG
  states (python, numpy, torch) and the step;
- ``config.yaml``: the resolved config.

It is written to a temporary directory and renamed into place, then ``OUT/checkpoints/latest``
is rewritten (also by rename), so a run killed at any moment leaves either the previous or the
new checkpoint, never half of one.
"""

from __future__ import annotations

import logging
import os
import random
import shutil
from pathlib import Path
from typing import Any

import numpy as np
import torch

from envs.errors import CheckpointError

logger = logging.getLogger(__name__)


def rng_state() -> dict[str, Any]:
    """Python, numpy (global) and torch RNG states."""
    return {"python": random.getstate(), "numpy": np.random.get_state(),
            "torch": torch.get_rng_state()}


def set_rng_state(state: dict[str, Any]) -> None:
    random.setstate(state["python"])
    np.random.set_state(state["numpy"])
    torch.set_rng_state(state["torch"])


def save_checkpoint(out_dir: str | Path, step: int, learner: Any, extra: dict[str, Any],
                    *, config_yaml: str = "", tokenizer: Any = None, keep: int = 2) -> Path:
    """Write checkpoint ``step`` under ``out_dir/checkpoints`` atomically; returns its path.

    With the FSDP learner under torchrun (:mod:`harness.distributed.leader`) the learner
    calls are collective: every rank writes its shards into the temporary directory before
    the rename (the directory must be on a filesystem all ranks share)."""
    root = Path(out_dir) / "checkpoints"
    root.mkdir(parents=True, exist_ok=True)
    final = root / f"step-{step:06d}"
    tmp = root / f".step-{step:06d}.tmp"
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir()
    learner.save_model(tmp / "model")
    if tokenizer is not None:
        tokenizer.save_pretrained(str(tmp / "model"))
    states = learner.save_train_state(tmp)
    torch.save({"step": step, **states, "rng": rng_state(), **extra}, tmp / "trainer_state.pt")
    (tmp / "config.yaml").write_text(config_yaml)
    if final.exists():
        shutil.rmtree(final)
    os.replace(tmp, final)
    latest_tmp = root / ".latest.tmp"
    latest_tmp.write_text(final.name)
    os.replace(latest_tmp, root / "latest")
    _prune(root, keep)
    logger.info("checkpoint %s", final)
    return final


def _prune(root: Path, keep: int) -> None:
    steps = sorted(p for p in root.glob("step-*") if p.is_dir())
    for old in steps[:-keep]:
        shutil.rmtree(old, ignore_errors=True)


def find_checkpoint(path: str | Path) -> Path:
    """Resolve a run dir, a ``checkpoints`` dir or a ``step-N`` dir to one checkpoint."""
    p = Path(path)
    for cand in (p, p / "checkpoints"):
        if (cand / "trainer_state.pt").is_file():
            return cand
        latest = cand / "latest"
        if latest.is_file():
            ck = cand / latest.read_text().strip()
            if (ck / "trainer_state.pt").is_file():
                return ck
    raise CheckpointError(f"no checkpoint under {str(p)!r}: expected a run dir with "
                          "checkpoints/latest or a step-N dir with trainer_state.pt")


def load_checkpoint(path: str | Path, learner: Any) -> dict[str, Any]:
    """Load weights, optimizer and scheduler into ``learner``, restore RNGs; return the state
    dict (``step``, curriculum/sampler states, ...)."""
    ck = find_checkpoint(path)
    state = torch.load(ck / "trainer_state.pt", weights_only=False)
    learner.load_train_state(ck, state)
    set_rng_state(state["rng"])
    logger.info("resumed from %s (step %d)", ck, state["step"])
    return state
