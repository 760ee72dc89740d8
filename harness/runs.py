"""Run folders: one folder per run, never overwritten; a run's model by its folder's name.

- :func:`check_run_start`: ``train()`` (the library call and ``turngym train`` alike)
  refuses an ``out_dir`` that already holds a run (its metrics, batches, rollouts,
  TensorBoard events, wandb runs or checkpoints) unless it resumes it, before any work, so a
  second run never deletes or mixes into the first one's files (:func:`check_new_run`).
- :func:`config_changes`: what differs between a checkpoint's config and the config a run
  resumes it with; resuming with changes that alter training is refused unless
  ``checkpoint.resume_allow_changes=true`` (``--resume-changed``).
- :func:`run_model_dir`: ``model.path=RUN_DIR`` (or ``--model RUN_DIR``) names the HF model of
  the run's newest intact checkpoint (``RUN_DIR/checkpoints/step-N/model``).
"""

from __future__ import annotations

import importlib.util
import json
import logging
from pathlib import Path
from typing import Any

import yaml

from turngym.agents.models import hub_model_dir, is_hub_id
from turngym.errors import CheckpointError, ConfigError, MissingDependencyError
from turngym.harness.config import TrainConfig
from turngym.harness.learn.checkpoint import resolve_checkpoint

logger = logging.getLogger(__name__)

#: What a finished or running training run leaves in its ``out_dir``.
RUN_FILES = ("metrics.jsonl", "batches.jsonl", "rollouts.jsonl", "checkpoints", "tb", "wandb")

#: Config keys (and sections, ending in ".") a resumed run may change freely: they change
#: how long it runs, where it logs or how it is evaluated, not what it trains on.
RESUME_FREE = ("steps", "out_dir", "logging.", "checkpoint.", "eval.", "model.device",
               "rollout.step_mode", "rollout.num_workers", "distributed.timeout_min")

#: Sections typed as a union picked by their ``name`` (estimator, curriculum, task sampler):
#: when the name changes, the other settings there belong to another class, and listing each
#: of them would bury the one change that matters.
VARIANT_SECTIONS = ("algo.advantage", "curriculum", "sampler")


def check_new_run(out_dir: str | Path) -> None:
    """Raise :class:`ConfigError` when ``out_dir`` already holds a run."""
    out = Path(out_dir)
    found = [name for name in RUN_FILES if (out / name).exists()]
    if found:
        raise ConfigError(f"out_dir {str(out)!r} exists and holds a run ({', '.join(found)}): "
                          f"pass --resume {out} (from Python: train(cfg, resume={str(out)!r})) "
                          f"to continue it, or a new out_dir (out_dir={out}-2)")


def free_run_dir(out_dir: str | Path) -> Path:
    """``out_dir`` when it is missing or empty, else the first missing or empty sibling
    ``out_dir-2``, ``out_dir-3``, ... (a command that makes several runs, e.g. the
    quickstart, never writes into an earlier invocation's folder)."""
    out = Path(out_dir)
    n = 1
    while True:
        cand = out if n == 1 else out.with_name(f"{out.name}-{n}")
        if not cand.exists() or (cand.is_dir() and not any(cand.iterdir())):
            return cand
        n += 1


def check_run_start(cfg: TrainConfig, resume: str | Path | None) -> None:
    """What ``turngym.harness.train.train`` checks before any work, on every rank: a new run
    (``resume`` None) needs an ``out_dir`` that holds none (:func:`check_new_run`); a hub id
    in ``model.path`` (or the teacher's ``teacher.path``) must be in the local Hugging Face
    cache (:func:`turngym.agents.models.hub_model_dir`); ``logging.wandb.enabled`` needs wandb."""
    if resume is None:
        check_new_run(cfg.out_dir)
    paths = [("model.path", cfg.model.path)]
    if cfg.algo.uses_teacher:
        paths.append(("teacher.path", cfg.teacher.path))
    for key, value in paths:
        if value and is_hub_id(value):
            hub_model_dir(value, key)
    if cfg.logging.wandb.enabled and importlib.util.find_spec("wandb") is None:
        raise MissingDependencyError("logging.wandb.enabled=true needs wandb: "
                                     "pip install 'turngym[wandb]'")


