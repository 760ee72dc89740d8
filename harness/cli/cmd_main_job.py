"""``turngym quickstart``: the README's main job, a short default training on CPU.

1. evaluate the embedded default model (SmolLM2-135M-Instruct) on held-out tasks;
2. SFT warm start on the scripted expert's trajectories (``turngym sft``);
3. GiGPO from the SFT'd model (``turngym train``), evaluating before and after;
4. print a before/after success table on the held-out tasks.

Settings come from ``configs/quickstart.yaml`` (overridable with ``KEY=VALUE``).
"""

from __future__ import annotations

import time
from pathlib import Path

import typer
from rich.console import Console
from rich.table import Table

from harness.eval_metrics import difference_interval, wilson_interval

console = Console()

#: The settings when the repo's ``configs/quickstart.yaml`` is not around (an installed wheel).
FALLBACK = ["steps=3", "out_dir=runs/quickstart", "env.id=turngym/Maze-v0",
            "env.kwargs={size: 3}", "algo.name=gigpo", "rollout.tasks_per_step=4",
            "rollout.group_size=8", "rollout.max_turns=20", "rollout.max_tokens=16",
            "rollout.history_length=0", "rollout.max_prompt_tokens=512",
            "rollout.max_parse_errors=3", "eval.num_tasks=48",
            "eval.temperature=1.0", "algo.loss.kl_coef=0", "optim.mini_batch_size=512",
            "optim.micro_batch_size=32", "optim.lr=1e-5", "sft.num_tasks=12", "sft.epochs=1"]


def quickstart_config(overrides: list[str]):
    """``configs/quickstart.yaml`` (or :data:`FALLBACK`) plus ``overrides``."""
    from harness.config import load_config

    path = Path(__file__).resolve().parents[2] / "configs" / "quickstart.yaml"
    if path.is_file():
        return load_config(path, overrides)
    return load_config(None, [*FALLBACK, *overrides])


def quickstart(
    overrides: list[str] | None = typer.Argument(None, help="KEY=VALUE overrides of "
                                                    "configs/quickstart.yaml, e.g. steps=4."),
) -> None:
    """SFT warm start + GiGPO on the default model; prints held-out success before/after,
    with 95% intervals and the RL phase's change."""
    from harness.sft import run_sft
    from harness.train import train

    cfg = quickstart_config(list(overrides or []))
    out = Path(cfg.out_dir)
    t0 = time.perf_counter()
    console.rule("[bold]1/3 held-out success of the base model")
    base = train(cfg.model_copy(update={"steps": 0, "out_dir": str(out / "base")}))["before"]
    console.print(f"base: success {base['eval/success']:.3f}")

    console.rule("[bold]2/3 SFT warm start on expert trajectories")
    sft_cfg = cfg.model_copy(deep=True)
    sft_cfg.sft.out_dir = str(out / "sft")
    sft = run_sft(sft_cfg, progress_cb=lambda e, loss: console.print(
        f"  sft epoch {e}: loss {loss:.4f}"))

    console.rule(f"[bold]3/3 {cfg.algo.name} from the SFT model, {cfg.steps} steps")
    rl_cfg = cfg.model_copy(deep=True)
    rl_cfg.model.path = sft["model_dir"]
    rl_cfg.out_dir = str(out / "rl")

    def show(step: int, m: dict) -> None:
        console.print(f"  step {step}/{cfg.steps}: train success {m.get('env/success', 0):.3f} "
                      f"loss {m.get('algo/loss', float('nan')):.4f} "
                      f"({m.get('time/step_s', 0):.0f}s)")

    rl = train(rl_cfg, progress_cb=show)
    n = cfg.eval.num_tasks
    table = Table(title=f"held-out success, {n} tasks of {cfg.env.id} ({cfg.env.eval_split} "
                        f"split, temperature {cfg.eval.temperature}, one episode each)")
    table.add_column("model", no_wrap=True)
    for col in ("success", "95% interval", "return", "invalid rate"):
        table.add_column(col)
    rows = (("base (before)", base), ("after SFT", rl["before"]),
            (f"after SFT + {cfg.algo.name} (after)", rl["after"]))
    for name, m in rows:
        lo, hi = wilson_interval(wins(m, n), n)
        table.add_row(name, f"{m['eval/success']:.3f}", f"[{lo:.3f}, {hi:.3f}]",
                      f"{m['eval/return']:.3f}", f"{m.get('eval/invalid_rate', 0):.3f}")
    console.print(table)
    console.print(lift_line(cfg.algo.name, rl["before"], rl["after"], n))
    console.print(f"wall time {time.perf_counter() - t0:.0f}s; run dir {out} "
                  f"(rl/metrics.jsonl, rl/curves.png, rl/tb, rl/checkpoints)")


def wins(m: dict, n: int) -> int:
    """Successful episodes behind an ``eval/success`` rate over ``n`` episodes."""
    return round(m["eval/success"] * n)


def lift_line(algo: str, before: dict, after: dict, n: int) -> str:
    """The RL phase's change of held-out success with its 95% interval, in words."""
    d, lo, hi = difference_interval(wins(before, n), n, wins(after, n), n)
    if lo > 0:
        verdict = "a lift larger than its interval"
    elif hi < 0:
        verdict = "a drop larger than its interval"
    else:
        verdict = (f"within its interval: {n} tasks and this budget cannot tell this change "
                   "from noise")
    return (f"{algo} after SFT: {d:+.3f} [{lo:+.3f}, {hi:+.3f}] (Newcombe 95%, unpaired, so "
            f"conservative): {verdict}")


def register(app: typer.Typer) -> None:
    """Add ``quickstart`` to the CLI."""
    app.command("quickstart")(quickstart)
