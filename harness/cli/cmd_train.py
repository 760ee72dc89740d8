"""``turngym train CONFIG.yaml [KEY=VALUE ...] [--resume DIR]`` and ``turngym sft``."""

from __future__ import annotations

import os

import typer
from rich.console import Console

console = Console()


def _progress(total: int, label: str):
    """A rich progress bar and a callback that advances it with the step's key numbers."""
    from rich.progress import (
        BarColumn,
        MofNCompleteColumn,
        Progress,
        TextColumn,
        TimeElapsedColumn,
        TimeRemainingColumn,
    )

    prog = Progress(TextColumn(f"[bold]{label}"), BarColumn(), MofNCompleteColumn(),
                    TimeElapsedColumn(), TimeRemainingColumn(), TextColumn("{task.fields[info]}"),
                    console=console, transient=False)
    task = prog.add_task(label, total=total, info="")

    def cb(step: int, metrics: dict) -> None:
        info = " ".join(f"{k.split('/')[-1]}={metrics[k]:.3g}" for k in
                        ("env/success", "algo/loss", "algo/kl_ref", "eval/success")
                        if metrics.get(k) is not None)
        prog.update(task, completed=step, info=info)

    return prog, task, cb


def _split_args(config: str | None, overrides: list[str] | None) -> tuple[str | None, list]:
    """Allow ``turngym train key=value ...`` without a YAML file."""
    rest = list(overrides or [])
    if config is not None and ("=" in config or not config.strip()):
        if config.strip():
            rest.insert(0, config)
        config = None
    return config, rest


def train_cmd(
    config: str | None = typer.Argument(None, help="YAML config (configs/*.yaml)."),
    overrides: list[str] | None = typer.Argument(None, help="Dotted overrides KEY=VALUE, "
                                                    "e.g. algo.name=gigpo steps=20."),
    resume: str | None = typer.Option(None, "--resume", help="Run or checkpoint dir to "
                                         "continue exactly (its newest intact checkpoint)."),
    resume_changed: bool = typer.Option(False, "--resume-changed", help="Resume even though "
                                        "the config differs from the checkpoint's."),
    print_config: bool = typer.Option(False, "--print-config", help="Print the resolved "
                                      "config (YAML) and exit without training."),
) -> None:
    """Train a policy with RL / on-policy distillation (one loop, see docs/training.md).

    An ``out_dir`` that already holds a run is refused unless ``--resume`` continues it.
    Under ``torchrun --nproc_per_node N`` the learner is FSDP2-sharded over the N ranks;
    rank 0 rolls out, logs and evaluates (docs/scale-out.md)."""
    from harness.config import load_config
    from harness.runs import check_new_run
    from harness.train import train

    config, rest = _split_args(config, overrides)
    if resume_changed:
        rest.append("checkpoint.resume_allow_changes=true")
    cfg = load_config(config, rest)  # fails here, before any work
    if print_config:  # stdout alone, so that `> run.yaml` gives a config train accepts
        import json

        import yaml

        typer.echo(yaml.safe_dump(json.loads(cfg.model_dump_json()), sort_keys=False), nl=False)
        return
    if resume is None:
        check_new_run(cfg.out_dir)  # every rank, before rank 0 writes anything
    from harness.distributed.fsdp import end_worker

    if int(os.environ.get("RANK", "0")) != 0:  # a torchrun learner rank > 0: no display
        train(cfg, resume=resume)
        end_worker(0)  # gloo threads outlive the process group (see finish_distributed)
        return
    step = 0
    if resume:
        from harness.checkpoint import checkpoint_step, resolve_checkpoint

        resume = str(resolve_checkpoint(resume))  # verified once; warns on a fallback
        step = checkpoint_step(resume)
    prog, task, cb = _progress(cfg.steps, "train")
    with prog:
        prog.update(task, completed=step)
        out = train(cfg, resume=resume, progress_cb=cb if cfg.logging.progress else None)
    _print_summary(out)
    end_worker(0)  # under torchrun: exit without finalizing live gloo threads


def _print_summary(out: dict) -> None:
    from rich.table import Table

    table = Table(title="held-out evaluation")
    table.add_column("metric")
    table.add_column("before")
    table.add_column("after")
    before, after = out.get("before") or {}, out.get("after") or {}
    for key in sorted(set(before) | set(after)):
        if key.startswith("eval/success") or key in ("eval/return", "eval/turns",
                                                      "eval/invalid_rate"):
            b, a = before.get(key), after.get(key)
            table.add_row(key, "-" if b is None else f"{b:.3f}", "-" if a is None else f"{a:.3f}")
    console.print(table)
    console.print(f"run dir: {out['out_dir']} (metrics.jsonl, tb/, curves.png, checkpoints/)")


def sft_cmd(
    config: str | None = typer.Argument(None, help="YAML config (the sft, model, env and "
                                           "optim sections are used)."),
    overrides: list[str] | None = typer.Argument(None, help="Dotted overrides KEY=VALUE."),
) -> None:
    """Supervised warm start on the scripted expert's trajectories."""
    from harness.config import load_config
    from harness.sft import run_sft

    cfg = load_config(*_split_args(config, overrides))
    prog, task, _ = _progress(cfg.sft.epochs, "sft")
    with prog:
        out = run_sft(cfg, progress_cb=lambda e, loss: prog.update(
            task, completed=e, info=f"loss={loss:.4f}"))
    console.print(f"expert samples: {int(out['sft/samples'])}, expert success "
                  f"{out['sft/expert_success']:.2f}, losses "
                  f"{', '.join(f'{x:.4f}' for x in out['losses'])}")
    console.print(f"model: {out['model_dir']}  (use model.path={out['model_dir']})")


def register(app: typer.Typer) -> None:
    """Add ``train`` and ``sft`` to the CLI."""
    app.command("train")(train_cmd)
    app.command("sft")(sft_cmd)
