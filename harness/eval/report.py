"""A self-contained HTML report of eval and training run dirs.

A run dir is an eval run (``results.json`` + ``trajectories.jsonl`` written by
``turngym eval``), a training run (``metrics.jsonl`` and ``rollouts.jsonl`` written by
``turngym train``), or both. The report (:func:`build_report`) holds:

* tables: per entry success with 95% CIs, pass@k, turns, invalid rate, stop reasons,
  tokens, wall time and cost per episode; success per task type; for a training run, the
  last logged value of every metric key and the step it was logged at (eval keys are
  logged only on eval steps, so the last line alone would miss them);
* plots as base64 PNGs (matplotlib): success per task type with CI error bars, turn-length
  histograms, and training curves when a training run is given; steps, turns and counts
  get whole-number ticks, and a series that is constant up to float noise is drawn flat
  (:func:`turngym.harness.ui.plots.steady_ylim`), not stretched until its noise looks like movement;
* a trajectory viewer (vanilla JS, episodes embedded as JSON): pick an episode, step
  through its turns, see prompt, response, action, reward, validity and ``state_key``.
  It holds the eval trajectories and the training rollouts (the newest ``max_episodes``,
  labelled with their step).

Nothing is fetched when the page opens: no external scripts, fonts or images.
"""

from __future__ import annotations

import base64
import html
import io
import json
import logging
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

from turngym.errors import ConfigError
from turngym.harness.rollout.trajectory import Trajectory, read_jsonl
from turngym.harness.ui.plots import PLOT_KEYS, draw_curves, integer_ticks, pyplot, read_metrics

if TYPE_CHECKING:
    from matplotlib.figure import Figure

logger = logging.getLogger(__name__)

TEMPLATE = Path(__file__).with_name("report_template.html")
#: Longest prompt/observation text embedded per turn (characters; the rest is cut).
MAX_TEXT = 12000


# ---------------------------------------------------------------- loading
def read_rollouts(path: str | Path) -> list[tuple[int, Trajectory]]:
    """``(step, trajectory)`` for each line of a training run's ``rollouts.jsonl``; a torn
    last line (a killed writer) is skipped."""
    out = []
    with Path(path).open(encoding="utf-8") as f:
        for line in f:
            try:
                row = json.loads(line) if line.strip() else None
            except ValueError:
                continue
            if row is not None:
                out.append((int(row.get("step", 0)), Trajectory.from_dict(row)))
    return out


def last_values(rows: list[dict[str, Any]]) -> dict[str, tuple[float, int]]:
    """``{key: (last non-null value, its step)}`` over every row of ``metrics.jsonl``."""
    last: dict[str, tuple[float, int]] = {}
    for row in rows:
        for key, value in row.items():
            if key != "step" and isinstance(value, (int, float)):
                last[key] = (float(value), int(row.get("step", 0)))
    return dict(sorted(last.items()))


def load_run(run_dir: str | Path) -> dict[str, Any]:
    """``{"name", "results", "trajectories", "metrics", "metrics_path", "rollouts"}`` of a
    run dir (missing parts None or empty)."""
    d = Path(run_dir)
    if not d.is_dir():
        raise ConfigError(f"run dir {str(d)!r} does not exist")
    res, traj, met = d / "results.json", d / "trajectories.jsonl", d / "metrics.jsonl"
    rollouts = d / "rollouts.jsonl"
    if not res.exists() and not met.exists():
        raise ConfigError(f"{d} has neither results.json (turngym eval) nor metrics.jsonl "
                          "(turngym train)")
    return {"name": d.name or str(d),
            "results": json.loads(res.read_text()) if res.exists() else None,
            "trajectories": list(read_jsonl(traj)) if traj.exists() else [],
            "metrics": read_metrics(met) if met.exists() else None,
            "metrics_path": met if met.exists() else None,
            "rollouts": read_rollouts(rollouts) if rollouts.exists() else []}


# ---------------------------------------------------------------- plots
def _png(fig: Figure, alt: str = "plot") -> str:
    import matplotlib.pyplot as plt

    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=80)
    plt.close(fig)
    return (f'<img class="plot" alt="{html.escape(alt)}" src="data:image/png;base64,'
            + base64.b64encode(buf.getvalue()).decode() + '">')


