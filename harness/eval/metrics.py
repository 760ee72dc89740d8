"""Evaluation statistics: Wilson intervals, unbiased pass@k, and per-entry metrics.

:func:`entry_metrics` turns the trajectories of one suite entry into the JSON block that
``turngym eval`` writes (keys listed in ``docs/evaluation.md``); its counts are the rollout
summariser's (:mod:`turngym.harness.rollout.summary`), as every other report's.
"""

from __future__ import annotations

import math
from collections import Counter, defaultdict
from typing import Any

from turngym.harness.rollout.summary import by_type, tally, task_type
from turngym.harness.rollout.trajectory import StopReason, Trajectory

__all__ = ["Z95", "difference_interval", "entry_metrics", "k_values", "merge_metrics",
           "pass_at_k", "pass_at_k_block", "strip_timings", "success_block", "task_type",
           "wilson_interval"]

#: z of a two-sided 95% interval.
Z95 = 1.959963984540054


def wilson_interval(successes: int, n: int, z: float = Z95) -> tuple[float, float]:
    """Wilson score interval of a binomial proportion (Wilson 1927).

    ``p = s/n``, ``c = (p + z^2/2n) / (1 + z^2/n)``,
    ``h = z / (1 + z^2/n) * sqrt(p(1-p)/n + z^2/4n^2)``; the interval is ``[c-h, c+h]``
    clipped to ``[0, 1]``. ``n = 0`` gives ``(0, 1)`` (nothing is known).
    """
    if n < 0 or not 0 <= successes <= n:
        raise ValueError(f"need 0 <= successes <= n, got successes={successes}, n={n}")
    if n == 0:
        return 0.0, 1.0
    p = successes / n
    denom = 1.0 + z * z / n
    centre = (p + z * z / (2 * n)) / denom
    half = z / denom * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n))
    return max(0.0, centre - half), min(1.0, centre + half)


def difference_interval(s1: int, n1: int, s2: int, n2: int, z: float = Z95
                        ) -> tuple[float, float, float]:
    """``p2 - p1`` of two independent proportions with Newcombe's hybrid score interval
    (Newcombe 1998, method 10): from the Wilson intervals ``[l_i, u_i]`` of each,
    ``d - sqrt((p2-l2)^2 + (u1-p1)^2)`` to ``d + sqrt((u2-p2)^2 + (p1-l1)^2)``.

    Paired outcomes (the same tasks before and after) have a narrower interval; this one
    ignores the pairing, so it is conservative for them."""
    p1, p2 = s1 / n1, s2 / n2
    l1, u1 = wilson_interval(s1, n1, z)
    l2, u2 = wilson_interval(s2, n2, z)
    d = p2 - p1
    return (d, d - math.sqrt((p2 - l2) ** 2 + (u1 - p1) ** 2),
            d + math.sqrt((u2 - p2) ** 2 + (p1 - l1) ** 2))


def pass_at_k(n: int, c: int, k: int) -> float:
    """Unbiased pass@k of one task with ``c`` successes in ``n`` samples (Chen et al. 2021,
    arXiv:2107.03374): ``1 - C(n-c, k) / C(n, k)``, computed as the stable product
    ``1 - prod_{i=n-c+1}^{n} (1 - k/i)``. ``n - c < k`` gives 1.0."""
    if not 0 <= c <= n or not 1 <= k <= n:
        raise ValueError(f"need 0 <= c <= n and 1 <= k <= n, got n={n}, c={c}, k={k}")
    if n - c < k:
        return 1.0
    prod = 1.0
    for i in range(n - c + 1, n + 1):
        prod *= 1.0 - k / i
    return 1.0 - prod


def k_values(n: int) -> list[int]:
    """The k of pass@k that are reported for n samples: 1, powers of two, and n."""
    ks = {1, n}
    k = 2
    while k < n:
        ks.add(k)
        k *= 2
    return sorted(ks)


