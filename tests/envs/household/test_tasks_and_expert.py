"""Splits, generation and the expert planner (from the start and from random states)."""

from __future__ import annotations

from collections import Counter

import numpy as np
import pytest

from turngym.envs.household.env import HouseholdEnv
from turngym.envs.household.expert import goal_met
from turngym.envs.household.scenes import make_layout
from turngym.envs.household.sim import HouseState
from turngym.envs.household.tasks import (
    N_SEEN_LAYOUTS,
    SPLIT_SIZES,
    TASK_TYPES,
    TYPE_ROOMS,
    held_out,
    make_task,
    task_ids,
)


def test_split_sizes_and_even_type_coverage() -> None:
    assert SPLIT_SIZES["train"] >= 3000
    assert SPLIT_SIZES["valid_seen"] >= 140 and SPLIT_SIZES["valid_unseen"] >= 134
    for split, n in SPLIT_SIZES.items():
        ids = task_ids(split)
        assert len(ids) == n and len(set(ids)) == n
        types = Counter(make_task(t).task_type for t in ids[:60])
        assert types == Counter({t: 10 for t in TASK_TYPES})


def test_seen_and_unseen_layouts_and_goal_combinations() -> None:
    train = [make_task(t) for t in task_ids("train")[::5]]
    seen = [make_task(t) for t in task_ids("valid_seen")]
    unseen = [make_task(t) for t in task_ids("valid_unseen")]
    train_layouts = {t.scene.layout.layout_id for t in train}
    assert all(t.scene.layout.index < N_SEEN_LAYOUTS for t in train + seen)
    assert all(t.scene.layout.index >= N_SEEN_LAYOUTS for t in unseen)
    assert {t.scene.layout.layout_id for t in seen} & train_layouts  # seen layouts recur
    assert not any(held_out(t.goal_obj, t.goal_target) for t in train + seen)
    assert all(held_out(t.goal_obj, t.goal_target) for t in unseen)
    assert {t.combo for t in unseen}.isdisjoint({t.combo for t in train + seen})
    assert {t.task_type for t in unseen} == set(TASK_TYPES)


def test_generation_is_deterministic_and_rooms_fit_the_task_type() -> None:
    for tid in task_ids("valid_unseen")[:24]:
        task = make_task(tid)
        make_task.cache_clear()
        again = make_task(tid)
        assert again == task
        assert task.scene.layout.room in TYPE_ROOMS[task.task_type]
        assert task.goal_obj in task.text and task.text.endswith(".")
        assert not goal_met(task, HouseState(task.scene))
        assert task.scene.obj_kinds.count(task.goal_obj) >= task.count
    assert make_layout("kitchen", 3) == make_layout("kitchen", 3)
    kinds = make_layout("kitchen", 3).kinds()
    assert {"fridge", "microwave", "sinkbasin", "countertop", "cabinet"} <= kinds


def _run_expert(env: HouseholdEnv, limit: int = 50) -> tuple[bool, int]:
    for turn in range(limit):
        action = env.expert_action()
        if action is None:
            return env.won(), turn
        _, _, term, _, info = env.step(action)
        assert info["action_valid"], action
        if term:
            return info["won"], turn + 1
    return False, limit


@pytest.mark.parametrize("split", ["valid_seen", "valid_unseen"])
def test_expert_wins_every_validation_task(split: str) -> None:
    env = HouseholdEnv(split=split)
    lengths = []
    for tid in env.task_ids():
        env.reset(seed=0, options={"task_id": tid})
        won, turns = _run_expert(env)
        assert won, tid
        lengths.append(turns)
    assert 3 <= np.mean(lengths) <= 20 and max(lengths) < 50


def test_expert_wins_a_train_sample() -> None:
    env = HouseholdEnv(split="train")
    for tid in env.task_ids()[::15]:
        env.reset(seed=0, options={"task_id": tid})
        assert _run_expert(env)[0], tid


def test_expert_wins_from_random_reachable_states() -> None:
    rng = np.random.default_rng(0)
    env = HouseholdEnv(split="valid_unseen")
    for tid in env.task_ids()[:60]:
        _, info = env.reset(seed=0, options={"task_id": tid})
        for _ in range(int(rng.integers(5, 40))):  # wander, pick things up, open, toggle
            adm = info["admissible_actions"]
            _, _, term, _, info = env.step(adm[int(rng.integers(len(adm)))])
            if term:
                break
        if not env.won():
            won, turns = _run_expert(env, limit=60)
            assert won and turns <= 30, tid
