"""Prompt building: chat template, family prompts, memory window, overflow, tools."""

from __future__ import annotations

import pytest

from turngym.agents.agent import Agent, Prompt
from turngym.agents.prompts import family_prompt_fn, generic_system_prompt
from turngym.errors import ConfigError

HISTORY = [(f"observation {i}", f"<think>t{i}</think><action>a{i}</action>") for i in range(5)]


def _build(agent: Agent, **kw) -> Prompt:
    args = dict(task="reach the goal", history=HISTORY, observation="now", admissible=None)
    args.update(kw)
    return agent.build_prompt(**args)


def test_uses_chat_template_and_family_prompt(tiny_tokenizer):
    agent = Agent(tokenizer=tiny_tokenizer, family="sokoban", history_length=1)
    p = _build(agent, admissible=["up", "down"])
    assert p.text.startswith("<|im_start|>system\nYou are playing Sokoban.")
    assert "reach the goal<|im_end|>" in p.text
    assert p.text.endswith("<|im_start|>user\nnow\nAdmissible actions: up, down<|im_end|>\n"
                           "<|im_start|>assistant\n")
    assert p.ids == tiny_tokenizer(p.text, add_special_tokens=False)["input_ids"]
    assert not p.truncated and p.dropped_history == 0


def test_generic_prompt_for_unknown_family(tiny_tokenizer):
    assert family_prompt_fn("no_such_family") is None
    p = _build(Agent(tokenizer=tiny_tokenizer, family="no_such_family"))
    assert generic_system_prompt("reach the goal") in p.text


@pytest.mark.parametrize("history_length,kept",
                         [(0, []), (1, [4]), (2, [3, 4]), (9, [0, 1, 2, 3, 4])])
def test_memory_window(tiny_tokenizer, history_length, kept):
    p = _build(Agent(tokenizer=tiny_tokenizer, family="maze", history_length=history_length))
    shown = [i for i in range(5) if f"observation {i}<|im_end|>" in p.text]
    assert shown == kept
    assert p.text.count("<|im_start|>assistant\n") == len(kept) + 1
    assert not p.truncated


def test_overflow_drops_history_first(tiny_tokenizer):
    full = _build(Agent(tokenizer=tiny_tokenizer, family="maze", history_length=3))
    one_turn = len(tiny_tokenizer("<|im_start|>user\nobservation 4<|im_end|>\n<|im_start|>"
                                  "assistant\n<think>t4</think><action>a4</action><|im_end|>\n",
                                  add_special_tokens=False)["input_ids"])
    budget = len(full.ids) - one_turn  # room for exactly one turn less
    p = _build(Agent(tokenizer=tiny_tokenizer, family="maze", history_length=3,
                     max_prompt_tokens=budget))
    assert p.truncated and p.dropped_history == 1
    assert len(p.ids) <= budget
    assert "observation 2" not in p.text and "observation 3" in p.text and "now" in p.text


def test_overflow_cuts_observation_middle(tiny_tokenizer):
    obs = "HEAD " + " ".join(f"w{i}" for i in range(2000)) + " TAIL"
    agent = Agent(tokenizer=tiny_tokenizer, family="maze", history_length=2,
                  max_prompt_tokens=300)
    p = _build(agent, observation=obs)
    assert p.truncated and p.dropped_history == 2
    assert len(p.ids) <= 300
    assert len(p.ids) >= 280  # the budget is used, not wasted
    assert "HEAD w0" in p.text and "TAIL" in p.text
    assert "characters cut to fit the context" in p.text
    assert "w1000 " not in p.text


def test_overflow_that_cannot_fit_is_reported(tiny_tokenizer):
    agent = Agent(tokenizer=tiny_tokenizer, family="maze", max_prompt_tokens=20)
    p = _build(agent, observation="x " * 100)
    assert p.truncated and len(p.ids) > 20  # the system prompt alone is longer


@pytest.mark.parametrize("kw,key", [({"history_length": -1}, "history_length"),
                                    ({"max_prompt_tokens": 3}, "max_prompt_tokens"),
                                    ({"parse_mode": "loose"}, "parse_mode")])
def test_bad_config_names_the_key(tiny_tokenizer, kw, key):
    with pytest.raises(ConfigError, match=key):
        Agent(tokenizer=tiny_tokenizer, family="maze", **kw)


TOOLS = [{"type": "function", "function": {"name": "search", "description": "BM25 search",
                                           "parameters": {"type": "object", "properties": {
                                               "query": {"type": "string"}}}}}]


def test_tools_rendered_into_system_prompt(tiny_tokenizer):
    agent = Agent(tokenizer=tiny_tokenizer, family="no_such_family", tools=TOOLS)
    p = _build(agent)
    system = p.text.split("<|im_end|>")[0]
    assert '"name": "search"' in system and "<tool_call>" in system
    parsed = agent.parse('<tool_call>{"name": "search", "arguments": {"query": "q"}}</tool_call>')
    assert parsed.valid and parsed.action == '{"name": "search", "arguments": {"query": "q"}}'
    assert not agent.parse("<action>up</action>").valid


def test_tools_passed_to_template_when_supported(tiny_tokenizer):
    import copy

    tok = copy.deepcopy(tiny_tokenizer)
    tok.chat_template = ("{% if tools %}TOOLS:{{ tools | length }}\n{% endif %}"
                         "{% for m in messages %}{{ m['role'] }}: {{ m['content'] }}\n"
                         "{% endfor %}{% if add_generation_prompt %}assistant: {% endif %}")
    p = _build(Agent(tokenizer=tok, family="maze", tools=TOOLS, history_length=0))
    assert p.text.startswith("TOOLS:1\nsystem: ")
    assert "<tools>" not in p.text  # not duplicated into the system prompt


def test_parse_uses_mode_and_admissible(tiny_tokenizer):
    lenient = Agent(tokenizer=tiny_tokenizer, family="maze")
    strict = Agent(tokenizer=tiny_tokenizer, family="maze", parse_mode="strict")
    assert lenient.parse("<action>UP</action>", admissible=["up"]).action == "up"
    assert not strict.parse("<action>up</action>").valid
    assert strict.parse("<think>.</think><action>up</action>").action == "up"
    # a tool call is recognised even when the agent was not told about tools
    got = lenient.parse('<tool_call>{"name": "f", "arguments": {}}</tool_call>')
    assert got.valid and got.action == '{"name": "f", "arguments": {}}'


def test_for_env_reads_family_and_tools(tiny_tokenizer):
    from turngym import envs

    env = envs.make("turngym/Sokoban-v0")
    agent = Agent.for_env(env, tiny_tokenizer, history_length=0)
    assert agent.family == "sokoban" and agent.tools is None
    obs, info = env.reset(seed=0)
    p = agent.build_prompt(task="solve", history=[], observation=obs,
                           admissible=info["admissible_actions"])
    assert "Sokoban" in p.text and obs in p.text
    env.close()
