"""Attacks on the host side of the workspace (issue #19), through ``env.step`` on bwrap and
docker: links, a folder swapped for a link while the host writes, fifos, hard links,
non-finite line numbers, an over-large workspace, and the SWE-bench-style hidden test patch
written through a link. Each attack fails with a clear observation, the host is unchanged,
and the episode (or the next one) still works."""

from __future__ import annotations

import difflib
import gzip
import json
import os
import pickle
import threading
import time
from pathlib import Path

import pytest

from turngym import envs
from turngym.envs.swe import tools as T
from turngym.envs.swe import tree

LINK_NOTE = "the file tools never follow links."


@pytest.fixture
def env(isolated_backend):
    e = envs.make("turngym/SWE-v0", backend=isolated_backend, bash_timeout=10)
    e.reset(seed=0, options={"task_id": "stats-0000"})
    yield e
    e.close()


@pytest.fixture
def host(tmp_path) -> Path:
    """A host folder with a root-only file, which no attack may read or change."""
    folder = tmp_path / "host"
    folder.mkdir(mode=0o700)
    (folder / "secret.py").write_text("SECRET = 1\n")
    (folder / "secret.py").chmod(0o600)
    return folder


def untouched(host: Path) -> bool:
    return (sorted(p.name for p in host.iterdir()) == ["secret.py"]
            and (host / "secret.py").read_text() == "SECRET = 1\n")


def step(env, name: str, **args) -> tuple[str, dict]:
    obs, reward, term, _, info = env.step(T.tool_call(name, **args))
    assert reward == 0.0 and not term
    return obs, info


def bash(env, command: str) -> str:
    obs, info = step(env, "bash", command=command)
    assert info["action_valid"] is True
    return obs


def refused(env, name: str, expected: str, **args) -> None:
    """The tool call is invalid with exactly ``expected`` and changes no state."""
    key = env.unwrapped.state_key()
    obs, info = step(env, name, **args)
    assert obs == expected
    assert info["action_valid"] is False and info["state_key"] == key


def finish(env) -> None:
    """The episode still works: the expert fixes the bug and wins."""
    for _ in range(3):
        obs, reward, term, _, info = env.step(env.unwrapped.expert_action())
        if term:
            break
    assert term and reward == 1.0 and info["won"], obs


def work_of(env) -> Path:
    return env.unwrapped._sandbox.work


def snapshot_files(env) -> bytes:
    """The uncompressed workspace tar inside a snapshot."""
    return gzip.decompress(pickle.loads(env.unwrapped.snapshot())[3][0])


def test_links_to_host_files_and_folders(env, host):
    bash(env, f"ln -s {host}/secret.py link.py && ln -s {host} hostdir && ln -s / root")
    for tool, args in (("view", {}), ("edit", {"old": "SECRET", "new": "X"}),
                       ("create", {"content": "X = 1\n"})):
        refused(env, tool, f"{tool}: refused: 'link.py' is a symbolic link; {LINK_NOTE}",
                path="link.py", **args)
        refused(env, tool, f"{tool}: refused: 'hostdir/secret.py' goes through the symbolic "
                           f"link 'hostdir'; {LINK_NOTE}", path="hostdir/secret.py", **args)
        refused(env, tool, f"{tool}: refused: 'root/etc/passwd' goes through the symbolic "
                           f"link 'root'; {LINK_NOTE}", path="/workspace/root/etc/passwd",
                **args)
    refused(env, "create", f"create: refused: 'hostdir/new/x.py' goes through the symbolic "
                           f"link 'hostdir'; {LINK_NOTE}", path="hostdir/new/x.py",
            content="x")
    obs, _ = step(env, "view", path=".")
    assert "hostdir -> " + str(host) in obs and "link.py -> " in obs and "SECRET" not in obs
    assert untouched(host)
    assert b"SECRET" not in snapshot_files(env)  # links travel as links, not content
    finish(env)


