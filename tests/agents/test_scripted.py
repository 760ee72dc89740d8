"""Scripted policies on real envs, and the scripted backend."""

from __future__ import annotations

import pytest

from turngym import envs
from turngym.agents import make_backend
from turngym.agents.backend import SamplingParams
from turngym.agents.scripted import ScriptedPolicy, action_response
from turngym.errors import ConfigError


def _play(env, policy, max_steps=60):
    obs, info = env.reset(seed=0, options={"task_id": env.task_ids()[0]})
    policy.reset()
    actions, won = [], False
    for _ in range(max_steps):
        action = policy.act(env)
        actions.append(action)
        _obs, _reward, terminated, truncated, info = env.step(action)
        won = info["won"]
        if terminated or truncated:
            break
    return actions, won


@pytest.mark.parametrize("env_id", ["turngym/Sokoban-v0", "turngym/Maze-v0"])
def test_expert_wins_and_replay_reproduces(env_id):
    env = envs.make(env_id)
    actions, won = _play(env, ScriptedPolicy("expert"))
    assert won
    replayed, won_again = _play(env, ScriptedPolicy("replay", actions=actions))
    assert replayed == actions and won_again
    env.close()


def test_random_policy_is_seeded_and_admissible():
    env = envs.make("turngym/Maze-v0")
    first, _ = _play(env, ScriptedPolicy("random", seed=3), max_steps=10)
    again, _ = _play(env, ScriptedPolicy("random", seed=3), max_steps=10)
    assert first == again
    assert set(first) <= {"up", "down", "left", "right"}
    env.close()


def test_replay_runs_out_into_invalid_actions():
    env = envs.make("turngym/Maze-v0")
    env.reset(seed=0)
    policy = ScriptedPolicy("replay", actions=["up"])
    assert policy.act(env) == "up" and policy.act(env) == ""
    _, _, _, _, info = env.step("")
    assert info["action_valid"] is False
    env.close()


@pytest.mark.parametrize("kw", [{"kind": "oracle"}, {"kind": "replay"}])
def test_bad_kind(kw):
    with pytest.raises(ConfigError):
        ScriptedPolicy(**kw)


def test_scripted_backend_tokenises_its_responses(tiny_tokenizer):
    backend = make_backend("scripted", responses=[action_response("up")],
                           tokenizer=tiny_tokenizer)
    gen = backend.generate([[1, 2]], SamplingParams(max_tokens=64))[0]
    assert gen.text == "<think>scripted</think><action>up</action>"
    assert gen.ids[-1] == tiny_tokenizer.eos_token_id and gen.finish_reason == "stop"
    assert gen.logprobs == [0.0] * len(gen.ids)
    short = backend.generate([[1]], SamplingParams(max_tokens=3))[0]
    assert len(short.ids) == 3 and short.finish_reason == "length"
    assert backend.score([[1]], [gen.ids]) == [[0.0] * len(gen.ids)]
    assert backend.score([[1]], [gen.ids], temperature=0.5) == [[0.0] * len(gen.ids)]


def test_make_backend_unknown_name():
    with pytest.raises(ConfigError, match="hf, openai, scripted, vllm"):
        make_backend("llamacpp")
