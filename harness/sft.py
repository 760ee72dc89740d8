"""``turngym sft``: supervised warm start on the scripted expert's trajectories.

1. Play the env's scripted expert (``env.expert_action()``) on ``sft.num_tasks`` train
   tasks through the rollout engine's own episode code, so every prompt is exactly the
   prompt the policy sees in that state: the env comes from the engine's factory (same
   ``env.kwargs``; the turn budget is ``sft.max_turns``, else the eval's); the task, the
   memory window, the observation and the tool schemas of a tool env come from
   :meth:`turngym.harness.rollout.calls.Episode.prompt` (``Episode.start`` /
   ``Episode.apply`` keep the state as the engine does); the agent is built as
   ``turngym train`` builds it (:func:`turngym.harness.rollout.agent.make_agent`;
   ``rollout.history_length``, ``rollout.max_prompt_tokens``).
2. Each expert turn (:func:`turngym.harness.rollout.expert.expert_turns`) becomes a sample:
   the prompt ids, and the response :func:`~turngym.harness.rollout.expert.expert_response`
   (the text a TCOD expert-prefix turn records:
   ``<action>A</action>``, or ``<tool_call>{"name": …, "arguments": {…}}</tool_call>`` in a
   tool env) followed by the end-of-turn (EOS) token. The agent parses that response as it
   parses a model's, and the env steps the parsed action, as in a rollout. An episode stops
   where a rollout would: terminated, truncated (turn limit), no expert action, or a prompt
   over ``rollout.max_prompt_tokens`` (the rollout's ``max_tokens`` stop).
3. Cross-entropy on response tokens only (token mean), AdamW, ``sft.epochs`` epochs.
4. Save the model (safetensors + tokenizer) to ``sft.out_dir``: use it as ``model.path`` for
   RL, or as ``teacher.path`` for OPD.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

import gymnasium as gym
import torch

from turngym.agents.agent import Agent
from turngym.agents.models import load_tokenizer, resolve_model_dir
from turngym.envs.core import unwrapped_turn_env
from turngym.harness.config import TrainConfig
from turngym.harness.learn.learner import Learner, response_logprobs
from turngym.harness.learn.tasks import TaskSampler, split_task_ids
from turngym.harness.rollout import calls
from turngym.harness.rollout.agent import make_agent
from turngym.harness.rollout.expert import expert_turns
from turngym.harness.rollout.workers import EnvFactory
from turngym.harness.runs import resolve_run_paths
from turngym.harness.train import seed_everything
from turngym.harness.ui.progress import Progress, or_silent

if TYPE_CHECKING:
    from transformers import PreTrainedTokenizerBase

#: ``progress_cb(epoch, loss)``, called after each SFT epoch.
EpochCallback = Callable[[int, float], object]

logger = logging.getLogger(__name__)


def response_ids(tokenizer: PreTrainedTokenizerBase, text: str) -> list[int]:
    """Token ids of a response text, ending with the end-of-turn (EOS) token, as a backend
    returns a finished generation."""
    ids = tokenizer(text, add_special_tokens=False)["input_ids"]
    return list(ids) + [int(tokenizer.eos_token_id)]


def expert_episode(env: gym.Env, agent: Agent, tokenizer: PreTrainedTokenizerBase, task_id: str,
                   seed: int, *,
                   max_tokens: int, max_model_len: int | None = None
                   ) -> tuple[list[tuple[list[int], list[int]]], bool]:
    """Play the env's scripted expert on one task as a rollout plays it (module docstring,
    step 1-2; :func:`turngym.harness.rollout.expert.expert_turns`); returns each expert
    turn's ``(prompt_ids, response_ids)`` and whether it won.

    ``max_tokens`` / ``max_model_len``: the rollout's prompt-fits check
    (:func:`turngym.harness.rollout.calls.prompt_fits`); ``max_model_len=None`` checks the prompt
    budget only (SFT has no backend whose context length it could read).
    """
    tools = getattr(unwrapped_turn_env(env), "tools", None)  # the engine's: the env class's
    e = calls.Episode(index=0, slot=0, group_id="sft", traj_id=f"sft/{task_id}@{seed}",
                      task_id=task_id, seed=seed)
    e.start(*calls.reset_call(env, seed, task_id))
    pairs: list[tuple[list[int], list[int]]] = []
    for turn in expert_turns(env, e, agent=agent, tools=tools):
        if not calls.prompt_fits(turn.prompt, agent.max_prompt_tokens, max_tokens,
                                 max_model_len):
            break
        pairs.append((list(turn.prompt.ids), response_ids(tokenizer, turn.text)))
    return pairs, e.won


def collect_expert_samples(cfg: TrainConfig, agent: Agent, tokenizer: PreTrainedTokenizerBase,
                           tasks: list[tuple[str, int]], reporter: Progress | None = None
                           ) -> tuple[list[tuple[list[int], list[int]]], dict[str, float]]:
    """Run the scripted expert on ``tasks``; returns ``(prompt_ids, response_ids)`` pairs.

    The rollout engine's scripted path records no token ids (there is no model), so the
    expert is played here, on the engine's env factory and episode code. ``reporter`` gets
    the episodes done.
    """
    reporter = or_silent(reporter)
    max_turns = cfg.sft.max_turns or cfg.eval.max_turns or cfg.rollout.max_turns
    env = EnvFactory.for_env(cfg.env.id, cfg.env.kwargs, max_turns)()
    pairs: list[tuple[list[int], list[int]]] = []
    wins = 0
    try:
        for n, (task_id, seed) in enumerate(tasks):
            p, won = expert_episode(env, agent, tokenizer, task_id, seed,
                                    max_tokens=cfg.rollout.max_tokens)
            pairs.extend(p)
            wins += won
            reporter.advance(n + 1, len(tasks))
    finally:
        env.close()
    too_long = sum(len(r) > cfg.rollout.max_tokens for _, r in pairs)
    if too_long:
        logger.warning("%d of %d expert responses are longer than rollout.max_tokens=%d: "
                       "rollouts cut the policy's responses there; raise rollout.max_tokens",
                       too_long, len(pairs), cfg.rollout.max_tokens)
    return pairs, {"sft/expert_success": wins / max(len(tasks), 1),
                   "sft/samples": float(len(pairs))}


def sft_epochs(learner: Learner, pairs: list[tuple[list[int], list[int]]], cfg: TrainConfig,
               pad_id: int, progress_cb: EpochCallback | None = None,
               reporter: Progress | None = None) -> list[float]:
    """Cross-entropy on response tokens; returns the mean loss of each epoch.

    ``progress_cb(epoch, loss)`` after each epoch; ``reporter`` gets the phase ``sft`` with
    the batches done over all epochs and the response tokens trained on."""
    s = cfg.sft
    reporter = or_silent(reporter)
    per_epoch = -(-len(pairs) // s.batch_size)  # ceil
    reporter.phase("sft", s.epochs * per_epoch, "batches")
    done, seen = 0, 0
    gen = torch.Generator().manual_seed(cfg.seed)
    for group in learner.optimizer.param_groups:
        group["lr"] = s.lr
    params = [p for p in learner.model.parameters() if p.requires_grad]
    losses = []
    for epoch in range(s.epochs):
        order = torch.randperm(len(pairs), generator=gen).tolist()
        total, n_tok = 0.0, 0
        for b0 in range(0, len(order), s.batch_size):
            batch = [pairs[i] for i in order[b0:b0 + s.batch_size]]
            tokens = sum(len(r) for _, r in batch)
            learner.optimizer.zero_grad(set_to_none=True)
            for u0 in range(0, len(batch), cfg.optim.micro_batch_size):
                micro = batch[u0:u0 + cfg.optim.micro_batch_size]
                lp_BT, _, mask_BT = response_logprobs(learner.model, [p for p, _ in micro],
                                                      [r for _, r in micro], pad_id)
                nll = -(lp_BT * mask_BT).sum() / tokens  # token mean over the batch
                nll.backward()
                total += float(nll.detach()) * tokens
            torch.nn.utils.clip_grad_norm_(params, cfg.optim.grad_clip)
            learner.optimizer.step()
            n_tok += tokens
            done, seen = done + 1, seen + tokens
            reporter.advance(done, tokens=seen)
        losses.append(total / max(n_tok, 1))
        if progress_cb is not None:
            progress_cb(epoch + 1, losses[-1])
        logger.info("sft epoch %d: loss %.4f", epoch + 1, losses[-1])
    return losses


def run_sft(cfg: TrainConfig, progress_cb: EpochCallback | None = None,
            reporter: Progress | None = None) -> dict[str, Any]:
    """Collect expert data, fine-tune, save. Returns losses, data stats and the model dir.

    ``progress_cb(epoch, loss)`` after each epoch. ``reporter`` (a
    :class:`turngym.harness.ui.progress.Progress`) gets the phases ``expert data`` (episodes),
    ``setup`` (the model), ``sft`` (batches, tokens) and ``save``."""
    resolve_run_paths(cfg)  # model.path=RUN_DIR: that run's newest intact model
    seed_everything(cfg.seed)
    t0 = time.perf_counter()
    train_ids, family = split_task_ids(cfg.env.id, cfg.env.kwargs, cfg.env.train_split)
    if cfg.env.num_train_tasks:
        train_ids = train_ids[:cfg.env.num_train_tasks]
    model_dir = resolve_model_dir(cfg.model.path)
    tok = load_tokenizer(model_dir)
    agent = make_agent(cfg.env.id, tok, history_length=cfg.rollout.history_length,
                       max_prompt_tokens=cfg.rollout.max_prompt_tokens, family=family)
    tasks = TaskSampler(train_ids, cfg.seed + 7).sample(cfg.sft.num_tasks)
    reporter = or_silent(reporter)
    reporter.phase("expert data", len(tasks), "episodes")
    pairs, stats = collect_expert_samples(cfg, agent, tok, tasks, reporter)
    if not pairs:
        raise RuntimeError(f"the scripted expert of {cfg.env.id} produced no valid turns")
    reporter.phase("setup")
    learner = Learner(model_dir, cfg)
    pad_id = tok.pad_token_id if tok.pad_token_id is not None else tok.eos_token_id
    losses = sft_epochs(learner, pairs, cfg, int(pad_id), progress_cb, reporter)
    reporter.phase("save")
    out = Path(cfg.sft.out_dir or Path(cfg.out_dir) / "sft")
    learner.save_model(out)
    tok.save_pretrained(str(out))
    return {"losses": losses, "model_dir": str(out), **stats,
            "seconds": time.perf_counter() - t0}
