"""The bug injector on hand-written code, and the runner it relies on."""

from __future__ import annotations

import json
import subprocess
import sys
from collections import Counter
from pathlib import Path

import pytest

from turngym.envs.swe.injector import RUNNER, Mutant, gold_edit, mutate_file, run_tests, verify

SRC = '''"""Doc."""


def clamp(x, lo, hi):
    """Clamp x."""
    if x < lo:
        return lo
    if x > hi:
        return hi
    return x


def total(values):
    out = 0
    for v in values:
        out += v
    return out
'''
TESTS = '''from calc.core import clamp, total


def test_clamp_low():
    assert clamp(-5, 0, 10) == 0


def test_clamp_high():
    assert clamp(50, 0, 10) == 10


def test_total():
    assert total([1, 2, 3]) == 6


def test_loops_forever():
    assert True
'''


@pytest.fixture
def project(tmp_path) -> Path:
    (tmp_path / "calc").mkdir()
    (tmp_path / "calc" / "__init__.py").write_text("")
    (tmp_path / "calc" / "core.py").write_text(SRC)
    (tmp_path / "tests").mkdir()
    (tmp_path / "tests" / "test_core.py").write_text(TESTS)
    return tmp_path


def test_mutants_of_a_known_file(project):
    mutants = mutate_file(project, "calc/core.py")
    ops = Counter(m.operator for m in mutants)
    # x < lo: flip (>=) + edge (<=); x > hi: flip (<=) + edge (>=); out = 0: off-by-one
    # 0 -> 1 (the same edit as wrong_constant 0 -> 1, which is deduplicated); removable
    # statements: both ifs of clamp, and "out = 0" and the for loop of total (docstrings,
    # returns and single-statement bodies are never removed).
    assert ops == {"comparison_flip": 2, "off_by_one": 3, "removed_statement": 4}
    flips = [m for m in mutants if m.operator == "comparison_flip"]
    assert "    if x >= lo:\n" in flips[0].source and flips[0].function == "clamp"
    removed = [m.source for m in mutants if m.operator == "removed_statement"]
    assert any("out += v" not in s for s in removed)
    assert all(m.source != SRC for m in mutants)


def test_swapped_args_and_operators(tmp_path):
    (tmp_path / "m.py").write_text("def f(a, b):\n    return divmod(a, b)[0] * 2 + a\n")
    ops = {(m.operator, m.source.splitlines()[1].strip()) for m in mutate_file(tmp_path, "m.py")}
    assert ("swapped_args", "return divmod(b, a)[0] * 2 + a") in ops
    assert ("wrong_operator", "return divmod(a, b)[0] * 2 - a") in ops
    assert ("wrong_operator", "return divmod(a, b)[0] / 2 + a") in ops
    assert ("off_by_one", "return divmod(a, b)[0] * 3 + a") in ops


def test_verify_keeps_killed_mutants_only(project):
    base = run_tests(project)
    assert set(base) == {f"tests/test_core.py::test_{n}"
                         for n in ("clamp_low", "clamp_high", "total", "loops_forever")}
    assert all(r["outcome"] == "passed" for r in base.values())
    killed = Mutant("calc/core.py", "comparison_flip", "clamp", SRC.replace("x < lo", "x >= lo"))
    results = verify(project, killed)
    assert results["tests/test_core.py::test_clamp_low"]["outcome"] == "failed"
    message = results["tests/test_core.py::test_clamp_low"]["message"]
    assert message == "AssertionError at `assert clamp(-5, 0, 10) == 0`"
    survivor = Mutant("calc/core.py", "wrong_constant", "", SRC.replace('"""Clamp x."""', "pass"))
    assert verify(project, survivor) is None
    hang = Mutant("calc/core.py", "removed_statement", "total",
                  SRC.replace("    for v in values:\n        out += v\n",
                              "    while True:\n        pass\n"))
    assert verify(project, hang) is None  # a timeout is not a usable task


def test_gold_edit_restores_original():
    original = "a = 1\nb = 2\nc = 3\nb = 2\n"
    mutated = "a = 1\nb = 3\nc = 3\nb = 2\n"
    # "b = 2\n" is not unique in the original, so one line of context is added.
    assert gold_edit(original, mutated) == ("a = 1\nb = 3\nc = 3\n", "a = 1\nb = 2\nc = 3\n")
    assert gold_edit("x = 1\ny = 2\n", "x = 1\ny = 5\n") == ("y = 5\n", "y = 2\n")
    mutated2 = "a = 1\nc = 3\nb = 2\n"  # removed the first "b = 2": needs context
    old, new = gold_edit(original, mutated2)
    assert mutated2.replace(old, new) == original and mutated2.count(old) == 1


def test_runner_timeout_and_ids(project):
    (project / "tests" / "test_core.py").write_text(TESTS.replace(
        "def test_loops_forever():\n    assert True",
        "def test_loops_forever():\n    while True:\n        pass"))
    proc = subprocess.run([sys.executable, str(RUNNER), "--root", str(project), "--tests",
                           str(project / "tests"), "--per-test", "0.5",
                           "tests/test_core.py::test_loops_forever",
                           "tests/test_core.py::test_missing"], capture_output=True, text=True)
    lines = [json.loads(x) for x in proc.stdout.splitlines()]
    assert lines == [
        {"id": "tests/test_core.py::test_loops_forever", "outcome": "error",
         "message": "Timeout: the test ran longer than 0.5s"},
        {"id": "tests/test_core.py::test_missing", "outcome": "error", "message": "test not found"},
    ]


def test_runner_timeout_counts_cpu_and_backstops_sleep(project):
    """A busy loop is stopped by its CPU time; a sleeping test by 10x per-test of wall time."""
    (project / "tests" / "test_core.py").write_text(TESTS.replace(
        "def test_loops_forever():\n    assert True",
        "def test_loops_forever():\n    import time\n    time.sleep(60)"))
    proc = subprocess.run([sys.executable, str(RUNNER), "--root", str(project), "--tests",
                           str(project / "tests"), "--per-test", "0.2",
                           "tests/test_core.py::test_loops_forever"],
                          capture_output=True, text=True, timeout=30)
    assert [json.loads(x) for x in proc.stdout.splitlines()] == [
        {"id": "tests/test_core.py::test_loops_forever", "outcome": "error",
         "message": "Timeout: the test ran longer than 0.2s"}]
