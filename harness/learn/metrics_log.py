"""Training metrics: JSONL + TensorBoard (+ wandb, ``logging.wandb``) + a PNG of curves.

Keys are namespaced (``env/success``, ``rollout/turns``, ``algo/step_group_size``,
``train/clip_frac``, ``time/rollout_s``, ``eval/success``); the full table is in
``docs/training.md``. The ``env/`` and ``rollout/`` numbers of a batch of trajectories come
from :func:`turngym.harness.rollout.summary.summarize`.
"""

from __future__ import annotations

import json
import logging
import math
import netrc
import os
from collections.abc import Iterable
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

import numpy as np
import yaml

from turngym.errors import MissingDependencyError
from turngym.harness.config import WandbConfig
from turngym.harness.rollout.trajectory import Group, Trajectory, write_jsonl

if TYPE_CHECKING:
    from torch.utils.tensorboard import SummaryWriter
    from wandb.sdk.wandb_run import Run as WandbRun

logger = logging.getLogger(__name__)


class MetricsLogger:
    """Write one JSON line per step to ``metrics.jsonl``, TensorBoard scalars, wandb.

    Each sink gets the run's resolved ``config`` once: TensorBoard as a text summary at
    step 0 (``tb/config-logged`` marks it, so a resumed run does not add a second one), wandb
    as ``config=`` when its run is created; a resumed run continues the wandb run whose id
    is kept in ``wandb/run-id`` (``resume="allow"``), so its curves go on."""

    def __init__(self, out_dir: str | Path, *, tensorboard: bool = True,
                 wandb: WandbConfig | bool | None = None,
                 config: dict[str, Any] | None = None, resume: bool = False,
                 resume_step: int | None = None):
        """``wandb``: a :class:`turngym.harness.config.WandbConfig` (``True``: its defaults; None or
        disabled: no wandb). ``resume``: append to ``metrics.jsonl`` instead of starting it
        again; ``resume_step``: also drop its rows (and TensorBoard's points) after that
        step, which a run killed after its last checkpoint had logged."""
        self.out_dir = Path(out_dir)
        self.out_dir.mkdir(parents=True, exist_ok=True)
        self.path = self.out_dir / "metrics.jsonl"
        if not resume and self.path.exists():
            self.path.unlink()
        if resume and resume_step is not None:
            truncate_steps(self.path, resume_step)
        self._tb = None
        if tensorboard:
            purge = resume_step + 1 if resume and resume_step is not None else None
            self._tb = self._open_tensorboard(config, resume, purge)
        if wandb is True:
            wandb = WandbConfig(enabled=True)
        self._wandb = None
        if wandb and wandb.enabled and wandb_mode(wandb.mode) != "disabled":
            self._wandb = self._open_wandb(wandb, config, resume)

    def _open_tensorboard(self, config: dict[str, Any] | None, resume: bool,
                          purge: int | None) -> SummaryWriter | None:
        try:
            from torch.utils.tensorboard import SummaryWriter
        except ImportError:
            logger.warning("tensorboard is not installed; skipping event files")
            return None
        tb = SummaryWriter(str(self.out_dir / "tb"), purge_step=purge)
        marker = self.out_dir / "tb" / TB_CONFIG_MARKER
        if config is not None and not (resume and marker.exists()):
            tb.add_text("config", config_text(config), 0)
            tb.flush()
            marker.write_text("the run's config is in these event files (text, step 0)\n")
        return tb

    def _open_wandb(self, wcfg: WandbConfig, config: dict[str, Any] | None, resume: bool
                    ) -> WandbRun:
        try:
            import wandb as wb
        except ImportError:
            raise MissingDependencyError("logging.wandb.enabled=true needs wandb: "
                                         "pip install 'turngym[wandb]'") from None
        id_file = self.out_dir / "wandb" / "run-id"
        run_id = id_file.read_text().strip() if resume and id_file.is_file() else None
        mode = wandb_mode(wcfg.mode)
        # wandb's banners (and its tips, printed by setup) only at the INFO level (-v)
        settings = wb.Settings(silent=not logger.isEnabledFor(logging.INFO))
        wb.setup(settings=settings)
        # reinit="create_new": a run of the caller's own (or of a crashed train() in this
        # process) is neither reused nor finished
        run = wb.init(project=wcfg.project, entity=wcfg.entity,
                      name=wcfg.name or self.out_dir.resolve().name, tags=list(wcfg.tags),
                      mode=mode, dir=str(self.out_dir), id=run_id,
                      resume="allow" if run_id else None,
                      config=None if run_id else dict(config or {}), reinit="create_new",
                      settings=settings)
        if run_id is None:
            id_file.parent.mkdir(parents=True, exist_ok=True)
            id_file.write_text(f"{run.id}\n")
        logger.info("wandb run %s (%s): %s", run.id, mode,
                    run.url if mode == "online" else self.out_dir / "wandb")
        return run

    def log(self, step: int, metrics: dict[str, float]) -> None:
        """Record ``metrics`` at ``step`` in every sink."""
        clean = {k: float(v) for k, v in metrics.items()
                 if isinstance(v, (int, float, np.floating, np.integer))}
        with self.path.open("a") as f:
            f.write(json.dumps({"step": step, **{k: (v if math.isfinite(v) else None)
                                                 for k, v in clean.items()}}) + "\n")
        if self._tb is not None:
            for k, v in clean.items():
                self._tb.add_scalar(k, v, step)
            self._tb.flush()
        if self._wandb is not None:
            self._wandb.log(clean, step=step)

    def close(self) -> None:
        if self._tb is not None:
            self._tb.close()
            self._tb = None
        if self._wandb is not None:
            self._wandb.finish()
            self._wandb = None


