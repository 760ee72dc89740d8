"""Everything the training loop builds before its first step, and its per-step helpers.

:func:`build_runtime` resolves the model directory, loads the tokenizer, builds the rollout
backend, the agent, the rollout engines (train and eval) and the optional teacher and
reference backends. :func:`roll_out`, :func:`score_groups` and :func:`evaluate` are the
loop's steps 2, 3 and 8.
"""

from __future__ import annotations

import dataclasses
import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from itertools import islice
from pathlib import Path
from typing import TYPE_CHECKING, Any

from turngym import envs
from turngym.agents import make_backend
from turngym.agents.agent import Agent
from turngym.agents.backend import Backend, score_temperature
from turngym.agents.models import load_tokenizer, resolve_model_dir
from turngym.algos.tcod import B2FSchedule, F2BSchedule, make_schedule
from turngym.harness.config import TrainConfig
from turngym.harness.distributed.runtime import ray_backend_and_engine
from turngym.harness.learn.tasks import TaskSampler, eval_tasks, split_task_ids
from turngym.harness.learn.teacher_hint import hinted_prompts
from turngym.harness.rollout import calls
from turngym.harness.rollout.agent import make_agent
from turngym.harness.rollout.engine import RolloutEngine
from turngym.harness.rollout.expert import expert_turns
from turngym.harness.rollout.summary import summarize
from turngym.harness.rollout.trajectory import Group

if TYPE_CHECKING:
    from transformers import PreTrainedTokenizerBase

    from turngym.algos.ppo_loss import PPOLossConfig
    from turngym.harness.learn.learner import Sample

logger = logging.getLogger(__name__)


@dataclass
class Runtime:
    """Models, engines and task lists of one run."""

    model_dir: Path
    tokenizer: PreTrainedTokenizerBase
    pad_id: int
    backend: Backend
    agent: Agent
    engine: RolloutEngine
    eval_engine: RolloutEngine
    train_ids: list[str]
    eval_ids: list[str]
    family: str
    cfg: TrainConfig
    teacher: Backend | None = None
    ref: Backend | None = None
    expert_len: dict[tuple[str, int], int] = field(default_factory=dict)

    def close(self) -> None:
        for e in (self.engine, self.eval_engine):
            e.close()
        for b in (self.teacher, self.ref, self.backend):
            if b is not None:
                b.close()


def make_hf_backend(model_dir: Path, cfg: TrainConfig, backend: str = "hf") -> Backend:
    """A generation/scoring backend over ``model_dir`` (``agents.make_backend``). The ``hf``
    backend runs on ``model.device`` when that is set (``auto``: the GPU when there is one).
    Not ``turngym.harness.eval.evaluate.build_backend``: training takes ``model.dtype`` and
    ``model.device`` from the train config, and builds teacher and reference backends too."""
    kwargs: dict[str, Any] = {"model": str(model_dir), "dtype": cfg.model.dtype}
    if backend == "hf" and cfg.model.device != "auto":
        kwargs["device"] = cfg.model.device
    return make_backend(backend, **kwargs)


def build_runtime(cfg: TrainConfig) -> Runtime:
    """Build backends, agent and engines; fails with ConfigError before any training."""
    train_ids, family = split_task_ids(cfg.env.id, cfg.env.kwargs, cfg.env.train_split)
    eval_ids, _ = split_task_ids(cfg.env.id, cfg.env.kwargs, cfg.env.eval_split)
    if cfg.env.num_train_tasks:
        train_ids = train_ids[:cfg.env.num_train_tasks]
    model_dir = resolve_model_dir(cfg.model.path)
    teacher_dir = resolve_model_dir(cfg.teacher.path) if cfg.algo.uses_teacher else None
    tok = load_tokenizer(model_dir)
    engine_cls: Callable[..., RolloutEngine] = RolloutEngine
    if cfg.distributed.mode == "ray":  # engine + env-worker actors (turngym.harness.distributed)
        backend, engine_cls = ray_backend_and_engine(model_dir, cfg)
    else:
        backend = make_hf_backend(model_dir, cfg, cfg.model.backend)
    agent = make_agent(cfg.env.id, tok, history_length=cfg.rollout.history_length,
                       max_prompt_tokens=cfg.rollout.max_prompt_tokens, family=family)
    engine = engine_cls(cfg.env.id, backend, agent,
                        cfg.rollout.engine_config(cfg.env.id, cfg.env.kwargs, cfg.seed))
    ev = cfg.eval
    eval_engine = engine_cls(cfg.env.id, backend, agent, cfg.rollout.engine_config(
        cfg.env.id, cfg.env.kwargs, cfg.seed + 1, group_size=1, temperature=ev.temperature,
        max_turns=ev.max_turns or cfg.rollout.max_turns))
    teacher = make_hf_backend(teacher_dir, cfg) if teacher_dir is not None else None
    ref = make_hf_backend(model_dir, cfg) if cfg.ref.enabled else None
    pad_id = tok.pad_token_id if tok.pad_token_id is not None else tok.eos_token_id
    return Runtime(model_dir=model_dir, tokenizer=tok, pad_id=int(pad_id), backend=backend,
                   agent=agent, engine=engine, eval_engine=eval_engine, train_ids=train_ids,
                   eval_ids=eval_ids, family=family, cfg=cfg, teacher=teacher, ref=ref)


