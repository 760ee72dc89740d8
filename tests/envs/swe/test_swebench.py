"""SWE-bench-style instance files: diff handling, loading, and a real run in Docker on a
locally built image that holds a repository at /testbed."""

from __future__ import annotations

import difflib
import json
from pathlib import Path

import pytest

from turngym.envs.swe.diffs import PatchError, apply_diff, hunk_edits, parse_diff
from turngym.envs.swe.swebench import load_instances, parse_test_output
from turngym.errors import ConfigError

DIFF = """diff --git a/pkg/m.py b/pkg/m.py
--- a/pkg/m.py
+++ b/pkg/m.py
@@ -1,3 +1,3 @@
 a = 1
-b = 2
+b = 20
 c = 3
--- /dev/null
+++ b/pkg/new.py
@@ -0,0 +1,2 @@
+x = 1
+y = 2
"""


def test_parse_and_apply_diff(tmp_path):
    files = parse_diff(DIFF)
    assert [(f.path, f.new_file, f.deleted) for f in files] == [("pkg/m.py", False, False),
                                                              ("pkg/new.py", True, False)]
    assert hunk_edits(DIFF) == [("edit", "pkg/m.py", "a = 1\nb = 2\nc = 3\n",
                                 "a = 1\nb = 20\nc = 3\n"),
                                ("create", "pkg/new.py", "", "x = 1\ny = 2\n")]
    (tmp_path / "pkg").mkdir()
    (tmp_path / "pkg" / "m.py").write_text("a = 1\nb = 2\nc = 3\nd = 4\n")
    assert apply_diff(tmp_path, DIFF) == ["pkg/m.py", "pkg/new.py"]
    assert (tmp_path / "pkg" / "m.py").read_text() == "a = 1\nb = 20\nc = 3\nd = 4\n"
    assert (tmp_path / "pkg" / "new.py").read_text() == "x = 1\ny = 2\n"
    with pytest.raises(PatchError, match="occurs 0 times"):
        apply_diff(tmp_path, DIFF.split("--- /dev/null")[0])
    with pytest.raises(PatchError, match="no file headers"):
        parse_diff("just text")


def test_parse_test_output():
    out = ("PASSED tests/a.py::test_x\nFAILED tests/a.py::test_y - AssertionError\n"
           '{"id": "tests/b.py::test_z", "outcome": "passed", "message": ""}\nnoise\n')
    assert parse_test_output(out) == {"tests/a.py::test_x": "passed",
                                      "tests/a.py::test_y": "failed",
                                      "tests/b.py::test_z": "passed"}


def _instance(**kw) -> dict:
    row = {"instance_id": "o__r-1", "repo": "o/r", "base_commit": "0" * 40, "patch": DIFF,
           "test_patch": DIFF, "FAIL_TO_PASS": '["t::a"]', "PASS_TO_PASS": []}
    row.update(kw)
    return row


def test_load_instances_json_and_jsonl(tmp_path):
    (tmp_path / "a.json").write_text(json.dumps([_instance()]))
    (tmp_path / "b.jsonl").write_text(json.dumps(_instance()) + "\n")
    for name in ("a.json", "b.jsonl"):
        (inst,) = load_instances(tmp_path / name)
        assert inst.fail_to_pass == ["t::a"] and inst.pass_to_pass == []
    bad = _instance()
    del bad["test_patch"]
    (tmp_path / "c.jsonl").write_text(json.dumps(bad))
    with pytest.raises(ConfigError, match="missing key.*test_patch"):
        load_instances(tmp_path / "c.jsonl")
    (tmp_path / "d.jsonl").write_text(json.dumps(_instance(FAIL_TO_PASS="nope")))
    with pytest.raises(ConfigError, match="FAIL_TO_PASS"):
        load_instances(tmp_path / "d.jsonl")


HIDDEN_TEST = ("from stats import mean\n\n\n"
               "def test_hidden_mean():\n    assert mean([1, 2, 6]) == 3\n")


