"""``turngym train CONFIG.yaml [KEY=VALUE ...] [--resume DIR]`` and ``turngym sft``."""

from __future__ import annotations

import json
import os

import typer
from rich.console import Console

from turngym.harness.cli.output import emit_table, json_option, messages
from turngym.harness.cli.progress_view import progress_view

console = Console(soft_wrap=True)  # a long path stays one line in a pipe


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
    json_out: bool = json_option(),
) -> None:
    """Train a policy with RL / on-policy distillation (one loop, see docs/training.md).

    An ``out_dir`` that already holds a run is refused unless ``--resume`` continues it.
    Under ``torchrun --nproc_per_node N`` the learner is FSDP2-sharded over the N ranks;
    rank 0 rolls out, logs and evaluates (docs/scale-out.md)."""
    from turngym.harness.config import load_config
    from turngym.harness.train import train

    config, rest = _split_args(config, overrides)
    if resume_changed:
        rest.append("checkpoint.resume_allow_changes=true")
    cfg = load_config(config, rest)  # fails here, before any work
    if print_config:  # stdout alone, so that `> run.yaml` gives a config train accepts

        import yaml

        typer.echo(yaml.safe_dump(json.loads(cfg.model_dump_json()), sort_keys=False), nl=False)
        return
    from turngym.harness.distributed.fsdp import end_worker

    if int(os.environ.get("RANK", "0")) != 0:  # a torchrun learner rank > 0: no display
        train(cfg, resume=resume)
        end_worker(0)  # gloo threads outlive the process group (see finish_distributed)
        return
    if resume:
        from turngym.harness.learn.checkpoint import resolve_checkpoint

        resume = str(resolve_checkpoint(resume))  # verified once; warns on a fallback
    with progress_view(messages(console, json_out), "train", cfg.logging.progress) as reporter:
        out = train(cfg, resume=resume, reporter=reporter)
    _print_summary(out, json_out)
    end_worker(0)  # under torchrun: exit without finalizing live gloo threads


def _print_summary(out: dict, json_out: bool = False) -> None:
    """The held-out metrics before and after training, and where the run is."""
    before, after = out.get("before") or {}, out.get("after") or {}
    keys = [k for k in sorted(set(before) | set(after))
            if k.startswith("eval/success") or k in ("eval/return", "eval/turns",
                                                      "eval/invalid_rate")]
    emit_table(["metric", "before", "after"], [[k, before.get(k), after.get(k)] for k in keys],
               title="held-out evaluation", json_out=json_out, console=console,
               right=["before", "after"], formats={"before": "{:.3f}", "after": "{:.3f}"})
    messages(console, json_out).print(f"run dir: {out['out_dir']} (metrics.jsonl, tb/, "
                                      "curves.png, checkpoints/)")


def sft_cmd(
    config: str | None = typer.Argument(None, help="YAML config (the sft, model, env and "
                                           "optim sections are used)."),
    overrides: list[str] | None = typer.Argument(None, help="Dotted overrides KEY=VALUE."),
) -> None:
    """Supervised warm start on the scripted expert's trajectories."""
    from turngym.harness.config import load_config
    from turngym.harness.sft import run_sft

    cfg = load_config(*_split_args(config, overrides))
    with progress_view(console, "sft", cfg.logging.progress) as reporter:
        out = run_sft(cfg, reporter=reporter)
    console.print(f"expert samples: {int(out['sft/samples'])}, expert success "
                  f"{out['sft/expert_success']:.2f}, losses "
                  f"{', '.join(f'{x:.4f}' for x in out['losses'])}")
    console.print(f"model: {out['model_dir']}  (use model.path={out['model_dir']})")


def register(app: typer.Typer) -> None:
    """Add ``train`` and ``sft`` to the CLI."""
    app.command("train")(train_cmd)
    app.command("sft")(sft_cmd)
