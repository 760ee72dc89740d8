"""SWEEnv on the default isolated backend (bwrap): rewards, tools, state keys, snapshots."""

from __future__ import annotations

import json
import pickle

import pytest

from turngym import envs
from turngym.envs.swe import SWEEnv
from turngym.envs.swe.tasks import load_tasks
from turngym.envs.swe.tools import tool_call
from turngym.errors import ConfigError

pytestmark = pytest.mark.skipif(__import__("shutil").which("bwrap") is None,
                                reason="bubblewrap is not installed")
TASK = "stats-0000"


@pytest.fixture
def env():
    e = envs.make("turngym/SWE-v0", backend="bwrap")
    yield e
    e.close()


def test_registered_with_tools_and_family():
    assert "turngym/SWE-v0" in envs.list_ids()
    e = envs.make("turngym/SWE-v0", backend="bwrap")
    assert e.unwrapped.family == "swe"
    assert [t["function"]["name"] for t in e.unwrapped.tools] == ["bash", "view", "edit",
                                                                 "create", "submit"]
    e.close()


def test_expert_solves_with_reward_one(env):
    task = load_tasks()[0]
    obs, info = env.reset(seed=0, options={"task_id": task.task_id})
    assert task.issue in obs and "stats/describe.py" in obs or task.project in obs
    assert info["task_type"] == task.operator and info["backend"] == "bwrap"
    assert info["submitted"] is False and info["pass_fraction"] == 0.0
    action = env.unwrapped.expert_action()
    assert json.loads(action) == {"name": "edit", "arguments": {
        "path": task.path, "old": task.buggy, "new": task.fixed}}
    obs, reward, term, trunc, info = env.step(action)
    assert (reward, term, info["action_valid"]) == (0.0, False, True)
    assert json.loads(env.unwrapped.expert_action()) == {"name": "submit", "arguments": {}}
    obs, reward, term, trunc, info = env.step(env.unwrapped.expert_action())
    n = len(task.fail_to_pass) + len(task.pass_to_pass)
    assert obs.startswith(f"Submitted. Hidden tests: {n}/{n} passed.")
    assert (reward, term, trunc, info["won"]) == (1.0, True, False, True)
    assert (info["tests_passed"], info["tests_total"], info["pass_fraction"]) == (n, n, 1.0)
    assert env.unwrapped.expert_action() is None


def test_submit_without_fix_reports_fraction(env):
    task = load_tasks()[0]
    env.reset(seed=0, options={"task_id": task.task_id})
    obs, reward, term, trunc, info = env.step(tool_call("submit"))
    p2p, total = len(task.pass_to_pass), len(task.tests)
    assert (reward, term, info["won"]) == (0.0, True, False)
    assert (info["tests_passed"], info["tests_total"]) == (p2p, total)
    assert info["pass_fraction"] == pytest.approx(p2p / total)
    assert task.fail_to_pass[0] in obs
    obs, reward, term, _, info = env.step(tool_call("bash", command="ls"))
    assert term and not info["action_valid"] and "episode is over" in obs and reward == 0.0


def test_editing_tests_does_not_help(env):
    task = load_tasks()[0]
    env.reset(seed=0, options={"task_id": task.task_id})
    env.step(tool_call("bash", command="for f in tests/*.py; do echo 'def test_ok(): pass' > $f;"
                                       " done"))
    _, reward, _, _, info = env.step(tool_call("submit"))
    assert reward == 0.0 and info["tests_passed"] == len(task.pass_to_pass)