#: In ``OUT_DIR/tb``: the config's text summary was written there (not again on resume).
TB_CONFIG_MARKER = "config-logged"

#: ``logging.wandb.mode`` values; wandb's old ``$WANDB_MODE`` names map onto them.
WANDB_MODES = {"online": "online", "offline": "offline", "disabled": "disabled",
               "run": "online", "dryrun": "offline"}


def config_text(config: dict[str, Any]) -> str:
    """``config`` as YAML in a Markdown code block (TensorBoard's text summaries render
    Markdown)."""
    text = yaml.safe_dump(json.loads(json.dumps(config, default=str)), sort_keys=False)
    return "\n".join(f"    {line}" for line in text.splitlines())


def wandb_credentials() -> bool:
    """Whether wandb would find an API key: ``$WANDB_API_KEY`` or a netrc entry (``$NETRC``,
    else ``~/.netrc``) for the W&B host (``$WANDB_BASE_URL``, else ``api.wandb.ai``)."""
    if os.environ.get("WANDB_API_KEY"):
        return True
    host = urlsplit(os.environ.get("WANDB_BASE_URL") or "https://api.wandb.ai").netloc
    path = os.environ.get("NETRC") or os.path.join(os.path.expanduser("~"), ".netrc")
    try:
        auth = netrc.netrc(path).authenticators(host)
    except (OSError, netrc.NetrcParseError):
        return False
    return bool(auth and auth[2])


def wandb_mode(mode: str | None) -> str:
    """``logging.wandb.mode`` as the run uses it: itself when set; else ``$WANDB_MODE`` when
    it names a mode; else ``online`` with W&B credentials (:func:`wandb_credentials`) and
    ``offline`` without."""
    if mode is not None:
        return mode
    env = WANDB_MODES.get(os.environ.get("WANDB_MODE", "").strip().lower())
    if env is not None:
        return env
    return "online" if wandb_credentials() else "offline"


def truncate_steps(path: str | Path, step: int) -> int:
    """Keep only the JSONL rows of ``path`` whose ``step`` is at most ``step`` (rewritten by
    rename; a torn last line is dropped too); return how many rows were dropped."""
    p = Path(path)
    if not p.is_file():
        return 0
    keep, dropped = [], 0
    for line in p.read_text().splitlines():
        try:
            row_step = json.loads(line).get("step") if line.strip() else None
        except ValueError:  # the line a killed writer left half written
            row_step = math.inf
        if row_step is None or row_step <= step:
            keep.append(line)
        else:
            dropped += 1
    if dropped:
        tmp = p.with_name(f".{p.name}.tmp")
        tmp.write_text("".join(f"{line}\n" for line in keep if line.strip()))
        tmp.replace(p)
        logger.info("%s: dropped %d rows after step %d", p, dropped, step)
    return dropped


def sample_rollouts(groups: Iterable[Group], keep: int | str) -> list[Trajectory]:
    """The trajectories of one step that ``logging.rollouts`` keeps: ``"all"``, none (0), or
    the first ``keep`` taken one per group in turn (each group's first, then each group's
    second, ...), so that a small sample shows as many tasks as it can."""
    groups = list(groups)
    if keep == "all":
        return [t for g in groups for t in g.trajectories]
    out: list[Trajectory] = []
    depth = max((len(g.trajectories) for g in groups), default=0)
    for i in range(depth):
        for g in groups:
            if len(out) >= int(keep):
                return out
            if i < len(g.trajectories):
                out.append(g.trajectories[i])
    return out


def log_rollouts(path: str | Path, groups: Iterable[Group], step: int, keep: int | str) -> int:
    """Append :func:`sample_rollouts` of a step to ``path`` (``rollouts.jsonl``) in the
    format of ``turngym eval``'s ``trajectories.jsonl`` plus ``"step"``; on resume the
    trainer cuts it with :func:`truncate_steps`. Returns how many were written."""
    chosen = sample_rollouts(groups, keep)
    return write_jsonl(path, chosen, append=True, extra={"step": step}) if chosen else 0


