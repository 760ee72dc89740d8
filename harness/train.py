"""The turngym training loop: one function, read it top to bottom (cleanrl style).

Each step:

1. sample tasks (uniform or difficulty task sampler + TCOD curriculum);
2. roll out groups of ``rollout.group_size`` trajectories per task
   (``turngym.harness.rollout.engine``);
3. optional teacher scoring (OPD) and reference log-probs (KL) with ``backend.score``;
4. advantages from the ``algos`` registry over per-turn rows (+ per-token OPD, SOD weights;
   PPO: the value head's ``V(s_t)`` of every turn first, for GAE; ``algo.state_graph``: a
   state graph kept across steps, read then updated, saved with every checkpoint);
5. PPO mini-batch updates over per-turn samples (token-in/token-out, loss on response tokens
   only; AdamW, grad clipping, grad accumulation; old log-probs = behaviour log-probs);
6. sync the new weights into the rollout backend;
7. log (JSONL, TensorBoard, wandb, phase progress via ``reporter``);
8. evaluate every ``eval.every`` steps on the held-out split at the validation temperature;
9. checkpoint (atomic; ``resume=`` continues exactly).
"""

from __future__ import annotations

import contextlib
import json
import logging
import random
import time
from pathlib import Path
from typing import Any

import numpy as np
import torch

from turngym.harness.config import TrainConfig, dump_config
from turngym.harness.rollout.summary import summarize
from turngym.harness.rollout.trajectory import Group, Turn
from turngym.harness.ui.progress import Progress, or_silent

logger = logging.getLogger(__name__)


def seed_everything(seed: int) -> None:
    """Seed python, numpy and torch (the trainer's own RNG use; envs seed themselves)."""
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)


