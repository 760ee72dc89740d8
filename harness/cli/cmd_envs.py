"""``turngym envs list | check ID | play ID``."""

from __future__ import annotations

import sys
from typing import Optional

import typer
from rich.console import Console
from rich.panel import Panel
from rich.table import Table

from harness.cli.kwargs import parse_kwargs

envs_app = typer.Typer(help="List, check and play the registered environments.",
                       no_args_is_help=True)
console = Console()


@envs_app.command("list")
def list_envs(all_: bool = typer.Option(False, "--all", help="Include envs whose optional "
                                         "packages are not installed.")) -> None:
    """A table of every registered env: id, family, tools, max turns."""
    from envs.registration import list_ids, spec

    table = Table(title="turngym environments")
    for col in ("id", "family", "tools", "max turns", "needs"):
        table.add_column(col)
    for env_id in list_ids(include_unavailable=all_):
        s = spec(env_id)
        tools = "-"
        if s.available():
            try:
                cls = s.load()
                names = [t["function"]["name"] if "function" in t else t.get("name", "?")
                         for t in (getattr(cls, "tools", None) or [])]
                tools = ", ".join(names) or "-"
            except Exception as exc:  # a broken env must not break the listing
                tools = f"[red]import failed: {exc}[/red]"
        needs = "" if s.available() else f"pip install turngym[{s.extra}]"
        table.add_row(env_id, s.family, tools, str(s.max_turns), needs)
    console.print(table)


@envs_app.command("check")
def check(env_id: str = typer.Argument(..., help="Env id, e.g. turngym/Sokoban-v0."),
          kwarg: list[str] = typer.Option([], "--kwarg", "-k", help="KEY=VALUE env kwargs.")) -> None:
    """Run the contract checker and print a pass/fail table. Exit 1 on any failure."""
    from envs.checker import check_env
    from envs.registration import spec

    spec(env_id)  # unknown ids fail here with a "did you mean"
    report = check_env(env_id, **parse_kwargs(kwarg))
    table = Table(title=f"env check: {env_id}")
    for col in ("check", "result", "time", "details"):
        table.add_column(col)
    for r in report.results:
        mark = "[green]pass[/green]" if r.passed else "[red]FAIL[/red]"
        table.add_row(r.name, mark, f"{r.seconds:.2f}s", r.message)
    console.print(table)
    if not report.passed:
        raise typer.Exit(1)


@envs_app.command("play")
def play(env_id: str = typer.Argument(..., help="Env id, e.g. turngym/Sokoban-v0."),
         task_id: Optional[str] = typer.Option(None, "--task-id", help="Task to play."),
         seed: int = typer.Option(0, help="Reset seed."),
         kwarg: list[str] = typer.Option([], "--kwarg", "-k", help="KEY=VALUE env kwargs.")) -> None:
    """Play an env in the terminal. Type an action; `:hint` shows the expert's move,
    `:quit` ends."""
    from envs.registration import make

    env = make(env_id, **parse_kwargs(kwarg))
    options = {"task_id": task_id} if task_id else None
    obs, info = env.reset(seed=seed, options=options)
    total, turn = 0.0, 0
    console.print(f"[bold]{env_id}[/bold] task [cyan]{info['task_id']}[/cyan]  "
                  "(:hint for the expert's move, :quit to stop)")
    while True:
        console.print(Panel(obs, title=f"turn {turn}"))
        if info.get("admissible_actions"):
            console.print("actions: " + " | ".join(info["admissible_actions"]))
        console.print("> ", end="")
        line = sys.stdin.readline()
        if not line or line.strip() == ":quit":
            console.print("bye")
            break
        action = line.rstrip("\n")
        if action.strip() == ":hint":
            console.print(f"expert: [green]{env.unwrapped.expert_action()}[/green]")
            continue
        obs, reward, term, trunc, info = env.step(action)
        total += float(reward)
        turn += 1
        valid = "" if info["action_valid"] else "  [yellow](invalid action)[/yellow]"
        console.print(f"reward {reward:+.2f}  total {total:+.2f}{valid}")
        if term or trunc:
            console.print(Panel(obs, title="final"))
            outcome = "[green]WON[/green]" if info["won"] else "[red]not won[/red]"
            why = "terminated" if term else "truncated (turn limit)"
            console.print(f"{outcome}: {why} after {turn} turns, return {total:+.2f}")
            break
    env.close()


def register(app: typer.Typer) -> None:
    app.add_typer(envs_app, name="envs")
