"""``turngym swe build-image | build-tasks | tasks | backend | expert``."""

from __future__ import annotations

import shutil
import time
from pathlib import Path
from typing import Optional

import typer
from rich.console import Console

from turngym.harness.cli.output import emit_json, emit_table, json_option, messages

swe_app = typer.Typer(help="The SWE environment: sandbox image, task set, checks.",
                      no_args_is_help=True)
console = Console(soft_wrap=True)  # a long path stays one line in a pipe


@swe_app.command("build-image")
def build_image(
    image: str = typer.Option("turngym-swe:bookworm", help="Tag of the image."),
    mirror: Optional[str] = typer.Option(None, help="Debian mirror (default: from apt sources)."),
    suite: Optional[str] = typer.Option(None, help="Debian suite (default: from apt sources)."),
    force: bool = typer.Option(False, help="Rebuild even when the tag exists."),
) -> None:
    """Build the docker sandbox image from Debian packages (debootstrap + docker import)."""
    from turngym.envs.swe.docker_sandbox import build_image as build

    start = time.perf_counter()
    with console.status(f"building {image} (debootstrap, about a minute)"):
        tag = build(image, mirror=mirror, suite=suite, force=force)
    console.print(f"[green]ready[/green] {tag} ({time.perf_counter() - start:.1f}s)")


@swe_app.command("build-tasks")
def build_tasks(
    out: Optional[Path] = typer.Option(None, help="Output JSONL (default: the shipped file)."),
    per_project: int = typer.Option(45, min=1, help="Tasks kept per project."),
    json_out: bool = json_option(),
) -> None:
    """Inject bugs into the shipped projects, verify each mutant, write the task file."""
    from rich.progress import Progress

    from turngym.envs.swe.tasks import TASKS_FILE, summary
    from turngym.envs.swe.tasks import build_tasks as build

    say = messages(console, json_out)
    with Progress(console=say, transient=True) as bar:
        job = bar.add_task("verifying mutants", total=None)

        def tick(project: str, rel: str, i: int) -> None:
            bar.update(job, advance=1, description=f"{project}/{rel} mutant {i}")

        tasks = build(out or TASKS_FILE, per_project=per_project, progress=tick)
    _print_summary(summary(tasks), len(tasks), json_out)
    say.print(f"[green]wrote[/green] {len(tasks)} tasks to {out or TASKS_FILE}")


@swe_app.command("tasks")
def tasks(tasks_file: Optional[Path] = typer.Option(None, help="Task JSONL."),
          json_out: bool = json_option()) -> None:
    """Counts of the task set by split, project and mutation operator. ``--json`` prints
    ``{"tasks": N, "counts": {"split": {...}, "project": {...}, "operator": {...}}}``."""
    from turngym.envs.swe.tasks import load_tasks, summary

    loaded = load_tasks(str(tasks_file) if tasks_file else None)
    _print_summary(summary(loaded), len(loaded), json_out)
    messages(console, json_out).print(f"{len(loaded)} tasks")


def _print_summary(counts: dict[str, dict[str, int]], n: int, json_out: bool) -> None:
    if json_out:
        emit_json({"tasks": n, "counts": counts}, console)
        return
    for what, table_counts in counts.items():
        emit_table([what, "tasks"], [[key, table_counts[key]] for key in sorted(table_counts)],
                   title=f"tasks by {what}", console=console, right=["tasks"])


@swe_app.command("backend")
def backend() -> None:
    """Which sandbox backend ``backend=auto`` picks here, and why."""
    from turngym.envs.swe.backends import docker_available
    from turngym.envs.swe.env import _pick_backend

    console.print(f"docker engine answers: {docker_available()}")
    console.print(f"bubblewrap installed: {shutil.which('bwrap') is not None}")
    console.print(f"auto backend: [bold]{_pick_backend('turngym-swe:bookworm')}[/bold]")


@swe_app.command("expert")
def expert(
    backend: str = typer.Option("auto", help="auto, docker, bwrap or local."),
    split: Optional[str] = typer.Option(None, help="train, test, or all tasks."),
    limit: int = typer.Option(0, min=0, help="At most this many tasks (0: all)."),
) -> None:
    """Run the scripted expert on tasks; prints its success rate (should be 100%)."""
    from rich.progress import track

    from turngym import envs

    env = envs.make("turngym/SWE-v0", backend=backend, split=split)
    ids = env.unwrapped.task_ids()
    ids = ids[:limit] if limit else ids
    failed = []
    for task_id in track(ids, description="expert", console=console):
        env.reset(seed=0, options={"task_id": task_id})
        info, done = {}, False
        while not done:
            _, _, term, trunc, info = env.step(env.unwrapped.expert_action())
            done = term or trunc
        if not info["won"]:
            failed.append(task_id)
    env.close()
    rate = 1 - len(failed) / len(ids)
    console.print(f"expert success: {len(ids) - len(failed)}/{len(ids)} = {rate:.1%} "
                  f"(backend {env.unwrapped.backend})")
    if failed:
        console.print(f"[red]failed:[/red] {', '.join(failed[:20])}")
        raise typer.Exit(1)


def register(app: typer.Typer) -> None:
    app.add_typer(swe_app, name="swe")