def plot_task_types(results: dict[str, Any], title: str) -> str:
    """Bars of success per (entry, task type) with 95% Wilson error bars."""
    plt = pyplot()
    labels, rates, lo, hi = [], [], [], []
    for name, e in results["entries"].items():
        for t, b in e["by_type"].items():
            s = b["success"]
            labels.append(f"{name}/{t}")
            rates.append(s["rate"])
            lo.append(s["rate"] - s["ci95"][0])
            hi.append(s["ci95"][1] - s["rate"])
    fig, ax = plt.subplots(figsize=(max(5, 0.55 * len(labels) + 2), 3.6))
    ax.bar(range(len(labels)), rates, yerr=[lo, hi], capsize=3, color="#4c78a8")
    ax.set_xticks(range(len(labels)), labels, rotation=45, ha="right", fontsize=8)
    ax.set_ylim(0, 1.05)
    ax.set_ylabel("success")
    ax.set_title(title)
    fig.tight_layout()
    return _png(fig)


def plot_turn_hist(results: dict[str, Any], title: str) -> str:
    """Histogram of episode lengths (turns), one series per entry."""
    plt = pyplot()
    fig, ax = plt.subplots(figsize=(6, 3.2))
    for name, e in results["entries"].items():
        hist = {int(k): v for k, v in e.get("turns_hist", {}).items()}
        if hist:
            xs = sorted(hist)
            ax.bar(xs, [hist[x] for x in xs], alpha=0.6, label=name)
    integer_ticks(ax.xaxis)
    integer_ticks(ax.yaxis)
    ax.set_xlabel("turns per episode")
    ax.set_ylabel("episodes")
    ax.set_title(title)
    if results["entries"]:
        ax.legend(fontsize=8)
    fig.tight_layout()
    return _png(fig)


def plot_training(metrics_path: Path) -> str | None:
    """The training curves of ``metrics.jsonl`` (the keys of
    :data:`turngym.harness.ui.plots.PLOT_KEYS`, drawn by :func:`draw_curves`)."""
    fig = draw_curves(read_metrics(metrics_path), PLOT_KEYS)
    if fig is None:
        return None
    return _png(fig, alt="training curves")


# ---------------------------------------------------------------- tables
def _ci(s: dict[str, Any]) -> str:
    return f"{s['rate']:.1%} [{s['ci95'][0]:.1%}, {s['ci95'][1]:.1%}]"


def _table(head: list[str], rows: list[list[str]]) -> str:
    th = "".join(f'<th class="{"l" if i == 0 else ""}">{html.escape(h)}</th>'
                 for i, h in enumerate(head))
    body = "".join("<tr>" + "".join(f'<td class="{"l" if i == 0 else ""}">{html.escape(c)}</td>'
                                    for i, c in enumerate(r)) + "</tr>" for r in rows)
    return f"<table><thead><tr>{th}</tr></thead><tbody>{body}</tbody></table>"


def results_tables(results: dict[str, Any]) -> str:
    """The per-entry table and the per-type table of one results document."""
    rows = []
    for name, e in [*results["entries"].items(), ("overall", results["overall"])]:
        rows.append([name, str(e["episodes"]), _ci(e["success"]),
                     " ".join(f"@{k} {v:.2f}" for k, v in e["pass_at_k"].items()),
                     f"{e['turns_mean']:.2f}", f"{e['invalid_rate']:.1%}",
                     ", ".join(f"{k} {v:.0%}" for k, v in e["stop_reasons"].items()),
                     f"{e['tokens']['per_episode']:.0f}", f"{e['wall_s_per_episode']:.2f}",
                     f"${e['cost_per_episode']:.5f}"])
    main = _table(["entry", "episodes", "success [95% CI]", "pass@k", "mean turns",
                   "invalid", "stop reasons", "tokens/ep", "wall s/ep", "cost/ep"], rows)
    types = [[f"{name} / {t}", str(b["success"]["n"]), _ci(b["success"]),
              f"{b['turns_mean']:.2f}"]
             for name, e in results["entries"].items() for t, b in e["by_type"].items()]
    return main + _table(["entry / type", "episodes", "success [95% CI]", "mean turns"], types)


