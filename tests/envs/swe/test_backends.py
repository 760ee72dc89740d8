"""Backend choice, the contract checker on bwrap, the CLI and the benchmark's quick path."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from turngym.envs.checker import check_env
from turngym.envs.swe import backends as B
from turngym.envs.swe.sandbox import BACKENDS, Limits
from turngym.errors import ConfigError

TURNGYM = str(Path(sys.executable).parent / "turngym")


@pytest.mark.parametrize("docker, bwrap, expected", [
    (True, "/usr/bin/bwrap", "docker"), (True, None, "docker"),
    (False, "/usr/bin/bwrap", "bwrap"), (False, None, None),
])
def test_default_backend_order(monkeypatch, docker, bwrap, expected):
    # A fake answer for "is there an engine / a binary"; the real probes are exercised by
    # test_real_probe_matches_machine below and by the docker tests.
    monkeypatch.setattr(B, "docker_available", lambda timeout=3.0: docker)
    monkeypatch.setattr(B.shutil, "which", lambda name: bwrap if name == "bwrap" else None)
    if expected is None:  # never a silent fall back to the non-isolated backend
        with pytest.raises(ConfigError,
                           match="never falls back to the non-isolated 'local-unsafe'"):
            B.default_backend()
    else:
        assert B.default_backend() == expected


def test_real_probe_matches_machine():
    import shutil

    name = B.default_backend()
    assert name in BACKENDS
    if shutil.which("bwrap") and not B.docker_available():
        assert name == "bwrap"


def test_unknown_backend_names_the_key():
    with pytest.raises(ConfigError, match="backend 'podman'"):
        B.make_sandbox("podman")


@pytest.mark.slow
@pytest.mark.skipif(__import__("shutil").which("bwrap") is None, reason="no bubblewrap")
def test_checker_passes_on_bwrap():
    report = check_env("turngym/SWE-v0", backend="bwrap")
    assert report.passed, [(r.name, r.message) for r in report.failures()]


def _run(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([TURNGYM, "swe", *args], capture_output=True, text=True, timeout=300,
                          env={**os.environ, "COLUMNS": "200"})


def test_cli_tasks_and_backend():
    out = _run("tasks")
    assert out.returncode == 0, out.stderr
    assert "360 tasks" in out.stdout and "removed_statement" in out.stdout
    out = _run("backend")
    assert out.returncode == 0 and "auto backend:" in out.stdout


@pytest.mark.skipif(__import__("shutil").which("bwrap") is None, reason="no bubblewrap")
def test_cli_expert_on_bwrap():
    out = _run("expert", "--backend", "bwrap", "--split", "test", "--limit", "3")
    assert out.returncode == 0, out.stdout + out.stderr
    assert "expert success: 3/3 = 100.0% (backend bwrap)" in out.stdout


def test_cli_bad_tasks_file_fails_cleanly(tmp_path):
    out = _run("tasks", "--tasks-file", str(tmp_path / "missing.jsonl"))
    assert out.returncode == 2 and "tasks_file" in out.stderr


@pytest.mark.skipif(__import__("shutil").which("bwrap") is None, reason="no bubblewrap")
def test_benchmark_quick_path():
    sys.path.insert(0, str(Path(__file__).resolve().parents[3]))
    from turngym.benchmarks import swe_sandbox

    res = swe_sandbox.main(["--backends", "bwrap", "--reps", "2", "--expert-limit", "8",
                            "--docker-expert-limit", "0", "--no-write"])
    assert set(res["backends"]["bwrap"]) == {"start_cold", "start_warm_pool", "test_round_trip",
                                             "reset_and_test_cold", "reset_and_test_warm_pool"}
    assert all(r["median_ms"] > 0 for r in res["backends"]["bwrap"].values())
    assert res["expert"]["bwrap"]["success"] == 1.0 and res["expert"]["bwrap"]["tasks"] == 8


@pytest.mark.parametrize("name", ["local", "local-unsafe"])
def test_unsafe_backend_is_refused_unless_allowed(name):
    with pytest.raises(ConfigError, match="allow_unsafe"):
        B.make_sandbox(name)
    box = B.make_sandbox(name, allow_unsafe=True)
    try:
        assert box.name == "local-unsafe" and box.isolated is False
        assert box.exec("echo ok").output == "ok\n"
    finally:
        box.close()


@pytest.mark.parametrize("field", ["memory_mb", "pids", "disk_mb", "files", "tmp_mb", "cpus"])
@pytest.mark.parametrize("value", [0, -1, True, "8"])
def test_limits_are_validated(field, value):
    with pytest.raises(ConfigError, match=f"Limits.{field}"):
        Limits(**{field: value})
