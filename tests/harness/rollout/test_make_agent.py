"""One agent builder: ``make_agent`` (train, sft, eval, rollout) gives the agent that
``Agent.for_env`` of the env and ``Agent(tokenizer, family, ...)`` of the env's family gave."""

from __future__ import annotations

import pytest

from turngym import envs
from turngym.agents.agent import Agent
from turngym.envs.core import unwrapped_turn_env
from turngym.harness.learn.tasks import split_task_ids
from turngym.harness.rollout.agent import make_agent

ENV_IDS = ["turngym/Maze-v0", "turngym/Sokoban-v0", "turngym/Household-v0",
           "turngym/Search-v0"]


@pytest.mark.parametrize("env_id", ENV_IDS)
def test_make_agent_is_for_env_and_the_family_agent(env_id, tiny_tokenizer):
    kw = {"history_length": 3, "max_prompt_tokens": 700}
    made = make_agent(env_id, tiny_tokenizer, **kw)
    env = envs.make(env_id)
    try:
        base = unwrapped_turn_env(env)
        assert made == Agent.for_env(base, tiny_tokenizer, **kw)  # the env instance's
        assert made == Agent.for_env(envs.spec(env_id).load(), tiny_tokenizer, **kw)
        _, family = split_task_ids(env_id, {}, "train")  # what training read before
        plain = Agent(tokenizer=tiny_tokenizer, family=family, **kw)
        assert (made.family, made.history_length, made.max_prompt_tokens) == (
            plain.family, plain.history_length, plain.max_prompt_tokens)
        assert made.tools == base.tools  # None for a text env, its schemas for a tool env
        # the engine passes the env class's tools with every prompt: the same prompt
        tools = getattr(envs.spec(env_id).load(), "tools", None)
        args = {"task": "t", "history": [("o", "r")], "observation": "obs",
                "admissible": ["a", "b"], "tools": tools}
        assert made.build_prompt(**args) == plain.build_prompt(**args)
    finally:
        env.close()


def test_make_agent_family_override(tiny_tokenizer):
    """An env registered with a factory function names its family through the built env."""
    agent = make_agent("turngym/Maze-v0", tiny_tokenizer, family="household")
    assert agent.family == "household"