@pytest.mark.parametrize("action, fragment", [
    ("ls", "expected one JSON tool call"),
    ('{"name": "rm", "arguments": {}}', "unknown tool 'rm'"),
    ('{"name": "bash", "arguments": {}}', "needs argument(s) command"),
    ('{"name": "view", "arguments": {"path": "../../etc/passwd"}}', "outside /workspace"),
    ('{"name": "view", "arguments": {"path": "nope.py"}}', "No such file"),
    ('{"name": "edit", "arguments": {"path": "tests", "old": "a", "new": "b"}}', "No such file"),
])
def test_invalid_actions_change_nothing(env, action, fragment):
    _, info = env.reset(seed=0, options={"task_id": TASK})
    obs, reward, term, trunc, info2 = env.step(action)
    assert fragment in obs
    assert (reward, term, info2["action_valid"]) == (0.0, False, False)
    assert info2["state_key"] == info["state_key"]


def test_edit_must_be_unique(env):
    env.reset(seed=0, options={"task_id": TASK})
    obs, *_, info = env.step(tool_call("edit", path="stats/describe.py", old="return",
                                       new="return"))
    assert "occurs" in obs and "times" in obs and info["action_valid"] is False


def test_state_key_tracks_files_not_reads(env):
    _, info0 = env.reset(seed=0, options={"task_id": TASK})
    _, _, _, _, info1 = env.step(tool_call("view", path="stats/describe.py", start=1, end=3))
    assert info1["state_key"] == info0["state_key"]
    _, _, _, _, info2 = env.step(tool_call("create", path="notes.txt", content="x"))
    assert info2["state_key"] != info0["state_key"]
    _, _, _, _, info3 = env.step(tool_call("bash", command="rm notes.txt"))
    assert info3["state_key"] == info0["state_key"]


def test_view_numbers_lines(env):
    env.reset(seed=0, options={"task_id": TASK})
    obs, *_ = env.step(tool_call("view", path="stats/describe.py", start=1, end=2))
    assert obs.splitlines()[0].startswith("stats/describe.py (lines 1-2 of ")
    assert obs.splitlines()[1] == '   1  """Descriptive statistics without numpy."""'


def test_bash_output_truncated_with_marker(env):
    env.reset(seed=0, options={"task_id": TASK})
    obs, *_ = env.step(tool_call("bash", command="python3 -c \"print('a' * 10000)\""))
    assert "[... 6002 characters truncated ...]" in obs  # 10001 chars - (2666 + 1333) kept
    assert obs.startswith("[exit code 0]\n")


def test_snapshot_restore_captures_workspace(env):
    env.reset(seed=0, options={"task_id": TASK})
    env.step(tool_call("create", path="a.txt", content="one"))
    blob, key = env.snapshot(), env.unwrapped.state_key()
    env.step(tool_call("create", path="a.txt", content="two"))
    env.step(tool_call("bash", command="mkdir -p d && echo 3 > d/b.txt"))
    assert env.unwrapped.state_key() != key
    env.restore(blob)
    assert env.unwrapped.state_key() == key
    obs, *_ = env.step(tool_call("bash", command="cat a.txt; ls d 2>&1 | head -1"))
    assert "one" in obs and "No such file" in obs


def test_pickle_then_reset(env):
    obs, _ = env.reset(seed=0, options={"task_id": TASK})
    clone = pickle.loads(pickle.dumps(env))
    assert clone.reset(seed=0, options={"task_id": TASK})[0] == obs
    clone.close()


def test_splits():
    e = SWEEnv(backend="bwrap", split="test")
    ids = e.task_ids()
    assert ids and all(t.endswith(tuple("0123456789")) for t in ids)
    assert {load_tasks_by_id()[i].split for i in ids} == {"test"}
    e.close()


def load_tasks_by_id():
    return {t.task_id: t for t in load_tasks()}


@pytest.mark.parametrize("kwargs, key", [
    ({"backend": "podman"}, "backend"), ({"split": "dev"}, "split"),
    ({"bash_timeout": 0}, "bash_timeout"), ({"pool_size": -1}, "pool_size"),
    ({"tasks_file": "/nonexistent.jsonl"}, "tasks_file"), ({"memory_mb": -5}, "memory_mb"),
])
def test_bad_config_names_the_key(kwargs, key):
    with pytest.raises(ConfigError, match=key):
        envs.make("turngym/SWE-v0", **kwargs)


