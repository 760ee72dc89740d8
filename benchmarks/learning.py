"""Learning benchmark on CPU: GRPO vs GiGPO (vs OPD / SOD / TCOD) from one warm start.

Every method starts from the same SFT warm start, gets the same budget (steps x tasks x
group size) and runs with the same seeds; the figure is held-out success (mean ± std over
seeds) at the end, next to the warm start's own success (the baseline, measured once in the
same run: greedy eval of a fixed model on fixed tasks, so every run would measure the same
number). OPD-style methods distil from a teacher = the default model SFT'd longer on the
env's expert trajectories.

The default setting is Maze size 3 (7x7 grid, shortest paths of 8, 12 or 16 moves) with a
12-turn budget: the 1-epoch SFT warm start solves only part of the held-out mazes, so RL has
something to learn (at size 2 the warm start already solves every maze).

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
    return ["env.id=turngym/Maze-v0", f"env.kwargs={{size: {args.size}}}",
            f"steps={args.steps}", f"rollout.tasks_per_step={args.tasks}",
            f"rollout.group_size={args.group}", f"rollout.max_turns={args.max_turns}",
            "rollout.max_tokens=16", "rollout.history_length=0",
            "rollout.max_prompt_tokens=512", f"eval.num_tasks={args.eval_tasks}",
            "eval.temperature=0.0", f"eval.every={args.eval_every}", f"optim.lr={args.lr}",
            "optim.mini_batch_size=32", "optim.micro_batch_size=8", "logging.progress=false",
            "logging.plot=false", "logging.tensorboard=false"]


def warm_start(args: argparse.Namespace, out: Path) -> tuple[str, str | None, dict]:
    """SFT warm start (shared by every method) and the longer-SFT teacher."""
    from harness.config import load_config
    from harness.sft import run_sft

    warm = out / "warm"
    info: dict = {"sft_tasks": args.sft_tasks, "sft_epochs": args.sft_epochs, "reused": True}
    if not (warm / "config.json").is_file():
        cfg = load_config(None, [*shared(args), f"model.path={args.model}",
                                 f"sft.num_tasks={args.sft_tasks}",
                                 f"sft.epochs={args.sft_epochs}",
                                 f"sft.out_dir={warm}", f"out_dir={out}"])
        res = run_sft(cfg)
        info.update(reused=False, seconds=res["seconds"], losses=res["losses"],
                    samples=res["sft/samples"], expert_success=res["sft/expert_success"])
    teacher = out / "teacher"
    needs = any(TEACHER[m] for m in args.methods)
    if needs and not (teacher / "config.json").is_file():
        cfg = load_config(None, [*shared(args), f"model.path={args.model}",
                                 f"sft.num_tasks={args.sft_tasks * 2}", "sft.epochs=3",
                                 f"sft.out_dir={teacher}", "seed=99", f"out_dir={out}"])
        run_sft(cfg)
    return str(warm), (str(teacher) if needs else None), info


def run_one(args, out: Path, method: str, seed: int, warm: str, teacher: str | None,
            baseline: float | None, steps: int | None = None) -> dict:
    """One method x seed from the warm start. ``baseline`` None: this run evaluates the warm
    start first (the shared baseline); otherwise it is the step-0 point of the curve."""
    from harness.config import load_config
    from harness.metrics_log import read_metrics
    from harness.train import train

    over = [*shared(args), *METHODS[method], f"model.path={warm}", f"seed={seed}",
            f"model.backend={args.backend}", f"eval.at_start={baseline is None}",
            f"out_dir={out / method.replace('+', '_') / f'seed{seed}'}"]
    if steps is not None:  # steps=0: only the held-out eval of the warm start
        over += [f"steps={steps}", f"out_dir={out / 'warm_start_eval'}"]
    if TEACHER[method]:
        over.append(f"teacher.path={teacher}")
    t0 = time.perf_counter()
    res = train(load_config(None, over))
    rows = read_metrics(Path(res["out_dir"]) / "metrics.jsonl")
    curve = [(r["step"], r["eval/success"]) for r in rows if r.get("eval/success") is not None]
    if baseline is not None:
        curve.insert(0, (0, baseline))
    steps = [r for r in rows if "time/step_s" in r]
    after = res["after"]["eval/success"] if res["after"] is not None else curve[-1][1]
    return {"before": curve[0][1], "after": after, "curve": curve,
            "train_success": [r.get("env/success") for r in steps],
            "step_s": float(np.mean([r["time/step_s"] for r in steps])) if steps else None,
            "seconds": time.perf_counter() - t0}


def run_method(args, out: Path, method: str, seeds: list[int], warm: str, teacher: str | None,
               baseline: float | None) -> dict:
    """Every seed of ``method``; the first run measures the warm start when ``baseline`` is
    None."""
    runs = []
    for s in seeds:
        runs.append(run_one(args, out, method, s, warm, teacher, baseline))
        baseline = runs[-1]["before"]
        print(f"  {method} seed {s}: curve {runs[-1]['curve']} ({runs[-1]['seconds']:.0f}s)",
              flush=True)
    after = [r["after"] for r in runs]
    res = {"mean": float(np.mean(after)), "std": float(np.std(after)), "warm_start": baseline,
           "runs": runs}
    print(f"{method:>16}: held-out success {res['mean']:.3f} ± {res['std']:.3f}  (warm start "
          f"baseline {baseline:.3f})", flush=True)
    return res


def verdict(results: dict, baseline: float, n_eval: int) -> str:
    """One plain sentence: who wins, by how much, against the spread and the warm start."""
    order = sorted(results, key=lambda m: -results[m]["mean"])
    best, parts = order[0], []
    b = results[best]
    parts.append(f"{best} has the highest held-out success, {b['mean']:.3f} ± {b['std']:.3f} "
                 f"(warm start {baseline:.3f})")
    for m in order[1:]:
        r = results[m]
        gap = b["mean"] - r["mean"]
        noise = max(b["std"], r["std"], 1.0 / n_eval)
        kind = "larger than" if gap > noise + 1e-9 else "within"
        parts.append(f"{gap:+.3f} over {m} ({r['mean']:.3f} ± {r['std']:.3f}), {kind} the "
                     f"seed spread / one eval task ({noise:.3f})")
    vs = b["mean"] - baseline
    parts.append(f"the best method is {vs:+.3f} vs the warm start")
    return "; ".join(parts) + "."


def plot(results: dict, path: Path, baseline: float | None = None, title: str = "") -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6, 4))
    for method, r in results.items():
        steps = sorted({s for run in r["runs"] for s, _ in run["curve"]})
        ys = np.array([[dict(run["curve"]).get(s, np.nan) for run in r["runs"]] for s in steps])
        mean, std = np.nanmean(ys, axis=1), np.nanstd(ys, axis=1)
        ax.plot(steps, mean, marker="o", label=f"{method} (n={len(r['runs'])} seeds)")
        ax.fill_between(steps, mean - std, mean + std, alpha=0.2)
    if baseline is not None:
        ax.axhline(baseline, color="grey", linestyle="--", label="SFT warm start")
    ax.set_xlabel("training step")
    ax.set_ylabel("held-out success (mean ± std over seeds)")
    ax.set_ylim(-0.02, 1.02)
    if title:
        ax.set_title(title, fontsize=9)
    ax.legend()
    fig.tight_layout()
    fig.savefig(path, dpi=90)
    plt.close(fig)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--methods", default="grpo,gigpo",
                    help=f"comma list of {', '.join(METHODS)}")
    ap.add_argument("--seeds", default="0,1,2")
    ap.add_argument("--size", type=int, default=3, help="Maze size (cells a side)")
    ap.add_argument("--max-turns", type=int, default=12)
    ap.add_argument("--steps", type=int, default=6)
    ap.add_argument("--tasks", type=int, default=2)
    ap.add_argument("--group", type=int, default=4)
    ap.add_argument("--lr", type=float, default=1e-5)
    ap.add_argument("--eval-tasks", type=int, default=16)
    ap.add_argument("--eval-every", type=int, default=2)
    ap.add_argument("--sft-tasks", type=int, default=24)
    ap.add_argument("--sft-epochs", type=int, default=1)
    ap.add_argument("--backend", default="vllm", choices=["vllm", "hf"],
                    help="rollout/eval backend (the learner is always torch)")
    ap.add_argument("--model", default="default")
    ap.add_argument("--out", default="runs/bench_learning")
    ap.add_argument("--parallel", action="store_true",
                    help="one process per method (a machine with cores and a GPU to spare)")
    ap.add_argument("--name", default="learning",
                    help="results file benchmarks/results/NAME.json (+ NAME.png)")
    args = ap.parse_args()
    args.methods = [m for m in args.methods.split(",") if m]
    unknown = [m for m in args.methods if m not in METHODS]
    if unknown:
        ap.error(f"unknown methods {unknown}; choose from {list(METHODS)}")
    seeds = [int(s) for s in args.seeds.split(",")]
    out = Path(args.out)
    t0 = time.perf_counter()
    warm, teacher, sft_info = warm_start(args, out)
    t_rl = time.perf_counter()
    if args.parallel:  # the warm start's success once here, then every method at once
        baseline = run_one(args, out, "grpo", seeds[0], warm, teacher, None, steps=0)["before"]
        import multiprocessing as mp
        from concurrent.futures import ProcessPoolExecutor

        with ProcessPoolExecutor(len(args.methods), mp_context=mp.get_context("spawn")) as ex:
            futs = {m: ex.submit(run_method, args, out, m, seeds, warm, teacher, baseline)
                    for m in args.methods}
            results = {m: f.result() for m, f in futs.items()}
    else:
        results, baseline = {}, None
        for method in args.methods:
            results[method] = run_method(args, out, method, seeds, warm, teacher, baseline)
            baseline = results[method]["warm_start"]
    best = max(results, key=lambda m: results[m]["mean"])
    text = verdict(results, baseline, args.eval_tasks)
    print(text)
    print(f"total {time.perf_counter() - t0:.0f}s")
    RESULTS_DIR.mkdir(parents=True, exist_ok=True)
    plot(results, RESULTS_DIR / f"{args.name}.png", baseline,
         f"Maze size {args.size}, {args.steps} steps x {args.tasks} tasks x {args.group} "
         f"rollouts, {args.eval_tasks} held-out mazes (greedy)")
    write_result(args.name, {"warm_start": {"success": baseline, **sft_info},
                              "methods": results, "best": best, "verdict": text,
                              "rl_wall_s": time.perf_counter() - t_rl,
                              "wall_s": time.perf_counter() - t0},
                 config={**vars(args), "shared_overrides": shared(args),
                         "method_overrides": {m: METHODS[m] for m in args.methods},
                         "env": "turngym/Maze-v0"}, seeds=seeds)
    print(json.dumps({m: [r["mean"], r["std"]] for m, r in results.items()}))


if __name__ == "__main__":
    main()