def train(cfg: TrainConfig, *, resume: str | Path | None = None,
          progress_cb: Any = None, reporter: Progress | None = None) -> dict[str, Any]:
    """Run the training loop of ``cfg``; returns a summary with per-step history.

    Deliberately one long function (cleanrl style, STYLE.md rule 9): the nine phases read
    top to bottom; the pieces each phase calls live in ``turngym.harness.components``/``learner``/
    ``samples``.

    ``resume`` is a run dir or checkpoint dir; training continues from its step exactly.
    The checkpoint is verified (a corrupt one falls back to the newest intact one) and its
    config must match ``cfg`` (``turngym.harness.runs.check_resume_config``); rows of
    ``metrics.jsonl``/``batches.jsonl`` past its step (a killed run's) are dropped.
    ``progress_cb(step, metrics)`` is called after every step. ``reporter``: a
    :class:`turngym.harness.ui.progress.Progress` told each phase, the episodes/samples done
    in it and each step's end (the CLI's display and ETA); the phases are listed in that
    module.
    """
    from turngym.harness.components import (
        build_curriculum,
        build_loss_config,
        build_runtime,
        evaluate,
        roll_out,
        score_groups,
        score_reference,
    )
    from turngym.harness.distributed.fsdp import finish_distributed, init_distributed
    from turngym.harness.distributed.leader import build_learner, check_torchrun_config, follow
    from turngym.harness.learn.checkpoint import (
        load_checkpoint,
        resolve_checkpoint,
        save_checkpoint,
    )
    from turngym.harness.learn.credit import assign_credit, build_state_graph, reference_first
    from turngym.harness.learn.learner import drop_unsignalled, resolve_device
    from turngym.harness.learn.metrics_log import (
        MetricsLogger,
        log_rollouts,
        truncate_steps,
    )
    from turngym.harness.learn.mismatch import correct_mismatch, resolve_mismatch
    from turngym.harness.learn.samples import batch_digest
    from turngym.harness.learn.tasks import TaskSampler
    from turngym.harness.runs import check_resume_config, check_run_start, resolve_run_paths
    from turngym.harness.ui.plots import plot_curves

    # ---------------------------------------------------------------- setup
    resolve_run_paths(cfg)  # model.path=RUN_DIR: that run's newest intact model
    check_run_start(cfg, resume)  # a used out_dir unless resuming: refused before any work
    world = init_distributed(cfg.distributed.timeout_min)  # (0, 1, cpu) outside torchrun
    if world[1] > 1:
        check_torchrun_config(cfg)
        if world[0] != 0:  # learner ranks > 0 run rank 0's learner calls on their shard
            seed_everything(cfg.seed)
            follow(build_learner(None, cfg, world))
            finish_distributed()
            return {"history": [], "before": None, "after": None, "out_dir": cfg.out_dir,
                    "rank": world[0]}
    seed_everything(cfg.seed)
    out = Path(cfg.out_dir)
    ck = None
    if resume is not None:  # verified (falls back to the newest intact one), same config
        ck = resolve_checkpoint(resume)
        check_resume_config(ck, cfg)
    out.mkdir(parents=True, exist_ok=True)
    dump_config(cfg, out / "config.yaml")
    for name in ("batches.jsonl", "rollouts.jsonl"):
        if resume is None and (out / name).exists():
            (out / name).unlink()
    resolve_device(cfg.model.device)  # model.device=cuda without a GPU fails before any load
    reporter = or_silent(reporter)
    reporter.phase("setup")
    rt = build_runtime(cfg)  # model dir, tokenizer, backends, agent, engines, task lists
    learner = build_learner(rt.model_dir, cfg, world)  # FSDP leader under torchrun
    sampler = TaskSampler(rt.train_ids, cfg.seed,
                          difficulty=cfg.sampler if cfg.sampler.name == "difficulty" else None)
    curriculum = build_curriculum(cfg)
    loss_cfg = build_loss_config(cfg)
    ref_first = reference_first(cfg)
    graph = build_state_graph(cfg)  # algo.state_graph: kept across steps, in every checkpoint
    values = None  # PPO: the critic's V(s_t) of every turn, for GAE and the value loss
    if getattr(learner, "value_head", None) is not None:
        def values(rows: list[Turn], mask_N: np.ndarray) -> np.ndarray:
            return learner.values([r.prompt_ids for r in rows], mask_N, rt.pad_id)
    # engine != learner: tis+mask (turngym.algos.mismatch)
    mismatch = resolve_mismatch(cfg, world[1])
    start = 0
    if ck is not None:
        state = load_checkpoint(ck, learner, verified=True)
        sampler.load_state_dict(state["sampler"])
        if curriculum is not None:
            curriculum.load_state_dict(state["curriculum"])
        start = int(state["step"])
        rt.engine.load_state_dict(state["rollout"])  # the sampling-seed counter
        if graph is not None:
            if state.get("state_graph") is not None:
                graph.load_state_dict(state["state_graph"])  # bit-exact; wrong config raises
            else:
                logger.warning("checkpoint %s holds no state graph (saved with "
                               "algo.state_graph off): the graph starts empty", ck)
        rt.backend.load_weights(learner.sync_state_dict())
        for name in ("batches.jsonl", "rollouts.jsonl"):  # a killed run logged steps past it
            truncate_steps(out / name, start)
    log = MetricsLogger(out, tensorboard=cfg.logging.tensorboard, wandb=cfg.logging.wandb,
                        config=cfg.model_dump(), resume=ck is not None,
                        resume_step=start if ck is not None else None)
    history: list[dict[str, Any]] = []
    before = None
    reporter.watch(rt.eval_engine, *([] if cfg.distributed.async_staleness else [rt.engine]))
    reporter.start(cfg.steps, start)
    if ck is None and cfg.eval.at_start:
        reporter.phase("baseline eval", cfg.eval.num_tasks, "episodes")
        before = evaluate(rt, cfg)
        log.log(0, before)

    prefetch = None  # async mode: a producer thread rolls out ahead (turngym.harness.distributed)
    if cfg.distributed.async_staleness:
        from turngym.harness.components import plan_and_roll_out
        from turngym.harness.distributed.async_loop import AsyncRollouts

        prefetch = AsyncRollouts(lambda b: plan_and_roll_out(rt, sampler, curriculum, b),
                                 staleness=cfg.distributed.async_staleness, start=start,
                                 steps=cfg.steps)

    for step in range(start, cfg.steps):
        t_step = time.perf_counter()
        timing: dict[str, float] = {}
        stale = 0
        reporter.begin_step(step + 1)
        reporter.phase("rollout", cfg.rollout.tasks_per_step * cfg.rollout.group_size,
                       "episodes")
        if prefetch is not None:  # phases 1-2 ran in the producer while earlier steps trained
            t0 = time.perf_counter()
            (tasks, horizon, groups), stale, async_m = prefetch.get(step)
            timing.update(async_m)
            timing["time/rollout_s"] = time.perf_counter() - t0
        else:
            # -------------------------------------------- 1. sample tasks (+ curriculum)
            tasks = sampler.sample(cfg.rollout.tasks_per_step)
            horizon, prefix = curriculum.plan() if curriculum is not None else (None, 0)

            # -------------------------------------------- 2. roll out groups
            t0 = time.perf_counter()
            groups: list[Group] = roll_out(rt, tasks, horizon=horizon, prefix=prefix,
                                            step=step, curriculum=curriculum)
            timing["time/rollout_s"] = time.perf_counter() - t0
        trajs = [t for g in groups for t in g.trajectories]
        sampler_m = sampler.observe(groups)  # difficulty sampling: success estimates

        # ------------------------------------------------ 3. teacher + reference scoring
        reporter.phase("scoring")
        t0 = time.perf_counter()
        # the reference only where credit reads it (REINFORCE++'s KL in the reward);
        # otherwise after the samples without signal are dropped (score_reference, below)
        groups, score_m = score_groups(rt, cfg, groups, ref=ref_first)
        timing["time/score_s"] = time.perf_counter() - t0

        # ------------------------------------------------ 4. credit assignment
        reporter.phase("advantages")
        t0 = time.perf_counter()
        credit = assign_credit(groups, cfg, values=values, graph=graph, step=step)
        samples = credit.samples
        metrics: dict[str, float] = {**score_m, **sampler_m, **credit.metrics}
        # no update without signal: samples whose advantages are all 0 leave here, before
        # the reference and the mismatch correction score them (the learner drops them too)
        samples, zero_adv = drop_unsignalled(samples, loss_cfg)
        ref_s = 0.0
        if not ref_first:
            t_ref = time.perf_counter()
            samples = score_reference(rt, cfg, samples)
            ref_s = time.perf_counter() - t_ref
            timing["time/score_s"] += ref_s
        if samples and not stale and mismatch.mode != "off":
            samples, m = correct_mismatch(learner, samples, rt.pad_id, mismatch,
                                          cfg.optim.micro_batch_size)
            metrics.update(m)
        if stale and samples:  # async: truncated IS correction of stale behaviour log-probs
            from turngym.harness.distributed.async_loop import importance_correct

            samples, m = importance_correct(learner, samples, rt.pad_id,  # + engine mismatch
                                            cfg.distributed.is_clip, cfg.optim.micro_batch_size,
                                            mismatch=mismatch)
            metrics.update(m)
        timing["time/advantage_s"] = time.perf_counter() - t0 - ref_s

        # ------------------------------------------------ 5. PPO mini-batch updates
        reporter.phase("update", len(samples), "samples")
        t0 = time.perf_counter()
        # no update without signal: the learner drops all-zero-advantage samples and skips
        # the step when nothing is left (turngym.harness.learn.learner.ppo_update)
        metrics.update({"train/samples": 0.0, "train/optimizer_steps": 0.0,
                        "train/skipped": 1.0})
        if samples:
            metrics.update(learner.update(samples, loss_cfg, seed=cfg.seed * 100003 + step,
                                          pad_id=rt.pad_id, on_progress=reporter.advance))
        metrics["train/zero_adv_samples"] = metrics.get("train/zero_adv_samples", 0.0) + zero_adv
        reporter.advance(len(samples), len(samples),  # all done: trained or dropped
                         tokens=sum(len(x.response_ids) for x in samples))
        timing["time/update_s"] = time.perf_counter() - t0

        # ------------------------------------------------ 6. sync weights into the backend
        t0 = time.perf_counter()
        if prefetch is not None:  # waits for the batch in flight, then lets the producer on
            timing.update(prefetch.after_update(
                step + 1, lambda: rt.backend.load_weights(learner.sync_state_dict())))
        else:
            rt.backend.load_weights(learner.sync_state_dict())
        timing["time/sync_s"] = time.perf_counter() - t0
        if curriculum is not None:
            curriculum.advance()

        # ------------------------------------------------ 7. log
        gen_tokens = sum(len(u.response_ids) for t in trajs for u in t.turns if u.trainable)
        metrics.update(summarize(trajs))
        metrics.update(timing)
        metrics["rollout/tokens_per_s"] = gen_tokens / max(timing["time/rollout_s"], 1e-9)
        metrics["rollout/groups"] = float(len(groups))
        metrics["rollout/trajectories"] = float(len(trajs))
        if horizon is not None:
            metrics["curriculum/horizon"] = float(horizon)
        if curriculum is not None:
            metrics["curriculum/expert_turns"] = float(np.mean(
                [sum(not u.trainable for u in t.turns) for t in trajs])) if trajs else 0.0
        log_rollouts(out / "rollouts.jsonl", groups, step + 1, cfg.logging.rollouts)

        # ------------------------------------------------ 8. evaluate on held-out tasks
        if cfg.eval.every and (step + 1) % cfg.eval.every == 0 and step + 1 < cfg.steps:
            t0 = time.perf_counter()
            reporter.phase("eval", cfg.eval.num_tasks, "episodes")
            with prefetch.guard() if prefetch is not None else contextlib.nullcontext():
                metrics.update(evaluate(rt, cfg))
            metrics["time/eval_s"] = time.perf_counter() - t0
        metrics["time/step_s"] = time.perf_counter() - t_step
        log.log(step + 1, metrics)
        record = {"step": step + 1, "digest": batch_digest(samples),
                  "loss": metrics.get("algo/loss"), "tasks": tasks}
        with (out / "batches.jsonl").open("a") as f:  # what each step trained on
            f.write(json.dumps(record) + "\n")
        history.append({**record, "metrics": metrics})
        if progress_cb is not None:
            progress_cb(step + 1, metrics)

        # ------------------------------------------------ 9. checkpoint
        last = step + 1 == cfg.steps
        if last or (cfg.checkpoint.every and (step + 1) % cfg.checkpoint.every == 0):
            reporter.phase("checkpoint")
            extra = {"sampler": sampler.state_dict(), "rollout": rt.engine.state_dict(),
                     "curriculum": curriculum.state_dict() if curriculum is not None else None,
                     "state_graph": graph.state_dict() if graph is not None else None}
            save_checkpoint(out, step + 1, learner, extra, tokenizer=rt.tokenizer,
                            config_yaml=(out / "config.yaml").read_text(),
                            keep=cfg.checkpoint.keep)
        reporter.end_step(step + 1, metrics)

    if prefetch is not None:
        prefetch.close()
    if cfg.steps > start:
        reporter.phase("final eval", cfg.eval.num_tasks, "episodes")
    after = evaluate(rt, cfg) if cfg.steps > start else None
    if after is not None:
        log.log(cfg.steps, after)
    log.close()
    if cfg.logging.plot and (out / "metrics.jsonl").exists():
        plot_curves(out / "metrics.jsonl", out / "curves.png")
    rt.close()
    if world[1] > 1:
        learner.close()
        finish_distributed()
    return {"history": history, "before": before, "after": after, "out_dir": str(out)}

