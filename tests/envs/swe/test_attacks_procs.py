"""Attacks on the sandbox's process, memory, disk and namespace limits, through the SWE env's
own ``bash`` tool, on docker, bwrap and ``local-unsafe`` (where it can hold: as root). Each
attack must fail, the host must see nothing of it afterwards (checked with the host's
``/proc``, the sandbox's cgroup and, on docker, ``docker top``), and the next episode must
still be won by the expert.
"""

from __future__ import annotations

import json
import os
import random
import shutil
import time
from pathlib import Path

import pytest

from turngym import envs
from turngym.envs.swe.sandbox import SANDBOX_UID, TMP_PREFIX, Limits

UNSAFE = "local-unsafe"


@pytest.fixture(params=["bwrap", pytest.param("docker", marks=[pytest.mark.docker,
                                                                pytest.mark.slow]), UNSAFE])
def backend(request) -> str:
    """Every backend; ``local-unsafe`` only as root (its guarantees need a uid and a cgroup
    of its own, and it promises nothing otherwise)."""
    if request.param == "docker":
        request.getfixturevalue("swe_image")
    elif request.param == "bwrap" and shutil.which("bwrap") is None:
        pytest.skip("bubblewrap is not installed (apt-get install bubblewrap)")
    elif request.param == UNSAFE and os.geteuid() != 0:
        pytest.skip("optional: local-unsafe kills leftovers only when the env runs as root")
    return request.param


def make_env(backend: str, limits: Limits | None = None, **kwargs):
    env = envs.make("turngym/SWE-v0", backend=backend, bash_timeout=5,
                    unsafe_local=backend == UNSAFE, **kwargs)
    if limits is not None:
        env.unwrapped.limits = limits  # read when the first sandbox starts
    env.reset(seed=0, options={"task_id": env.unwrapped.task_ids()[0]})
    return env


@pytest.fixture
def env(backend):
    e = make_env(backend)
    yield e
    e.close()


def bash(env, command: str, timeout: float | None = None) -> str:
    args = {"command": command} if timeout is None else {"command": command, "timeout": timeout}
    obs, reward, term, _, info = env.step(json.dumps({"name": "bash", "arguments": args}))
    assert reward == 0.0 and not term and info["action_valid"]
    return obs


def next_episode_is_won(env) -> None:
    """The same env, a new episode: a command works and the expert wins."""
    env.reset(seed=0, options={"task_id": env.unwrapped.task_ids()[1]})
    obs = bash(env, "echo alive")
    assert obs.startswith("[exit code 0]") and "alive" in obs
    env.step(env.unwrapped.expert_action())
    _, reward, term, _, info = env.step(env.unwrapped.expert_action())
    assert (reward, term, info["won"]) == (1.0, True, True)


def host_processes_with(token: str) -> list[int]:
    """Live (not zombie) host processes whose command line holds ``token``; every backend's
    processes are visible in the host's /proc (docker's too)."""
    found = []
    for pid in filter(str.isdigit, os.listdir("/proc")):
        try:
            cmd = Path(f"/proc/{pid}/cmdline").read_bytes()
            state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
        except OSError:
            continue
        if token.encode() in cmd and state != "Z":
            found.append(int(pid))
    return found


def sandbox_processes(env) -> list:
    """What the sandbox still runs, as its backend sees it: the cgroup's members (bwrap,
    local) or the container's processes of the sandbox user (docker)."""
    box = env.unwrapped._sandbox
    if box is None:
        return []
    if box.name == "docker":
        top = box.container.top()
        col = top["Titles"].index("UID")
        return [r for r in top["Processes"] if r[col] in (str(SANDBOX_UID), "nobody")]
    return box.cgroup.pids() if box.cgroup is not None else []


def assert_nothing_survives(env, token: str) -> None:
    deadline = time.monotonic() + 3
    while host_processes_with(token) and time.monotonic() < deadline:
        time.sleep(0.05)  # a killed process leaves /proc when it is reaped
    assert host_processes_with(token) == [], f"processes with {token} survived"
    assert sandbox_processes(env) == []


#: Each attack leaves a ``sleep {T}`` behind if it can; ``{T}`` is unique per run, so the
#: host can look for it without confusing other jobs' processes.
ATTACKS = {
    "setsid": "setsid sleep {T} >/dev/null 2>&1 & echo started",
    "background": "sleep {T} & echo started",
    "double_fork": "( (sleep {T} >/dev/null 2>&1 &) & ); echo started",
    "nohup": "nohup sleep {T} >/dev/null 2>&1 & echo started",
    "python_daemon": (
        "python3 -c \"import os,sys\nif os.fork(): sys.exit()\nos.setsid()\n"
        "if os.fork(): sys.exit()\nos.closerange(0, 256)\nos.execvp('sleep', ['sleep', '{T}'])\""
        "; echo started"),
    # The wrapper: bwrap's outer shell is $PPID; docker's wrapper sh is $PPID's parent.
    "kill_wrapper": ("setsid sleep {T} >/dev/null 2>&1 & "
                     "kill -9 $(cut -d' ' -f4 /proc/$PPID/stat) $PPID; echo started"),
    "kill_watchdog": ("pkill -9 -x cat 2>/dev/null; setsid sleep {T} >/dev/null 2>&1 & "
                      "echo started"),
    # A survivor that first kills every other process of the uid (wrapper, watchdog, shell).
    "kill_all_then_sleep": ("setsid sh -c 'kill -9 -1; exec sleep {T}' >/dev/null 2>&1 & "
                            "sleep 0.5; echo started"),
    "respawner": ("setsid sh -c 'while :; do sleep {T} & sleep 0.05; done' >/dev/null 2>&1 & "
                  "sleep 0.3; echo started"),
}


