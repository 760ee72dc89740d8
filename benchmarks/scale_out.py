"""Scale-out on one machine: Ray env workers, Ray engine actors, FSDP ranks, async mode.

Each section prints its figure next to its baseline, measured side by side in this run:

* ``env_workers``: rollout turns/s with a CPU-bound env (Sokoban + ``--env-ms`` of busy
  CPU per step) and a zero-latency fake model; local inline pool vs 1 vs 2 Ray env-worker
  actors (1 CPU each).
* ``engines``: rollout turns/s with the tiny random Llama generating ``--tokens`` tokens per
  turn; in-process ``hf`` backend vs 1 vs 2 engine actors behind the router (1 CPU each).
* ``learner``: seconds per PPO update of the FSDP learner (gloo) on 32 synthetic samples,
  1 rank (2 or 1 torch threads) vs 2 ranks (1 thread each) under ``torchrun`` (median of
  steps 2..N).
* ``async``: wall seconds per training step (tiny model, Maze) with a fake model latency
  of ``--latency-s`` per generate call; sync vs ``distributed.async_staleness=1``.

On 2 cores there is little to gain from more actors or ranks: the numbers show the
overheads honestly. ``python -m turngym.benchmarks.scale_out [--sections env_workers,async]``
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from turngym import envs
from turngym.agents.backend import Backend
from turngym.envs.sokoban import SokobanEnv
from turngym.harness.eval.results import RESULTS_DIR as RESULTS
from turngym.harness.eval.results import write_result

ENV_ID = "bench/BusySokoban-v0"


class BusySokoban(SokobanEnv):
    """Sokoban whose every step spins the CPU for ``busy_s`` first (a CPU-bound env)."""

    def __init__(self, busy_s: float = 0.01, **kwargs: Any):
        super().__init__(**kwargs)
        self.busy_s = busy_s

    def _step(self, action: str):
        end = time.perf_counter() + self.busy_s
        while time.perf_counter() < end:
            pass
        return super()._step(action)


class SlowBackend(Backend):
    """Delegates to ``inner`` after sleeping ``latency_s`` per generate call (fake latency)."""

    def __init__(self, inner: Backend, latency_s: float):
        self.inner, self.latency_s = inner, latency_s
        self.tokenizer, self.max_model_len = inner.tokenizer, inner.max_model_len

    def generate(self, prompts_ids, sampling):
        time.sleep(self.latency_s)
        return self.inner.generate(prompts_ids, sampling)

    def score(self, prompts_ids, responses_ids):
        return self.inner.score(prompts_ids, responses_ids)

    def load_weights(self, state_dict):
        self.inner.load_weights(state_dict)

    def close(self):
        self.inner.close()


def _turns_per_s(engine: Any, tasks: list) -> float:
    engine.run(tasks, progress=False)  # start the actors / pool at full size, fill caches
    t0 = time.perf_counter()
    groups = engine.run(tasks, progress=False)
    wall = time.perf_counter() - t0
    return sum(len(t.turns) for g in groups for t in g.trajectories) / wall


def bench_env_workers(args: argparse.Namespace) -> dict[str, float]:
    from turngym.agents.agent import Agent
    from turngym.agents.models import load_tokenizer, tiny_model_dir
    from turngym.benchmarks.rollout_overlap import LatencyBackend
    from turngym.harness.distributed.runtime import RayRolloutEngine
    from turngym.harness.rollout.engine import RolloutConfig, RolloutEngine

    if ENV_ID not in envs.registry:
        envs.register(ENV_ID, "turngym.benchmarks.scale_out:BusySokoban", max_turns=args.turns,
                      kwargs={"busy_s": args.env_ms / 1000})
    tok = load_tokenizer(tiny_model_dir())
    agent = Agent(tokenizer=tok, family="sokoban")
    tasks = [(f"train-{i:05d}", i) for i in range(args.tasks)]
    cfg = RolloutConfig.build(env_id=ENV_ID, group_size=args.group, max_turns=args.turns,
                              step_mode="inline")
    rows = {"local inline": _turns_per_s(RolloutEngine(ENV_ID, LatencyBackend(tok), agent,
                                                       cfg), tasks)}
    for w in (1, 2):
        eng = RayRolloutEngine(ENV_ID, LatencyBackend(tok), agent, cfg, num_env_workers=w,
                               resources={"num_cpus": 1.0})
        rows[f"ray {w} env worker(s)"] = _turns_per_s(eng, tasks)
        eng.close()
    return rows


def bench_engines(args: argparse.Namespace) -> dict[str, float]:
    from turngym.agents.agent import Agent
    from turngym.agents.hf import HFBackend
    from turngym.agents.models import load_tokenizer, tiny_model_dir
    from turngym.harness.distributed.ray_engines import start_engines
    from turngym.harness.distributed.router import RouterBackend
    from turngym.harness.rollout.engine import RolloutConfig, RolloutEngine

    model = tiny_model_dir()
    tok = load_tokenizer(model)
    agent = Agent(tokenizer=tok, family="maze", history_length=1)
    tasks = [(f"train-{i:05d}", 0) for i in range(args.tasks)]
    cfg = RolloutConfig.build(env_id="turngym/Maze-v0", env_kwargs={"size": 3},
                              group_size=args.group, max_turns=3, max_tokens=args.tokens,
                              step_mode="inline")
    import torch

    local = HFBackend(model, dtype="float32")
    threads = torch.get_num_threads()
    rows = {}
    for n in sorted({1, threads}):  # an actor runs 1 torch thread per reserved CPU
        torch.set_num_threads(n)
        rows[f"in-process hf, {n} thread(s)"] = _turns_per_s(
            RolloutEngine("turngym/Maze-v0", local, agent, cfg), tasks)
    torch.set_num_threads(threads)
    local.close()
    for n in (1, 2):
        engines = start_engines(n, "hf", {"model": str(model), "dtype": "float32"},
                                num_cpus=1.0)
        router = RouterBackend(engines, tok)
        rows[f"ray {n} engine actor(s)"] = _turns_per_s(
            RolloutEngine("turngym/Maze-v0", router, agent, cfg), tasks)
        router.close()
    return rows


def bench_learner(args: argparse.Namespace) -> dict[str, float]:
    from turngym.agents.models import tiny_model_dir

    rows = {}
    for n, threads in ((1, 2), (1, 1), (2, 1)):
        with tempfile.TemporaryDirectory() as tmp:
            cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone",
                   f"--nproc_per_node={n}", "-m", "turngym.harness.distributed.fsdp_check",
                   "--model", str(tiny_model_dir()), "--out", tmp, "--steps", "4",
                   "--samples", "32", "--mini", "32", "--micro", "4"]
            env = {**os.environ, "OMP_NUM_THREADS": str(threads)}
            subprocess.run(cmd, check=True, capture_output=True, env=env, timeout=900)
            res = json.loads((Path(tmp) / "result.json").read_text())
        rows[f"{n} rank(s) x {threads} thread(s) s/update"] = statistics.median(
            res["step_s"][1:])
    return rows


def bench_async(args: argparse.Namespace) -> dict[str, float]:
    from turngym.harness import components as setup
    from turngym.harness.config import load_config
    from turngym.harness.train import train

    real = setup.make_hf_backend
    setup.make_hf_backend = lambda *a, **k: SlowBackend(real(*a, **k), args.latency_s)
    rows = {}
    try:
        for k in (0, 1):
            with tempfile.TemporaryDirectory() as tmp:
                cfg = load_config(None, [
                    "model.path=tiny", "env.id=turngym/Maze-v0", "env.kwargs={size: 2}",
                    "steps=5", "rollout.tasks_per_step=4", "rollout.group_size=2",
                    "rollout.max_turns=3", "rollout.max_tokens=8", "eval.at_start=false",
                    "eval.num_tasks=1", "optim.mini_batch_size=8", "optim.micro_batch_size=4",
                    "algo.name=grpo", "algo.loss.entropy_coef=0.01", "algo.loss.kl_coef=0",
                    "logging.plot=false",
                    "logging.progress=false", "logging.tensorboard=false",
                    f"distributed.async_staleness={k}", f"out_dir={tmp}"])
                hist = train(cfg)["history"]
            step_s = [h["metrics"]["time/step_s"] for h in hist[1:]]
            rows["sync s/step" if k == 0 else "async(1) s/step"] = statistics.mean(step_s)
            name = "sync" if k == 0 else "async(1)"
            for phase in ("rollout", "update", "sync"):  # async: rollout = waiting for it
                rows[f"{name} {phase} s/step"] = statistics.mean(
                    h["metrics"][f"time/{phase}_s"] for h in hist[1:])
    finally:
        setup.make_hf_backend = real
    return rows


SECTIONS = {"env_workers": bench_env_workers, "engines": bench_engines,
            "learner": bench_learner, "async": bench_async}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--sections", default=",".join(SECTIONS))
    ap.add_argument("--tasks", type=int, default=4)
    ap.add_argument("--group", type=int, default=2)
    ap.add_argument("--turns", type=int, default=10)
    ap.add_argument("--env-ms", type=float, default=10.0)
    ap.add_argument("--tokens", type=int, default=16)
    ap.add_argument("--latency-s", type=float, default=0.5)
    ap.add_argument("--no-write", action="store_true")
    args = ap.parse_args()
    names = [s for s in args.sections.split(",") if s]
    if any(n in ("env_workers", "engines") for n in names):
        from turngym.harness.distributed.ray_engines import ensure_ray

        ensure_ray(num_cpus=os.cpu_count())
    results: dict[str, dict[str, float]] = {}
    for name in names:
        results[name] = {k: round(v, 3) for k, v in SECTIONS[name](args).items()}
        print(f"== {name}")
        for k, v in results[name].items():
            print(f"  {k:32s} {v:10.3f}")
    if not args.no_write:  # a run of some sections keeps the others' last figures
        old = RESULTS / "scale_out.json"
        if old.is_file():
            results = {**json.loads(old.read_text()).get("results", {}), **results}
        write_result("scale_out", results, config=vars(args), seeds=[0])


if __name__ == "__main__":
    main()
