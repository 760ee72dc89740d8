"""SFT trains on the rollout's prompts: for each env family, the (prompt, response) ids that
``turngym sft`` collects from the scripted expert equal what the rollout engine records when
the model answers with those same responses (a scripted backend says the SFT targets), with
the same agent, memory window and config. Tool envs (Search, SWE) included: their prompts
carry the tool schemas, and the expert's response must be a tool call the agent parses."""

from __future__ import annotations

import shutil
from typing import Any

import pytest

from turngym.agents.agent import Agent
from turngym.agents.scripted import ScriptedBackend
from turngym.harness.config import config_from_dict
from turngym.harness.learn.tasks import split_task_ids
from turngym.harness.rollout.engine import RolloutEngine
from turngym.harness.rollout.expert import expert_response
from turngym.harness.sft import collect_expert_samples

WEBSHOP = "turngym/WebShop-v0"
SWE = "turngym/SWE-v0"
#: (env id, env kwargs, turns): a few expert turns of each family on one train task. With a
#: memory window of 1, turns 3+ leave history out of the window; with a 1024-token budget,
#: SWE's second prompt drops its one history turn to fit.
FAMILIES = [
    ("turngym/Maze-v0", {"size": 4}, 4),
    ("turngym/Sokoban-v0", {}, 4),
    ("turngym/Household-v0", {}, 4),
    (WEBSHOP, {"mode": "text"}, 4),
    ("turngym/Search-v0", {}, 4),
    (SWE, {"backend": "bwrap"}, 3),
]


@pytest.fixture(scope="module")
def shop_url():
    """One shop server for the WebShop case (as ``tests/envs/webshop/conftest.py`` starts
    it)."""
    from turngym.envs.webshop.server import start_server

    server = start_server()
    yield server.url
    server.stop()


def _env_kwargs(env_id: str, kwargs: dict[str, Any], request) -> dict[str, Any]:
    if env_id == WEBSHOP:
        return {**kwargs, "server_url": request.getfixturevalue("shop_url")}
    if env_id == SWE and not shutil.which("bwrap"):
        pytest.skip("bubblewrap is not installed (apt-get install bubblewrap)")
    return dict(kwargs)


def _where(a: str, b: str) -> str:
    """Both texts around their first difference."""
    i = next((k for k, (x, y) in enumerate(zip(a, b)) if x != y), min(len(a), len(b)))
    return f"SFT:     {a[max(i - 120, 0):i + 120]!r}\nrollout: {b[max(i - 120, 0):i + 120]!r}"


@pytest.mark.parametrize(("env_id", "kwargs", "turns"), FAMILIES,
                         ids=[f[0].split("/")[1] for f in FAMILIES])
def test_sft_prompts_are_the_rollout_prompts(env_id: str, kwargs: dict, turns: int,
                                             tiny_tokenizer, request) -> None:
    tok = tiny_tokenizer
    kwargs = _env_kwargs(env_id, kwargs, request)
    cfg = config_from_dict({"model": {"path": "tiny"}, "env": {"id": env_id, "kwargs": kwargs},
                            "rollout": {"max_turns": turns, "history_length": 1,
                                        "max_tokens": 1024, "max_prompt_tokens": 1024}})
    train_ids, family = split_task_ids(env_id, kwargs, cfg.env.train_split)
    agent = Agent(tokenizer=tok, family=family, history_length=cfg.rollout.history_length,
                  max_prompt_tokens=cfg.rollout.max_prompt_tokens)
    task = (train_ids[0], 3)
    pairs, _ = collect_expert_samples(cfg, agent, tok, [task])
    assert len(pairs) >= 2, "the expert should act for at least two turns"

    # the model "says" exactly the SFT targets; the engine records its own prompts for them
    says = [tok.decode(r, skip_special_tokens=True) for _, r in pairs]
    backend = ScriptedBackend(says, tokenizer=tok, max_model_len=1 << 16)
    engine = RolloutEngine(env_id, backend, agent,
                           cfg.rollout.engine_config(env_id, kwargs, cfg.seed, group_size=1))
    try:
        (group,) = engine.run([task], progress=False)
        (prefix,) = engine.run([task], expert_prefix=len(pairs), horizon=0, progress=False)
    finally:
        engine.close()
    recorded = group.trajectories[0].turns

    for k, (turn, (prompt_ids, response_ids)) in enumerate(zip(recorded, pairs)):
        assert prompt_ids == turn.prompt_ids, (
            f"turn {k}: the SFT prompt is not the rollout's\n"
            + _where(tok.decode(prompt_ids), tok.decode(turn.prompt_ids)))
        assert response_ids == turn.response_ids, f"turn {k}: {says[k]!r}"
        assert "parse_error" not in turn.info, f"turn {k}: {turn.info['parse_error']}"
    assert len(recorded) == len(pairs)
    # the SFT targets are the texts that TCOD expert-prefix turns record
    assert [t.response_text for t in prefix.trajectories[0].turns] == says


@pytest.mark.parametrize(("action", "want"), [
    ("<search>Who wrote it</search>",
     '<tool_call>{"name": "search", "arguments": {"query": "Who wrote it"}}</tool_call>'),
    ("<answer>Paris</answer>",
     '<tool_call>{"name": "answer", "arguments": {"text": "Paris"}}</tool_call>'),
    ('{"name": "answer", "arguments": {"text": "Paris"}}',
     '<tool_call>{"name": "answer", "arguments": {"text": "Paris"}}</tool_call>'),
    ("<lookup>x</lookup>", "<tool_call><lookup>x</lookup></tool_call>"),  # no such tool
])
def test_expert_response_of_a_tool_env_is_a_tool_call(action: str, want: str) -> None:
    from turngym.agents.parsing import parse_tool_call
    from turngym.envs.search.actions import TOOLS, parse_action

    assert expert_response(action, TOOLS) == want
    parsed = parse_tool_call(want, TOOLS)
    if parsed.valid:  # the env reads the parsed call as the expert's own action
        assert parse_action(parsed.action) == parse_action(action)
    assert expert_response("go north") == "<action>go north</action>"
