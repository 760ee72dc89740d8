"""The shop under abuse: strict JSON, size limits, and sessions that expire but are never
evicted while live (a small shop with a cap of 2 sessions and a short idle timeout)."""

from __future__ import annotations

import time

import httpx
import pytest

from turngym.envs.webshop.server import MAX_QUERY_CHARS, start_server
from turngym.envs.webshop.sessions import SessionsFull, SessionStore
from turngym.errors import EnvError


class _Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def test_store_expires_idle_sessions_and_refuses_at_the_cap() -> None:
    clock = _Clock()
    store = SessionStore(max_sessions=2, idle_timeout_s=10.0, clock=clock)
    a, b = store.new(1), store.new(2)
    with pytest.raises(SessionsFull) as full:
        store.new(3)
    assert full.value.retry_after_s == 10.0
    clock.now = 8.0
    assert store.touch(a) == 1  # a is live again until t=18
    clock.now = 12.0  # b idle for 12 s: expired; a idle 4 s: live
    assert store.touch(b) is None and store.touch(a) == 1 and store.expired == 1
    c = store.new(3)
    assert len(store) == 2 and store.touch(c) == 3
    assert store.close(c) and not store.close(c) and len(store) == 1


@pytest.fixture()
def small_shop():
    server = start_server(max_sessions=2, idle_timeout_s=1.5)
    yield server
    server.stop()


def _session(url: str, goal: int) -> httpx.Response:
    return httpx.post(f"{url}/api/sessions", json={"goal": goal})


def test_live_sessions_are_never_evicted(small_shop) -> None:
    """At the cap a new session is a 503 with Retry-After; both live ones keep working."""
    url = small_shop.url
    sids = [_session(url, g).json()["session"] for g in (0, 1)]
    full = _session(url, 2)
    assert full.status_code == 503 and "max_sessions" in full.json()["detail"]
    assert int(full.headers["retry-after"]) >= 1
    for sid in sids:
        assert httpx.get(f"{url}/s/{sid}").status_code == 200
    assert httpx.get(f"{url}/healthz").json()["sessions"] == 2


@pytest.mark.parametrize("mode", ["text", pytest.param("browser", marks=[
    pytest.mark.browser, pytest.mark.slow])])
def test_idle_sessions_expire_and_the_env_says_so(small_shop, mode: str) -> None:
    from turngym.envs.webshop import WebShopEnv

    env = WebShopEnv(mode=mode, split="all", server_url=small_shop.url)
    try:
        env.reset(seed=0, options={"task_id": "goal-00000"})
        snap = env.snapshot()
        deadline = time.monotonic() + 30
        while httpx.get(f"{small_shop.url}/healthz").json()["sessions"] > 0:
            assert time.monotonic() < deadline
            time.sleep(0.1)  # waiting for the idle timeout to pass, not for readiness
        with pytest.raises(EnvError, match="unknown or expired session.*1.5 s idle"):
            env.step(env.unwrapped.expert_action())
        with pytest.raises(EnvError, match="expired session"):
            env.unwrapped.restore(snap)
        obs, _ = env.reset(seed=0, options={"task_id": "goal-00000"})  # a new session
        assert "search" in obs.lower()
    finally:
        env.close()


@pytest.mark.parametrize("raw, needle", [
    (b'{"goal": NaN}', "NaN"),
    (b'{"goal": 1e999}', "overflows"),
    (b'{"goal": -Infinity}', "Infinity"),
    (b'{"goal": "\\ud800"}', "surrogate"),
    (b'{"goal": 1, "x": ' + b"[" * 3000 + b"]" * 3000 + b"}", "nesting"),
])
def test_json_that_breaks_fastapi_is_a_clear_400(shop, raw: bytes, needle: str) -> None:
    resp = httpx.post(f"{shop.url}/api/sessions", content=raw,
                      headers={"content-type": "application/json"})
    assert resp.status_code == 400 and needle in resp.json()["detail"], resp.text


def test_api_errors_are_json_and_never_echo_input(shop) -> None:
    resp = httpx.post(f"{shop.url}/api/sessions", json={"goal": 1.5, "extra": "\u2603"})
    assert resp.status_code == 422
    assert {tuple(e["loc"]) for e in resp.json()["detail"]} == {("body", "goal"),
                                                                ("body", "extra")}
    assert all("input" not in e for e in resp.json()["detail"])
    big = b'{"goal": 1, "pad": "' + b"x" * (64 << 10) + b'"}'
    assert httpx.post(f"{shop.url}/api/sessions", content=big).status_code == 413


@pytest.mark.parametrize("suffix, needle", [
    ("/results?q=" + "a" * (MAX_QUERY_CHARS + 1), "q"),
    ("/results?q=x&page=0", "page"),
    ("/results?q=x&page=10001", "page"),
    ("/item/B0X?" + "&".join(f"opt=a:{i}" for i in range(33)), "opt has 33 values"),
    ("/item/B0X?opt=a:" + "b" * 300, "the limit is 200"),
])
def test_page_parameters_are_bounded(shop, suffix: str, needle: str) -> None:
    sid = _session(shop.url, 0).json()["session"]
    resp = httpx.get(f"{shop.url}/s/{sid}{suffix}")
    assert resp.status_code == 422 and needle in resp.text, resp.text[:300]


def test_envs_at_the_cap_keep_their_episodes(small_shop) -> None:
    """Two live episodes fill the shop; a third env is refused (503), and the first two
    still step and restore their snapshots (before, the oldest session was evicted)."""
    from turngym.envs.webshop import WebShopEnv

    envs_ = [WebShopEnv(mode="text", split="all", server_url=small_shop.url) for _ in range(3)]
    try:
        snaps = []
        for env, task in zip(envs_[:2], ("goal-00000", "goal-00001")):
            env.reset(seed=0, options={"task_id": task})
            snaps.append(env.snapshot())
        with pytest.raises(EnvError, match="refused a session.*503"):
            envs_[2].reset(seed=0, options={"task_id": "goal-00002"})
        for env, snap in zip(envs_[:2], snaps):
            _, _, _, _, info = env.step(env.expert_action())
            assert info["action_valid"] and info["page_type"] == "results"
            env.restore(snap)
            assert env.unwrapped.state_key().endswith("|search|q=|p=1|item=|opts=|view=main")
    finally:
        for env in envs_:
            env.close()
