"""``turngym rollout``: run N tasks x G rollouts, write JSONL, print a summary."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import typer
from rich.console import Console

from turngym.errors import ConfigError
from turngym.harness.cli.kwargs import parse_kwargs
from turngym.harness.cli.output import emit_json, emit_table, json_option, messages, renamed
from turngym.harness.rollout.summary import summarize, summary_rows
from turngym.harness.rollout.trajectory import write_jsonl

if TYPE_CHECKING:
    from turngym.agents.agent import Agent
    from turngym.agents.backend import Backend
    from turngym.harness.rollout.calls import Policy

console = Console(soft_wrap=True)  # a long path stays one line in a pipe


def pick_tasks(env_id: str, env_kwargs: dict[str, Any], n: int, split: str | None,
               seed: int) -> list[tuple[str, int]]:
    """The first ``n`` task ids of ``split`` with seeds ``seed, seed+1, ...``."""
    from turngym import envs

    env = envs.make(env_id, **env_kwargs)
    try:
        ids = env.unwrapped.task_ids(split)
    except (KeyError, ValueError) as exc:
        raise ConfigError(f"--split {split!r}: {exc}") from None
    finally:
        env.close()
    if not ids:
        raise ConfigError(f"--split {split!r} of {env_id} has no tasks")
    if n > len(ids):
        raise ConfigError(f"--limit {n} is more than the {len(ids)} tasks of split {split!r}")
    return [(ids[i], seed + i) for i in range(n)]


def build_policy(policy: str, env_id: str, *, model: str | None, seed: int,
                 history_length: int, max_prompt_tokens: int,
                 base_url: str | None) -> tuple[Backend | Policy, Agent | None]:
    """``(backend_or_policy, agent)`` for ``--policy`` and ``--model``, built as ``turngym
    eval`` builds them (:func:`turngym.harness.eval.evaluate.build_actor`): the scripted
    policy's ``--model`` is ``expert`` (default) or ``random``; a training run's folder
    names its newest checkpoint's model (hf, vllm)."""
    from turngym.harness.eval.evaluate import EvalSettings, build_actor, build_backend
    from turngym.harness.runs import run_model_dir

    if policy in ("hf", "vllm"):
        model = run_model_dir(model)
    settings = EvalSettings(policy=policy, model=model, base_url=base_url,
                            history_length=history_length, max_prompt_tokens=max_prompt_tokens)
    settings.check()
    return build_actor(settings, build_backend(settings), env_id, seed)


def _scripted_flag(expert: bool, random_: bool) -> str | None:
    """The ``--model`` that the deprecated ``--expert`` / ``--random`` stand for."""
    if expert and random_:
        raise ConfigError("--expert and --random exclude each other")
    return "expert" if expert else "random" if random_ else None


def rollout(
    env: str = typer.Option(..., "--env", help="Env id, e.g. turngym/Sokoban-v0."),
    policy: str = typer.Option("scripted", help="scripted | hf | vllm | openai."),
    model: str | None = typer.Option(None, help="Model dir, training run dir (its newest "
                                     "checkpoint) or name (hf/vllm/openai), or "
                                     "expert|random (scripted; default expert)."),
    base_url: str | None = typer.Option(None, help="OpenAI-compatible server URL."),
    limit: int | None = typer.Option(None, "--limit", min=1, help="Number of tasks N: the "
                                     "first N of --split (default 4)."),
    samples: int | None = typer.Option(None, "--samples", min=1, help="Rollouts per task G "
                                       "(default 1)."),
    out: str = typer.Option("rollouts.jsonl", "--out", help="JSONL file to write."),
    split: str | None = typer.Option(None, help="Task split (e.g. train, test)."),
    seed: int = typer.Option(0, help="Run seed (task seeds and sampling seeds)."),
    max_turns: int | None = typer.Option(None, min=1, help="Turn budget override."),
    temperature: float = typer.Option(1.0, help="Sampling temperature."),
    max_tokens: int = typer.Option(256, help="Max generated tokens per turn."),
    history_length: int = typer.Option(2, help="Agent memory window (turns)."),
    max_prompt_tokens: int = typer.Option(1536, help="Agent prompt budget (tokens)."),
    step_mode: str = typer.Option("auto", help="auto | inline | threads | processes."),
    workers: str = typer.Option("local", help="local | ray."),
    env_timeout: float | None = typer.Option(None, help="Per env call timeout (s)."),
    horizon: int | None = typer.Option(None, help="TCOD f2b: student turns per episode."),
    expert_prefix: int = typer.Option(0, help="TCOD b2f: expert actions replayed first."),
    kwarg: list[str] = typer.Option([], "--kwarg", "-k", help="KEY=VALUE env kwargs."),
    progress: bool = typer.Option(True, "--progress/--no-progress", help="Progress bar."),
    json_out: bool = json_option(),
    # deprecated spellings (hidden): --model expert|random, --limit, --samples
    expert: bool = typer.Option(False, "--expert", hidden=True),
    random_: bool = typer.Option(False, "--random", hidden=True),
    tasks: int | None = typer.Option(None, "--tasks", min=1, hidden=True),
    group: int | None = typer.Option(None, "--group", min=1, hidden=True),
) -> None:
    """Run N tasks x G rollouts, write them as JSONL and print a summary.

    ``--json`` prints the summary's metrics (``env/*``, ``rollout/*`` keys, as training logs
    them) and the engine's as one JSON object."""
    from turngym.harness.rollout.config import RolloutConfig
    from turngym.harness.rollout.engine import RolloutEngine

    old = _scripted_flag(expert, random_)
    model = renamed("--model", model, f"--{old}", old, None, use=f"--model {old}")
    n_tasks = renamed("--limit", limit, "--tasks", tasks, 4)
    group = renamed("--samples", samples, "--group", group, 1)
    env_kwargs = parse_kwargs(kwarg)
    cfg = RolloutConfig.build(
        env_id=env, env_kwargs=env_kwargs, group_size=group, max_turns=max_turns,
        temperature=temperature, max_tokens=max_tokens, seed=seed,
        history_length=history_length, step_mode=step_mode, workers=workers,
        env_timeout_s=env_timeout)
    task_list = pick_tasks(env, env_kwargs, n_tasks, split, seed)
    actor, agent = build_policy(policy, env, model=model, seed=seed,
                                history_length=history_length,
                                max_prompt_tokens=max_prompt_tokens, base_url=base_url)
    engine = RolloutEngine(env, actor, agent, cfg)
    try:
        groups = engine.run(task_list, horizon=horizon, expert_prefix=expert_prefix,
                            progress=progress)
    finally:
        engine.close()
        if hasattr(actor, "close"):
            actor.close()
    trajs = [t for g in groups for t in g.trajectories]
    n = write_jsonl(out, trajs)
    if json_out:
        emit_json({**summarize(trajs, detail=True), **engine.last_metrics}, console)
    else:
        emit_table(["metric", "value"], summary_rows(trajs, engine.last_metrics),
                   title=f"{env} · {policy} · {len(groups)} tasks x {group}",
                   console=console, right=["value"])
    messages(console, json_out).print(f"wrote {n} trajectories to {out}")


def register(app: typer.Typer) -> None:
    app.command("rollout")(rollout)
