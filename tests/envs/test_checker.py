"""The checker must catch broken envs, not only pass good ones."""

from __future__ import annotations

import itertools
import json

import pytest

from turngym.envs.adversarial import generic_attacks, tool_call_attacks
from turngym.envs.checker import CHECKS, check_env
from turngym.envs.core import MAX_ACTION_CHARS
from turngym.envs.maze import MazeEnv
from turngym.envs.registration import register, registry
from turngym.errors import EnvError


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


class PaysAfterEndMaze(MazeEnv):
    """Docstring mentions state_key action_valid won task_id admissible_actions distance."""

    def step(self, action: str):  # bypasses the base class's episode-end guard
        self._terminated = False
        return super().step(action)


class SurrogateRaisingMaze(MazeEnv):
    """Docstring mentions state_key action_valid won task_id admissible_actions distance."""

    def _step(self, action: str):
        if action.startswith("{"):  # decodes JSON escapes, then trips on "\ud800"
            try:
                call = json.loads(action)
            except (ValueError, RecursionError):
                call = None
            if isinstance(call, dict):
                str(call.get("name")).encode("utf-8")
        return super()._step(action)


class DeepJsonMaze(MazeEnv):
    """Docstring mentions state_key action_valid won task_id admissible_actions distance."""

    def _step(self, action: str):
        # a recursive parser: json.loads raises RecursionError only below the interpreter's
        # recursion limit, which other tests and libraries may raise (order-dependent), so
        # the depth limit of this parser is its own
        if action.startswith(("[", "{")):
            depth = max(itertools.accumulate(
                1 if c in "[{" else -1 if c in "]}" else 0 for c in action))
            if depth > 500:
                raise RecursionError("maximum recursion depth exceeded while decoding JSON")
            try:
                json.loads(action)
            except ValueError:
                pass
        return super()._step(action)


class NulMutatingMaze(MazeEnv):
    """Docstring mentions state_key action_valid won task_id admissible_actions distance."""

    def _step(self, action: str):
        if "\x00" in action:  # an invalid step that moves the agent anyway
            self.pos = (self.pos[0], self.pos[1] + 1)
            return "Invalid action.", 0.0, False, False, False
        return super()._step(action)


class HugeIntMaze(MazeEnv):
    """Docstring mentions state_key action_valid won task_id admissible_actions distance."""

    def _step(self, action: str):
        if action.startswith("{"):  # float() of a 400-digit int raises OverflowError
            try:
                call = json.loads(action)
            except ValueError:
                call = None
            if isinstance(call, dict) and isinstance(call.get("arguments"), dict):
                for value in call["arguments"].values():
                    if isinstance(value, int):
                        float(value)
        return super()._step(action)


class MegabyteMaze(MazeEnv):
    """Docstring mentions state_key action_valid won task_id admissible_actions distance."""

    def step(self, action: str):  # bypasses the base class's length check, then chokes
        if len(action) > 500_000:
            raise MemoryError(f"{len(action)} characters")
        return super().step(action)


class LenientOptionsMaze(MazeEnv):
    """Docstring mentions state_key action_valid won task_id admissible_actions distance."""

    def reset(self, *, seed=None, options=None):  # a misspelt key starts a random task
        task = options.get("task_id") if isinstance(options, dict) else None
        return super().reset(seed=seed, options={"task_id": task} if task else None)


class LatePickleCrashMaze(MazeEnv):
    """Docstring mentions state_key action_valid won task_id admissible_actions distance."""

    def __getstate__(self):  # pickles, but the unpickled env crashes on its next step
        state = self.__dict__.copy()
        state["walls"] = ()
        return state


class CleanPickleRefusalMaze(MazeEnv):
    """Docstring mentions state_key action_valid won task_id admissible_actions distance."""

    def __getstate__(self):
        if self._ready:
            raise EnvError("CleanPickleRefusalMaze cannot be pickled mid-episode: test")
        return self.__dict__.copy()


class PickleLosesKeyMaze(MazeEnv):
    """Docstring mentions state_key action_valid won task_id admissible_actions distance."""

    def __setstate__(self, state):  # the copy reports a placeholder key until it steps
        self.__dict__.update(state)
        self._unloaded = True

    def state_key(self) -> str:
        return "unloaded" if getattr(self, "_unloaded", False) else super().state_key()

    def _step(self, action: str):
        self._unloaded = False
        return super()._step(action)


class InexactMaze(ForgetfulMaze):
    """Docstring mentions state_key action_valid won task_id admissible_actions distance."""

    snapshot_exact = False