@pytest.mark.parametrize("attack", sorted(ATTACKS))
def test_nothing_outlives_its_command(env, attack):
    token = f"{random.randrange(10**6, 10**7)}.{attack.count('_') + 1}"
    bash(env, ATTACKS[attack].replace("{T}", token), timeout=8)
    assert_nothing_survives(env, token)
    obs = bash(env, "echo alive")
    assert obs.startswith("[exit code 0]") and "alive" in obs
    next_episode_is_won(env)


def test_nothing_outlives_close(backend):
    """A survivor started by the last command of an env is gone after ``close()`` too."""
    env = make_env(backend)
    token = f"{random.randrange(10**6, 10**7)}.9"
    try:
        bash(env, f"setsid sleep {token} >/dev/null 2>&1 & "
                  f"nohup sh -c 'sleep {token}' >/dev/null 2>&1 &")
    finally:
        env.close()
    assert host_processes_with(token) == []


@pytest.mark.slow
def test_memory_is_capped_for_the_whole_tree(backend):
    """4 x 700 MB under memory_mb=1024: each process is under its own address-space limit,
    but they cannot all stay resident (the sandbox's cgroup or container caps the sum)."""
    env = make_env(backend, memory_mb=1024)
    try:
        box = env.unwrapped._sandbox
        if box.name != "docker" and (box.cgroup is None or not box.cgroup.limits_memory):
            pytest.fail("no memory cgroup for this sandbox: the tree total is not capped")
        hold = "import time; x = b'1' * (700 << 20); time.sleep(4); print('HELD')"
        obs = bash(env, f"for i in 1 2 3 4; do python3 -c \"{hold}\" & done; wait", timeout=30)
        held = [line for line in obs.splitlines() if line.strip() == "HELD"]
        assert len(held) <= 1, obs
        obs = bash(env, "echo alive")
        assert "alive" in obs
        next_episode_is_won(env)
    finally:
        env.close()


@pytest.mark.parametrize("path", ["/tmp", "/dev/shm"])
def test_private_tmpfs_is_capped(backend, path):
    if backend == UNSAFE:
        pytest.skip("optional: local-unsafe has no private /tmp (it is the host's)")
    env = make_env(backend)
    try:
        # Files of 40 MiB each (under the 64 MiB file-size limit) until the tmpfs is full.
        obs = bash(env, f"for i in 1 2 3 4; do head -c 40M /dev/zero > {path}/fill$i || break; "
                        f"done; du -cm {path} | tail -1; rm -f {path}/fill*",
                   timeout=20)
        assert "No space left on device" in obs, obs
        assert int(obs.splitlines()[-1].split()[0]) <= 64
        next_episode_is_won(env)
    finally:
        env.close()


def test_workspace_size_quota(backend):
    env = make_env(backend, Limits(disk_mb=16, files=400))
    try:
        box = env.unwrapped._sandbox
        obs = bash(env, "head -c 40M /dev/zero > big; echo rc=$?", timeout=20)
        assert "quota" in obs and "16 MiB" in obs, obs
        if box.quota_mounted:
            assert "No space left on device" in obs and "rc=1" in obs
            assert os.statvfs(box.work).f_blocks * os.statvfs(box.work).f_frsize <= 18 << 20
        view = env.step(json.dumps({"name": "view", "arguments": {"path": "tests"}}))
        assert view[4]["action_valid"]  # the host side still reads the workspace
        obs = bash(env, "rm big; echo freed")
        assert "freed" in obs and "quota" not in obs
        next_episode_is_won(env)
    finally:
        env.close()


def test_workspace_file_count_quota(backend):
    env = make_env(backend, Limits(disk_mb=64, files=300))
    try:
        obs = bash(env, "mkdir many; for i in $(seq 1 600); do : > many/f$i || break; done; "
                        "ls many | wc -l", timeout=20)
        assert "quota" in obs and "300 files" in obs, obs
        if env.unwrapped._sandbox.quota_mounted:
            assert "No space left on device" in obs
            count = [line for line in obs.splitlines() if line.strip().isdigit()][-1]
            assert int(count) < 300
        assert "freed" in bash(env, "rm -rf many; echo freed")
        next_episode_is_won(env)
    finally:
        env.close()


def test_no_nested_user_namespace(backend):
    if backend == UNSAFE:
        pytest.skip("optional: local-unsafe runs on the host and cannot forbid namespaces")
    env = make_env(backend)
    try:
        obs = bash(env, "unshare -U true; echo rc=$?; unshare -Ur id -u; echo rc2=$?")
        assert "rc=0" not in obs and "rc2=0" not in obs, obs
    finally:
        env.close()


def test_no_host_path_or_owner_pid_inside(backend):
    if backend == UNSAFE:
        pytest.skip("optional: local-unsafe runs in the host folder itself")
    env = make_env(backend)
    try:
        box = env.unwrapped._sandbox
        obs = bash(env, "cat /proc/self/mountinfo /proc/self/cgroup; tr '\\0' ' ' "
                        "</proc/1/cmdline; echo; tr '\\0' '\\n' </proc/self/environ; "
                        "tr '\\0' '\\n' </proc/1/environ 2>/dev/null; env")
        assert "/workspace" in obs  # the mount table was read
        pid = os.getpid()
        for leak in (f"{TMP_PREFIX}{pid}", f"-{pid}-", f":{pid}"):
            assert leak not in obs, leak
        if box.quota_mounted:  # root: the workspace is its own tmpfs, bound from "/work"
            assert str(box.root) not in obs and TMP_PREFIX not in obs
    finally:
        env.close()
