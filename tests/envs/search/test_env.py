"""turngym/Search-v0 over the shipped corpus: expert, bad input, rewards, state keys."""

from __future__ import annotations

import json
import pickle
import re

import pytest

from turngym import envs
from turngym.envs.core import INFO_KEYS
from turngym.envs.search import SearchEnv
from turngym.envs.search.prompt import system_prompt
from turngym.errors import ConfigError

QTYPES = ("1hop", "2hop", "comparison", "3hop")


@pytest.fixture(scope="module")
def env():
    e = envs.make("turngym/Search-v0")
    yield e
    e.close()


def _first_of_type(env, qtype: str, split: str = "test", n: int = 1) -> list[str]:
    inner = env.unwrapped
    return [i for i in inner.task_ids(split) if inner._items[i].type == qtype][:n]


def _run_expert(env, task_id: str) -> tuple[float, dict, int]:
    env.reset(seed=0, options={"task_id": task_id})
    total, steps = 0.0, 0
    while True:
        _, r, term, trunc, info = env.step(env.unwrapped.expert_action())
        total, steps = total + r, steps + 1
        if term or trunc:
            return total, info, steps


@pytest.mark.parametrize("qtype, hops", [("1hop", 1), ("2hop", 2), ("comparison", 2),
                                         ("3hop", 3)])
def test_expert_solves_every_type_within_four_turns(env, qtype: str, hops: int) -> None:
    for task_id in _first_of_type(env, qtype, n=10):
        total, info, steps = _run_expert(env, task_id)
        assert (total, info["won"], info["em"], steps) == (1.0, True, 1.0, hops + 1)
        assert info["question_type"] == qtype and info["searches"] == hops
        assert info["answered"] is True


def test_max_turns_default_and_override() -> None:
    assert envs.spec("turngym/Search-v0").max_turns == 4
    e = envs.make("turngym/Search-v0", max_turns=2)
    task = _first_of_type(e, "3hop")[0]
    e.reset(seed=0, options={"task_id": task})
    e.step(e.unwrapped.expert_action())
    _, _, term, trunc, info = e.step(e.unwrapped.expert_action())
    assert (term, trunc, info["turn"]) == (False, True, 2)


@pytest.mark.parametrize("action, needle", [
    ("<search></search>", "empty"),
    ("<search>   \n </search>", "empty"),
    ("<search>" + "word " * 100 + "</search>", "limit is 300"),
    ("<search>☃ 🤖 \u202e</search>", "no searchable word"),
    ("<search>the of and</search>", "no searchable word"),
    ('{"name": "search", "arguments": {"query": "Vukix", "k": 0}}', "between 1 and 10"),
    ('{"name": "search", "arguments": {"query": "Vukix", "k": 11}}', "between 1 and 10"),
    ("<answer> </answer>", "answer is empty"),
    ("<answer>" + "x" * 400 + "</answer>", "keep it under 300"),
    ("just text", "no tool call"),
])
def test_bad_queries_give_clear_observation(env, action: str, needle: str) -> None:
    obs, info = env.reset(seed=0, options={"task_id": "test-00000"})
    key = info["state_key"]
    obs, r, term, _trunc, info = env.step(action)
    assert obs.startswith("Invalid action:") and needle in obs
    assert (r, term, info["action_valid"], info["state_key"]) == (-0.1, False, False, key)


def test_unicode_query_is_searched(env) -> None:
    env.reset(seed=0, options={"task_id": "test-00000"})
    obs, r, term, _, info = env.step("<search>Zürich Ünïcødé Straße</search>")
    assert info["action_valid"] is True and r == 0.0 and not term
    assert obs.startswith("No passage matched")
    obs, _, _, _, info = env.step("<search>Mult Trerein née ☃</search>")
    assert info["action_valid"] is True and "[1] p0006096 | Mult Trerein" in obs


def test_search_observation_lists_ids_titles_and_k(env) -> None:
    env.reset(seed=0, options={"task_id": "test-00000"})
    action = json.dumps({"name": "search", "arguments": {"query": "Mult Trerein born", "k": 5}})
    obs, _, _, _, info = env.step(action)
    ranks = re.findall(r"^\[(\d)\] (p\d{7}) \| (.+)$", obs, flags=re.MULTILINE)
    assert [r[0] for r in ranks] == ["1", "2", "3", "4", "5"]
    assert ranks[0][1:] == ("p0006096", "Mult Trerein")
    assert "born in 1929 in Vukix" in obs
    assert info["retrieved"] == 5 and info["searches"] == 1


def test_state_key_is_order_independent(env) -> None:
    a, b = "<search>Mult Trerein born</search>", "<search>Brycheith Studios founded</search>"
    env.reset(seed=0, options={"task_id": "test-00000"})
    env.step(a)
    _, _, _, _, info_ab = env.step(b)
    env.reset(seed=5, options={"task_id": "test-00000"})
    env.step(b)
    _, _, _, _, info_ba = env.step(a)
    assert info_ab["state_key"] == info_ba["state_key"]
    env.step(a)  # the same passages again: same evidence, same key
    assert env.unwrapped.state_key() == info_ab["state_key"]
    env.reset(seed=0, options={"task_id": "test-00001"})
    assert env.unwrapped.state_key().split("|")[0] != info_ab["state_key"].split("|")[0]


