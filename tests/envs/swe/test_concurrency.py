"""Envs stepped concurrently in threads (as the rollout harness does) do not disturb each
other: the expert wins every episode when six envs submit at the same moment, and commands
that start processes in six envs at once all work.

``pids=16`` is about three times what one submit needs, but less than six submits need
together; it catches a process limit that is shared between sandboxes (``RLIMIT_NPROC``
counted per uid on the host side) instead of one per sandbox.
"""

from __future__ import annotations

import json
import os
import shutil
import threading
from concurrent.futures import ThreadPoolExecutor

import pytest

from turngym import envs
from turngym.envs.swe.tasks import load_tasks

N = 6


def _different_tasks() -> list[str]:
    tasks = load_tasks()
    return [t.task_id for t in tasks[:: len(tasks) // N][:N]]


def _expert_wins_concurrently(backend: str, task_ids: list[str], command: str | None = None,
                              **kwargs) -> None:
    """Each env in its own thread: reset, (all at once: ``command`` with the bash tool, which
    must work,) the gold edit, then all submit at once; every episode must be won."""
    made = [envs.make("turngym/SWE-v0", backend=backend, **kwargs) for _ in task_ids]
    barrier = threading.Barrier(len(made))

    def play(i: int) -> tuple[str, float, bool, str]:
        env = made[i]
        env.reset(seed=0, options={"task_id": task_ids[i]})
        if command is not None:
            barrier.wait(timeout=60)
            obs, _, _, _, _ = env.step(json.dumps({"name": "bash",
                                                   "arguments": {"command": command}}))
            assert obs.startswith("[exit code 0]") and "unavailable" not in obs, obs
        _, _, term, _, _ = env.step(env.unwrapped.expert_action())  # the gold edit
        assert not term
        barrier.wait(timeout=60)  # every env submits at the same moment
        obs, reward, term, _, info = env.step(env.unwrapped.expert_action())
        assert term
        return task_ids[i], reward, info["won"], obs

    try:
        with ThreadPoolExecutor(len(made)) as pool:
            results = list(pool.map(play, range(len(made))))
    finally:
        for env in made:
            env.close()
    lost = [(task_id, obs[:300]) for task_id, reward, won, obs in results
            if (reward, won) != (1.0, True)]
    assert lost == [], f"{len(lost)}/{len(results)} concurrent expert episodes lost"


@pytest.fixture
def bwrap():
    if shutil.which("bwrap") is None:
        pytest.skip("bubblewrap is not installed (apt-get install bubblewrap)")


@pytest.mark.parametrize("same_task", [False, True], ids=["different-tasks", "same-task"])
def test_expert_wins_concurrent_submits_bwrap(bwrap, same_task):
    ids = [load_tasks()[0].task_id] * N if same_task else _different_tasks()
    _expert_wins_concurrently("bwrap", ids, pids=16)


def test_expert_wins_concurrent_submits_bwrap_default_limits(bwrap):
    _expert_wins_concurrently("bwrap", _different_tasks())


@pytest.mark.skipif(os.getuid() != 0, reason="local sandboxes have a process limit only as root")
def test_expert_wins_concurrent_submits_local():
    # A local submit does not fork; commands that start 3 processes at once do, and six of
    # them cannot share one limit of 6.
    _expert_wins_concurrently("local-unsafe", _different_tasks(), pids=6, unsafe_local=True,
                              command="for i in 1 2 3; do sleep 1 & done; wait")


@pytest.mark.docker
def test_expert_wins_concurrent_submits_docker(swe_image):
    _expert_wins_concurrently("docker", _different_tasks(), pids=16, image=swe_image)
