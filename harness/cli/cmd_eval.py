"""``turngym eval SUITE``: run an evaluation suite, print a table, write results + trajectories."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import typer
from rich.console import Console

from turngym.harness.cli.output import emit_json, emit_table, json_option, messages

console = Console(soft_wrap=True)  # a long path stays one line in a pipe


def _fmt_ci(block: dict[str, Any]) -> str:
    lo, hi = block["ci95"]
    return f"{block['rate']:.0%} [{lo:.0%}, {hi:.0%}]"


def render_results(results: dict[str, Any], con: Console) -> None:
    """Print the per-entry table and the per-type breakdown of a results document."""
    rows = [*results["entries"].items(), ("overall", results["overall"])]
    has_tokens = any(e["tokens"]["per_episode"] for _, e in rows)
    has_cost = any(e["cost_per_episode"] for _, e in rows)
    cols = ["entry", "episodes", "success [95% CI]", "pass@k", "turns", "invalid",
            "stop reasons", "wall s/ep"] + ["tokens/ep"] * has_tokens + ["cost/ep"] * has_cost
    cells = []
    for name, e in rows:
        passk = " ".join(f"@{k} {v:.2f}" for k, v in e["pass_at_k"].items())
        stops = ", ".join(f"{k} {v:.0%}" for k, v in e["stop_reasons"].items())
        row = [name, str(e["episodes"]), _fmt_ci(e["success"]), passk,
               f"{e['turns_mean']:.1f}", f"{e['invalid_rate']:.1%}", stops,
               f"{e['wall_s_per_episode']:.2f}"]
        row += [f"{e['tokens']['per_episode']:.0f}"] * has_tokens
        row += [f"${e['cost_per_episode']:.4f}"] * has_cost
        cells.append(row)
    emit_table(cols, cells, console=con, right=set(cols) - {"entry", "stop reasons"},
               title=f"{results['suite']} · {results['label']} · n={results['samples']} "
                     f"· seed {results['seed']}")
    types = [[name, t, str(b["success"]["n"]), _fmt_ci(b["success"]), f"{b['turns_mean']:.1f}"]
             for name, e in results["entries"].items() for t, b in e["by_type"].items()]
    emit_table(["entry", "type", "episodes", "success [95% CI]", "turns"], types,
               console=con, keys=["entry", "type"], title="success by task type",
               right=["episodes", "success [95% CI]", "turns"])


def eval_cmd(
    suite: str = typer.Argument(..., help="Suite name (harness/eval/suites/NAME.yaml) or a path."),
    policy: str = typer.Option("scripted", help="scripted | hf | vllm | openai."),
    model: str | None = typer.Option(
        None, help="Model dir or training run dir (hf/vllm; its newest checkpoint's model; "
                   "'default' = SmolLM2-135M-Instruct, 'tiny'), server "
                   "model name (openai), or expert|random (scripted)."),
    base_url: str | None = typer.Option(None, help="OpenAI-compatible server URL."),
    samples: int | None = typer.Option(None, "--samples", help="Samples per task (n of pass@k)."),
    seed: int | None = typer.Option(None, help="Override the suite's seed."),
    limit: int | None = typer.Option(None, help="Only the first N tasks of each entry."),
    max_turns: int | None = typer.Option(None, help="Override every entry's turn limit."),
    max_tokens: int | None = typer.Option(None, help="Override max tokens per turn."),
    history_length: int = typer.Option(2, help="Agent memory window (turns)."),
    max_prompt_tokens: int = typer.Option(1536, help="Agent prompt budget (tokens)."),
    price_prompt: float = typer.Option(0.0, help="USD per million prompt tokens (0 = local)."),
    price_completion: float = typer.Option(0.0, help="USD per million completion tokens."),
    dtype: str | None = typer.Option(None, help="hf/vllm dtype (auto, float32, bfloat16)."),
    out: str | None = typer.Option(None, "--out",
                                   help="Output dir (default runs/eval-SUITE-TIME)."),
    progress: bool = typer.Option(True, "--progress/--no-progress", help="Progress bars."),
    json_out: bool = json_option(),
) -> None:
    """Run an evaluation suite; write results.json and trajectories.jsonl into --out.

    ``--json`` prints the results document (the same as ``results.json``) on stdout."""
    from turngym.harness.eval.evaluate import EvalSettings, evaluate
    from turngym.harness.eval.suite import load_suite
    from turngym.harness.runs import run_model_dir

    if policy in ("hf", "vllm"):  # a training run's folder: its newest checkpoint's model
        model = run_model_dir(model)
    settings = EvalSettings(policy=policy, model=model, base_url=base_url, samples=samples,
                            seed=seed, limit=limit, max_turns=max_turns, max_tokens=max_tokens,
                            history_length=history_length, max_prompt_tokens=max_prompt_tokens,
                            price_prompt=price_prompt, price_completion=price_completion,
                            backend_kwargs={"dtype": dtype} if dtype else {})
    settings.check()
    spec = load_suite(suite)
    out_dir = Path(out or f"runs/eval-{spec.name}-{time.strftime('%Y%m%d-%H%M%S')}")
    run = evaluate(spec, settings, progress=progress)
    res, traj = run.write(out_dir)
    if json_out:
        emit_json(run.results, console)
    else:
        render_results(run.results, console)
    messages(console, json_out).print(f"wrote {res} and {traj} ({len(run.trajectories)} "
                                      "trajectories)")


def register(app: typer.Typer) -> None:
    app.command("eval")(eval_cmd)