def _write_instance(tmp_path: Path, task, tag: str) -> Path:
    from turngym.envs.swe.tasks import buggy_files

    buggy = buggy_files(task)[task.path]
    fixed = buggy.replace(task.buggy, task.fixed)
    patch = "".join(difflib.unified_diff(buggy.splitlines(True), fixed.splitlines(True),
                                         f"a/{task.path}", f"b/{task.path}"))
    test_patch = "".join(difflib.unified_diff([], HIDDEN_TEST.splitlines(True), "/dev/null",
                                              "b/tests/test_hidden.py"))
    row = {"instance_id": "turngym__stats-0000", "repo": "turngym/stats",
           "base_commit": "0" * 40, "patch": patch, "test_patch": test_patch,
           "FAIL_TO_PASS": task.fail_to_pass,
           "PASS_TO_PASS": task.pass_to_pass + ["tests/test_hidden.py::test_hidden_mean"],
           "problem_statement": task.issue, "image": tag,
           "test_cmd": "python3 /opt/turngym/runner.py --root . --tests tests {tests}"}
    path = tmp_path / "instances.jsonl"
    path.write_text(json.dumps(row) + "\n")
    return path


@pytest.mark.docker
@pytest.mark.slow
def test_swebench_instance_expert_and_baseline(testbed_image, tmp_path):
    from turngym.envs.swe.swebench import SWEBenchEnv

    task, tag = testbed_image
    env = SWEBenchEnv(str(_write_instance(tmp_path, task, tag)), test_timeout=60,
                      trust_test_process=True)
    try:
        obs, info = env.reset(seed=0, options={"task_id": "turngym__stats-0000"})
        assert "/testbed" in obs and task.issue in obs and info["task_type"] == "turngym/stats"
        obs, *_ = env.step(json.dumps({"name": "bash", "arguments": {"command": "pwd; ls"}}))
        assert "/testbed" in obs and "stats" in obs
        blob = env.snapshot()
        _, reward, term, _, info = env.step(json.dumps({"name": "submit"}))
        total = len(task.tests) + 1
        assert (reward, term, info["tests_passed"], info["tests_total"]) == \
            (0.0, True, total - len(task.fail_to_pass), total)
        env.restore(blob)
        steps = 0
        while not info.get("won") and steps < 5:
            _, reward, term, _, info = env.step(env.expert_action())
            steps += 1
        assert (reward, info["won"], info["pass_fraction"], steps) == (1.0, True, 1.0, 2)
    finally:
        env.close()


@pytest.mark.parametrize("kwargs, key", [({"test_timeout": 0}, "test_timeout"),
                                         ({"test_cmd": "pytest"}, "test_cmd"),
                                         ({"trust_test_process": False}, "trust_test_process"),
                                         ({"trust_test_process": "yes"}, "trust_test_process")])
def test_swebench_bad_config_names_the_key(tmp_path, kwargs, key):
    from turngym.envs.swe.swebench import SWEBenchEnv

    (tmp_path / "i.jsonl").write_text(json.dumps(_instance()) + "\n")
    with pytest.raises(ConfigError, match=key):
        SWEBenchEnv(str(tmp_path / "i.jsonl"), **{"trust_test_process": True, **kwargs})


def test_swebench_is_refused_without_the_explicit_trust(tmp_path):
    """Its grade comes from a pytest run that shares a process with the model's code, so,
    like local-unsafe, it is refused unless asked for, with a message that names the key
    and the safe alternative."""
    from turngym.envs.swe.swebench import SWEBenchEnv

    (tmp_path / "i.jsonl").write_text(json.dumps(_instance()) + "\n")
    with pytest.raises(ConfigError) as err:
        SWEBenchEnv(str(tmp_path / "i.jsonl"))
    assert str(err.value).startswith("trust_test_process: ")
    assert "turngym/SWE-v0" in str(err.value) and "forge" in str(err.value)
