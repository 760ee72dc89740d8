"""Run an evaluation suite through the rollout engine and compute its metrics.

Top to bottom: resolve every entry's ``(task_id, seed)`` pairs (fails before any model
work), build the policy once, then per entry: a
:class:`~turngym.harness.rollout.engine.RolloutEngine` with ``group_size = samples``, the
suite's sampling parameters and seed, one ``run`` call, and
:func:`turngym.harness.eval.metrics.entry_metrics` over its trajectories.

Determinism: task seeds come from the suite, the sampling seed of every generate call
from the suite seed and the call count (:meth:`RolloutEngine.next_sampling`), and the
scripted policies from the suite seed and the episode index. Two runs with the same suite
and seed write the same results JSON, except the wall-clock keys
(:func:`turngym.harness.eval.metrics.strip_timings`).
"""

from __future__ import annotations

import json
import logging
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from turngym.agents import make_backend
from turngym.agents.agent import Agent
from turngym.agents.backend import Backend
from turngym.agents.scripted import ScriptedPolicy
from turngym.errors import ConfigError
from turngym.harness.eval.metrics import entry_metrics, merge_metrics
from turngym.harness.eval.suite import Suite, SuiteEntry, check_suite
from turngym.harness.rollout.agent import make_agent
from turngym.harness.rollout.calls import Policy
from turngym.harness.rollout.config import RolloutConfig
from turngym.harness.rollout.engine import RolloutEngine
from turngym.harness.rollout.trajectory import Trajectory, write_jsonl
from turngym.harness.ui.progress import Progress, or_silent

logger = logging.getLogger(__name__)

#: Policies ``turngym eval --policy`` accepts.
POLICIES = ("scripted", "hf", "vllm", "openai")
#: Kinds of the scripted policy (``--policy scripted --model expert|random``).
SCRIPTED_KINDS = ("expert", "random")


@dataclass
class EvalSettings:
    """How to run a suite (everything that is not in the suite file)."""

    policy: str = "scripted"
    """``scripted`` | ``hf`` | ``vllm`` | ``openai``."""
    model: str | None = None
    """Model dir/name for hf/vllm/openai; ``expert`` (default) or ``random`` for scripted."""
    base_url: str | None = None
    """OpenAI-compatible server URL (``openai``)."""
    samples: int | None = None
    """Override of the suite's samples per task."""
    seed: int | None = None
    """Override of the suite's seed."""
    limit: int | None = None
    """Run only the first ``limit`` tasks of each entry (a smaller sample; say so)."""
    max_turns: int | None = None
    """Override of every entry's turn limit (e.g. a short smoke run of a model)."""
    max_tokens: int | None = None
    """Override of the suite's max generated tokens per turn."""
    history_length: int = 2
    max_prompt_tokens: int = 1536
    price_prompt: float = 0.0
    """Price per million prompt tokens (0 for a local model)."""
    price_completion: float = 0.0
    """Price per million completion tokens."""
    backend_kwargs: dict[str, Any] = field(default_factory=dict)
    """Extra kwargs for :func:`agents.make_backend` (e.g. ``dtype``)."""

    def check(self) -> None:
        """Fail before any work on a bad policy or price."""
        if self.policy not in POLICIES:
            raise ConfigError(f"--policy {self.policy!r} is not one of {', '.join(POLICIES)}")
        if self.policy == "scripted" and (self.model or "expert") not in SCRIPTED_KINDS:
            raise ConfigError(f"--model {self.model!r}: the scripted policy is one of "
                              f"{', '.join(SCRIPTED_KINDS)}")
        for key in ("samples", "limit", "max_turns", "max_tokens"):
            value = getattr(self, key)
            if value is not None and value < 1:
                raise ConfigError(f"--{key.replace('_', '-')} must be >= 1, got {value}")
        if self.price_prompt < 0 or self.price_completion < 0:
            raise ConfigError("--price-prompt / --price-completion must be >= 0")

    @property
    def label(self) -> str:
        """A short name of the policy (``scripted:expert``, ``hf:default``)."""
        default = "expert" if self.policy == "scripted" else "default"
        return f"{self.policy}:{Path(self.model).name if self.model else default}"


@dataclass
class EvalRun:
    """The result of :func:`evaluate`: the results document and all trajectories."""

    results: dict[str, Any]
    trajectories: list[Trajectory]

    def write(self, out_dir: str | Path) -> tuple[Path, Path]:
        """Write ``results.json`` and ``trajectories.jsonl`` into ``out_dir``."""
        out = Path(out_dir)
        out.mkdir(parents=True, exist_ok=True)
        res = out / "results.json"
        res.write_text(json.dumps(self.results, indent=2, sort_keys=False) + "\n")
        traj = out / "trajectories.jsonl"
        write_jsonl(traj, self.trajectories)
        return res, traj


def build_backend(settings: EvalSettings) -> Backend | None:
    """The model backend of ``settings`` (None for the scripted policy)."""
    if settings.policy == "scripted":
        return None
    kwargs = dict(settings.backend_kwargs)
    if settings.model:
        kwargs["model"] = settings.model
    if settings.base_url:
        kwargs["base_url"] = settings.base_url
    return make_backend(settings.policy, **kwargs)


