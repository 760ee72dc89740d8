"""WebShopEnv in text mode against a real server: expert, invalid actions, state, copies."""

from __future__ import annotations

import json
import pickle

import numpy as np
import pytest

from turngym import envs
from turngym.envs.webshop import WebShopEnv
from turngym.envs.webshop.catalog import generate_catalog
from turngym.envs.webshop.prompt import system_prompt
from turngym.envs.webshop.server import start_server
from turngym.errors import ConfigError


def play_expert(env, task_id: str) -> tuple[float, int, list[str]]:
    obs, info = env.reset(seed=0, options={"task_id": task_id})
    actions = []
    for _ in range(15):
        action = env.expert_action()
        assert action in info["admissible_actions"] or action.startswith("search[")
        actions.append(action)
        obs, reward, term, _trunc, info = env.step(action)
        assert info["action_valid"], (action, obs)
        if term:
            return reward, len(actions), actions
    return 0.0, len(actions), actions


def test_expert_wins_every_task_sampled(text_env) -> None:
    ids = text_env.task_ids("test")[:20] + text_env.task_ids("train")[::200]
    for task in ids:
        reward, turns, _ = play_expert(text_env, task)
        assert reward == 1.0 and text_env.won() and turns <= 15, task


def test_first_page_and_info(text_env) -> None:
    obs, info = text_env.reset(seed=3, options={"task_id": "goal-00005"})
    goal = text_env.goal
    assert obs.splitlines()[0] == f"Instruction: {goal.instruction}"
    assert "[search box]" in obs
    assert info["admissible_actions"] == ["search[<your query>]"]
    assert info["task_type"] == goal.category and info["page_type"] == "search"
    assert info["state_key"] == "webshop|goal-00005|search|q=|p=1|item=|opts=|view=main"
    assert not info["won"]


@pytest.mark.parametrize("action,why", [
    ("click[no such button]", "not clickable here"),
    ("click[]", "not clickable here"),
    ("click[[next >]]", "not clickable here"),
    ("click next >", "is not search[query] or click[element]"),
    ("buy it", "is not search[query] or click[element]"),
    ("search[red shirt]", "only possible on the search page"),
])
def test_malformed_and_impossible_actions_are_invalid(text_env, action: str, why: str) -> None:
    text_env.reset(seed=0, options={"task_id": "goal-00001"})
    text_env.step(f"search[{text_env.goal.query}]")
    key, before = text_env.state_key(), text_env.admissible_actions()
    obs, reward, term, _trunc, info = text_env.step(action)
    assert info["action_valid"] is False and reward == 0.0 and not term
    assert obs.startswith("Invalid action:") and why in obs
    assert info["state_key"] == key and info["admissible_actions"] == before


def test_empty_search_and_actions_after_buying(text_env) -> None:
    text_env.reset(seed=0, options={"task_id": "goal-00002"})
    obs, *_, info = text_env.step("search[   ]")
    assert not info["action_valid"] and "needs a query" in obs
    _reward, _, _ = play_expert(text_env, "goal-00002")
    obs, r, _term, _trunc, info = text_env.step("click[back to search]")
    assert not info["action_valid"] and "episode is over" in obs and r == 0.0
    assert info["admissible_actions"] == [] and info["page_type"] == "done" and info["won"]


def test_clicks_are_case_insensitive_and_state_key_tracks_options(text_env) -> None:
    text_env.reset(seed=0, options={"task_id": "goal-00010"})
    goal = text_env.goal
    *_, info = text_env.step(f"SEARCH[ {goal.query.upper()} ]")
    assert info["action_valid"] and f"|q={goal.query}|p=1|" in info["state_key"]
    *_, info = text_env.step(f"Click[{goal.asin.upper()}]") if \
        f"click[{goal.asin.lower()}]" in info["admissible_actions"] else \
        text_env.step(text_env.expert_action())
    assert info["page_type"] == "item"
    dim, value = next(iter(goal.options.items()))
    *_, info = text_env.step(f"click[{value}]")
    assert f"opts={dim}={value}|" in info["state_key"]


def test_partial_purchase_reward(text_env) -> None:
    """Buying the target with no option chosen scores (attrs + price) / (attrs + opts + 1)."""
    text_env.reset(seed=0, options={"task_id": "goal-00010"})
    goal = text_env.goal
    *_, info = text_env.step(f"search[{goal.query}]")
    while f"click[{goal.asin.lower()}]" not in info["admissible_actions"]:
        *_, info = text_env.step("click[next >]")
    text_env.step(f"click[{goal.asin.lower()}]")
    _, reward, term, _, info = text_env.step("click[buy now]")
    n_att, n_opt = len(goal.attributes), len(goal.options)
    assert term and not info["won"]
    assert reward == pytest.approx((n_att + 1) / (n_att + n_opt + 1))


