"""Which rollout settings give a warm start's groups learning signal (rollouts only)?

GRPO and GiGPO learn only from *mixed* groups: a task whose rollouts all succeed or all
fail has advantage 0 on every turn and is dropped before the update. An SFT'd policy is
peaked: at T=1 it samples almost its greedy path, so a maze's rollouts tend to agree and
most groups carry nothing (``learning.json``: 0-1 of 4 groups per step). This script
measures, for one warm start and the same training tasks, the fraction of mixed groups and
the success rate at each rollout temperature and group size, without any update, so the
learning benchmark's budget can be spent where there is signal.

Per (temperature, group size): ``--tasks`` training tasks (the same ones for every setting,
``harness.tasks.TaskSampler`` order with seed 0), ``group`` rollouts each. Reports the
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

from benchmarks._common import RESULTS_DIR, write_result
from benchmarks.learning import ENVS


def is_mixed(wins: list[bool]) -> bool:
    """Whether a group's outcomes differ (the only groups GRPO/GiGPO learn from)."""
    return any(wins) and not all(wins)


def measure(rt: Any, cfg: Any, tasks: list, temperature: float, group: int) -> dict[str, Any]:
    """One setting: roll out ``group`` episodes of each task with the live backend."""
    from harness.eval_metrics import wilson_interval
    from harness.rollout import RolloutEngine

    engine = RolloutEngine(cfg.env.id, rt.backend, rt.agent, cfg.rollout.engine_config(
        cfg.env.id, cfg.env.kwargs, 0, group_size=group, temperature=temperature))
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
    return {"temperature": temperature, "group": group, "tasks": len(groups),
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
    ap.add_argument("--backend", default="vllm", choices=["vllm", "hf"])
    ap.add_argument("--name", default="mixed_groups")
    ap.add_argument("--results-dir", default=str(RESULTS_DIR))
    args = ap.parse_args(argv)
    from harness.components import build_runtime
    from harness.config import load_config
    from harness.tasks import TaskSampler

    e = ENVS[args.env]
    kwargs = f"{{size: {args.size}}}" if args.env == "maze" else e["kwargs"]
    over = [f"env.id={e['id']}", f"env.kwargs={kwargs}", f"model.path={args.model}",
            f"model.backend={args.backend}", f"rollout.max_turns={e['max_turns']}",
            f"rollout.max_tokens={e['max_tokens']}", f"rollout.history_length={e['history']}",
            f"rollout.max_prompt_tokens={e['prompt_tokens']}", "algo.loss.kl_coef=0",
            "out_dir=/tmp/turngym-mixed-groups", "logging.tensorboard=false"]
    cfg = load_config(None, over)
    rt = build_runtime(cfg)
    rows = []
    try:
        tasks = TaskSampler(rt.train_ids, 0).sample(args.tasks)
        for temperature in (float(t) for t in args.temperatures.split(",")):
            for group in (int(g) for g in args.groups.split(",")):
                row = measure(rt, cfg, tasks, temperature, group)
                rows.append(row)
                print(f"T={temperature:.2f} group {group}: mixed groups {row['mixed_frac']:.3f} "
                      f"[{row['mixed_lo']:.3f}, {row['mixed_hi']:.3f}] of {row['tasks']}, "
                      f"success {row['success']:.3f}, format errors "
                      f"{row['format_error_rate']:.3f}, {row['seconds']:.0f}s", flush=True)
                # after every setting: a long run stopped half-way keeps what it measured
                write_result(args.name, {"rows": rows}, config={**vars(args), "overrides": over},
                             out_dir=Path(args.results_dir))
    finally:
        rt.close()
    return {"rows": rows}


if __name__ == "__main__":
    main()