@pytest.mark.parametrize("reward, answer, expected", [
    ("em", "the Vukix!", 1.0),
    ("em", "Vukix city", 0.0),
    ("f1", "Vukix city", pytest.approx(2 / 3)),
    ("f1", "Pygriark", 0.0),
])
def test_answer_reward(reward: str, answer: str, expected) -> None:
    e = envs.make("turngym/Search-v0", reward=reward)
    e.reset(seed=0, options={"task_id": "test-00000"})  # gold: Vukix
    _, r, term, trunc, info = e.step(f"<answer>{answer}</answer>")
    assert r == expected and term and not trunc
    assert info["won"] is (info["em"] == 1.0)
    _obs, r, term, _, info = e.step("<answer>Vukix</answer>")  # already answered
    assert (r, term, info["action_valid"]) == (0.0, True, False)


def test_format_penalty_is_configurable() -> None:
    e = envs.make("turngym/Search-v0", format_penalty=0.0)
    e.reset(seed=0, options={"task_id": "test-00000"})
    assert e.step("nonsense")[1] == 0.0


def test_info_keys_and_docstring() -> None:
    e = envs.make("turngym/Search-v0")
    _, info = e.reset(seed=0, options={"task_id": "dev-00003"})
    assert set(info) - {"turn"} == set(INFO_KEYS) | set(SearchEnv.extra_info_keys)
    for key in info:
        assert key == "turn" or f"``{key}``" in SearchEnv.__doc__
    assert info["question_type"] in QTYPES and info["admissible_actions"] is None


def test_splits_and_task_ids() -> None:
    e = envs.make("turngym/Search-v0", split="dev")
    assert len(e.unwrapped.task_ids()) == 400
    assert e.unwrapped.task_ids("dev")[0] == "dev-00000"
    assert len(envs.make("turngym/Search-v0").unwrapped.task_ids()) == 4800


@pytest.mark.parametrize("kwargs, key", [
    ({"split": "valid"}, "split"),
    ({"reward": "bleu"}, "reward"),
    ({"top_k": 20}, "top_k"),
    ({"format_penalty": -1}, "format_penalty"),
    ({"corpus": "/tmp/x.jsonl"}, "qa_file"),
    ({"topk": 3}, "topk"),
])
def test_bad_config_names_the_key(kwargs: dict, key: str) -> None:
    with pytest.raises(ConfigError, match=key):
        envs.make("turngym/Search-v0", **kwargs)


def test_snapshot_and_pickle_keep_the_evidence(env) -> None:
    env.reset(seed=0, options={"task_id": "test-00000"})
    env.step(env.unwrapped.expert_action())
    blob = env.snapshot()
    clone = pickle.loads(pickle.dumps(env))
    assert clone.unwrapped._retriever is None  # the index is reopened lazily, not pickled
    fresh = envs.make("turngym/Search-v0")
    fresh.reset(seed=1, options={"task_id": "train-00000"})
    fresh.restore(blob)
    assert fresh.unwrapped.state_key() == env.unwrapped.state_key()
    assert fresh.unwrapped.expert_action() == env.unwrapped.expert_action()
    assert fresh.step(fresh.unwrapped.expert_action())[4]["state_key"] == \
        env.step(env.unwrapped.expert_action())[4]["state_key"]


def test_prompt_mentions_both_tools() -> None:
    text = system_prompt("Question: who?")
    assert "<search>" in text and "<answer>" in text and text.endswith("Question: who?")


def test_random_action_is_a_well_formed_tool_use() -> None:
    import numpy as np

    from turngym.agents.scripted import ScriptedPolicy

    env = envs.make("turngym/Search-v0", split="test")
    task_id = env.unwrapped.task_ids()[0]
    rng = np.random.default_rng(0)
    env.reset(seed=0, options={"task_id": task_id})
    actions = [env.unwrapped.random_action(rng) for _ in range(20)]
    assert all(a.startswith(("<search>", "<answer>")) for a in actions)
    assert {a[:8] for a in actions} == {"<search>", "<answer>"}  # both tools get drawn
    # the scripted random policy uses it: every turn is a valid action, and runs repeat
    trace = []
    for _ in range(2):
        policy = ScriptedPolicy("random", seed=3)
        env.reset(seed=0, options={"task_id": task_id})
        steps, done = [], False
        while not done:
            a = policy.act(env)
            _, _, term, trunc, info = env.step(a)
            steps.append((a, info["action_valid"]))
            done = term or trunc
        trace.append(steps)
    assert trace[0] == trace[1] and all(valid for _, valid in trace[0])
    assert env.unwrapped.random_action(rng) is None  # answered: no action left
