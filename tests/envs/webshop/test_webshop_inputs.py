"""Hostile search text on the WebShop client side (issue #20): invalid steps, never an
``EnvError`` from the server's 422."""

from __future__ import annotations

import pytest

from turngym.envs.webshop.env import MAX_QUERY_CHARS


@pytest.mark.parametrize("query", ["y" * (MAX_QUERY_CHARS + 1), "[" * 2000, "red " * 1000])
def test_overlong_query_is_invalid_not_an_error(text_env, query) -> None:
    _, info = text_env.reset(seed=0, options={"task_id": "goal-00002"})
    obs, reward, term, trunc, info2 = text_env.step(f"search[{query}]")
    assert info2["action_valid"] is False and "the limit is" in obs
    assert info2["state_key"] == info["state_key"] and not (term or trunc) and reward == 0.0


@pytest.mark.parametrize("query", ["a\x00b", "NaN", "1e999"])
def test_odd_but_printable_queries_search(text_env, query) -> None:
    text_env.reset(seed=0, options={"task_id": "goal-00002"})
    _, _, _, _, info = text_env.step(f"search[{query}]")
    assert info["action_valid"] is True and info["page_type"] == "results"
