"""The agent of a rollout: one builder for ``turngym train``, ``turngym sft``, ``turngym eval``
and ``turngym rollout``, so every command prompts and parses an env the same way.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from turngym import envs
from turngym.agents.agent import Agent

if TYPE_CHECKING:
    from transformers import PreTrainedTokenizerBase


def make_agent(env_id: str, tokenizer: PreTrainedTokenizerBase, *, history_length: int = 2,
               max_prompt_tokens: int = 1536, family: str | None = None) -> Agent:
    """The :class:`~turngym.agents.agent.Agent` of ``env_id``: the env class's ``family`` and
    ``tools`` (:meth:`Agent.for_env`; the rollout engine passes the same class's ``tools``
    with every prompt), the memory window ``history_length`` and the prompt budget
    ``max_prompt_tokens``.

    ``family``: the family already read from a built env (``split_task_ids``), for an env
    registered with a factory function rather than a class; the class's by default.
    """
    env_cls = envs.spec(env_id).load()
    agent = Agent.for_env(env_cls, tokenizer, history_length=history_length,
                          max_prompt_tokens=max_prompt_tokens)
    if family is not None:
        agent.family = family
    return agent