def test_local_backend_is_labelled_not_isolated():
    from turngym.envs.swe.local_sandbox import LocalSandbox

    assert LocalSandbox.isolated is False and "NOT ISOLATED" in LocalSandbox.__doc__
    for name in ("local", "local-unsafe"):  # refused unless asked for explicitly
        with pytest.raises(ConfigError, match="unsafe_local"):
            envs.make("turngym/SWE-v0", backend=name)
    e = envs.make("turngym/SWE-v0", backend="local", unsafe_local=True)
    _, info = e.reset(seed=0, options={"task_id": TASK})
    assert info["backend"] == "local-unsafe"
    e.step(e.unwrapped.expert_action())
    _, reward, term, _, _ = e.step(e.unwrapped.expert_action())
    assert (reward, term) == (1.0, True)
    e.close()


def test_warm_pool_hands_out_started_sandboxes():
    from turngym.envs.swe.pool import SandboxPool

    pool = SandboxPool("bwrap", 2)
    try:
        import time
        deadline = time.monotonic() + 10
        while pool.ready() < 2 and time.monotonic() < deadline:
            time.sleep(0.01)
        assert pool.ready() == 2
        box = pool.acquire()
        assert box.exec("echo ok").output == "ok\n"
        box.close()
    finally:
        pool.close()
    assert pool.ready() == 0


@pytest.mark.slow
def test_expert_wins_one_task_per_project_and_operator():
    """The full 360-task sweep is the benchmark (benchmarks/swe_sandbox.py); here one task
    of every (project, operator) pair."""
    picked = {}
    for t in load_tasks():
        picked.setdefault((t.project, t.operator), t.task_id)
    e = envs.make("turngym/SWE-v0", backend="bwrap")
    try:
        for task_id in picked.values():
            e.reset(seed=0, options={"task_id": task_id})
            term, steps = False, 0
            while not term:
                _, reward, term, _, info = e.step(e.unwrapped.expert_action())
                steps += 1
            assert (reward, info["won"], steps) == (1.0, True, 2), task_id
    finally:
        e.close()
    assert len(picked) >= 40


@pytest.mark.parametrize("action, fragment", [
    ('{"name": "bash", "arguments": {"command": "ls", "timeout": -1}}', "positive number"),
    ('{"name": "bash", "arguments": {"command": "ls", "timeout": NaN}}', "positive number"),
    ('{"name": "create", "arguments": {"path": "fifo", "content": "x"}}', "not a regular file"),
    ('{"name": "view", "arguments": {"path": "fifo"}}', "'fifo' is a fifo, not a regular file"),
])
def test_odd_files_and_timeouts_are_invalid_not_hanging(env, action, fragment):
    env.reset(seed=0, options={"task_id": TASK})
    env.step(tool_call("bash", command="mkfifo fifo"))
    obs, _, term, _, info = env.step(action)
    assert fragment in obs and info["action_valid"] is False and not term


def test_random_action_is_a_valid_tool_call(env):
    import numpy as np

    from turngym.agents.scripted import ScriptedPolicy

    rng = np.random.default_rng(0)
    env.reset(seed=0, options={"task_id": TASK})
    names = {json.loads(env.unwrapped.random_action(rng))["name"] for _ in range(40)}
    assert names == {"view", "bash", "submit"}
    policy = ScriptedPolicy("random", seed=1)
    env.reset(seed=0, options={"task_id": TASK})
    valid, done = [], False
    while not done:
        _, _, term, trunc, info = env.step(policy.act(env))
        valid.append(info["action_valid"])
        done = term or trunc
    assert all(valid) and info["submitted"] and not info["won"]  # well formed, no fix
    assert env.unwrapped.random_action(rng) is None  # submitted: nothing left to do