def build_loss_config(cfg: TrainConfig) -> PPOLossConfig:
    """The ``turngym.algos.ppo_loss`` config: the ``algo.loss`` section is that class."""
    return cfg.algo.loss


class Curriculum:
    """A TCOD schedule (``turngym.algos.tcod``): ``plan() -> (horizon, expert_prefix)``.

    f2b gives a horizon and prefix 0; b2f gives no horizon and prefix -1, meaning "per task":
    :func:`roll_out` asks :meth:`prefix` with each task's expert length.
    """

    def __init__(self, name: str, schedule: F2BSchedule | B2FSchedule):
        self.name, self.schedule = name, schedule

    def plan(self) -> tuple[int | None, int]:
        if self.name == "tcod_f2b":
            return self.schedule.horizon(), 0
        return None, -1

    def prefix(self, expert_len: int) -> int:
        return int(self.schedule.prefix(None, expert_len))

    def advance(self) -> None:
        self.schedule.advance()

    def state_dict(self) -> dict[str, Any]:
        return self.schedule.state_dict()

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.schedule.load_state_dict(state)


def build_curriculum(cfg: TrainConfig) -> Curriculum | None:
    """The TCOD curriculum of ``cfg.curriculum`` (None for ``none``)."""
    c = cfg.curriculum
    if c.name == "none":
        return None
    # f2b's T_max defaults to the run's turn budget
    return Curriculum(f"tcod_{c.mode}", make_schedule(c, max_turns=cfg.rollout.max_turns))


def expert_length(cfg: TrainConfig, task_id: str, seed: int, limit: int = 200) -> int:
    """Turns the scripted expert needs to solve ``task_id`` (for b2f's prefix), played by
    the one expert replay (:func:`turngym.harness.rollout.expert.expert_turns`)."""
    env = envs.make(cfg.env.id, **cfg.env.kwargs)
    try:
        episode = calls.Episode(index=0, slot=0, group_id="expert", task_id=task_id,
                                traj_id=f"expert/{task_id}@{seed}", seed=seed)
        episode.start(*calls.reset_call(env, seed, task_id))
        return sum(1 for _ in islice(expert_turns(env, episode), limit))
    finally:
        env.close()


def roll_out(rt: Runtime, tasks: list[tuple[str, int]], *, horizon: int | None, prefix: int,
             step: int, curriculum: Curriculum | None = None) -> list[Group]:
    """Step 2: groups for ``tasks``; b2f (prefix == -1) runs one engine call per prefix."""
    tag = f"s{step}/"
    if prefix >= 0:
        return rt.engine.run(tasks, horizon=horizon, expert_prefix=prefix, progress=False,
                             id_prefix=tag)
    by_prefix: dict[int, list[tuple[str, int]]] = {}
    for t in tasks:
        if t not in rt.expert_len:
            rt.expert_len[t] = expert_length(rt.cfg, *t)
        by_prefix.setdefault(curriculum.prefix(rt.expert_len[t]), []).append(t)
    groups: list[Group] = []
    for c, ts in sorted(by_prefix.items()):
        groups.extend(rt.engine.run(ts, horizon=None, expert_prefix=c, progress=False,
                                    id_prefix=f"{tag}c{c}/"))
    order = {t: i for i, t in enumerate(tasks)}
    return sorted(groups, key=lambda g: order.get((g.task_id, g.seed), 0))