def _report(cls: type):
    env_id = f"test/{cls.__name__}-v0"
    register(env_id, cls)
    try:
        return check_env(env_id)
    finally:
        registry.pop(env_id)


@pytest.mark.parametrize("cls, failing", [
    (NondeterministicMaze, "reset determinism"),
    (RaisingMaze, "bad actions"),
    (ForgetfulMaze, "snapshot/restore"),
    (UndocumentedKeyMaze, "types and info keys"),
    (PaysAfterEndMaze, "episode end"),
    (SurrogateRaisingMaze, "adversarial actions"),
    (DeepJsonMaze, "adversarial actions"),
    (NulMutatingMaze, "adversarial actions"),
    (HugeIntMaze, "adversarial actions"),
    (MegabyteMaze, "adversarial actions"),
    (LenientOptionsMaze, "reset options"),
    (LatePickleCrashMaze, "pickle mid-episode"),
    (PickleLosesKeyMaze, "close and pickle"),
    (PickleLosesKeyMaze, "pickle mid-episode"),
])
def test_checker_catches(cls: type, failing: str) -> None:
    report = _report(cls)
    assert not report.passed
    assert failing in {r.name for r in report.failures()}


def test_checker_passes_the_plain_maze_with_every_check() -> None:
    report = _report(MazeEnv)
    assert report.passed, [(r.name, r.message) for r in report.failures()]
    assert [r.name for r in report.results] == list(CHECKS)


def test_declared_inexact_snapshot_is_reported_not_failed() -> None:
    report = _report(InexactMaze)
    snap = next(r for r in report.results if r.name == "snapshot/restore")
    assert snap.passed and "declared inexact" in snap.message


def test_pickle_refusal_with_env_error_passes() -> None:
    report = _report(CleanPickleRefusalMaze)
    mid = next(r for r in report.results if r.name == "pickle mid-episode")
    assert mid.passed and "refused" in mid.message


def test_tool_call_attacks_cover_every_tool_argument() -> None:
    from turngym.envs.search import SearchEnv

    env = SearchEnv()
    env.reset(seed=0, options={"task_id": env.task_ids()[0]})
    attacks = tool_call_attacks(env)
    for needle in ("NaN", "Infinity", "1e999", "\\ud800", "\ud800", "\\u0000", "[[[[",
                   ": " + "9" * 400 + "}", ": -" + "9" * 400 + "}"):
        assert any(needle in a for a in attacks), needle
    huge_k = [json.loads(a)["arguments"]["k"] for a in attacks
              if '"k": ' + "9" * 400 in a or '"k": -' + "9" * 400 in a]
    assert huge_k == [10**400 - 1, -(10**400 - 1)]
    assert any(len(a) == MAX_ACTION_CHARS for a in attacks)
    assert all(len(a) <= MAX_ACTION_CHARS for a in attacks)
    assert {json.loads(a)["name"] for a in attacks if "NaN" in a} == {"search", "answer"}
    deep_strings = [json.loads(a) for a in attacks  # OpenAI's form: arguments as a string
                    if '"arguments": "[[[[' in a and a.endswith(']]]"}')]
    assert {c["name"] for c in deep_strings} == {"search", "answer"}
    assert any('{"a":' * 600 in a for a in attacks)


def test_generic_attacks_include_a_megabyte_and_huge_integers() -> None:
    actions = [a for a, must_be_invalid in generic_attacks() if must_be_invalid]
    assert sorted(len(a) for a in actions)[-2:] == [1 << 20, (1 << 20) + 37]
    huge = json.loads(next(a for a in actions if "9" * 400 in a))
    assert huge["arguments"] == {"n": 10**400 - 1, "m": -(10**400 - 1)}


def test_adversarial_check_runs_the_megabyte_and_huge_integer_inputs_through_step() -> None:
    seen: list[str] = []

    class RecordingMaze(MazeEnv):
        """Docstring mentions state_key action_valid won task_id admissible_actions distance."""

        def step(self, action: str):
            seen.append(action)
            return super().step(action)

    def make_env(**_):
        return RecordingMaze()

    assert CHECKS["adversarial actions"](make_env).endswith("accepted as well-formed")
    assert "x" * (1 << 20) in seen
    # the generic tool call, and the one command the maze admits there with the number
    assert [a[:40] for a in seen if "9" * 400 in a] == [
        '{"name": "x", "arguments": {"n": 9999999', "down " + "9" * 35]
