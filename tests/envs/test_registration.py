from __future__ import annotations

import gymnasium as gym
import pytest

from turngym import envs
from turngym.envs.registration import register, registry
from turngym.errors import (
    ConfigError,
    DuplicateEnvError,
    MissingDependencyError,
    TurngymError,
    UnknownEnvError,
    UnknownTaskError,
)


def test_gymnasium_make_works() -> None:
    env = gym.make("turngym/Sokoban-v0")
    obs, info = env.reset(seed=0, options={"task_id": "train-00001"})
    assert isinstance(obs, str) and info["task_id"] == "train-00001"
    assert env.unwrapped.__class__.__name__ == "SokobanEnv"


@pytest.mark.parametrize("bad, suggestion", [
    ("turngym/Sokoban-v1", "turngym/Sokoban-v0"),
    ("turngym/sokoban-v0", "turngym/Sokoban-v0"),
    ("maze", "turngym/Maze-v0"),
])
def test_unknown_id_suggests(bad: str, suggestion: str) -> None:
    with pytest.raises(UnknownEnvError) as exc:
        envs.make(bad)
    assert suggestion in str(exc.value) and "Did you mean" in str(exc.value)
    assert isinstance(exc.value, KeyError) and isinstance(exc.value, TurngymError)


def test_duplicate_id_raises() -> None:
    with pytest.raises(DuplicateEnvError, match="already registered"):
        register("turngym/Sokoban-v0", "turngym.envs.sokoban:SokobanEnv")


def test_unversioned_id_raises() -> None:
    with pytest.raises(TurngymError, match="versioned"):
        register("acme/Thing", "turngym.envs.sokoban:SokobanEnv")


def test_bad_kwargs_name_the_key() -> None:
    with pytest.raises(ConfigError, match="nonsense"):
        envs.make("turngym/Maze-v0", nonsense=1)
    with pytest.raises(ConfigError, match="size must be in 2..12"):
        envs.make("turngym/Maze-v0", size=99)


def test_unknown_task_id() -> None:
    env = envs.make("turngym/Maze-v0")
    with pytest.raises(UnknownTaskError, match="unknown task_id 'nope'"):
        env.reset(options={"task_id": "nope"})


def test_missing_dependency_names_extra() -> None:
    register("acme/NeedsLib-v0", "turngym.envs.maze:MazeEnv", requires=("no_such_pkg_xyz",),
             extra="acme")
    try:
        assert "acme/NeedsLib-v0" not in envs.list_ids()
        assert "acme/NeedsLib-v0" in envs.list_ids(include_unavailable=True)
        with pytest.raises(MissingDependencyError, match=r"turngym\[acme\]"):
            envs.make("acme/NeedsLib-v0")
    finally:
        registry.pop("acme/NeedsLib-v0")


def test_callable_entry_point_and_max_turns() -> None:
    from turngym.envs.maze import MazeEnv

    register("acme/SmallMaze-v0", lambda **kw: MazeEnv(size=2, **kw), max_turns=3)
    try:
        env = envs.make("acme/SmallMaze-v0")
        env.reset(seed=0, options={"task_id": "train-00000"})
        results = [env.step("nonsense") for _ in range(3)]
        assert [r[3] for r in results] == [False, False, True]  # truncated at turn 3
        assert not any(r[2] for r in results)
        assert envs.make("acme/SmallMaze-v0", max_turns=1).max_turns == 1
    finally:
        registry.pop("acme/SmallMaze-v0")


def test_plugin_entry_points_are_loaded(monkeypatch: pytest.MonkeyPatch) -> None:
    import turngym.envs.registration as reg

    class FakeEntryPoint:  # stands for an installed third-party distribution
        name = "acme"

        def load(self):
            return lambda: register("acme/Plugin-v0", "turngym.envs.maze:MazeEnv")

    monkeypatch.setattr(reg, "_plugins_loaded", False)
    monkeypatch.setattr(reg, "entry_points", lambda group: [FakeEntryPoint()])
    try:
        assert "acme/Plugin-v0" in envs.list_ids()
        assert envs.make("acme/Plugin-v0").unwrapped.family == "maze"
    finally:
        registry.pop("acme/Plugin-v0", None)
