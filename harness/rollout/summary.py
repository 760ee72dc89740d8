"""The one summary of a list of trajectories: success, return, turns, invalid and format-error
rates, tokens, stop reasons, per task type.

Every report of these facts reads them from here: training's ``metrics.jsonl``
(:func:`summarize`, in-training eval with
``prefix="eval/"``), ``turngym rollout`` (:func:`summary_rows`, ``--json``) and ``turngym
eval``'s results JSON (:func:`turngym.harness.eval.metrics.entry_metrics` reads
:func:`tally`). The keys and their meanings are :data:`METRICS` (+ :data:`DETAIL_METRICS`),
the rows of the metric table in ``docs/training.md`` (``tests/harness/rollout/test_summary_docs.py``
holds the docs to them).

Namespaces: ``env/`` for the outcome (success, return), ``rollout/`` for the rest; with a
``prefix`` (``eval/``) everything goes under that one namespace (``eval/success``,
``eval/turns``).
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass

from turngym.harness.rollout.trajectory import StopReason, Trajectory

#: ``(keys, meaning)`` of :func:`summarize`, as the rows of ``docs/training.md``'s table
#: (``<task_type>``, ``<reason>``: one key per value).
METRICS: tuple[tuple[tuple[str, ...], str], ...] = (
    (("env/success",), "fraction of this step's trajectories that solved the task"),
    (("env/success/<task_type>",),
     "the same per task type (envs that report `task_type`)"),
    (("env/return",), "mean episode return"),
    (("rollout/turns",), "mean turns per trajectory (expert-prefix turns included)"),
    (("rollout/invalid_rate",), "fraction of student turns whose action the env could not "
                                "apply (format errors included)"),
    (("rollout/format_error_rate",),
     "fraction of student turns whose response did not parse into an action"),
    (("rollout/response_tokens", "rollout/prompt_tokens"), "mean tokens per student turn"),
    (("rollout/prompt_truncated",),
     "fraction of turns whose prompt dropped history / cut the observation"),
    (("rollout/stop/<reason>",), "fraction of trajectories per stop reason (`terminated`, "
                                 "`truncated`, `horizon`, ...)"),
    (("rollout/env_errors",), "trajectories that ended with `env_error` (left out of "
                              "advantages and the loss)"),
)

#: ``summarize(..., detail=True)`` adds these (``turngym rollout``).
DETAIL_METRICS: tuple[tuple[tuple[str, ...], str], ...] = (
    (("rollout/student_turns",), "total student (trainable) turns"),
    (("rollout/env_s", "rollout/model_s"),
     "summed env time / model time share over episodes (seconds)"),
)


def doc_row(keys: tuple[str, ...], meaning: str) -> str:
    """One Markdown table row of :data:`METRICS`, as the docs write it."""
    return f"| {', '.join(f'`{k}`' for k in keys)} | {meaning} |"


@dataclass(frozen=True)
class Tally:
    """The counts and sums of a list of trajectories that every metric is a ratio of.

    *Student turns* are the trainable ones (expert-prefix turns are not)."""

    episodes: int
    wins: int
    return_sum: float
    turns_sum: int
    student_turns: int
    invalid: int
    """Student turns the env could not apply (format errors included)."""
    format_errors: int
    """Student turns whose response did not parse (``Turn.format_valid`` False)."""
    prompt_tokens: int
    response_tokens: int
    prompt_truncated: int
    stops: dict[str, int]
    """Stop reason value -> trajectories, in order of first appearance."""
    env_s: float
    model_s: float


def tally(trajs: Iterable[Trajectory]) -> Tally:
    """Count and sum ``trajs`` once (see :class:`Tally`)."""
    trajs = list(trajs)
    student = [u for t in trajs for u in t.turns if u.trainable]
    stops: Counter[str] = Counter(t.stop_reason.value for t in trajs)
    return Tally(
        episodes=len(trajs), wins=sum(t.won for t in trajs),
        return_sum=sum(t.total_reward for t in trajs),
        turns_sum=sum(t.num_turns for t in trajs), student_turns=len(student),
        invalid=sum(not u.action_valid for u in student),
        format_errors=sum(not u.format_valid for u in student),
        prompt_tokens=sum(len(u.prompt_ids) for u in student),
        response_tokens=sum(len(u.response_ids) for u in student),
        prompt_truncated=sum(u.prompt_truncated for u in student), stops=dict(stops),
        env_s=sum(t.metrics.get("env_s", 0.0) for t in trajs),
        model_s=sum(t.metrics.get("model_s", 0.0) for t in trajs))


def task_type(traj: Trajectory, key: str = "task_type") -> str:
    """The type of ``traj`` for the breakdown: ``Trajectory.task_type`` for ``task_type``,
    else the first turn that carries info ``key``; ``"all"`` when none does."""
    if key == "task_type" and traj.task_type:
        return str(traj.task_type)
    for turn in traj.turns:
        if turn.info.get(key) is not None:
            return str(turn.info[key])
    return "all"


def by_type(trajs: Iterable[Trajectory], key: str = "task_type") -> dict[str, list[Trajectory]]:
    """``trajs`` grouped by :func:`task_type`, types sorted."""
    out: dict[str, list[Trajectory]] = {}
    for t in trajs:
        out.setdefault(task_type(t, key), []).append(t)
    return dict(sorted(out.items()))


def summarize(trajs: Iterable[Trajectory], prefix: str = "", *,
              detail: bool = False) -> dict[str, float]:
    """The metrics of ``trajs`` (:data:`METRICS`; with ``detail`` also
    :data:`DETAIL_METRICS`); ``{}`` for none.

    ``prefix`` (``eval/``) puts every key under that namespace instead of ``env/`` and
    ``rollout/``. Per-type success is there when some trajectory has a type. Rates over
    student turns are there when there is one; stop reasons, the ones that occurred.
    """
    trajs = list(trajs)
    if not trajs:
        return {}
    env_ns, ro_ns = (prefix.rstrip("/"),) * 2 if prefix else ("env", "rollout")
    t = tally(trajs)
    n = t.episodes
    m: dict[str, float] = {f"{env_ns}/success": t.wins / n, f"{env_ns}/return": t.return_sum / n}
    types = by_type(trajs)
    if len(types) > 1 or "all" not in types:
        for name, ts in types.items():
            m[f"{env_ns}/success/{name}"] = sum(x.won for x in ts) / len(ts)
    m[f"{ro_ns}/turns"] = t.turns_sum / n
    if t.student_turns:
        s = t.student_turns
        m[f"{ro_ns}/invalid_rate"] = t.invalid / s
        m[f"{ro_ns}/format_error_rate"] = t.format_errors / s
        m[f"{ro_ns}/response_tokens"] = t.response_tokens / s
        m[f"{ro_ns}/prompt_tokens"] = t.prompt_tokens / s
        m[f"{ro_ns}/prompt_truncated"] = t.prompt_truncated / s
    for reason, count in t.stops.items():
        m[f"{ro_ns}/stop/{reason}"] = count / n
    # episodes whose env crashed or timed out: left out of advantages and the loss
    m[f"{ro_ns}/env_errors"] = float(t.stops.get(StopReason.ENV_ERROR.value, 0))
    if detail:
        m[f"{ro_ns}/student_turns"] = float(t.student_turns)
        m[f"{ro_ns}/env_s"] = t.env_s
        m[f"{ro_ns}/model_s"] = t.model_s
    return m


def summary_rows(trajs: list[Trajectory],
                 engine_metrics: dict[str, float] | None = None) -> list[tuple[str, str]]:
    """``(label, value)`` rows of :func:`summarize` (and the engine's wall split) as text,
    for the CLI to print."""
    m = summarize(trajs, detail=True)
    if not m:
        return [("episodes", "0")]
    rows = [("episodes", f"{len(trajs)}"),
            ("success", f"{m['env/success']:.1%}"),
            ("mean return", f"{m['env/return']:.3f}"),
            ("mean turns", f"{m['rollout/turns']:.2f}"),
            ("invalid rate", f"{m.get('rollout/invalid_rate', 0.0):.1%}"),
            ("format errors", f"{m.get('rollout/format_error_rate', 0.0):.1%}")]
    stops = ", ".join(f"{r.value} {m[f'rollout/stop/{r.value}']:.0%}" for r in StopReason
                      if f"rollout/stop/{r.value}" in m)
    rows.append(("stop reasons", stops))
    env_s, model_s = m["rollout/env_s"], m["rollout/model_s"]
    total = max(env_s + model_s, 1e-12)
    rows.append(("time env / model (summed)",
                 f"{env_s:.2f}s ({env_s / total:.0%}) / {model_s:.2f}s ({model_s / total:.0%})"))
    if engine_metrics:
        e = engine_metrics
        rows.append(("wall", (f"{e.get('rollout/wall_s', 0):.2f}s, "
                              f"{e.get('rollout/turns_per_s', 0):.1f} turns/s")))
        rows.append(("wall in generate / env wait",
                     (f"{e.get('rollout/model_wall_s', 0):.2f}s / "
                      f"{e.get('rollout/env_wait_s', 0):.2f}s")))
    for key, value in m.items():
        if key.startswith("env/success/"):
            rows.append((f"success {key.rsplit('/', 1)[-1]}", f"{value:.1%}"))
    return rows