def success_block(wins: list[bool]) -> dict[str, Any]:
    """``{"rate", "ci95": [lo, hi], "successes", "n"}`` of a list of outcomes."""
    s, n = int(sum(wins)), len(wins)
    lo, hi = wilson_interval(s, n)
    return {"rate": s / n if n else 0.0, "ci95": [lo, hi], "successes": s, "n": n}


def pass_at_k_block(trajs: list[Trajectory], n: int) -> dict[str, float]:
    """Mean over tasks of the unbiased pass@k, for every k of :func:`k_values`."""
    by_task: dict[tuple[str, int], list[bool]] = defaultdict(list)
    for t in trajs:
        by_task[(t.task_id, t.seed)].append(t.won)
    if not by_task:
        return {}
    out = {}
    for k in k_values(n):
        vals = [pass_at_k(len(w), sum(w), k) for w in by_task.values() if len(w) >= k]
        out[str(k)] = sum(vals) / len(vals) if vals else 0.0
    return out


def entry_metrics(trajs: list[Trajectory], *, samples: int, group_by: str = "task_type",
                  price_prompt: float = 0.0, price_completion: float = 0.0,
                  wall_s: float = 0.0) -> dict[str, Any]:
    """Metrics of one entry's trajectories, from the rollout summariser's counts
    (:func:`turngym.harness.rollout.summary.tally`; ``parse_error_rate`` is its format-error
    rate).

    ``price_*`` are prices per million tokens (0 for a local model); ``wall_s`` is the
    entry's wall time. Timing keys start with ``wall_s`` or end with ``_s`` so that
    :func:`strip_timings` can drop them for determinism checks.
    """
    t = tally(trajs)
    n_student = max(t.student_turns, 1)
    per_ep = max(t.episodes, 1)
    prompt_tok, completion_tok = t.prompt_tokens, t.response_tokens
    cost = (prompt_tok * price_prompt + completion_tok * price_completion) / 1e6
    return {
        "episodes": t.episodes,
        "tasks": len({(x.task_id, x.seed) for x in trajs}),
        "success": success_block([x.won for x in trajs]),
        "pass_at_k": pass_at_k_block(trajs, samples),
        "by_type": {k: {"success": success_block([x.won for x in v]),
                        "turns_mean": sum(x.num_turns for x in v) / len(v)}
                    for k, v in by_type(trajs, group_by).items()},
        "return_mean": t.return_sum / per_ep,
        "turns_mean": t.turns_sum / per_ep,
        "turns_hist": dict(sorted(Counter(str(x.num_turns) for x in trajs).items(),
                                  key=lambda kv: int(kv[0]))),
        "invalid_rate": t.invalid / n_student,
        "parse_error_rate": t.format_errors / n_student,
        "stop_reasons": {r.value: t.stops[r.value] / per_ep for r in StopReason
                         if t.stops.get(r.value)},
        "tokens": {"prompt": prompt_tok, "completion": completion_tok,
                   "per_episode": (prompt_tok + completion_tok) / per_ep},
        "cost_per_episode": cost / per_ep,
        "wall_s": wall_s,
        "wall_s_per_episode": wall_s / per_ep,
    }


def merge_metrics(blocks: list[tuple[list[Trajectory], str]], *, samples: int,
                  price_prompt: float, price_completion: float, wall_s: float) -> dict[str, Any]:
    """Metrics over all entries (the ``overall`` block); by type within each entry's key."""
    trajs = [t for ts, _ in blocks for t in ts]
    out = entry_metrics(trajs, samples=samples, price_prompt=price_prompt,
                        price_completion=price_completion, wall_s=wall_s)
    out.pop("by_type")
    return out


def strip_timings(doc: Any) -> Any:
    """``doc`` without wall-clock keys (``*_s``, ``wall_s*``, ``time``): what must repeat
    exactly under a fixed seed."""
    if isinstance(doc, dict):
        return {k: strip_timings(v) for k, v in doc.items()
                if not (k.endswith("_s") or k.startswith("wall_s") or k in ("time", "started"))}
    if isinstance(doc, list):
        return [strip_timings(v) for v in doc]
    return doc
