"""``turngym sft``: supervised warm start on the scripted expert's trajectories.

1. Play the env's scripted expert (``env.expert_action()``) on ``sft.num_tasks`` train
   tasks, building prompts with the same agent and rules as the rollout engine (task = first
   observation, last ``history_length`` (observation, response) pairs), so prompts are
   exactly the prompts the policy will see.
2. Each expert turn becomes a sample: the prompt ids as rendered by the agent, and the
   response in the agent's output format ``<think>…</think><action>…</action>`` followed by
   the end-of-turn token.
3. Cross-entropy on response tokens only (token mean), AdamW, ``sft.epochs`` epochs.
4. Save the model (safetensors + tokenizer) to ``sft.out_dir``: use it as ``model.path`` for
   RL, or as ``teacher.path`` for OPD.
"""

from __future__ import annotations

import logging
import time
from pathlib import Path
from typing import Any

import torch

from harness.config import TrainConfig

logger = logging.getLogger(__name__)

#: The expert's response text for ``action`` in the agent's output format.
EXPERT_FORMAT = "<think>{think}</think><action>{action}</action>"


def expert_response_ids(tokenizer: Any, action: str, think: str = "") -> list[int]:
    """Token ids of the expert's response, ending with the end-of-turn (EOS) token."""
    ids = tokenizer.encode(EXPERT_FORMAT.format(think=think, action=action),
                           add_special_tokens=False)
    return ids + [int(tokenizer.eos_token_id)]


def expert_episode(env: Any, agent: Any, tokenizer: Any, task_id: str, seed: int,
                   max_turns: int) -> tuple[list[tuple[list[int], list[int]]], bool]:
    """Play the env's scripted expert on one task, building each prompt exactly as the rollout
    engine does (task = first observation, history = (observation, response) pairs)."""
    obs, info = env.reset(seed=seed, options={"task_id": task_id})
    task, history, pairs, won = obs, [], [], False
    for _ in range(max_turns):
        action = env.expert_action()
        if action is None:
            break
        prompt = agent.build_prompt(task=task, history=history, observation=obs,
                                    admissible=info.get("admissible_actions"))
        text = EXPERT_FORMAT.format(think="", action=action)
        pairs.append((list(prompt.ids), expert_response_ids(tokenizer, action)))
        history.append((obs, text))
        obs, _, term, trunc, info = env.step(action)
        won = bool(info.get("won", False))
        if term or trunc:
            break
    return pairs, won


def collect_expert_samples(cfg: TrainConfig, agent: Any, tokenizer: Any, tasks: list
                           ) -> tuple[list[tuple[list[int], list[int]]], dict[str, float]]:
    """Run the scripted expert on ``tasks``; returns ``(prompt_ids, response_ids)`` pairs.

    The rollout engine's scripted path records no token ids (there is no model), so the
    expert is played here with the same agent and prompt rules.
    """
    import envs

    env = envs.make(cfg.env.id, **cfg.env.kwargs)
    pairs: list[tuple[list[int], list[int]]] = []
    wins = 0
    try:
        for task_id, seed in tasks:
            p, won = expert_episode(env, agent, tokenizer, task_id, seed, cfg.rollout.max_turns)
            pairs.extend(p)
            wins += won
    finally:
        env.close()
    return pairs, {"sft/expert_success": wins / max(len(tasks), 1),
                   "sft/samples": float(len(pairs))}


def sft_epochs(learner: Any, pairs: list[tuple[list[int], list[int]]], cfg: TrainConfig,
               pad_id: int, progress_cb: Any = None) -> list[float]:
    """Cross-entropy on response tokens; returns the mean loss of each epoch."""
    from harness.learner import response_logprobs

    s = cfg.sft
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
        losses.append(total / max(n_tok, 1))
        if progress_cb is not None:
            progress_cb(epoch + 1, losses[-1])
        logger.info("sft epoch %d: loss %.4f", epoch + 1, losses[-1])
    return losses


def run_sft(cfg: TrainConfig, progress_cb: Any = None) -> dict[str, Any]:
    """Collect expert data, fine-tune, save. Returns losses, data stats and the model dir."""
    from agents.agent import Agent
    from agents.models import load_tokenizer, resolve_model_dir
    from harness.learner import Learner
    from harness.tasks import TaskSampler, split_task_ids
    from harness.train import seed_everything

    seed_everything(cfg.seed)
    t0 = time.perf_counter()
    train_ids, family = split_task_ids(cfg.env.id, cfg.env.kwargs, cfg.env.train_split)
    if cfg.env.num_train_tasks:
        train_ids = train_ids[:cfg.env.num_train_tasks]
    model_dir = resolve_model_dir(cfg.model.path)
    tok = load_tokenizer(model_dir)
    agent = Agent(tokenizer=tok, family=family, history_length=cfg.rollout.history_length,
                  max_prompt_tokens=cfg.rollout.max_prompt_tokens)
    tasks = TaskSampler(train_ids, cfg.seed + 7).sample(cfg.sft.num_tasks)
    pairs, stats = collect_expert_samples(cfg, agent, tok, tasks)
    if not pairs:
        raise RuntimeError(f"the scripted expert of {cfg.env.id} produced no valid turns")
    learner = Learner(model_dir, cfg)
    pad_id = tok.pad_token_id if tok.pad_token_id is not None else tok.eos_token_id
    losses = sft_epochs(learner, pairs, cfg, int(pad_id), progress_cb)
    out = Path(cfg.sft.out_dir or Path(cfg.out_dir) / "sft")
    learner.save_model(out)
    tok.save_pretrained(str(out))
    return {"losses": losses, "model_dir": str(out), **stats,
            "seconds": time.perf_counter() - t0}
