"""``turngym check-template MODEL``: is multi-turn rendering append-only in token space?"""

from __future__ import annotations

import typer
from rich.console import Console

from turngym.agents.models import load_tokenizer, resolve_model_dir
from turngym.agents.template_check import check_template


def register(app: typer.Typer) -> None:
    """Add ``check-template`` to the CLI."""
    app.command("check-template")(check_template_cmd)


def check_template_cmd(
    model: str = typer.Argument(..., help="A local HF model dir, 'default' or 'tiny'."),
    family: str = typer.Option("generic", help="Env family whose system prompt is used."),
    history_length: int = typer.Option(2, "--history-length", min=0,
                                       help="Memory window to report on."),
) -> None:
    """Render a multi-turn conversation turn by turn with MODEL's chat template. Checks that
    prompt t+1 starts with prompt t + response t (ids trained on = ids generated) and that
    the loss mask covers the responses and no env text. Exit code 1 when a check fails."""
    report = check_template(load_tokenizer(resolve_model_dir(model)), family=family,
                            history_length=history_length)
    console = Console()
    colour = "green" if report.ok else "red"
    console.print(f"[bold {colour}]{'OK' if report.ok else 'FAILED'}[/bold {colour}] {model}")
    console.print(report.format(), markup=False, highlight=False)
    if not report.ok:
        # SystemExit, not typer.Exit: main() runs typer with standalone_mode=False, where
        # typer.Exit's code is returned by app() and dropped.
        raise SystemExit(1)
