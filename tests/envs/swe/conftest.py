"""Fixtures for the SWE tests: a Docker engine (started here when none answers) and the
locally built image. Docker tests skip, with the reason, only when dockerd cannot start."""

from __future__ import annotations

import shutil
import subprocess
import tempfile
import time
from pathlib import Path

import pytest


def _docker_answers() -> bool:
    from turngym.envs.swe.backends import docker_available

    return docker_available(timeout=3.0)


@pytest.fixture(scope="session")
def docker_engine():
    """A running Docker engine; starts ``dockerd`` in the background when none answers and
    stops it at the end of the session."""
    pytest.importorskip("docker", reason="the docker SDK is not installed (turngym[swe])")
    if _docker_answers():
        yield None
        return
    if not shutil.which("dockerd"):
        pytest.skip("no Docker engine answers and dockerd is not installed "
                    "(apt-get install docker.io)")
    log = Path(tempfile.gettempdir()) / "turngym-swe-dockerd.log"
    proc = subprocess.Popen(["dockerd"], stdout=log.open("w"), stderr=subprocess.STDOUT)
    deadline = time.monotonic() + 90
    while time.monotonic() < deadline and proc.poll() is None:
        if _docker_answers():
            break
        time.sleep(0.5)  # polling readiness, not waiting blindly
    if not _docker_answers():
        proc.terminate()
        pytest.skip(f"dockerd could not be started; see {log}: {log.read_text()[-500:]}")
    yield proc
    proc.terminate()
    try:
        proc.wait(timeout=30)
    except subprocess.TimeoutExpired:
        proc.kill()


@pytest.fixture(scope="session")
def swe_image(docker_engine) -> str:
    """The SWE image, built with debootstrap once (skipped when the tag exists)."""
    from turngym.envs.swe.docker_sandbox import DEFAULT_IMAGE, build_image

    return build_image(DEFAULT_IMAGE)


@pytest.fixture(params=["bwrap", pytest.param("docker", marks=[pytest.mark.docker,
                                                                pytest.mark.slow])])
def isolated_backend(request) -> str:
    """Each isolated backend in turn (docker gets the engine and image first)."""
    if request.param == "docker":
        request.getfixturevalue("swe_image")
    elif not shutil.which("bwrap"):
        pytest.skip("bubblewrap is not installed (apt-get install bubblewrap)")
    return request.param


@pytest.fixture(scope="session")
def testbed_image(swe_image, tmp_path_factory):
    """An image like a SWE-bench harness image: the buggy ``stats`` project at /testbed;
    returns (task, tag)."""
    import docker

    from turngym.envs.swe.tasks import buggy_files, load_tasks, write_files

    task = next(t for t in load_tasks() if t.task_id == "stats-0000")
    ctx = tmp_path_factory.mktemp("ctx")
    write_files(buggy_files(task), ctx / "testbed")
    (ctx / "Dockerfile").write_text(f"FROM {swe_image}\nCOPY testbed /testbed\n")
    tag = "turngym-swe-testbed:stats-0000"
    docker.from_env().images.build(path=str(ctx), tag=tag, rm=True)
    return task, tag
