"""The checker must catch broken envs, not only pass good ones."""

from __future__ import annotations

import pytest

from envs.checker import check_env
from envs.maze import MazeEnv
from envs.registration import register, registry


class NondeterministicMaze(MazeEnv):
    """Docstring mentions state_key action_valid won task_id admissible_actions distance."""

    def _reset(self, task_id: str) -> str:
        return super()._reset(task_id) + f"\nnoise {self.np_random.random() if False else id(self)}"


class RaisingMaze(MazeEnv):
    """Docstring mentions state_key action_valid won task_id admissible_actions distance."""

    def _step(self, action: str):
        if not action.strip():
            raise RuntimeError("boom")
        return super()._step(action)


class ForgetfulMaze(MazeEnv):
    """Docstring mentions state_key action_valid won task_id admissible_actions distance."""

    def _set_state(self, state) -> None:  # restores only the walls, not the position
        self.walls = state[0]


class UndocumentedKeyMaze(MazeEnv):
    """A docstring that lists no info keys."""


@pytest.mark.parametrize("cls, failing", [
    (NondeterministicMaze, "reset determinism"),
    (RaisingMaze, "bad actions"),
    (ForgetfulMaze, "snapshot/restore"),
    (UndocumentedKeyMaze, "types and info keys"),
])
def test_checker_catches(cls: type, failing: str) -> None:
    env_id = f"test/{cls.__name__}-v0"
    register(env_id, cls)
    try:
        report = check_env(env_id)
    finally:
        registry.pop(env_id)
    assert not report.passed
    assert failing in {r.name for r in report.failures()}
