"""``turngym rollout``: run N tasks x G rollouts, write JSONL, print a summary."""

from __future__ import annotations

from typing import Any

import typer
from rich.console import Console

from harness.cli.kwargs import parse_kwargs

console = Console()


def pick_tasks(env_id: str, env_kwargs: dict[str, Any], n: int, split: str | None,
               seed: int) -> list[tuple[str, int]]:
    """The first ``n`` task ids of ``split`` with seeds ``seed, seed+1, ...``."""
    import envs
    from envs.errors import ConfigError

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
        raise ConfigError(f"--tasks {n} is more than the {len(ids)} tasks of split {split!r}")
    return [(ids[i], seed + i) for i in range(n)]


def build_policy(policy: str, env_id: str, *, model: str | None, scripted_mode: str,
                 seed: int, history_length: int, max_prompt_tokens: int,
                 base_url: str | None) -> tuple[Any, Any]:
    """``(backend_or_policy, agent)`` for ``--policy``."""
    import envs
    from envs.errors import ConfigError

    if policy == "scripted":
        from agents.scripted import ScriptedPolicy

        return ScriptedPolicy(scripted_mode, seed=seed), None
    if policy not in ("hf", "vllm", "openai"):
        raise ConfigError(f"--policy {policy!r} is not one of scripted, hf, vllm, openai")
    from agents import make_backend
    from agents.agent import Agent
    from harness.runs import run_model_dir

    kwargs: dict[str, Any] = {}
    if model:  # a training run's folder names its newest checkpoint's model (not openai's)
        kwargs["model"] = model if policy == "openai" else run_model_dir(model)
    if base_url:
        kwargs["base_url"] = base_url
    backend = make_backend(policy, **kwargs)
    env_cls = envs.spec(env_id).load()
    agent = Agent.for_env(env_cls, backend.tokenizer, history_length=history_length,
                          max_prompt_tokens=max_prompt_tokens)
    return backend, agent


def rollout(
    env: str = typer.Option(..., "--env", help="Env id, e.g. turngym/Sokoban-v0."),
    policy: str = typer.Option("scripted", help="scripted | hf | vllm | openai."),
    model: str | None = typer.Option(None, help="Model dir, training run dir (its newest "
                                     "checkpoint) or name (hf/vllm/openai)."),
    base_url: str | None = typer.Option(None, help="OpenAI-compatible server URL."),
    expert: bool = typer.Option(False, "--expert", help="Scripted: the env's expert."),
    random_: bool = typer.Option(False, "--random", help="Scripted: uniform random actions."),
    tasks: int = typer.Option(4, "--tasks", min=1, help="Number of tasks N."),
    group: int = typer.Option(1, "--group", min=1, help="Rollouts per task G."),
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
) -> None:
    """Run N tasks x G rollouts, write them as JSONL and print a summary."""
    from envs.errors import ConfigError
    from harness.rollout import RolloutConfig, RolloutEngine
    from harness.rollout_summary import render_summary
    from harness.trajectory import write_jsonl

    if expert and random_:
        raise ConfigError("--expert and --random exclude each other")
    env_kwargs = parse_kwargs(kwarg)
    cfg = RolloutConfig.build(
        env_id=env, env_kwargs=env_kwargs, group_size=group, max_turns=max_turns,
        temperature=temperature, max_tokens=max_tokens, seed=seed,
        history_length=history_length, step_mode=step_mode, workers=workers,
        env_timeout_s=env_timeout)
    task_list = pick_tasks(env, env_kwargs, tasks, split, seed)
    actor, agent = build_policy(policy, env, model=model, seed=seed,
                                scripted_mode="random" if random_ else "expert",
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
    render_summary(trajs, console, title=f"{env} · {policy} · {len(groups)} tasks x {group}",
                   engine_metrics=engine.last_metrics)
    console.print(f"wrote {n} trajectories to {out}")


def register(app: typer.Typer) -> None:
    app.command("rollout")(rollout)
