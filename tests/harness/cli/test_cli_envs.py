"""The `turngym envs` commands, run as a user runs them: a subprocess of the console script."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from turngym import envs

TURNGYM = str(Path(sys.executable).parent / "turngym")


def run(*args: str, stdin: str | None = None) -> subprocess.CompletedProcess:
    env = {**os.environ, "COLUMNS": "200", "TERM": "dumb"}
    return subprocess.run([TURNGYM, *args], input=stdin, capture_output=True, text=True,
                          timeout=120, env=env)


def test_list_shows_builtins() -> None:
    out = run("envs", "list")
    assert out.returncode == 0
    assert "turngym/Sokoban-v0" in out.stdout and "turngym/Maze-v0" in out.stdout


def test_check_prints_table_and_passes() -> None:
    out = run("envs", "check", "turngym/Maze-v0")
    assert out.returncode == 0, out.stdout + out.stderr
    from turngym.envs.checker import CHECKS

    assert out.stdout.count("\tpass\t") == len(CHECKS)  # one passing row per check (a pipe:
    # plain tab-separated rows, see tests/harness/cli/test_cli_output.py)


def test_play_sokoban_to_a_win_by_typing_expert_moves() -> None:
    env = envs.make("turngym/Sokoban-v0")
    env.reset(seed=0, options={"task_id": "train-00007"})
    moves = []
    while (a := env.unwrapped.expert_action()) is not None:
        moves.append(a)
        env.step(a)
    out = run("envs", "play", "turngym/Sokoban-v0", "--task-id", "train-00007",
              stdin="\n".join(moves) + "\n")
    assert out.returncode == 0, out.stderr
    assert "WON" in out.stdout and f"after {len(moves)} turns" in out.stdout


def test_play_hint_and_quit() -> None:
    out = run("envs", "play", "turngym/Maze-v0", "--task-id", "train-00000", stdin=":hint\n:quit\n")
    assert out.returncode == 0 and "expert:" in out.stdout and "bye" in out.stdout


@pytest.mark.parametrize("args, message", [
    (("envs", "check", "turngym/Sokobn-v0"), "Did you mean 'turngym/Sokoban-v0'"),
    (("envs", "play", "turngym/Maze-v0", "--task-id", "nope"), "unknown task_id 'nope'"),
    (("envs", "play", "turngym/Maze-v0", "-k", "size=99"), "size must be in 2..12"),
    (("envs", "play", "turngym/Maze-v0", "-k", "colour=red"), "unknown kwarg(s) ['colour']"),
    (("envs", "play", "turngym/Maze-v0", "-k", "novalue"), "expected KEY=VALUE"),
])
def test_bad_input_is_one_clear_line_not_a_traceback(args: tuple, message: str) -> None:
    out = run(*args)
    assert out.returncode == 2
    assert message in " ".join(out.stderr.split()) or message in out.stderr
    assert "Traceback" not in out.stderr
