"""The expert-informed teacher prompt (``teacher.expert_hint: true``).

On-policy distillation needs a teacher better than the student. Without a larger model, the
same model becomes one when its prompt carries the answer: the teacher scores each student
response under the student's own prompt with one line added to the last user message,

    Hint: an expert's next action here is: go to fridge 1

so ``teacher_lp - student_lp`` rewards the tokens the hint makes likelier.

The expert action of each turn comes from replaying the trajectory: one env per trajectory,
``reset(seed, task_id)`` as the rollout did, then for every turn ``expert_action()`` before
stepping the action the rollout stepped (turns whose response did not parse stepped
nothing). Envs are deterministic under seed and task id (``turngym.envs.checker`` tests it), so the
replay sees the states the student saw. It costs one env step per turn: cheap for the
simulated envs, and counted in ``time/score_s`` for any env.

The hint goes just before the chat template's "end of user message + start of assistant"
suffix, found once per tokenizer by rendering a probe conversation, so it works for any
template that places user content verbatim. A turn whose prompt does not end with that
suffix (or whose state has no expert action) is scored without a hint, and counted.
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING, Any

from turngym import envs
from turngym.harness.rollout.expert import expert_labels
from turngym.harness.rollout.trajectory import Trajectory

if TYPE_CHECKING:
    from transformers import PreTrainedTokenizerBase

logger = logging.getLogger(__name__)

HINT = "\n\nHint: an expert's next action here is: {action}"
_PROBE = "\x00probe\x00"


def generation_suffix(tokenizer: PreTrainedTokenizerBase) -> str:
    """What the chat template puts after the last user message's content when it adds the
    generation prompt (ChatML: ``<|im_end|>\\n<|im_start|>assistant\\n``)."""
    text = tokenizer.apply_chat_template(
        [{"role": "system", "content": "s"}, {"role": "user", "content": _PROBE}],
        tokenize=False, add_generation_prompt=True)
    return text[text.rindex(_PROBE) + len(_PROBE):]


def expert_actions(env_id: str, env_kwargs: dict[str, Any], traj: Trajectory
                   ) -> list[str | None]:
    """The env's expert action in the state before each turn of ``traj`` (None where the
    expert has none, or the replay could not reach the turn):
    :func:`turngym.harness.rollout.expert.expert_labels` along its actions."""
    hints: list[str | None] = [None] * len(traj.turns)
    if traj.turns and traj.turns[0].turn != 0:  # forked from a snapshot: no prefix to replay
        return hints
    env = envs.make(env_id, **env_kwargs)
    try:
        for k, label in enumerate(expert_labels(env, traj.seed, traj.task_id,
                                                [t.action for t in traj.turns])):
            hints[k] = label
    except Exception as exc:  # noqa: BLE001 - a replay failure costs hints, not the run
        logger.warning("expert-hint replay of %s failed: %s", traj.traj_id, exc)
    finally:
        env.close()
    return hints


def hinted_prompts(trajs: list[Trajectory], keys: list[tuple[str, int]],
                   tokenizer: PreTrainedTokenizerBase,
                   env_id: str, env_kwargs: dict[str, Any]
                   ) -> tuple[list[list[int]], dict[str, float]]:
    """Teacher prompt ids for each ``(traj_id, turn index)`` in ``keys``; metrics
    ``teacher/hinted_frac``."""
    suffix = generation_suffix(tokenizer)
    by_id = {t.traj_id: t for t in trajs}
    wanted = {traj_id for traj_id, _ in keys}
    actions = {tid: expert_actions(env_id, env_kwargs, by_id[tid]) for tid in wanted}
    prompts, hinted = [], 0
    for traj_id, k in keys:
        turn = by_id[traj_id].turns[k]
        action = actions[traj_id][k]
        text = turn.prompt_text
        if action is None or not suffix or not text.endswith(suffix):
            prompts.append(list(turn.prompt_ids))
            continue
        text = text[:-len(suffix)] + HINT.format(action=action) + suffix
        prompts.append(list(tokenizer(text, add_special_tokens=False)["input_ids"]))
        hinted += 1
    return prompts, {"teacher/hinted_frac": hinted / max(len(keys), 1)}
