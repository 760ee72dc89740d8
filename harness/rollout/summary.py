"""Metrics and a rich summary table of a list of trajectories.

:func:`summarize` returns flat, namespaced floats (``rollout/success``, ...) for logs;
:func:`summary_rows` words them as table rows (the CLI owns the console and prints them).

Metric keys:

=============================  ============================================================
``rollout/episodes``           number of trajectories (none is ever dropped)
``rollout/success``            fraction with ``won``
``rollout/return_mean``        mean total reward
``rollout/turns_mean``         mean turns per trajectory (expert-prefix turns included)
``rollout/student_turns``      total trainable turns
``rollout/invalid_rate``       invalid actions / student turns (parse failures included)
``rollout/parse_error_rate``   unparseable responses / student turns
``rollout/stop/<reason>``      fraction of trajectories per stop reason
``rollout/env_s``              summed env time over episodes (seconds)
``rollout/model_s``            summed model time share over episodes (seconds)
``rollout/env_errors``         trajectories that ended with ``env_error``
=============================  ============================================================
"""

from __future__ import annotations

from collections import Counter

from turngym.harness.rollout.trajectory import StopReason, Trajectory


def summarize(trajs: list[Trajectory]) -> dict[str, float]:
    """Aggregate metrics of ``trajs`` (keys in the module docstring)."""
    n = len(trajs)
    out: dict[str, float] = {"rollout/episodes": float(n)}
    if n == 0:
        return out
    student = [t for tr in trajs for t in tr.turns if t.trainable]
    n_student = max(len(student), 1)
    stops = Counter(tr.stop_reason for tr in trajs)
    out.update({
        "rollout/success": sum(tr.won for tr in trajs) / n,
        "rollout/return_mean": sum(tr.total_reward for tr in trajs) / n,
        "rollout/turns_mean": sum(tr.num_turns for tr in trajs) / n,
        "rollout/student_turns": float(len(student)),
        "rollout/invalid_rate": sum(not t.action_valid for t in student) / n_student,
        "rollout/parse_error_rate": sum("parse_error" in t.info for t in student) / n_student,
        "rollout/env_s": sum(tr.metrics.get("env_s", 0.0) for tr in trajs),
        "rollout/model_s": sum(tr.metrics.get("model_s", 0.0) for tr in trajs),
        "rollout/env_errors": float(stops.get(StopReason.ENV_ERROR, 0)),
    })
    for reason in StopReason:
        out[f"rollout/stop/{reason.value}"] = stops.get(reason, 0) / n
    return out


def per_task_type(trajs: list[Trajectory]) -> dict[str, float]:
    """``rollout/success/<task_type>`` for trajectories that carry a task type."""
    by: dict[str, list[bool]] = {}
    for tr in trajs:
        if tr.task_type:
            by.setdefault(tr.task_type, []).append(tr.won)
    return {f"rollout/success/{k}": sum(v) / len(v) for k, v in sorted(by.items())}


def summary_rows(trajs: list[Trajectory],
                 engine_metrics: dict[str, float] | None = None) -> list[tuple[str, str]]:
    """``(label, value)`` rows of :func:`summarize` (and the engine's wall split) as text,
    for the CLI to print."""
    m = summarize(trajs)
    if m["rollout/episodes"] == 0:
        return [("episodes", "0")]
    rows = [("episodes", f"{m['rollout/episodes']:.0f}"),
            ("success", f"{m['rollout/success']:.1%}"),
            ("mean return", f"{m['rollout/return_mean']:.3f}"),
            ("mean turns", f"{m['rollout/turns_mean']:.2f}"),
            ("invalid rate", f"{m['rollout/invalid_rate']:.1%}"),
            ("parse errors", f"{m['rollout/parse_error_rate']:.1%}")]
    stops = ", ".join(f"{r.value} {m[f'rollout/stop/{r.value}']:.0%}" for r in StopReason
                      if m[f"rollout/stop/{r.value}"] > 0)
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
    for key, value in per_task_type(trajs).items():
        rows.append((f"success {key.rsplit('/', 1)[-1]}", f"{value:.1%}"))
    return rows
