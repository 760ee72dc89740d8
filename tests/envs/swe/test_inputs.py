"""Hostile tool arguments on the SWE env (issue #20): invalid steps, no data loss, no fd leak.

A lone surrogate, a NUL byte, ``NaN``/``Infinity``/``1e999`` line numbers and JSON nested
too deep are parse errors (``action_valid=False``); ``edit``/``create`` write atomically, so
a failing call leaves the file as it was; a command the sandbox cannot start leaks no fd.
"""

from __future__ import annotations

import gc
import json
import os
import pickle
from pathlib import Path

import pytest

from turngym import envs
from turngym.envs.swe import safe_fs
from turngym.envs.swe import tools as T
from turngym.envs.swe.bwrap_sandbox import BwrapSandbox

pytestmark = pytest.mark.skipif(__import__("shutil").which("bwrap") is None,
                                reason="bubblewrap is not installed")
TASK = "stats-0000"


@pytest.fixture
def env():
    e = envs.make("turngym/SWE-v0", backend="bwrap")
    e.reset(seed=0, options={"task_id": TASK})
    yield e
    e.close()


def _open_fds() -> int:
    return len(os.listdir("/proc/self/fd"))


def _fd_set() -> set[str]:
    """This process's open fds after a full GC: an earlier test's garbage (sockets, pipes)
    is closed whenever the GC runs, so a count taken across a loop could fall (CI: 130 ->
    70) or hide a leak; a leak is an fd opened in the loop that is still open after it."""
    gc.collect()
    return set(os.listdir("/proc/self/fd"))


def _a_file(env) -> tuple[str, Path, str]:
    inner = env.unwrapped
    rel = inner.task.path
    path = inner._sandbox.work / rel
    return rel, path, path.read_text()


def _raw(name: str, args: str) -> str:
    return '{"name": "%s", "arguments": %s}' % (name, args)


@pytest.mark.parametrize("new", ["\ud800", "ok \udfff"])
@pytest.mark.parametrize("ascii_escapes", [True, False])
def test_edit_with_a_lone_surrogate_is_invalid_and_keeps_the_file(env, new, ascii_escapes):
    rel, path, before = _a_file(env)
    old = before.splitlines()[0]
    key = env.unwrapped.state_key()
    action = json.dumps({"name": "edit", "arguments": {"path": rel, "old": old, "new": new}},
                        ensure_ascii=ascii_escapes)
    obs, reward, term, trunc, info = env.step(action)
    assert info["action_valid"] is False and "surrogate" in obs
    assert path.read_text() == before and info["state_key"] == key


def test_a_failing_write_leaves_the_file_and_no_temporary(tmp_path, monkeypatch):
    target = tmp_path / "a.py"
    target.write_text("x = 1\n")
    with pytest.raises(T.ToolError, match="surrogate"):  # refused before any write
        T.create(tmp_path, "a.py", "y = \ud800")

    def boom(*args, **kwargs):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(safe_fs.os, "rename", boom)
    with pytest.raises(T.ToolError, match="create: a.py: No space left on device"):
        T.create(tmp_path, "a.py", "y = 2\n")
    assert target.read_text() == "x = 1\n"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a.py"]


def test_edit_keeps_the_file_mode(env):
    rel, path, before = _a_file(env)
    path.chmod(0o640)
    old = before.splitlines()[0]
    _, _, _, _, info = env.step(T.tool_call("edit", path=rel, old=old, new=old + "  # x"))
    assert info["action_valid"] is True
    assert path.stat().st_mode & 0o777 == 0o640 and path.read_text().startswith(old + "  # x")


def test_create_with_a_lone_surrogate_is_invalid(env):
    key = env.unwrapped.state_key()
    _, _, _, _, info = env.step(T.tool_call("create", path="new.py", content="a = '\ud800'"))
    assert info["action_valid"] is False and info["state_key"] == key
    assert not (env.unwrapped._sandbox.work / "new.py").exists()


@pytest.mark.parametrize("command", ["echo a\x00b", "\x00", "echo \ud800"])
def test_bash_with_nul_or_surrogate_is_invalid(env, command):
    key = env.unwrapped.state_key()
    obs, _, _, _, info = env.step(T.tool_call("bash", command=command))
    assert info["action_valid"] is False and info["state_key"] == key
    assert "NUL" in obs or "UTF-8" in obs


@pytest.mark.parametrize("bounds", ['"start": NaN', '"start": Infinity', '"end": 1e999',
                                    '"end": -Infinity', '"start": 1.5', '"start": "1"'])
def test_view_with_non_finite_bounds_is_invalid(env, bounds):
    rel, _, _ = _a_file(env)
    obs, _, _, _, info = env.step(_raw("view", '{"path": "%s", %s}' % (rel, bounds)))
    assert info["action_valid"] is False and obs.startswith("Invalid action")


def test_view_with_whole_float_bounds_works(env):
    rel, _, _ = _a_file(env)
    obs, _, _, _, info = env.step(_raw("view", '{"path": "%s", "start": 1.0, "end": 2}' % rel))
    assert info["action_valid"] is True and "(lines 1-2 of" in obs


@pytest.mark.parametrize("timeout", ["NaN", "Infinity", "1e999", "-1", "0"])
def test_bash_timeout_must_be_finite_and_positive(env, timeout):
    _, _, _, _, info = env.step(_raw("bash", '{"command": "ls", "timeout": %s}' % timeout))
    assert info["action_valid"] is False


@pytest.mark.parametrize("action", [
    _raw("bash", '"' + "[" * 1500 + "]" * 1500 + '"'),
    _raw("bash", "[" * 1500 + "]" * 1500),
    "[" * 2000 + "]" * 2000,
])
def test_deeply_nested_json_is_invalid(env, action):
    _, _, _, _, info = env.step(action)
    assert info["action_valid"] is False


def test_crashing_commands_leak_no_fds(tmp_path):
    box = BwrapSandbox()
    try:
        box.exec("true")  # warm-up: lazily opened fds are not leaks
        before = _fd_set()
        for i in range(50):
            res = box.exec("echo a\x00b" if i % 2 else "echo \ud800")
            assert res.exit_code == 127 and "could not start" in res.output
        assert _fd_set() - before == set()
    finally:
        box.close()


def test_fd_count_stable_over_50_rejected_bash_steps_and_after_close():
    before = _open_fds()
    e = envs.make("turngym/SWE-v0", backend="bwrap")
    e.reset(seed=0, options={"task_id": TASK})
    e.step(T.tool_call("bash", command="true"))
    during = _fd_set()
    for _ in range(50):
        _, _, term, trunc, info = e.step(T.tool_call("bash", command="echo a\x00b"))
        assert info["action_valid"] is False
        if trunc:
            e.reset(seed=0, options={"task_id": TASK})
    assert _fd_set() - during == set()
    e.close()
    assert _open_fds() <= before


def test_pickled_mid_episode_steps_like_the_original(env):
    rel, path, before = _a_file(env)
    old = before.splitlines()[0]
    env.step(T.tool_call("edit", path=rel, old=old, new=old + "  # edited"))
    clone = pickle.loads(pickle.dumps(env))
    try:
        assert clone.unwrapped.state_key() == env.unwrapped.state_key()
        action = T.tool_call("view", path=rel, start=1, end=1)
        assert clone.step(action)[0] == env.step(action)[0]
        assert clone.unwrapped._sandbox.work != env.unwrapped._sandbox.work
    finally:
        clone.close()
