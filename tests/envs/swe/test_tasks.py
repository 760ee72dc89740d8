"""The shipped task set: size, splits, operators, and that every task is well formed."""

from __future__ import annotations

import pytest

from turngym.envs.swe.injector import run_tests
from turngym.envs.swe.tasks import (
    PROJECTS_DIR,
    buggy_files,
    load_tasks,
    project_files,
    project_names,
    summary,
    write_files,
)

OPERATORS = {"comparison_flip", "off_by_one", "swapped_args", "removed_statement",
             "wrong_constant", "wrong_operator"}


def test_at_least_300_tasks_over_8_projects_both_splits():
    tasks = load_tasks()
    counts = summary(tasks)
    assert len(tasks) >= 300
    assert len(project_names()) >= 8 and set(counts["project"]) == set(project_names())
    assert counts["split"]["train"] > counts["split"]["test"] > 30
    assert set(counts["operator"]) == OPERATORS
    assert len({t.task_id for t in tasks}) == len(tasks)


@pytest.mark.parametrize("project", project_names())
def test_original_projects_pass_their_tests(project):
    results = run_tests(PROJECTS_DIR / project)
    assert len(results) >= 10
    assert {r["outcome"] for r in results.values()} == {"passed"}


def test_every_task_is_well_formed():
    for task in load_tasks():
        files = buggy_files(task)
        original = project_files(task.project)[task.path]
        assert files[task.path] != original
        assert files[task.path].replace(task.buggy, task.fixed) == original
        assert task.fail_to_pass and not set(task.fail_to_pass) & set(task.pass_to_pass)
        assert task.issue and task.fixed.strip() not in task.issue
        assert task.operator in OPERATORS and task.split in ("train", "test")


@pytest.mark.slow
@pytest.mark.parametrize("project", project_names())
def test_first_task_of_each_project_verifies(project, tmp_path):
    """The buggy workspace fails exactly FAIL_TO_PASS; the gold patch passes everything."""
    task = next(t for t in load_tasks() if t.project == project)
    write_files(buggy_files(task), tmp_path / "bug")
    results = run_tests(tmp_path / "bug")
    failing = sorted(k for k, r in results.items() if r["outcome"] != "passed")
    assert failing == task.fail_to_pass
    fixed = buggy_files(task)
    fixed[task.path] = fixed[task.path].replace(task.buggy, task.fixed)
    write_files(fixed, tmp_path / "fix")
    assert {r["outcome"] for r in run_tests(tmp_path / "fix").values()} == {"passed"}