def _flatten(data: Any, prefix: str = "") -> dict[str, Any]:
    if isinstance(data, dict) and data:
        out: dict[str, Any] = {}
        for k, v in data.items():
            out.update(_flatten(v, f"{prefix}{k}."))
        return out
    return {prefix[:-1]: data}


def config_changes(saved: dict[str, Any], current: dict[str, Any]) -> list[str]:
    """``KEY: OLD -> NEW`` for each dotted key whose value differs (sorted; keys in
    :data:`RESUME_FREE` are left out; a :data:`VARIANT_SECTIONS` section whose ``name``
    changed is one line)."""
    a, b = _flatten(saved), _flatten(current)
    switched = [s for s in VARIANT_SECTIONS if a.get(f"{s}.name") != b.get(f"{s}.name")]
    out = []
    for key in sorted(set(a) | set(b)):
        if any(key == f or (f.endswith(".") and key.startswith(f)) for f in RESUME_FREE):
            continue
        section = next((s for s in switched if key.startswith(f"{s}.")), None)
        if section is not None:  # one line for a switched variant, not one per setting
            if key == f"{section}.name":
                out.append(f"{key}: {a.get(key)!r} -> {b.get(key)!r} (with its own "
                           f"{section}.* settings)")
            continue
        if a.get(key) != b.get(key):
            out.append(f"{key}: {a.get(key)!r} -> {b.get(key)!r}")
    return out


def check_resume_config(ck: Path, cfg: TrainConfig) -> list[str]:
    """Compare checkpoint ``ck``'s ``config.yaml`` with ``cfg``; raise
    :class:`CheckpointError` listing the differences unless
    ``cfg.checkpoint.resume_allow_changes`` (then log them); return them."""
    path = Path(ck) / "config.yaml"
    text = path.read_text() if path.is_file() else ""
    if not text.strip():
        return []
    saved = yaml.safe_load(text) or {}
    changes = config_changes(saved, json.loads(cfg.model_dump_json()))
    if changes and not cfg.checkpoint.resume_allow_changes:
        raise CheckpointError(
            f"resume: the config differs from the checkpoint's ({path}): {'; '.join(changes)}."
            " Resume with the same config, or pass --resume-changed "
            "(checkpoint.resume_allow_changes=true) to continue with the new values")
    if changes:
        logger.warning("resuming %s with a changed config: %s", ck, "; ".join(changes))
    return changes


def resolve_run_paths(cfg: TrainConfig) -> None:
    """``model.path`` / ``teacher.path`` naming a training run become its newest intact
    model dir (:func:`run_model_dir`), in place. ``train`` and ``run_sft`` call it first,
    before any work, so the run's ``config.yaml`` records the model actually loaded."""
    cfg.model.path = run_model_dir(cfg.model.path) or cfg.model.path
    cfg.teacher.path = run_model_dir(cfg.teacher.path)


def run_model_dir(path: str | None) -> str | None:
    """``path`` itself unless it is a training run (or its ``checkpoints`` dir, or one
    ``step-N`` dir) rather than a model dir; then the ``model/`` of its newest intact
    checkpoint (:func:`turngym.harness.learn.checkpoint.resolve_checkpoint`)."""
    if path is None or path in ("default", "tiny"):
        return path
    p = Path(path).expanduser()
    if (p / "config.json").is_file() or not p.is_dir():
        return path
    if not ((p / "checkpoints").is_dir() or (p / "latest").is_file()
            or (p / "model" / "config.json").is_file()):
        return path
    model = resolve_checkpoint(p) / "model"
    if not (model / "config.json").is_file():
        raise CheckpointError(f"{path}: its checkpoint {model.parent} has no model/config.json")
    logger.info("model %s: %s", path, model)
    return str(model)
