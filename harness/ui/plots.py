"""A run's ``metrics.jsonl`` read back, and the matplotlib figures drawn from it: the run's
``curves.png`` (written by the train loop) and the HTML report's
(:mod:`turngym.harness.eval.report`); whole-number step ticks, constant series drawn flat."""

from __future__ import annotations

import json
import math
from pathlib import Path
from types import ModuleType
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from matplotlib.axis import Axis
    from matplotlib.figure import Figure


def pyplot() -> ModuleType:
    """``matplotlib.pyplot`` on the Agg backend (no display needed)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def integer_ticks(axis: Axis) -> None:
    """Ticks only at whole numbers on ``axis`` (``ax.xaxis``): steps, turns and episode
    counts are integers, so a tick at 1.5 would name a step that does not exist."""
    from matplotlib.ticker import MaxNLocator

    axis.set_major_locator(MaxNLocator(integer=True))


def steady_ylim(values: list[float]) -> tuple[float, float] | None:
    """y-limits for a series that is constant up to float noise (spread under
    ``1e-12 * max(1, |value|)``): centred on it, 10% of ``max(1, |value|)`` either way, so
    it is drawn flat. None for a series that moves (autoscale draws it)."""
    lo, hi = min(values), max(values)
    mid = (lo + hi) / 2
    scale = max(1.0, abs(mid))
    if hi - lo >= 1e-12 * scale:
        return None
    return mid - 0.1 * scale, mid + 0.1 * scale


def draw_curves(rows: list[dict[str, Any]], keys: tuple[str, ...]) -> Figure | None:
    """A figure of the training curves in ``rows`` (``metrics.jsonl``), one panel per key
    that has values, with whole-number step ticks and constant series drawn flat; None
    when no key has a value."""
    present = [k for k in keys if any(r.get(k) is not None for r in rows)]
    if not present:
        return None
    plt = pyplot()
    cols = min(4, len(present))
    nrows = math.ceil(len(present) / cols)
    fig, axes = plt.subplots(nrows, cols, figsize=(4 * cols, 3 * nrows), squeeze=False)
    for ax, key in zip(axes.flat, present):
        pts = [(r["step"], r[key]) for r in rows if r.get(key) is not None]
        xs, ys = [p[0] for p in pts], [float(p[1]) for p in pts]
        ax.plot(xs, ys, marker="o", markersize=3)
        integer_ticks(ax.xaxis)
        if len(set(xs)) == 1:  # one step: whole-number neighbours, not a 0.02-wide axis
            ax.set_xlim(xs[0] - 1, xs[0] + 1)
        if (ylim := steady_ylim(ys)) is not None:
            ax.set_ylim(*ylim)
        ax.set_title(key)
        ax.set_xlabel("step")
    for ax in list(axes.flat)[len(present):]:
        ax.axis("off")
    fig.tight_layout()
    return fig


def read_metrics(path: str | Path) -> list[dict[str, Any]]:
    """Read ``metrics.jsonl`` back."""
    p = Path(path)
    return [json.loads(line) for line in p.read_text().splitlines() if line.strip()]


PLOT_KEYS = ("env/success", "eval/success", "env/return", "rollout/invalid_rate",
             "algo/loss", "algo/entropy", "algo/kl_ref", "algo/pg_clip_frac")


def plot_curves(metrics_path: str | Path, png_path: str | Path,
                keys: tuple[str, ...] = PLOT_KEYS) -> Path | None:
    """Plot the training curves in ``metrics.jsonl`` to a PNG (one panel per key)."""
    fig = draw_curves(read_metrics(metrics_path), keys)
    if fig is None:
        return None
    plt = pyplot()
    fig.savefig(png_path, dpi=80)
    plt.close(fig)
    return Path(png_path)