def test_race_folder_swapped_for_a_link_during_host_writes(env, host):
    """A process in the sandbox swaps ``d`` between a folder and a link to the host folder
    for a few seconds, while the host side runs create/view/edit in ``d`` (hundreds of
    tries); nothing outside the workspace is read or written."""
    swapper = (
        "import os, shutil, time\n"
        "os.mkdir('d'); open('started', 'w').close()\n"
        "end = time.time() + 4\n"
        "while time.time() < end:\n"
        "    try:\n"
        "        if os.path.isdir('d.real'):  # the host made 'd' while it was gone\n"
        "            if os.path.islink('d'): os.unlink('d')\n"
        "            else: shutil.rmtree('d', ignore_errors=True)\n"
        "            os.rename('d.real', 'd')\n"
        "            continue\n"
        f"        os.rename('d', 'd.real'); os.symlink({str(host)!r}, 'd'); os.unlink('d')\n"
        "        os.rename('d.real', 'd')\n"
        "    except OSError:\n"
        "        pass\n"
        "print('swapped')\n")
    work = work_of(env)
    result: list[str] = []
    thread = threading.Thread(target=lambda: result.append(
        bash(env, f"python3 -c \"{swapper}\"")))
    thread.start()
    deadline = time.monotonic() + 30
    while not (work / "started").exists() and time.monotonic() < deadline:
        time.sleep(0.01)  # polling for the swapper to start
    counts = {"ok": 0, "refused": 0}
    while thread.is_alive():
        for call in (lambda: T.create(work, "d/secret.py", "PWNED = 1\n"),
                     lambda: T.view(work, "d/secret.py"),
                     lambda: T.edit(work, "d/secret.py", "PWNED", "OWNED")):
            try:
                out = call()
                assert "SECRET" not in out
                counts["ok"] += 1
            except T.ToolError as exc:
                assert "SECRET" not in str(exc)
                counts["refused"] += 1
                if "symbolic link" in str(exc):
                    counts["link"] = counts.get("link", 0) + 1
    thread.join()
    assert "swapped" in result[0], result
    assert counts["ok"] + counts["refused"] >= 300, counts
    assert counts["ok"] > 0 and counts.get("link", 0) > 0, counts  # both sides of the race
    assert untouched(host)
    finish(env)


def test_fifo_named_like_a_source_file(env):
    rel = env.unwrapped.task.path
    bash(env, f"rm {rel} && mkfifo {rel}")
    start = time.monotonic()
    for tool, args in (("view", {}), ("edit", {"old": "a", "new": "b"}),
                       ("create", {"content": "x = 1\n"})):
        refused(env, tool, f"{tool}: refused: '{rel}' is a fifo, not a regular file.",
                path=rel, **args)
    env.snapshot()
    assert time.monotonic() - start < 20  # nothing blocked on the fifo
    bash(env, f"rm {rel}")
    env.reset(seed=0, options={"task_id": "stats-0000"})
    finish(env)


@pytest.mark.parametrize("bounds, expected", [
    ('"start": 1e999', "argument 'start' of view must be a finite line number, got inf."),
    ('"end": -1e999', "argument 'end' of view must be a finite line number, got -inf."),
    ('"start": NaN', "argument 'start' of view must be a finite line number, got nan."),
    ('"end": NaN', "argument 'end' of view must be a finite line number, got nan."),
])
def test_view_with_non_finite_bounds(env, bounds, expected):
    rel = env.unwrapped.task.path
    key = env.unwrapped.state_key()
    action = '{"name": "view", "arguments": {"path": "' + rel + '", ' + bounds + "}}"
    obs, _, term, _, info = env.step(action)
    assert obs == "Invalid action: " + expected
    assert info["action_valid"] is False and not term and info["state_key"] == key
    finish(env)


def test_hard_link_to_a_host_file(env):
    box = env.unwrapped._sandbox
    secret = box.root / "host-secret.py"  # a host file on the workspace's file system
    secret.write_text("SECRET = 1\n")
    secret.chmod(0o600)
    obs = bash(env, "ln /etc/passwd passwd.py; ln /opt/turngym/runner.py r.py; echo done")
    assert "done" in obs and not (box.work / "passwd.py").exists()
    assert not (box.work / "r.py").exists()
    os.link(secret, box.work / "hl.py")  # what a sandbox on one mount with it could do
    for tool, args in (("view", {}), ("edit", {"old": "SECRET", "new": "X"})):
        refused(env, tool, f"{tool}: refused: 'hl.py' has 2 hard links; the file tools "
                           "only read files with one link.", path="hl.py", **args)
    key = env.unwrapped.state_key()
    secret.write_text("SECRET = 2\n")
    assert env.unwrapped.state_key() == key  # its content is never read
    assert b"SECRET" not in snapshot_files(env)
    obs, info = step(env, "create", path="hl.py", content="mine = 1\n")
    assert obs == "Overwrote hl.py (1 lines)." and info["action_valid"] is True
    assert secret.read_text() == "SECRET = 2\n" and secret.stat().st_nlink == 1
    finish(env)


