"""ScienceWorld through the real engine (its JVM). Skipped only when the package is absent."""

from __future__ import annotations

import pytest

import envs

pytest.importorskip("scienceworld", reason="install turngym[classic] for ScienceWorld")
pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def sw():
    env = envs.make("turngym/ScienceWorld-v0", max_turns=200)
    yield env
    env.close()


def test_splits_are_the_packages(sw) -> None:
    train, dev, test = (sw.unwrapped.task_ids(s) for s in ("train", "dev", "test"))
    assert not set(train) & set(test) and not set(dev) & set(test)
    assert len(train) > len(test) > 0 and all("/" in t for t in train)


@pytest.mark.parametrize("task_id", ["boil/0", "find-animal/3"])
def test_gold_path_wins_and_rewards_sum_to_one(sw, task_id: str) -> None:
    obs, info = sw.reset(seed=0, options={"task_id": task_id})
    assert "Task Description" in obs and info["score"] == 0
    assert info["task_type"] == task_id.split("/")[0]
    total = 0.0
    while (action := sw.unwrapped.expert_action()) is not None:
        obs, reward, term, trunc, info = sw.step(action)
        total += reward
        if term or trunc:
            break
    assert info["won"] and info["score"] == 100 and term and not trunc
    assert total == pytest.approx(1.0)  # score deltas / 100 add up to the final score


def test_unparseable_action_is_invalid_and_changes_nothing(sw) -> None:
    _, info = sw.reset(seed=0, options={"task_id": "boil/0"})
    obs, reward, term, _, info2 = sw.step("fly to the moon please")
    assert not info2["action_valid"] and "No known action" in obs
    assert info2["state_key"] == info["state_key"] and reward == 0.0 and not term
    assert sw.unwrapped.expert_action() == "open door to kitchen"  # still on the gold path


def test_off_gold_path_expert_is_none(sw) -> None:
    sw.reset(seed=0, options={"task_id": "boil/0"})
    _, _, _, _, info = sw.step("look around")
    assert info["action_valid"] and sw.unwrapped.expert_action() is None
