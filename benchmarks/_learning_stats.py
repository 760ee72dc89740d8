"""Intervals and the verdict of the learning benchmark (``benchmarks/learning.py``).

Pure functions over per-task outcomes (1 = solved, 0 = not), tested on hand-computed cases
in ``tests/benchmarks/test_learning_bench.py``.

- :func:`wilson_interval` (from :mod:`turngym.harness.eval.metrics`): the 95 % Wilson score
  interval of one success rate ``k / n``,

      centre = (p + z^2 / 2n) / (1 + z^2 / n),
      half   = z / (1 + z^2 / n) * sqrt(p (1 - p) / n + z^2 / 4n^2),     p = k / n;

  unlike the normal interval it stays inside [0, 1] and is not zero-width at p = 0 or 1.
- :func:`paired_interval`: the normal 95 % interval of a mean per-task difference
  ``d_i = after_i - before_i`` over the *same* held-out tasks,
  ``mean(d) ± z * sd(d) / sqrt(n)`` with the sample sd (ddof 1). Pairing removes the
  task-difficulty variance (a hard maze is hard before and after). Edge cases: every
  ``d_i`` equal gives a zero-width interval (no evidence of noise: e.g. greedy eval of an
  unchanged policy); ``n < 2`` gives an unbounded interval.
- Several seeds: the per-task differences are first averaged over seeds
  (``d_i = mean_s(after_si - before_i)``), then :func:`paired_interval` runs over tasks. The
  interval is therefore over the held-out tasks and episode sampling for *these* seeds; the
  seed-to-seed spread is reported beside it, not folded in: the per-seed intervals, and
  :func:`seed_interval`, the Student-t 95 % interval over the seeds' own mean differences,
  ``mean ± t_{0.975, k-1} * sd / sqrt(k)`` over k seeds (sd with ddof 1). That one treats
  the seeds as the sample (training randomness included); with 3 seeds ``t = 4.303`` and it
  is wide. The verdict word comes from the task interval; each verdict line says whether
  the seed interval also excludes 0.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import numpy as np

from turngym.harness.eval.metrics import Z95, wilson_interval


def rate(wins_N: Sequence[float]) -> dict[str, Any]:
    """Success rate of per-task outcomes with its Wilson interval."""
    k, n = round(float(np.sum(wins_N))), len(wins_N)
    lo, hi = wilson_interval(k, n)
    return {"success": k / n if n else float("nan"), "lo": lo, "hi": hi, "n": n}


def paired_interval(diff_N: Sequence[float], z: float = Z95) -> dict[str, float]:
    """Normal interval of the mean of per-task differences ``diff_N`` (see the module doc)."""
    return _mean_interval(diff_N, lambda n: z, "n")


def _mean_interval(values: Sequence[float], quantile: Any, count: str) -> dict[str, float]:
    """``mean ± quantile(n) * sd / sqrt(n)`` (sd with ddof 1) of ``values``, the sample
    size under the key ``count``; one value gives an unbounded interval."""
    d = np.asarray(values, dtype=np.float64)
    n = int(d.size)
    if n == 0:
        raise ValueError("an interval needs at least one value")
    mean = float(d.mean())
    if n < 2:
        return {"mean": mean, "lo": -math.inf, "hi": math.inf, "sd": float("nan"), count: n}
    sd = float(d.std(ddof=1))
    half = quantile(n) * sd / math.sqrt(n)
    return {"mean": mean, "lo": mean - half, "hi": mean + half, "sd": sd, count: n}


#: two-sided 95 % Student-t quantiles, t_{0.975, df} for df = 1..30 (beyond: df 30's,
#: slightly conservative)
T975 = (12.706, 4.303, 3.182, 2.776, 2.571, 2.447, 2.365, 2.306, 2.262, 2.228, 2.201, 2.179,
        2.160, 2.145, 2.131, 2.120, 2.110, 2.101, 2.093, 2.086, 2.080, 2.074, 2.069, 2.064,
        2.060, 2.056, 2.052, 2.048, 2.045, 2.042)


def seed_interval(seed_means: Sequence[float]) -> dict[str, float]:
    """Student-t 95 % interval of the mean of per-seed values (see the module doc); one
    seed gives an unbounded interval."""
    return _mean_interval(seed_means, lambda k: T975[min(k - 1, len(T975)) - 1], "k")


def seed_mean_diff(after_SN: Sequence[Sequence[float]], before_SN: Sequence[Sequence[float]]
                   ) -> np.ndarray:
    """Per-task difference averaged over seeds: ``mean_s(after_sN - before_sN)``."""
    a, b = np.asarray(after_SN, dtype=np.float64), np.asarray(before_SN, dtype=np.float64)
    if a.shape != b.shape or a.ndim != 2:
        raise ValueError(f"need two (seeds, tasks) arrays of one shape, got {a.shape} and "
                         f"{b.shape}")
    return (a - b).mean(axis=0)


def classify(iv: dict[str, float]) -> str:
    """``lift`` / ``drop`` when the interval excludes 0, else ``no difference shown``."""
    if iv["lo"] > 0:
        return "lift"
    if iv["hi"] < 0:
        return "drop"
    return "no difference shown"


def fmt(iv: dict[str, float]) -> str:
    """``+0.078 [+0.020, +0.137]``."""
    return f"{iv['mean']:+.3f} [{iv['lo']:+.3f}, {iv['hi']:+.3f}]"


def summarize(before_N: Sequence[float], finals: dict[str, dict[int, list[float]]],
              control: str | None = "control") -> dict[str, Any]:
    """Paired statistics of every method's final held-out outcomes.

    ``before_N``: the warm start's per-task outcomes; ``finals[method][seed]``: that run's
    per-task outcomes at its last eval (same tasks, same order). Returns per method: the
    per-seed paired difference after - before, the seed-pooled one, and (when ``control``
    ran) the seed-matched difference method - control with its verdict word.
    """
    out: dict[str, Any] = {}
    ctrl = finals.get(control) if control else None
    for method, by_seed in finals.items():
        seeds = sorted(by_seed)
        res: dict[str, Any] = {
            "final_success": {s: float(np.mean(by_seed[s])) for s in seeds},
            "per_seed": {s: paired_interval(np.subtract(by_seed[s], before_N)) for s in seeds},
            "pooled": paired_interval(seed_mean_diff([by_seed[s] for s in seeds],
                                                     [before_N] * len(seeds))),
            "over_seeds": seed_interval([np.mean(np.subtract(by_seed[s], before_N))
                                         for s in seeds])}
        if ctrl is not None and method != control:
            common = [s for s in seeds if s in ctrl]
            if common:
                iv = paired_interval(seed_mean_diff([by_seed[s] for s in common],
                                                    [ctrl[s] for s in common]))
                per = [np.mean(np.subtract(by_seed[s], ctrl[s])) for s in common]
                res["vs_control"] = {**iv, "seeds": common, "verdict": classify(iv),
                                     "over_seeds": seed_interval(per)}
        out[method] = res
    return out


def difference(finals: dict[str, dict[int, list[float]]], a: str, b: str) -> dict[str, Any] | None:
    """Seed-matched paired difference ``a - b`` over tasks (None unless both ran a seed)."""
    if a not in finals or b not in finals:
        return None
    common = sorted(set(finals[a]) & set(finals[b]))
    if not common:
        return None
    iv = paired_interval(seed_mean_diff([finals[a][s] for s in common],
                                        [finals[b][s] for s in common]))
    per = [np.mean(np.subtract(finals[a][s], finals[b][s])) for s in common]
    return {**iv, "seeds": common, "verdict": classify(iv), "over_seeds": seed_interval(per)}


def verdict_lines(summary: dict[str, Any], diff: dict[str, Any] | None, label: str,
                  control: str = "control") -> list[str]:
    """Plain sentences: which methods lift held-out success beyond the control's band, and
    GiGPO - GRPO."""
    lines = []
    ctrl = summary.get(control)
    for method, r in summary.items():
        if method == control:
            continue
        text = f"[{label}] {method}: after - before {fmt(r['pooled'])}"
        if ctrl is not None:
            text += f" vs control {fmt(ctrl['pooled'])}"
        vs = r.get("vs_control")
        if vs is not None:
            word = {"lift": "LIFTS held-out success beyond the control's band",
                    "drop": "LOWERS held-out success below the control's band",
                    "no difference shown": "no difference from the control shown"}[vs["verdict"]]
            above = sum(r["per_seed"][s]["mean"] > ctrl["per_seed"][s]["mean"]
                        for s in vs["seeds"])
            text += (f"; {method} - control {fmt(vs)}: {word} ({above}/{len(vs['seeds'])} "
                     f"seeds above their control{_seed_note(vs)})")
        else:
            text += f": {classify(r['pooled'])} vs the warm start (no control run)"
        lines.append(text + ".")
    if diff is not None:
        lines.append(_vs_line(label, "gigpo", "grpo", diff))
    return lines


def _seed_note(iv: dict[str, Any]) -> str:
    """``; over seeds +0.10 [+0.02, +0.18], excludes 0`` (empty for older records)."""
    sv = iv.get("over_seeds")
    if sv is None or sv["k"] < 2:
        return ""
    word = "excludes 0" if classify(sv) != "no difference shown" else "includes 0"
    return f"; over seeds (t, k={sv['k']}) {fmt(sv)}, {word}"


def _vs_line(label: str, a: str, b: str, d: dict[str, Any]) -> str:
    """``[T=1] hgpo - gigpo: +0.003 [...] over 5 seed(s): no difference shown; over ...``"""
    word = {"lift": f"{a} is better", "drop": f"{b} is better",
            "no difference shown": "no difference shown"}[d["verdict"]]
    return (f"[{label}] {a} - {b}: {fmt(d)} over {len(d['seeds'])} seed(s): {word}"
            f"{_seed_note(d)}.")


def analyse(warm_eval: dict[str, Any], runs: list[dict[str, Any]], control: str = "control"
            ) -> dict[str, Any]:
    """Paired summaries for T=1 and greedy, ``gigpo - grpo``, every other method's difference
    from GiGPO (``vs_gigpo``, when GiGPO and a third method ran) and the verdict lines, from
    the warm start's eval and the runs' final evals (``curve[-1]``) of
    ``benchmarks/learning.py``."""
    out: dict[str, Any] = {"summary": {}, "gigpo_minus_grpo": {}, "vs_gigpo": {}, "verdict": []}
    for key, label in (("t1", "T=1"), ("greedy", "greedy")):
        finals: dict[str, dict[int, list[float]]] = {}
        for r in runs:
            finals.setdefault(r["method"], {})[r["seed"]] = r["curve"][-1][key]["wins"]
        summary = summarize(warm_eval[key]["wins"], finals, control)
        diff = difference(finals, "gigpo", "grpo")
        out["summary"][key] = summary
        out["gigpo_minus_grpo"][key] = diff
        out["verdict"] += verdict_lines(summary, diff, label, control)
        others = [m for m in finals if m not in ("gigpo", "grpo", control)]
        if "gigpo" in finals and others:
            vs = {m: difference(finals, m, "gigpo") for m in others}
            out["vs_gigpo"][key] = vs
            out["verdict"] += [_vs_line(label, m, "gigpo", d) for m, d in vs.items() if d]
    return out


def curves(runs: Sequence[dict[str, Any]], key: str = "t1", target: float = 0.9
           ) -> dict[str, dict[str, Any]]:
    """Per method, what the eval curves say beside the final point (a secondary, descriptive
    summary; the verdict reads the final evals): ``mean_over_evals``, the seed interval
    (:func:`seed_interval`) of each seed's mean held-out success over its evals after step
    0, and ``steps_to_target``, per seed the first step whose success is ``>= target``
    (None if none). With ``--eval-every 0`` a curve is its final point alone."""
    out: dict[str, dict[str, Any]] = {}
    for method in dict.fromkeys(r["method"] for r in runs):
        mine = sorted((r for r in runs if r["method"] == method), key=lambda r: r["seed"])
        means, reach = [], {}
        for r in mine:
            points = [(c["step"], c[key]["success"]) for c in r["curve"] if c["step"] >= 1]
            means.append(float(np.mean([p for _, p in points])))
            reach[r["seed"]] = next((step for step, p in points if p >= target), None)
        out[method] = {"mean_over_evals": seed_interval(means), "steps_to_target": reach,
                       "target": target, "evals": len(mine[0]["curve"])}
    return out


def diagnostics(runs: Sequence[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    """Per method, what its training steps saw (read it before the verdict): the steps, the
    task groups with any non-zero advantage summed over them (``signal_groups``), the steps
    that took no optimizer step, the mean training success, and the mean over steps and
    seeds of every other numeric key of the runs' ``train`` records (missing or None values
    are left out of a mean)."""
    out: dict[str, dict[str, Any]] = {}
    for method in dict.fromkeys(r["method"] for r in runs):
        steps = [t for r in runs if r["method"] == method for t in r["train"]]
        keys = dict.fromkeys(k for t in steps for k in t if k not in ("step", "success"))
        means = {}
        for k in keys:
            vals = [float(t[k]) for t in steps if isinstance(t.get(k), (int, float))]
            means[k] = float(np.mean(vals)) if vals else None
        out[method] = {"steps": len(steps),
                       "signal_groups": sum(int(t.get("signal_groups") or 0) for t in steps),
                       "skipped_steps": sum(bool(t.get("skipped")) for t in steps),
                       "train_success": float(np.mean([t["success"] for t in steps
                                                       if t.get("success") is not None]))
                       if steps else None,
                       "mean": means}
    return out