def test_snapshot_restore_and_pickle_continue_the_episode(text_env, shop) -> None:
    text_env.reset(seed=0, options={"task_id": "goal-00020"})
    _, _, actions = play_expert(text_env, "goal-00020")
    text_env.reset(seed=0, options={"task_id": "goal-00020"})
    for a in actions[:2]:
        text_env.step(a)
    blob, key = text_env.snapshot(), text_env.state_key()
    clone = pickle.loads(pickle.dumps(text_env))
    other = WebShopEnv(split="all", server_url=shop.url)
    try:
        other.restore(blob)
        assert other.state_key() == key == clone.state_key()
        for env in (text_env, clone, other):
            rewards = [env.step(a)[1] for a in actions[2:]]
            assert rewards[-1] == 1.0 and env.won()
        text_env.restore(blob)
        assert text_env.state_key() == key and not text_env.won()
    finally:
        clone.close()
        other.close()


def test_make_registration_turn_limit_and_random_policy(shop) -> None:
    env = envs.make("turngym/WebShop-v0", server_url=shop.url)
    rng = np.random.default_rng(0)
    try:
        assert env.unwrapped.split == "train" and env.max_turns == 15
        _, info = env.reset(seed=1)
        assert info["task_id"] in env.unwrapped.task_ids("train")
        assert env.reset(seed=1)[1]["task_id"] == info["task_id"]
        assert len(env.unwrapped.task_ids("all")) == 2400
        assert env.unwrapped.task_ids() == env.unwrapped.task_ids("train")  # own split
        test_task = env.unwrapped.task_ids("test")[0]  # any split's task resets explicitly
        assert env.reset(seed=1, options={"task_id": test_task})[1]["task_id"] == test_task
        _, info = env.reset(seed=1)
        for t in range(1, 16):
            adm = info["admissible_actions"]
            action = adm[int(rng.integers(len(adm)))] if adm else "click[x]"
            _obs, reward, term, trunc, info = env.step(action)
            assert 0.0 <= reward <= 1.0 and not (term and trunc)
            if term:
                _obs, info = env.reset(seed=t)
        assert info["turn"] <= 15
        env.reset(seed=2)
        outcomes = [env.step("click[nothing]")[2:4] for _ in range(15)]
        assert outcomes[-1] == (False, True) and all(o == (False, False) for o in outcomes[:-1])
    finally:
        env.close()


def test_bad_config_fails_before_work(tmp_path) -> None:
    with pytest.raises(ConfigError, match="mode"):
        envs.make("turngym/WebShop-v0", mode="tv")
    with pytest.raises(ConfigError, match="split"):
        WebShopEnv(split="dev")
    with pytest.raises(ConfigError, match="catalog"):
        WebShopEnv(catalog_path=str(tmp_path / "none.json"))


def test_server_with_another_catalogue_is_refused(tmp_path) -> None:
    path = tmp_path / "mine.json"
    path.write_text(json.dumps([p.model_dump(mode="json") for p in generate_catalog(9, 40)]))
    server = start_server(str(path))
    try:
        mine = WebShopEnv(split="all", catalog_path=str(path), server_url=server.url)
        _, info = mine.reset(seed=0)
        assert info["task_id"] in mine.task_ids("all")
        mine.close()
        env = WebShopEnv(server_url=server.url)
        with pytest.raises(ConfigError, match="server_url"):
            env.reset(seed=0)
        env.close()
    finally:
        server.stop()


def test_system_prompt_names_the_actions() -> None:
    text = system_prompt("Instruction: buy socks")
    assert "search[query]" in text and "click[element]" in text
    assert text.endswith("Instruction: buy socks")


def test_each_env_holds_one_server_session_and_drops_it(shop) -> None:
    """A new episode drops the old session (``DELETE /api/sessions/SID``) and close drops
    the last: a long run does not fill the shared server's bounded session store."""
    import httpx

    def live() -> int:
        return httpx.get(f"{shop.url}/healthz").json()["sessions"]

    before = live()
    env = WebShopEnv(mode="text", split="all", server_url=shop.url)
    try:
        for task in ("goal-00001", "goal-00002", "goal-00001"):
            env.reset(seed=0, options={"task_id": task})
            env.step("search[red shirt]")
            assert live() == before + 1
        old = env._sid
        env.reset(seed=0, options={"task_id": "goal-00003"})
        assert httpx.get(f"{shop.url}/s/{old}").status_code == 404  # the old one is gone
    finally:
        env.close()
    assert live() == before
    env.close()  # twice is harmless
    assert live() == before