def test_workspace_past_the_bounds(env, monkeypatch):
    monkeypatch.setattr(tree, "MAX_TREE_BYTES", 1 << 20)
    monkeypatch.setattr(tree, "MAX_TREE_ENTRIES", 500)
    before = env.unwrapped.state_key()
    bash(env, "head -c 2000000 /dev/zero > big.bin")
    over = env.unwrapped.state_key()
    bash(env, "head -c 8000000 /dev/zero > big2.bin")
    assert env.unwrapped.state_key() == over != before  # past the bound, same cost and key
    with pytest.raises(tree.WorkspaceTooLargeError, match="too large to snapshot"):
        env.snapshot()
    bash(env, "rm big.bin big2.bin && mkdir many && cd many && seq 1 600 | xargs touch")
    many = env.unwrapped.state_key()
    assert many != before
    with pytest.raises(tree.WorkspaceTooLargeError, match=r"\(entries bound hit\)"):
        env.snapshot()
    bash(env, "rm -r many")
    assert env.unwrapped.state_key() == before
    env.restore(env.snapshot())
    finish(env)


def test_symlinked_tests_folder_then_submit(env, host):
    bash(env, f"mv tests tests.real && ln -s {host} tests")
    obs, reward, term, _, _ = env.step(T.tool_call("submit"))
    assert term and reward == 0.0 and obs.startswith("Submitted.")
    assert untouched(host)
    env.reset(seed=0, options={"task_id": "stats-0000"})
    finish(env)


# ---------------------------------------------------------------------- SWE-bench style
HIDDEN_TEST = ("from stats import mean\n\n\n"
               "def test_hidden_mean():\n    assert mean([1, 2, 6]) == 3\n")


@pytest.fixture(scope="module")
def swebench_file(testbed_image, tmp_path_factory):
    """An instance file whose image holds the buggy ``stats`` project at /testbed."""
    from turngym.envs.swe.tasks import buggy_files

    task, tag = testbed_image
    buggy = buggy_files(task)[task.path]
    patch = "".join(difflib.unified_diff(
        buggy.splitlines(True), buggy.replace(task.buggy, task.fixed).splitlines(True),
        f"a/{task.path}", f"b/{task.path}"))
    test_patch = "".join(difflib.unified_diff([], HIDDEN_TEST.splitlines(True), "/dev/null",
                                              "b/tests/test_hidden.py"))
    row = {"instance_id": "turngym__stats-0000", "repo": "turngym/stats",
           "base_commit": "0" * 40, "patch": patch, "test_patch": test_patch,
           "FAIL_TO_PASS": task.fail_to_pass,
           "PASS_TO_PASS": task.pass_to_pass + ["tests/test_hidden.py::test_hidden_mean"],
           "problem_statement": task.issue, "image": tag,
           "test_cmd": "python3 /opt/turngym/runner.py --root . --tests tests {tests}"}
    path = tmp_path_factory.mktemp("inst") / "instances.jsonl"
    path.write_text(json.dumps(row) + "\n")
    return str(path)


@pytest.mark.docker
@pytest.mark.slow
@pytest.mark.parametrize("attack", ["hidden test file", "tests folder"])
def test_swebench_hidden_patch_through_a_link(swebench_file, host, attack):
    from turngym.envs.swe.swebench import SWEBenchEnv

    target = host / "planted.py"
    command = {"hidden test file": f"ln -sf {target} tests/test_hidden.py",
               "tests folder": f"mv tests tests.real && ln -s {host} tests"}[attack]
    env = SWEBenchEnv(swebench_file, test_timeout=60, trust_test_process=True)
    try:
        env.reset(seed=0, options={"task_id": "turngym__stats-0000"})
        bash(env, command)
        obs, reward, term, _, _ = env.step(T.tool_call("submit"))
        assert term and reward == 0.0 and obs.startswith("Submitted."), obs
        assert not target.exists() and untouched(host)
        env.reset(seed=0, options={"task_id": "turngym__stats-0000"})
        finish(env)
    finally:
        env.close()