# ---------------------------------------------------------------- viewer data
def _cut(text: str) -> str:
    if len(text) <= MAX_TEXT:
        return text
    return text[: MAX_TEXT // 2] + f"\n[... {len(text) - MAX_TEXT} characters cut ...]\n" \
        + text[-MAX_TEXT // 2:]


def viewer_episodes(run_name: str, trajs: list[Trajectory], limit: int,
                    steps: list[int] | None = None) -> list[dict[str, Any]]:
    """Episodes for the viewer: the first ``limit`` trajectories of a run; with ``steps``
    (training rollouts, one step per trajectory) the labels say which step rolled it out."""
    out = []
    for i, tr in enumerate(trajs[:limit]):
        where = f"step {steps[i]} · " if steps is not None else ""
        out.append({
            "label": f"{run_name} · {where}{tr.traj_id} · {'won' if tr.won else 'lost'}",
            "summary": (f"{tr.env_id} task {tr.task_id} (seed {tr.seed}, type "
                        f"{tr.task_type or '-'}): {len(tr.turns)} turns, return "
                        f"{tr.total_reward:.3f}, stop {tr.stop_reason.value}"
                        + (f", error: {tr.error}" if tr.error else "")),
            "turns": [{"prompt": _cut(t.prompt_text), "response": _cut(t.response_text),
                       "action": t.action, "reward": t.reward, "valid": t.action_valid,
                       "done": t.done, "state_key": t.state_key,
                       "observation": _cut(t.observation)} for t in tr.turns],
        })
    return out


# ---------------------------------------------------------------- the page
def build_report(run_dirs: list[str | Path], *, title: str = "turngym report",
                 max_episodes: int = 100) -> str:
    """The HTML text of a report over ``run_dirs``."""
    if not run_dirs:
        raise ConfigError("give at least one RUN_DIR")
    runs = [load_run(d) for d in run_dirs]
    body, episodes = [], []
    for run in runs:
        name = html.escape(run["name"])
        res = run["results"]
        if res is not None:
            body.append(f"<h2>Evaluation: {name} · suite {html.escape(res['suite'])} · "
                        f"{html.escape(res['label'])} · n={res['samples']} · "
                        f"seed {res['seed']}</h2>")
            body.append(results_tables(res))
            body.append(plot_task_types(res, f"{run['name']}: success per task type"))
            body.append(plot_turn_hist(res, f"{run['name']}: turns per episode"))
        if run["metrics_path"] is not None:
            body.append(f"<h2>Training: {name}</h2>")
            rows = run["metrics"] or []
            last = last_values(rows)
            body.append(f"<p class='muted'>{len(rows)} logged steps; last step "
                        f"{rows[-1].get('step', '-') if rows else '-'}; "
                        f"{len(run['rollouts'])} rollouts in the viewer below</p>")
            body.append(_table(["metric", "last value", "at step"],
                               [[k, f"{v:.4g}", str(st)] for k, (v, st) in last.items()]))
            curves = plot_training(run["metrics_path"])
            body.append(curves or "<p class='muted'>no plottable curves</p>")
        episodes += viewer_episodes(run["name"], run["trajectories"], max_episodes)
        newest = run["rollouts"][-max_episodes:]
        episodes += viewer_episodes(run["name"], [t for _, t in newest], max_episodes,
                                    steps=[st for st, _ in newest])
    data = json.dumps(episodes, ensure_ascii=False).replace("<", "\\u003c")
    page = TEMPLATE.read_text(encoding="utf-8")
    sources = ", ".join(html.escape(str(d)) for d in run_dirs)
    for key, value in (("__TITLE__", html.escape(title)), ("__SOURCES__", sources),
                       ("__GENERATED__", time.strftime("%Y-%m-%d %H:%M:%S")),
                       ("__BODY__", "\n".join(body)), ("__DATA__", data)):
        page = page.replace(key, value)
    return page


def write_report(run_dirs: list[str | Path], out: str | Path, **kwargs: Any) -> Path:
    """Write :func:`build_report` to ``out``; returns the path."""
    path = Path(out)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(build_report(run_dirs, **kwargs), encoding="utf-8")
    logger.info("wrote report %s", path)
    return path
