"""Atomic training checkpoints that resume exactly.

A checkpoint is a directory ``OUT/checkpoints/step-000007/``:

- ``model/``: HF-loadable full weights (safetensors) + config + tokenizer, usable as a
  teacher, an eval model or the start of another run;
- ``policy.safetensors``: the raw trainable module's weights (LoRA adapters included), which
  is what ``--resume`` loads;
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
    """Write checkpoint ``step`` under ``out_dir/checkpoints`` atomically; returns its path."""
    from safetensors.torch import save_model

    root = Path(out_dir) / "checkpoints"
    root.mkdir(parents=True, exist_ok=True)
    final = root / f"step-{step:06d}"
    tmp = root / f".step-{step:06d}.tmp"
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir()
    learner.save_model(tmp / "model")
    if tokenizer is not None:
        tokenizer.save_pretrained(str(tmp / "model"))
    save_model(learner.model, str(tmp / "policy.safetensors"))
    torch.save({"step": step, "optimizer": learner.optimizer.state_dict(),
                "scheduler": learner.scheduler.state_dict(), "rng": rng_state(), **extra},
               tmp / "trainer_state.pt")
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
    from safetensors.torch import load_model

    ck = find_checkpoint(path)
    try:
        load_model(learner.model, str(ck / "policy.safetensors"))
    except (RuntimeError, KeyError) as exc:
        raise CheckpointError(f"{ck}: weights do not match the configured model "
                              f"(model.path / lora settings differ?): {exc}") from None
    state = torch.load(ck / "trainer_state.pt", weights_only=False)
    learner.optimizer.load_state_dict(state["optimizer"])
    learner.scheduler.load_state_dict(state["scheduler"])
    set_rng_state(state["rng"])
    logger.info("resumed from %s (step %d)", ck, state["step"])
    return state
