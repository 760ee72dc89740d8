"""Reference rows of the README: expert, random and the default model zero-shot per suite.

    python -m turngym.benchmarks.reference_rows                       # all suites, all policies
    python -m turngym.benchmarks.reference_rows --policies expert random --suites sokoban maze
    python -m turngym.benchmarks.reference_rows --policies hf --model-limit 4 --model-max-turns 8

The scripted expert and random policies run every task of every suite. The default model
(SmolLM2-135M-Instruct, ``hf`` backend, CPU) runs the first ``--model-limit`` tasks of each
entry with the turn limit capped at ``--model-max-turns`` and ``--model-max-tokens`` per
turn, so that it fits a 2-core machine; its rows say so. Results are merged into
``benchmarks/results/reference_rows.json`` (rows of other policies/suites are kept) and the
markdown table is printed. Each run's results and trajectories go to ``--runs-dir``.

This is an evaluation, not a performance script: ``turngym bench`` does not run it.
"""

from __future__ import annotations

import argparse
import json
import logging
import time
from pathlib import Path
from typing import Any

from turngym.harness.eval.results import RESULTS_DIR, write_result

#: Suites with reference rows (``quick`` is a CI smoke suite, not a benchmark).
SUITES = ("household", "webshop", "search", "swe", "sokoban", "maze", "scienceworld",
          "textworld")
POLICIES = ("expert", "random", "hf")


def run_one(suite_name: str, policy: str, args: argparse.Namespace) -> dict[str, Any]:
    """Evaluate one (suite, policy) and return its row."""
    from turngym.harness.eval.evaluate import EvalSettings, evaluate
    from turngym.harness.eval.suite import load_suite

    suite = load_suite(suite_name)
    if policy == "hf":
        settings = EvalSettings(policy="hf", model="default", limit=args.model_limit,
                                max_turns=args.model_max_turns,
                                max_tokens=args.model_max_tokens)
    else:
        settings = EvalSettings(policy="scripted", model=policy)
    t0 = time.perf_counter()
    run = evaluate(suite, settings, progress=False)
    run.write(Path(args.runs_dir) / f"{suite_name}-{policy}")
    res = run.results
    row = {"suite": suite_name, "policy": "default model zero-shot" if policy == "hf" else policy,
           "success": res["overall"]["success"], "episodes": res["overall"]["episodes"],
           "turns_mean": res["overall"]["turns_mean"],
           "invalid_rate": res["overall"]["invalid_rate"],
           "by_entry": {k: v["success"] for k, v in res["entries"].items()},
           "limit": settings.limit, "max_turns_override": settings.max_turns,
           "max_tokens_override": settings.max_tokens, "wall_s": time.perf_counter() - t0}
    return row


def markdown(rows: list[dict[str, Any]]) -> str:
    """The reference table as markdown."""
    head = ("| suite | policy | episodes | success [95% CI] | per entry | mean turns | "
            "invalid | note |")
    lines = [head, "|---|---|---:|---|---|---:|---:|---|"]
    for r in sorted(rows, key=lambda r: (SUITES.index(r["suite"]) if r["suite"] in SUITES
                                          else 99, POLICIES.index(_key(r["policy"])))):
        s = r["success"]
        entries = ", ".join(f"{k} {v['rate']:.0%}" for k, v in r["by_entry"].items())
        note = ""
        if r.get("limit"):
            note = (f"first {r['limit']} tasks/entry, ≤{r['max_turns_override']} turns, "
                    f"≤{r['max_tokens_override']} tokens/turn")
        lines.append(f"| {r['suite']} | {r['policy']} | {r['episodes']} | {s['rate']:.1%} "
                     f"[{s['ci95'][0]:.1%}, {s['ci95'][1]:.1%}] | {entries} | "
                     f"{r['turns_mean']:.1f} | {r['invalid_rate']:.1%} | {note} |")
    return "\n".join(lines)


def _stored_rows() -> dict[tuple[str, str], dict[str, Any]]:
    path = RESULTS_DIR / "reference_rows.json"
    old = json.loads(path.read_text())["results"]["rows"] if path.exists() else []
    return {(r["suite"], _key(r["policy"])): r for r in old}


def _key(policy: str) -> str:
    return "hf" if policy.startswith("default") else policy


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--suites", nargs="+", default=list(SUITES), choices=SUITES)
    parser.add_argument("--policies", nargs="+", default=list(POLICIES), choices=POLICIES)
    parser.add_argument("--model-limit", type=int, default=4)
    parser.add_argument("--model-max-turns", type=int, default=8)
    parser.add_argument("--model-max-tokens", type=int, default=128)
    parser.add_argument("--runs-dir", default="runs/reference")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s: %(message)s")

    rows: dict[tuple[str, str], dict[str, Any]] = {}
    for policy in args.policies:
        for suite in args.suites:
            row = run_one(suite, policy, args)
            rows = _stored_rows()  # re-read: another process may have added rows
            rows[(suite, policy)] = row
            print(f"{suite:13s} {row['policy']:26s} success {row['success']['rate']:.3f} "
                  f"({row['episodes']} episodes, {row['wall_s']:.0f}s)", flush=True)
            write_result("reference_rows", {"rows": list(rows.values())},
                         config={"model_limit": args.model_limit,
                                 "model_max_turns": args.model_max_turns,
                                 "model_max_tokens": args.model_max_tokens,
                                 "model": "SmolLM2-135M-Instruct (hf backend, CPU)"},
                         seeds=[0])
    print(markdown(list(_stored_rows().values())))


if __name__ == "__main__":
    main()
