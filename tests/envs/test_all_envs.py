"""The contract checker over every registered env id, plus hypothesis fuzzing of actions."""

from __future__ import annotations

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from turngym import envs
from turngym.envs.checker import CHECKS, check_env

ALL_IDS = envs.list_ids()
#: Envs whose steps are expensive (sandboxes, browsers) get fewer fuzz examples.
SLOW_FAMILIES = {"SWE", "WebShop", "WebShopBrowser", "ALFWorld-PDDL", "ScienceWorld", "TextWorld"}


def _marks(env_id: str) -> list:
    spec = envs.spec(env_id)
    marks = [pytest.mark.slow] if spec.family in SLOW_FAMILIES else []
    if "playwright" in spec.requires:
        marks.append(pytest.mark.browser)
    return marks


@pytest.mark.parametrize("env_id", [pytest.param(i, marks=_marks(i)) for i in ALL_IDS])
def test_checker_passes(env_id: str) -> None:
    report = check_env(env_id)
    failures = [(r.name, r.message) for r in report.failures()]
    assert report.passed, f"{env_id}: {failures}"
    assert [r.name for r in report.results] == list(CHECKS)


@pytest.mark.parametrize("env_id", [pytest.param(i, marks=_marks(i)) for i in ALL_IDS])
def test_fuzzed_actions_never_raise(env_id: str) -> None:
    env = envs.make(env_id)
    first, info0 = env.reset(seed=0, options={"task_id": env.unwrapped.task_ids()[0]})
    examples = 10 if envs.spec(env_id).family in SLOW_FAMILIES else 60

    @settings(max_examples=examples, deadline=None, database=None,
              suppress_health_check=list(HealthCheck))
    @given(st.text(max_size=300))
    def fuzz(action: str) -> None:
        key = env.unwrapped.state_key()
        obs, reward, term, trunc, info = env.step(action)
        assert isinstance(obs, str) and isinstance(reward, float)
        assert not (term and trunc)
        if not info["action_valid"]:
            assert info["state_key"] == key or term or trunc
        if term or trunc:
            env.reset(seed=0, options={"task_id": env.unwrapped.task_ids()[0]})

    try:
        fuzz()
    finally:
        env.close()


def test_every_builtin_is_listed() -> None:
    assert {"turngym/Sokoban-v0", "turngym/Maze-v0"} <= set(ALL_IDS)
