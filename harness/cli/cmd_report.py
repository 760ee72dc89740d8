"""``turngym report RUN_DIR... --out report.html``: a self-contained HTML report."""

from __future__ import annotations

import typer
from rich.console import Console

from turngym.harness.eval.report import write_report

console = Console(soft_wrap=True)  # a long path stays one line in a pipe


def report_cmd(
    run_dirs: list[str] = typer.Argument(..., help="Eval run dirs (results.json) and/or "
                                                   "training run dirs (metrics.jsonl)."),
    out: str = typer.Option("report.html", "--out", help="HTML file to write."),
    title: str = typer.Option("turngym report", help="Page title."),
    max_episodes: int = typer.Option(100, min=0, help="Episodes per run in the viewer."),
) -> None:
    """Write tables, plots and a trajectory viewer of RUN_DIRs into one HTML file."""
    path = write_report(run_dirs, out, title=title, max_episodes=max_episodes)
    console.print(f"wrote {path} ({path.stat().st_size / 1024:.0f} KiB)")


def register(app: typer.Typer) -> None:
    app.command("report")(report_cmd)
