"""Containers, processes and folders are cleaned up, also when the owning run is killed."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pytest

from turngym import envs
from turngym.envs.swe.sandbox import OWNER_FILE, TMP_PREFIX, _owner_of, sweep_stale

CHILD = r"""
import json, sys, envs
env = envs.make("turngym/SWE-v0", backend=sys.argv[1])
env.reset(seed=0, options={"task_id": "stats-0000"})
box = env.unwrapped._sandbox
info = {"root": str(box.root), "container": getattr(getattr(box, "container", None), "id", None)}
print(json.dumps(info), flush=True)
env.step(json.dumps({"name": "bash", "arguments": {"command": "sleep 300", "timeout": 60}}))
"""


def _spawn_and_kill(backend: str) -> dict:
    proc = subprocess.Popen([sys.executable, "-c", CHILD, backend], stdout=subprocess.PIPE,
                            text=True)
    info = json.loads(proc.stdout.readline())
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline and backend == "bwrap" and not any(
            b"sleep\x00300" in c for c in _tree(proc.pid).values()):
        time.sleep(0.05)
    info["sandbox"] = _tree(proc.pid)  # bwrap and everything in it, before the kill
    os.kill(proc.pid, signal.SIGKILL)  # no atexit, no finalizers
    proc.wait()
    info["pid"] = proc.pid
    return info


def _tree(root: int) -> dict[tuple[int, str], bytes]:
    """``{(pid, start time): cmdline}`` of the descendants of ``root``. (bwrap reads its
    options from a file descriptor, so its command line no longer names the folder.)"""
    parent, key, cmd = {}, {}, {}
    for pid in filter(str.isdigit, os.listdir("/proc")):
        try:
            stat = Path(f"/proc/{pid}/stat").read_text()
            cmd[int(pid)] = Path(f"/proc/{pid}/cmdline").read_bytes()
        except OSError:
            continue
        fields = stat.rsplit(")", 1)[1].split()
        parent[int(pid)], key[int(pid)] = int(fields[1]), fields[19]
    found, grew = {root}, True
    while grew:
        kids = {p for p, pp in parent.items() if pp in found} - found
        found |= kids
        grew = bool(kids)
    return {(p, key[p]): cmd[p] for p in found - {root} if p in key}


def _alive(tree: dict[tuple[int, str], bytes]) -> list[int]:
    """The processes of ``tree`` that still run (same pid and start time)."""
    out = []
    for pid, start in tree:
        try:
            stat = Path(f"/proc/{pid}/stat").read_text()
        except OSError:
            continue
        if stat.rsplit(")", 1)[1].split()[19] == start and " Z " not in stat:
            out.append(pid)
    return out


@pytest.mark.slow
def test_bwrap_killed_run_leaves_nothing():
    info = _spawn_and_kill("bwrap")
    assert any(b"sleep\x00300" in c for c in info["sandbox"].values())
    deadline = time.monotonic() + 10
    while _alive(info["sandbox"]) and time.monotonic() < deadline:
        time.sleep(0.05)  # the kernel delivers PDEATHSIG asynchronously
    assert _alive(info["sandbox"]) == []
    assert Path(info["root"]).exists()  # a SIGKILL runs no cleanup ...
    sweep_stale()  # ... the next sandbox start removes folders of dead owners
    assert not Path(info["root"]).exists()


def test_close_removes_folder_and_is_idempotent():
    env = envs.make("turngym/SWE-v0", backend="bwrap")
    env.reset(seed=0, options={"task_id": "stats-0000"})
    root = env.unwrapped._sandbox.root
    # The owner pid is in a file, not in the name (a bind mount's source shows the path).
    assert root.exists() and root.name.startswith(TMP_PREFIX)
    assert str(os.getpid()) not in root.name[len(TMP_PREFIX):]
    assert (root / OWNER_FILE).read_text() == str(os.getpid())
    env.close()
    env.close()
    assert not root.exists()
    assert not [p for p in Path(tempfile.gettempdir()).glob(f"{TMP_PREFIX}*")
                if p.is_dir() and _owner_of(p) == os.getpid()]


@pytest.mark.docker
@pytest.mark.slow
def test_docker_killed_run_container_is_swept(swe_image):
    import docker

    from turngym.envs.swe.docker_sandbox import sweep_containers

    client = docker.from_env()
    info = _spawn_and_kill("docker")
    assert client.containers.get(info["container"]).status == "running"
    assert sweep_containers(client) >= 1
    with pytest.raises(docker.errors.NotFound):
        client.containers.get(info["container"]).reload()
    sweep_stale()
    assert not Path(info["root"]).exists()


@pytest.mark.docker
@pytest.mark.slow
def test_docker_container_settings_and_expert(swe_image):
    env = envs.make("turngym/SWE-v0", backend="docker", memory_mb=512, pids=64)
    _, info = env.reset(seed=0, options={"task_id": "graphs-0003"})
    assert info["backend"] == "docker"
    box = env.unwrapped._sandbox
    box.container.reload()
    host = box.container.attrs["HostConfig"]
    assert host["NetworkMode"] == "none" and host["ReadonlyRootfs"] is True
    assert host["Memory"] == 512 << 20 and host["PidsLimit"] == 64
    assert host["NanoCpus"] == 10**9 and host["CapDrop"] == ["ALL"]
    assert host["Init"] is True and "no-new-privileges" in host["SecurityOpt"]
    obs, *_ = env.step(json.dumps({"name": "bash", "arguments": {"command": "touch /x; id -u"}}))
    assert "Read-only file system" in obs and "65534" in obs
    env.step(env.unwrapped.expert_action())
    _, reward, term, _, info = env.step(env.unwrapped.expert_action())
    assert (reward, term, info["won"], info["pass_fraction"]) == (1.0, True, True, 1.0)
    container = box.container
    env.close()
    import docker

    with pytest.raises(docker.errors.NotFound):
        container.reload()
