"""Learning benchmark on CPU: GRPO vs GiGPO (vs OPD / SOD / TCOD) from one warm start.

Every method starts from the same SFT warm start, gets the same budget (steps x tasks x
group size) and runs with the same seeds; the figure is held-out success (mean ± std over
seeds) at the end, next to the warm start's own success (the baseline, measured in the same
run). OPD-style methods distil from a teacher = the default model SFT'd longer on the env's
expert trajectories.

    python benchmarks/learning.py                       # the committed run (see docs/training.md)
    python benchmarks/learning.py --steps 2 --seeds 0   # a quick smoke run

Writes ``benchmarks/results/learning.json`` (via ``write_result``) and ``learning.png``.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from benchmarks._common import RESULTS_DIR, write_result

#: method -> overrides on top of the shared config.
METHODS = {
    "grpo": ["algo.name=grpo"],
    "gigpo": ["algo.name=gigpo"],
    "opd": ["algo.name=opd", "algo.opd.sod=false"],
    "gigpo+opd+sod": ["algo.name=gigpo+opd", "algo.opd.sod=true"],
    "gigpo+tcod_f2b": ["algo.name=gigpo", "curriculum.name=tcod_f2b", "curriculum.delta=2"],
}
TEACHER = {"grpo": False, "gigpo": False, "opd": True, "gigpo+opd+sod": True,
           "gigpo+tcod_f2b": False}


def shared(args: argparse.Namespace) -> list[str]:
    """The budget every method gets."""
    return ["env.id=turngym/Maze-v0", "env.kwargs={size: 2}", f"steps={args.steps}",
            f"rollout.tasks_per_step={args.tasks}", f"rollout.group_size={args.group}",
            "rollout.max_turns=6", "rollout.max_tokens=16", "rollout.history_length=0",
            "rollout.max_prompt_tokens=512", f"eval.num_tasks={args.eval_tasks}",
            "eval.temperature=0.0", f"eval.every={args.eval_every}", "optim.lr=1e-5",
            "optim.mini_batch_size=32", "optim.micro_batch_size=8", "logging.progress=false",
            "logging.plot=false", "logging.tensorboard=false"]


def warm_start(args: argparse.Namespace, out: Path) -> tuple[str, str | None]:
    """SFT warm start (shared by every method) and the longer-SFT teacher."""
    from harness.config import load_config
    from harness.sft import run_sft

    warm = out / "warm"
    if not (warm / "config.json").is_file():
        cfg = load_config(None, [*shared(args), f"model.path={args.model}",
                                 f"sft.num_tasks={args.sft_tasks}", "sft.epochs=1",
                                 f"sft.out_dir={warm}", f"out_dir={out}"])
        run_sft(cfg)
    teacher = out / "teacher"
    needs = any(TEACHER[m] for m in args.methods)
    if needs and not (teacher / "config.json").is_file():
        cfg = load_config(None, [*shared(args), f"model.path={args.model}",
                                 f"sft.num_tasks={args.sft_tasks * 2}", "sft.epochs=3",
                                 f"sft.out_dir={teacher}", "seed=99", f"out_dir={out}"])
        run_sft(cfg)
    return str(warm), (str(teacher) if needs else None)


def run_one(args, out: Path, method: str, seed: int, warm: str, teacher: str | None) -> dict:
    from harness.config import load_config
    from harness.metrics_log import read_metrics
    from harness.train import train

    over = [*shared(args), *METHODS[method], f"model.path={warm}", f"seed={seed}",
            f"out_dir={out / method.replace('+', '_') / f'seed{seed}'}"]
    if TEACHER[method]:
        over.append(f"teacher.path={teacher}")
    t0 = time.perf_counter()
    res = train(load_config(None, over))
    rows = read_metrics(Path(res["out_dir"]) / "metrics.jsonl")
    curve = [(r["step"], r["eval/success"]) for r in rows if r.get("eval/success") is not None]
    return {"before": res["before"]["eval/success"], "after": res["after"]["eval/success"],
            "curve": curve, "seconds": time.perf_counter() - t0}


def plot(results: dict, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6, 4))
    for method, r in results.items():
        steps = sorted({s for run in r["runs"] for s, _ in run["curve"]})
        ys = [np.mean([dict(run["curve"]).get(s, np.nan) for run in r["runs"]]) for s in steps]
        ax.plot(steps, ys, marker="o", label=method)
    ax.set_xlabel("training step")
    ax.set_ylabel("held-out success (mean over seeds)")
    ax.legend()
    fig.tight_layout()
    fig.savefig(path, dpi=90)
    plt.close(fig)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--methods", default="grpo,gigpo",
                    help=f"comma list of {', '.join(METHODS)}")
    ap.add_argument("--seeds", default="0,1,2")
    ap.add_argument("--steps", type=int, default=6)
    ap.add_argument("--tasks", type=int, default=4)
    ap.add_argument("--group", type=int, default=4)
    ap.add_argument("--eval-tasks", type=int, default=16)
    ap.add_argument("--eval-every", type=int, default=0)
    ap.add_argument("--sft-tasks", type=int, default=24)
    ap.add_argument("--model", default="default")
    ap.add_argument("--out", default="runs/bench_learning")
    args = ap.parse_args()
    args.methods = [m for m in args.methods.split(",") if m]
    unknown = [m for m in args.methods if m not in METHODS]
    if unknown:
        ap.error(f"unknown methods {unknown}; choose from {list(METHODS)}")
    seeds = [int(s) for s in args.seeds.split(",")]
    out = Path(args.out)
    t0 = time.perf_counter()
    warm, teacher = warm_start(args, out)
    results: dict[str, dict] = {}
    for method in args.methods:
        runs = [run_one(args, out, method, s, warm, teacher) for s in seeds]
        after = [r["after"] for r in runs]
        results[method] = {"mean": float(np.mean(after)), "std": float(np.std(after)),
                           "warm_start": float(np.mean([r["before"] for r in runs])),
                           "runs": runs}
        print(f"{method:>16}: held-out success {results[method]['mean']:.3f} ± "
              f"{results[method]['std']:.3f}  (warm start baseline "
              f"{results[method]['warm_start']:.3f})", flush=True)
    best = max(results, key=lambda m: results[m]["mean"])
    print(f"best: {best} ({results[best]['mean']:.3f}); total {time.perf_counter() - t0:.0f}s")
    RESULTS_DIR.mkdir(parents=True, exist_ok=True)
    plot(results, RESULTS_DIR / "learning.png")
    write_result("learning", {"methods": results, "best": best,
                              "wall_s": time.perf_counter() - t0},
                 config={k: v for k, v in vars(args).items()}, seeds=seeds)
    print(json.dumps({m: [r["mean"], r["std"]] for m, r in results.items()}))


if __name__ == "__main__":
    main()