def build_actor(settings: EvalSettings, backend: Backend | None, env_id: str, seed: int
                ) -> tuple[Backend | Policy, Agent | None]:
    """``(backend_or_policy, agent)`` for a :class:`~turngym.harness.rollout.engine.
    RolloutEngine` of ``env_id``: the scripted policy (``settings.model``: expert or random,
    seeded with ``seed``) when ``backend`` is None, else ``backend`` with the env's agent.
    ``turngym eval`` (once per entry) and ``turngym rollout`` build their policy here; the
    agent is :func:`turngym.harness.rollout.agent.make_agent`'s, as in training."""
    if backend is None:
        return ScriptedPolicy(settings.model or "expert", seed=seed), None
    agent = make_agent(env_id, backend.tokenizer, history_length=settings.history_length,
                       max_prompt_tokens=settings.max_prompt_tokens)
    return backend, agent


def _run_entry(suite: Suite, entry: SuiteEntry, settings: EvalSettings, backend: Backend | None,
               tasks: list[tuple[str, int]], seed: int, progress: bool, reporter: Progress
               ) -> tuple[list[Trajectory], dict[str, Any]]:
    """Roll out one entry (one engine, G = samples) and compute its metrics."""
    cfg = RolloutConfig.build(
        env_id=entry.env_id, env_kwargs=entry.env_kwargs, group_size=suite.samples,
        max_turns=settings.max_turns or entry.max_turns,
        temperature=suite.sampling.temperature, top_p=suite.sampling.top_p,
        top_k=suite.sampling.top_k, max_tokens=settings.max_tokens or suite.sampling.max_tokens,
        seed=seed, history_length=settings.history_length, **entry.rollout)
    actor, agent = build_actor(settings, backend, entry.env_id, seed)
    engine = RolloutEngine(entry.env_id, actor, agent, cfg)
    reporter.phase(f"eval {entry.name}", len(tasks) * suite.samples, "episodes")
    reporter.watch(engine)
    t0 = time.perf_counter()
    try:
        groups = engine.run(tasks, progress=progress, id_prefix=f"{entry.name}/")
    finally:
        engine.close()
    wall = time.perf_counter() - t0
    trajs = [t for g in groups for t in g.trajectories]
    metrics = {"env_id": entry.env_id, "split": entry.split, "env_kwargs": entry.env_kwargs,
               **entry_metrics(trajs, samples=suite.samples, group_by=entry.group_by,
                               price_prompt=settings.price_prompt,
                               price_completion=settings.price_completion, wall_s=wall)}
    logger.info("%s/%s: success %.3f over %d episodes in %.1fs", suite.name, entry.name,
                metrics["success"]["rate"], len(trajs), wall)
    return trajs, metrics


def evaluate(suite: Suite, settings: EvalSettings, *, backend: Backend | None = None,
             progress: bool = False, reporter: Progress | None = None) -> EvalRun:
    """Run every entry of ``suite`` with ``settings``' policy and return the metrics.

    ``backend``: an already built backend to use instead of building one (it is not
    closed here); otherwise one is built from ``settings`` and closed at the end.
    ``progress``: the rollout engine's own bar of finished episodes. ``reporter``: a
    :class:`turngym.harness.ui.progress.Progress` that gets the phase ``setup`` (the model) and one
    ``eval ENTRY`` phase per entry with its episodes done.
    """
    reporter = or_silent(reporter)
    # ---- setup: validate everything before any model work
    settings.check()
    suite = suite.with_samples(settings.samples)
    seed = suite.seed if settings.seed is None else settings.seed
    if seed != suite.seed:
        suite = suite.model_copy(update={"seed": seed})
    tasks = {name: ts[: settings.limit] if settings.limit else ts
             for name, ts in check_suite(suite).items()}
    own_backend = backend is None and settings.policy != "scripted"
    if own_backend:
        reporter.phase("setup")
        backend = build_backend(settings)
    elif settings.policy == "scripted":
        backend = None
    t_start = time.perf_counter()
    entries: dict[str, Any] = {}
    all_trajs: list[Trajectory] = []
    blocks: list[tuple[list[Trajectory], str]] = []
    try:
        for entry in suite.entries:
            trajs, entries[entry.name] = _run_entry(suite, entry, settings, backend,
                                                    tasks[entry.name], seed, progress, reporter)
            all_trajs += trajs
            blocks.append((trajs, entry.name))
    finally:
        if own_backend and hasattr(backend, "close"):
            backend.close()
    wall_total = time.perf_counter() - t_start
    results = {
        "suite": suite.name, "policy": settings.policy, "model": settings.model,
        "label": settings.label, "seed": seed, "samples": suite.samples,
        "sampling": {**suite.sampling.model_dump(),
                     **({"max_tokens": settings.max_tokens} if settings.max_tokens else {})},
        "max_turns_override": settings.max_turns, "limit": settings.limit,
        "prices_per_mtok": {"prompt": settings.price_prompt,
                            "completion": settings.price_completion},
        "overall": merge_metrics(blocks, samples=suite.samples,
                                 price_prompt=settings.price_prompt,
                                 price_completion=settings.price_completion, wall_s=wall_total),
        "entries": entries,
    }
    return EvalRun(results=results, trajectories=all_trajs)
