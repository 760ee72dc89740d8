"""Attacks from inside the sandbox, on bwrap and docker: each is contained, the host is
unchanged, and the episode goes on (the next command works) and ends cleanly."""

from __future__ import annotations

import json
import os
import socket
import threading
import time
import uuid
from pathlib import Path

import pytest

from turngym import envs


@pytest.fixture
def env(isolated_backend):
    e = envs.make("turngym/SWE-v0", backend=isolated_backend, bash_timeout=5)
    e.reset(seed=0, options={"task_id": e.unwrapped.task_ids()[0]})
    yield e
    e.close()


def bash(env, command: str, timeout: float | None = None) -> tuple[str, dict]:
    args = {"command": command} if timeout is None else {"command": command, "timeout": timeout}
    obs, reward, term, trunc, info = env.step(json.dumps({"name": "bash", "arguments": args}))
    assert reward == 0.0 and not term
    return obs, info


def still_works(env) -> None:
    obs, info = bash(env, "echo alive && ls")
    assert obs.startswith("[exit code 0]") and "alive" in obs and "tests" in obs
    assert info["action_valid"] is True


def finish(env) -> None:
    obs, reward, term, trunc, info = env.step(env.unwrapped.expert_action())
    obs, reward, term, trunc, info = env.step(env.unwrapped.expert_action())
    assert term and reward == 1.0 and info["won"]


def test_write_outside_workspace(env, tmp_path):
    marker = tmp_path / f"escape-{uuid.uuid4().hex}"
    cmd = (f"echo pwned > {marker}; echo pwned > /etc/turngym-pwned; "
           "echo pwned > /usr/turngym-pwned; echo pwned > /turngym-pwned; echo done")
    obs, _ = bash(env, cmd)
    assert "done" in obs
    for path in (marker, Path("/etc/turngym-pwned"), Path("/usr/turngym-pwned"),
                 Path("/turngym-pwned")):
        assert not path.exists(), f"the sandbox wrote {path} on the host"
    still_works(env)
    finish(env)


def test_read_host_secret(env):
    secret = Path.home() / f".turngym-secret-{uuid.uuid4().hex}"
    value = uuid.uuid4().hex
    secret.write_text(value)
    try:
        obs, _ = bash(env, f"cat {secret}; cat /root/{secret.name}; ls -a {Path.home()}; "
                           f"grep -rs {value} /etc /tmp /opt /home /workspace | head -1; "
                           "echo done")
        assert value not in obs
        assert "done" in obs
    finally:
        secret.unlink()
    still_works(env)


def test_network_to_host_loopback(env):
    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    server.listen(1)
    server.settimeout(0.2)
    port = server.getsockname()[1]
    hits, stop = [], threading.Event()

    def accept():
        while not stop.is_set():
            try:
                conn, _ = server.accept()
                hits.append(conn)
                conn.close()
            except OSError:
                continue

    thread = threading.Thread(target=accept)
    thread.start()
    code = (f"import socket\ntry:\n socket.create_connection(('127.0.0.1', {port}), timeout=2)\n"
            " print('CONNECTED')\nexcept OSError as e:\n print('BLOCKED', e)")
    obs, _ = bash(env, f"python3 -c \"{code}\"")
    stop.set()
    thread.join()
    server.close()
    assert "BLOCKED" in obs and "CONNECTED" not in obs
    assert hits == []
    still_works(env)


def test_fork_bomb(env):
    before = len(os.listdir("/proc"))
    # The bomb runs for 3 s against the process limit, then the command ends and every
    # process it started is killed.
    obs, info = bash(env, ":(){ :|:& };:; sleep 3", timeout=8)
    assert "Resource temporarily unavailable" in obs or obs.startswith("[timed out after 8s")
    deadline = time.monotonic() + 15
    while len(os.listdir("/proc")) >= before + 50 and time.monotonic() < deadline:
        time.sleep(0.1)  # killed processes take a moment to be reaped
    assert len(os.listdir("/proc")) < before + 50, "fork bomb processes survived on the host"
    still_works(env)
    finish(env)


def test_memory_bomb(env):
    obs, _ = bash(env, "python3 -c \"x = bytearray(8 * 1024**3); print('ALLOCATED')\"")
    assert "ALLOCATED" not in obs
    assert "MemoryError" in obs or "exit code 137" in obs or "exit code -9" in obs
    still_works(env)


def test_infinite_loop(env):
    obs, _ = bash(env, "while true; do :; done", timeout=2)
    assert obs.startswith("[timed out after 2s")
    still_works(env)


def test_kill_parent(env):
    obs, _ = bash(env, "kill -9 $PPID; kill -9 1; kill -9 -1; echo survived")
    assert os.getpid() > 0  # this process is alive
    still_works(env)
    finish(env)
