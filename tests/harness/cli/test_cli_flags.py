"""One spelling per concept: ``turngym rollout`` takes ``turngym eval``'s flags
(``--model expert|random``, ``--limit``, ``--samples``); its old flags (``--expert``,
``--random``, ``--tasks``, ``--group``) still work, hidden, with a one-line note each."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from typer.testing import CliRunner

from turngym.harness.cli.main import main
from turngym.harness.rollout.trajectory import read_jsonl


@pytest.fixture(scope="module")
def app():
    from turngym.harness.cli.main import _register_commands, app

    if not app.registered_commands:
        _register_commands()
    return app


def rollout(app, tmp_path: Path, *flags: str):
    out = tmp_path / "r.jsonl"
    out.unlink(missing_ok=True)
    res = CliRunner().invoke(app, ["rollout", "--env", "turngym/Maze-v0", "--split", "test",
                                   "--seed", "4", "--out", str(out), "--no-progress", *flags])
    assert res.exit_code == 0, res.output
    return res, list(read_jsonl(out))


NOTE = "note: {} is deprecated, use {}"


@pytest.mark.parametrize(("new", "old", "notes"), [
    (["--model", "expert"], ["--expert"], [NOTE.format("--expert", "--model expert")]),
    (["--model", "random"], ["--random"], [NOTE.format("--random", "--model random")]),
    (["--limit", "3"], ["--tasks", "3"], [NOTE.format("--tasks", "--limit")]),
    (["--samples", "2"], ["--group", "2"], [NOTE.format("--group", "--samples")]),
    (["--model", "random", "--limit", "2", "--samples", "3"],
     ["--random", "--tasks", "2", "--group", "3"],
     [NOTE.format("--random", "--model random"), NOTE.format("--tasks", "--limit"),
      NOTE.format("--group", "--samples")]),
], ids=["expert", "random", "tasks", "group", "all"])
def test_old_flag_does_what_the_new_one_does_with_a_note(app, tmp_path, new, old,
                                                          notes) -> None:
    res_new, trajs_new = rollout(app, tmp_path, *new)
    res_old, trajs_old = rollout(app, tmp_path, *old)
    assert res_new.stderr == ""
    assert res_old.stderr.splitlines() == notes
    assert [(t.task_id, t.seed, [x.action for x in t.turns]) for t in trajs_new] == \
        [(t.task_id, t.seed, [x.action for x in t.turns]) for t in trajs_old]


def test_new_flags_set_tasks_samples_and_policy(app, tmp_path) -> None:
    _, trajs = rollout(app, tmp_path, "--model", "random", "--limit", "2", "--samples", "3")
    assert [t.seed for t in trajs] == [4, 4, 4, 5, 5, 5]
    assert len({t.task_id for t in trajs}) == 2
    assert not any(t.won for t in trajs)  # a random walk does not solve a test maze in 40
    _, trajs = rollout(app, tmp_path)  # defaults: the expert, 4 tasks, 1 sample
    assert [t.seed for t in trajs] == [4, 5, 6, 7] and all(t.won for t in trajs)


def test_old_flags_are_hidden_from_help(app) -> None:
    text = CliRunner().invoke(app, ["rollout", "--help"]).stdout
    for flag in ("--model", "--limit", "--samples", "--json"):
        assert flag in text
    for flag in ("--expert", "--random", "--tasks", "--group"):
        assert not re.search(re.escape(flag) + r"(?![-\w])", text), flag


@pytest.mark.parametrize(("argv", "message"), [
    (["--group", "2", "--samples", "3"],
     "error: --group (deprecated) and --samples disagree (2 vs 3): pass --samples alone"),
    (["--expert", "--model", "random"], ("error: --expert (deprecated) and --model disagree "
                                         "('expert' vs 'random'): pass --model alone")),
    (["--model", "gpt"], "error: --model 'gpt': the scripted policy is one of expert, random"),
    (["--expert", "--random"], "error: --expert and --random exclude each other"),
])
def test_conflicting_or_bad_spellings_fail_in_one_line(argv, message, tmp_path, capsys) -> None:
    code = main(["rollout", "--env", "turngym/Maze-v0", "--out", str(tmp_path / "x.jsonl"),
                 "--no-progress", *argv])
    assert code == 2
    assert capsys.readouterr().err.splitlines()[-1] == message
    assert not (tmp_path / "x.jsonl").exists()
