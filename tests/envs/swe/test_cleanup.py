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

import envs
from envs.swe.sandbox import TMP_PREFIX, sweep_stale

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
    while time.monotonic() < deadline and len(_sleepers(info["root"])) < 2 and backend == "bwrap":
        time.sleep(0.05)
    os.kill(proc.pid, signal.SIGKILL)  # no atexit, no finalizers
    proc.wait()
    info["pid"] = proc.pid
    return info


def _sleepers(marker: str) -> list[int]:
    """Host pids of the sandbox processes (bwrap and its descendants) whose command line
    names ``marker`` (the sandbox folder), so other jobs' processes are not counted."""
    parent, cmd = {}, {}
    for pid in filter(str.isdigit, os.listdir("/proc")):
        try:
            stat = Path(f"/proc/{pid}/stat").read_text()
            cmd[int(pid)] = Path(f"/proc/{pid}/cmdline").read_bytes()
        except OSError:
            continue
        parent[int(pid)] = int(stat.rsplit(")", 1)[1].split()[1])
    found = {p for p, c in cmd.items() if b"bwrap" in c and marker.encode() in c}
    grew = True
    while grew:
        kids = {p for p, pp in parent.items() if pp in found} - found
        found |= kids
        grew = bool(kids)
    return sorted(found)


@pytest.mark.slow
def test_bwrap_killed_run_leaves_nothing():
    info = _spawn_and_kill("bwrap")
    deadline = time.monotonic() + 10
    while _sleepers(info["root"]) and time.monotonic() < deadline:
        time.sleep(0.05)  # the kernel delivers PDEATHSIG asynchronously
    assert _sleepers(info["root"]) == []
    assert Path(info["root"]).exists()  # a SIGKILL runs no cleanup ...
    sweep_stale()  # ... the next sandbox start removes folders of dead owners
    assert not Path(info["root"]).exists()


def test_close_removes_folder_and_is_idempotent():
    env = envs.make("turngym/SWE-v0", backend="bwrap")
    env.reset(seed=0, options={"task_id": "stats-0000"})
    root = env.unwrapped._sandbox.root
    assert root.exists() and root.name.startswith(f"{TMP_PREFIX}{os.getpid()}-")
    env.close()
    env.close()
    assert not root.exists()
    assert not list(Path(tempfile.gettempdir()).glob(f"{TMP_PREFIX}{os.getpid()}-*"))


@pytest.mark.docker
@pytest.mark.slow
def test_docker_killed_run_container_is_swept(swe_image):
    import docker

    from envs.swe.docker_sandbox import sweep_containers

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
