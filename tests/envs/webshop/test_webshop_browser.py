"""Browser mode in real headless Chromium (Debian's /usr/bin/chromium) against the real server."""

from __future__ import annotations

import struct

import pytest

from turngym.envs.webshop import WebShopEnv

pytestmark = [pytest.mark.browser, pytest.mark.slow]


@pytest.fixture(scope="module")
def browser_env(shop):
    env = WebShopEnv(mode="browser", split="all", server_url=shop.url)
    yield env
    env.close()


def expert_actions(env, task_id: str) -> list[str]:
    env.reset(seed=0, options={"task_id": task_id})
    actions = []
    while True:
        actions.append(env.expert_action())
        if env.step(actions[-1])[2]:
            return actions


def trace(env, task_id: str, actions: list[str]) -> list[tuple]:
    _, info = env.reset(seed=0, options={"task_id": task_id})
    out = [(info["state_key"], tuple(info["admissible_actions"]))]
    for a in actions:
        _, reward, term, _trunc, info = env.step(a)
        out.append((a, reward, term, info["action_valid"], info["won"], info["state_key"],
                    tuple(info["admissible_actions"])))
    return out


def test_text_and_browser_give_the_same_rewards(browser_env, text_env) -> None:
    task = "goal-00030"
    best = expert_actions(text_env, task)
    goal = text_env.goal
    # buy the found product without choosing options: a partial score
    partial = [a for a in best if not any(f"click[{v}]" == a for v in goal.options.values())]
    # a detour through other views, a bad click, then the expert path
    detour = [best[0], "click[next >]", "click[< prev]", "click[bogus]", *best[1:-1],
              "click[reviews]", "click[< prev]", best[-1]]
    for actions in (best, partial, detour):
        text_trace, browser_trace = trace(text_env, task, actions), trace(browser_env, task,
                                                                         actions)
        assert browser_trace == text_trace
    assert trace(browser_env, task, best)[-1][1:5] == (1.0, True, True, True)
    assert 0.0 < trace(browser_env, task, partial)[-1][1] < 1.0


def test_observation_is_the_accessibility_snapshot(browser_env) -> None:
    obs, _ = browser_env.reset(seed=0, options={"task_id": "goal-00031"})
    assert 'textbox "search box"' in obs and "Instruction:" in obs
    obs, *_ = browser_env.step(browser_env.expert_action())
    assert 'link "Next >"' in obs and "/url:" not in obs and "/s/" not in obs


@pytest.mark.parametrize("action", ["click[nope]", "click[]", "click buy now", "search[x]"])
def test_malformed_clicks_are_invalid_in_the_browser(browser_env, action: str) -> None:
    browser_env.reset(seed=0, options={"task_id": "goal-00032"})
    *_, info = browser_env.step(browser_env.expert_action())
    key = info["state_key"]
    obs, reward, term, _, info = browser_env.step(action)
    assert not info["action_valid"] and obs.startswith("Invalid action:")
    assert info["state_key"] == key and reward == 0.0 and not term


def test_item_page_screenshot(browser_env, tmp_path) -> None:
    browser_env.reset(seed=0, options={"task_id": "goal-00033"})
    while browser_env.unwrapped.state_key().split("|")[2] != "item":
        browser_env.step(browser_env.expert_action())
    path = tmp_path / "item.png"
    png = browser_env.screenshot(str(path))
    assert png[:8] == b"\x89PNG\r\n\x1a\n" and path.read_bytes() == png
    width, height = struct.unpack(">II", png[16:24])
    assert width == 1000 and height >= 400 and len(png) > 10_000


def test_browser_env_steps_from_async_code_and_other_threads(browser_env) -> None:
    """Playwright's sync API runs on the browser's own thread, so neither an asyncio loop
    nor another thread in the caller breaks it."""
    import asyncio
    import threading

    async def in_loop() -> str:
        browser_env.reset(seed=0, options={"task_id": "goal-00034"})
        return browser_env.step(browser_env.expert_action())[4]["page_type"]

    assert asyncio.run(in_loop()) == "results"
    pages: list[str] = []
    worker = threading.Thread(
        target=lambda: pages.append(browser_env.step(browser_env.expert_action())[4]["page_type"]))
    worker.start()
    worker.join(timeout=60)
    assert pages == ["item"]
