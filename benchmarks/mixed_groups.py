"""Which rollout settings give a warm start's groups learning signal (rollouts only)?

GRPO and GiGPO learn only from *mixed* groups: a task whose rollouts all succeed or all
fail has advantage 0 on every turn and is dropped before the update. An SFT'd policy is
peaked: at T=1 it samples almost its greedy path, so a maze's rollouts tend to agree and
most groups carry nothing (``learning.json``: 0-1 of 4 groups per step). This script
measures, for one warm start and the same training tasks, the fraction of mixed groups and
the success rate at each rollout temperature and group size, without any update, so the
learning benchmark's budget can be spent where there is signal.

Per (temperature, group size): ``--tasks`` training tasks (the same ones for every setting,
``turngym.harness.learn.tasks.TaskSampler`` order with seed 0), ``group`` rollouts each. Reports the
fraction of mixed groups with its Wilson 95 % interval, success, the format error rate
(text that does not parse at high temperature) and rollout seconds.

Command::

    python benchmarks/mixed_groups.py --model runs/bench_learning/warm  # the benchmark's SFT
    python benchmarks/mixed_groups.py --model tiny --tasks 2 --temperatures 1.0 --groups 2 \\
        --backend hf                                                    # a smoke run

Writes ``benchmarks/results/NAME.json`` (default ``mixed_groups``).
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from turngym.benchmarks.learning import ENVS, env_registered
from turngym.harness.eval.results import RESULTS_DIR, write_result


def is_mixed(wins: list[bool]) -> bool:
    """Whether a group's outcomes differ (the only groups GRPO/GiGPO learn from)."""
    return any(wins) and not all(wins)


def signal(groups: list) -> dict[str, float]:
    """Which groups and turn rows carry a non-zero advantage under GRPO and under GiGPO
    (default configs: GiGPO's step level also separates all-success groups whose paths
    differ in length, through the discounted step returns)."""
    import numpy as np

    from turngym.algos.gigpo import GiGPOConfig, gigpo_advantage
    from turngym.algos.grpo import GRPOConfig, grpo_advantage
    from turngym.harness.learn.samples import signal_metrics, turn_batch

    batch, _ = turn_batch(groups)
    mask = np.ones(len(batch), dtype=bool)
    out = {}
    for name, adv in (("grpo", grpo_advantage(batch, GRPOConfig()).adv_N),
                      ("gigpo", gigpo_advantage(batch, GiGPOConfig()).adv_N)):
        m = signal_metrics(batch, mask, adv, None)
        out[f"{name}_signal_groups_frac"] = m["algo/signal_groups_frac"]
        out[f"{name}_signal_rows_frac"] = float(np.mean(np.asarray(adv) != 0))
    return out


def measure(rt: Any, cfg: Any, tasks: list, temperature: float, group: int,
            max_turns: int | None = None) -> dict[str, Any]:
    """One setting: roll out ``group`` episodes of each task with the live backend."""
    from turngym.harness.eval.metrics import wilson_interval
    from turngym.harness.rollout.engine import RolloutEngine

    extra = {} if max_turns is None else {"max_turns": max_turns}
    engine = RolloutEngine(cfg.env.id, rt.backend, rt.agent, cfg.rollout.engine_config(
        cfg.env.id, cfg.env.kwargs, 0, group_size=group, temperature=temperature, **extra))
    t0 = time.perf_counter()
    try:
        groups = engine.run(tasks, progress=False, id_prefix="probe/")
    finally:
        engine.close()
    seconds = time.perf_counter() - t0
    mixed = [is_mixed([t.won for t in g.trajectories]) for g in groups]
    trajs = [t for g in groups for t in g.trajectories]
    turns = [u for t in trajs for u in t.turns]
    lo, hi = wilson_interval(sum(mixed), len(mixed))
    return {"temperature": temperature, "group": group, "max_turns": max_turns or
            cfg.rollout.max_turns, "tasks": len(groups), **signal(groups),
            "mixed_frac": sum(mixed) / max(len(mixed), 1), "mixed_lo": lo, "mixed_hi": hi,
            "success": sum(t.won for t in trajs) / max(len(trajs), 1),
            "format_error_rate": sum(not u.format_valid for u in turns) / max(len(turns), 1),
            "turns": len(turns) / max(len(trajs), 1), "seconds": seconds}


def main(argv: list[str] | None = None) -> dict[str, Any]:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--model", required=True, help="the warm start (a model dir, or tiny)")
    ap.add_argument("--env", choices=sorted(ENVS), default="maze")
    ap.add_argument("--size", type=int, default=3)
    ap.add_argument("--tasks", type=int, default=16)
    ap.add_argument("--temperatures", default="1.0,1.3,1.6")
    ap.add_argument("--groups", default="8")
    ap.add_argument("--max-turns", default="",
                    help="comma-separated rollout turn budgets (default: the env's)")
    ap.add_argument("--backend", default="vllm", choices=["vllm", "hf"])
    ap.add_argument("--name", default="mixed_groups")
    ap.add_argument("--results-dir", default=str(RESULTS_DIR))
    args = ap.parse_args(argv)
    e = ENVS[args.env]
    kwargs = f"{{size: {args.size}}}" if args.env == "maze" else e["kwargs"]
    over = [f"env.id={e['id']}", f"env.kwargs={kwargs}", f"model.path={args.model}",
            f"model.backend={args.backend}", f"rollout.max_turns={e['max_turns']}",
            f"rollout.max_tokens={e['max_tokens']}", f"rollout.history_length={e['history']}",
            f"rollout.max_prompt_tokens={e['prompt_tokens']}", "algo.loss.kl_coef=0",
            "out_dir=/tmp/turngym-mixed-groups", "logging.tensorboard=false",
            *e.get("set", [])]
    with env_registered(args.env):  # the corridor's ids are registered here only
        return measure_all(args, over)


def measure_all(args: argparse.Namespace, over: list[str]) -> dict[str, Any]:
    """:func:`measure` at every (temperature, group, turn budget) of ``args``, the results
    written after each."""
    from turngym.harness.components import build_runtime
    from turngym.harness.config import load_config
    from turngym.harness.learn.tasks import TaskSampler

    cfg = load_config(None, over)
    rt = build_runtime(cfg)
    rows = []
    try:
        tasks = TaskSampler(rt.train_ids, 0).sample(args.tasks)
        budgets = [int(b) for b in args.max_turns.split(",") if b] or [None]
        settings = [(float(t), int(g), b) for t in args.temperatures.split(",")
                    for g in args.groups.split(",") for b in budgets]
        for temperature, group, budget in settings:
            row = measure(rt, cfg, tasks, temperature, group, budget)
            rows.append(row)
            print(f"T={temperature:.2f} group {group} turns {row['max_turns']}: mixed groups "
                  f"{row['mixed_frac']:.3f} [{row['mixed_lo']:.3f}, {row['mixed_hi']:.3f}] of "
                  f"{row['tasks']}, success {row['success']:.3f}, GiGPO signal groups "
                  f"{row['gigpo_signal_groups_frac']:.3f} (rows {row['gigpo_signal_rows_frac']:.3f}"
                  f"), format errors {row['format_error_rate']:.3f}, {row['seconds']:.0f}s",
                  flush=True)
            # after every setting: a long run stopped half-way keeps what it measured
            write_result(args.name, {"rows": rows}, config={**vars(args), "overrides": over},
                         out_dir=Path(args.results_dir))
    finally:
        rt.close()
    return {"rows": rows}


if __name__ == "__main__":
    main()
