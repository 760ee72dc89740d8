"""Every shipped suite loads, names registered envs, and lists task ids that exist."""

from __future__ import annotations

import importlib.util

import pytest

from turngym import envs
from turngym.harness.eval.suite import entry_tasks, list_suites, load_suite

REQUIRED = {"household", "webshop", "search", "swe", "sokoban", "maze", "scienceworld",
            "textworld", "quick"}


def test_all_required_suites_ship() -> None:
    assert REQUIRED <= set(list_suites())


@pytest.mark.parametrize("name", sorted(REQUIRED))
def test_suite_entries_reference_registered_envs_and_real_tasks(name: str) -> None:
    suite = load_suite(name)
    assert suite.name == name
    for entry in suite.entries:
        spec = envs.spec(entry.env_id)  # raises for an unregistered id
        missing = [m for m in spec.requires if importlib.util.find_spec(m) is None]
        if missing:
            pytest.skip(f"{entry.env_id} needs {missing}")
        tasks = entry_tasks(entry, suite.seed)  # raises for a task id the env rejects
        expected = len(entry.task_ids) if entry.task_ids else entry.num_tasks
        assert len(tasks) == expected
        assert len({t for t, _ in tasks}) == expected  # no duplicates


def test_household_suite_covers_both_validation_splits() -> None:
    suite = load_suite("household")
    assert {e.split for e in suite.entries} == {"valid_seen", "valid_unseen"}
    assert load_suite("search").entries[0].group_by == "question_type"
    assert {e.env_id for e in load_suite("quick").entries} >= {
        "turngym/Sokoban-v0", "turngym/Household-v0", "turngym/WebShop-v0",
        "turngym/Search-v0", "turngym/SWE-v0"}