def plan_and_roll_out(rt: Runtime, sampler: TaskSampler, curriculum: Curriculum | None,
                      step: int
                      ) -> tuple[list[tuple[str, int]], int | None, list[Group]]:
    """Phases 1-2 of the training loop for batch ``step``: what the async producer
    (``turngym.harness.distributed.async_loop.AsyncRollouts``) runs."""
    tasks = sampler.sample(rt.cfg.rollout.tasks_per_step)
    horizon, prefix = curriculum.plan() if curriculum is not None else (None, 0)
    groups = roll_out(rt, tasks, horizon=horizon, prefix=prefix, step=step,
                      curriculum=curriculum)
    return tasks, horizon, groups


def score_groups(rt: Runtime, cfg: TrainConfig, groups: list[Group], *, ref: bool = True
                 ) -> tuple[list[Group], dict[str, float]]:
    """Step 3: teacher log-probs (OPD) and, with ``ref``, reference log-probs (KL) on
    trainable turns, at the rollout temperature: ``log_softmax(z / T)`` (raw ``z`` for greedy
    rollouts), the temperature the behaviour log-probs are recorded at (top-k/top-p are not
    applied). The train loop passes ``ref=False`` unless the advantages need the reference
    (REINFORCE++'s KL in the reward) and scores the reference later, on the samples that
    enter the update only (:func:`score_reference`).

    With ``teacher.expert_hint`` the teacher scores each response under the student's prompt
    plus the env's expert action (:mod:`turngym.harness.learn.teacher_hint`)."""
    ref_backend = rt.ref if ref else None
    if rt.teacher is None and ref_backend is None:
        return groups, {}
    keys, prompts, responses = [], [], []
    for g in groups:
        for t in g.trajectories:
            for k, u in enumerate(t.turns):
                if u.trainable and u.response_ids:
                    keys.append((t.traj_id, k))
                    prompts.append(list(u.prompt_ids))
                    responses.append(list(u.response_ids))
    if not keys:
        return groups, {}
    metrics: dict[str, float] = {}
    teacher_prompts = prompts
    if rt.teacher is not None and cfg.teacher.expert_hint:
        teacher_prompts, metrics = hinted_prompts(
            [t for g in groups for t in g.trajectories], keys, rt.tokenizer, cfg.env.id,
            dict(cfg.env.kwargs))
    temperature = score_temperature(cfg.rollout.temperature)  # 1.0 when greedy
    extra: dict[str, dict[int, dict[str, Any]]] = {}
    for name, backend, ps in (("teacher_logprobs", rt.teacher, teacher_prompts),
                              ("ref_logprobs", ref_backend, prompts)):
        if backend is None:
            continue
        scores = backend.score(ps, responses, temperature=temperature)
        for (traj_id, k), lp in zip(keys, scores):
            extra.setdefault(traj_id, {}).setdefault(k, {})[name] = [float(x) for x in lp]
    out = []
    for g in groups:
        trajs = []
        for t in g.trajectories:
            e = extra.get(t.traj_id, {})
            turns = tuple(dataclasses.replace(u, **e[k]) if k in e else u
                          for k, u in enumerate(t.turns))
            trajs.append(dataclasses.replace(t, turns=turns))
        out.append(dataclasses.replace(g, trajectories=tuple(trajs)))
    return out, metrics


def score_reference(rt: Runtime, cfg: TrainConfig, samples: list[Sample]) -> list[Sample]:
    """``samples`` with the reference's log-probs (the KL term) at the rollout temperature.

    Called after the samples without signal are dropped: on a batch where most groups are
    all-success or all-failure, scoring every turn would cost a reference forward pass over
    the whole batch for samples the update never sees."""
    if rt.ref is None or not samples:
        return samples
    scores = rt.ref.score([list(s.prompt_ids) for s in samples],
                          [list(s.response_ids) for s in samples],
                          temperature=score_temperature(cfg.rollout.temperature))
    return [dataclasses.replace(s, ref_logprobs=[float(x) for x in lp])
            for s, lp in zip(samples, scores)]


def evaluate(rt: Runtime, cfg: TrainConfig) -> dict[str, float]:
    """Step 8: held-out success at the validation temperature (``eval/...`` metrics)."""
    tasks = eval_tasks(rt.eval_ids, cfg.eval.num_tasks)
    rt.eval_engine.load_state_dict({"generate_calls": 0})  # every eval samples the same seeds
    groups = rt.eval_engine.run(tasks, progress=False, id_prefix="eval/")
    return summarize([t for g in groups for t in g.trajectories], prefix="eval/")
