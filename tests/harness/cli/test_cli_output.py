"""Tables that survive a pipe (harness/cli/output.py): whole ids on a narrow terminal, plain
tab-separated rows when stdout is not a terminal (typer's runner), exact rows under --json."""

from __future__ import annotations

import io
import json
from pathlib import Path

import pytest
from rich.console import Console
from typer.testing import CliRunner

from turngym import envs
from turngym.envs.registration import registry
from turngym.harness.cli.output import emit_table, plain_lines

#: A 60-character env id, longer than a 40-column terminal.
LONG_ID = "acme/" + "VeryLongEnvironmentName" * 2 + "XXXXXX-v0"


def tty(monkeypatch: pytest.MonkeyPatch, columns: int = 40) -> tuple[Console, io.StringIO]:
    """A terminal-like rich console of ``COLUMNS`` width writing into a buffer."""
    monkeypatch.setenv("COLUMNS", str(columns))
    buf = io.StringIO()
    return Console(file=buf, force_terminal=True, color_system=None), buf


@pytest.fixture(scope="module")
def app():
    from turngym.harness.cli.main import _register_commands, app

    if not app.registered_commands:
        _register_commands()
    return app


@pytest.fixture
def long_env():
    """A registered env whose id is :data:`LONG_ID` (the Maze class under another id)."""
    entry = envs.spec("turngym/Maze-v0").entry_point
    envs.register(LONG_ID, entry_point=entry, max_turns=7)
    yield LONG_ID
    registry.pop(LONG_ID, None)


def test_long_id_is_60_characters() -> None:
    assert len(LONG_ID) == 60


# ---------------------------------------------------------------- the helper
def test_plain_lines_are_tab_separated_whole_values() -> None:
    lines = plain_lines(["id", "details"], [[LONG_ID, "a\tb\nc"]], "envs")
    assert lines == ["# envs", "id\tdetails", f"{LONG_ID}\ta b c"]


def test_plain_path_when_not_a_terminal() -> None:
    buf = io.StringIO()
    con = Console(file=buf, width=40)  # a StringIO is no terminal
    emit_table(["id", "turns", "needs"], [[LONG_ID, 2.5, None], ["x/Y-v0", 3, "pip x[y]"]],
               title="t", console=con, formats={"turns": "{:.1f}"})
    assert buf.getvalue() == (f"# t\nid\tturns\tneeds\n{LONG_ID}\t2.5\t-\n"
                              "x/Y-v0\t3.0\tpip x[y]\n")


def test_json_holds_raw_values() -> None:
    buf = io.StringIO()
    emit_table(["id", "turns", "tools"], [[LONG_ID, 2.5, ["a", "b"]], ["x/Y-v0", None, []]],
               title="t", console=Console(file=buf), json_out=True,
               formats={"turns": "{:.1f}"})
    assert json.loads(buf.getvalue()) == [{"id": LONG_ID, "turns": 2.5, "tools": ["a", "b"]},
                                          {"id": "x/Y-v0", "turns": None, "tools": []}]


def test_narrow_terminal_keeps_ids_headers_and_brackets_whole(monkeypatch) -> None:
    con, buf = tty(monkeypatch, 40)
    assert con.is_terminal and con.width == 40
    rows = [["turngym/ScienceWorld-v0", "ScienceWorld", 100, "pip install turngym[classic]"],
            [LONG_ID, "Maze", 7, None]]
    emit_table(["id", "family", "max_turns", "needs"], rows, title="turngym environments",
               console=con)
    text = buf.getvalue()
    assert "┃ id" in text  # the terminal form: a box-drawn table
    for whole in ("turngym/ScienceWorld-v0", LONG_ID, "max_turns", "ScienceWorld",
                  "turngym[classic]"):
        assert whole in text, whole
    assert "…" not in text


def test_wide_terminal_table_is_unchanged_by_the_minimum(monkeypatch) -> None:
    con, buf = tty(monkeypatch, 200)
    emit_table(["id", "n"], [["turngym/Maze-v0", 1]], console=con)
    assert buf.getvalue().splitlines() == ["┏━━━━━━━━━━━━━━━━━┳━━━┓",
                                           "┃ id              ┃ n ┃",
                                           "┡━━━━━━━━━━━━━━━━━╇━━━┩",
                                           "│ turngym/Maze-v0 │ 1 │",
                                           "└─────────────────┴───┘"]


def test_envs_list_command_on_a_narrow_terminal(monkeypatch, long_env) -> None:
    from turngym.harness.cli import cmd_envs

    con, buf = tty(monkeypatch, 40)
    monkeypatch.setattr(cmd_envs, "console", con)
    cmd_envs.list_envs(all_=True, json_out=False)
    text = buf.getvalue()
    assert "turngym/ScienceWorld-v0" in text and long_env in text
    assert "…" not in text


# ---------------------------------------------------------------- the commands, piped
def test_envs_list_plain(app, long_env) -> None:
    res = CliRunner().invoke(app, ["envs", "list", "--all"])
    assert res.exit_code == 0, res.output
    lines = res.stdout.splitlines()
    assert lines[:2] == ["# turngym environments", "id\tfamily\ttools\tmax_turns\tneeds"]
    assert "turngym/Maze-v0\tMaze\t-\t40\t-" in lines
    assert "turngym/Search-v0\tSearch\tsearch, answer\t4\t-" in lines
    fam = envs.spec(long_env).family
    assert f"{long_env}\t{fam}\t-\t7\t-" in lines
    assert any(line.split("\t")[0] == "turngym/ScienceWorld-v0" for line in lines)
    assert "│" not in res.stdout and "…" not in res.stdout


def test_envs_list_json(app, long_env) -> None:
    res = CliRunner().invoke(app, ["envs", "list", "--all", "--json"])
    assert res.exit_code == 0, res.output
    rows = {r["id"]: r for r in json.loads(res.stdout)}
    assert rows["turngym/Maze-v0"] == {"id": "turngym/Maze-v0", "family": "Maze", "tools": [],
                                       "max_turns": 40, "needs": None}
    assert rows["turngym/Search-v0"]["tools"] == ["search", "answer"]
    assert rows[long_env] == {"id": long_env, "family": envs.spec(long_env).family,
                              "tools": [], "max_turns": 7, "needs": None}
    assert "turngym/ScienceWorld-v0" in rows


def test_envs_check_plain_and_json(app) -> None:
    from turngym.envs.checker import CHECKS

    res = CliRunner().invoke(app, ["envs", "check", "turngym/Maze-v0"])
    assert res.exit_code == 0, res.output
    lines = res.stdout.splitlines()
    assert lines[:2] == ["# env check: turngym/Maze-v0", "check\tresult\tseconds\tdetails"]
    assert [line.split("\t")[:2] for line in lines[2:]] == [[n, "pass"] for n in CHECKS]
    res = CliRunner().invoke(app, ["envs", "check", "turngym/Maze-v0", "--json"])
    rows = json.loads(res.stdout)
    assert [(r["check"], r["result"]) for r in rows] == [(n, "pass") for n in CHECKS]
    assert all(isinstance(r["seconds"], float) and r["seconds"] >= 0 for r in rows)


def test_rollout_plain_and_json(app, tmp_path: Path) -> None:
    args = ["rollout", "--env", "turngym/Maze-v0", "--limit", "2", "--samples", "2",
            "--out", str(tmp_path / "r.jsonl"), "--no-progress"]
    res = CliRunner().invoke(app, args)
    assert res.exit_code == 0, res.output
    lines = res.stdout.splitlines()
    assert lines[:4] == ["# turngym/Maze-v0 · scripted · 2 tasks x 2", "metric\tvalue",
                         "episodes\t4", "success\t100.0%"]
    assert lines[-1] == f"wrote 4 trajectories to {tmp_path / 'r.jsonl'}"
    res = CliRunner().invoke(app, [*args, "--json"])
    doc = json.loads(res.stdout)  # the "wrote" line went to stderr
    assert (doc["rollout/episodes"], doc["env/success"], doc["rollout/invalid_rate"],
            doc["rollout/stop/terminated"]) == (4.0, 1.0, 0.0, 1.0)
    assert res.stderr == f"wrote 4 trajectories to {tmp_path / 'r.jsonl'}\n"


def test_eval_plain_and_json(app, tmp_path: Path) -> None:
    suite = tmp_path / "tiny.yaml"
    suite.write_text("name: tiny\nseed: 3\nentries:\n  - {name: maze, env_id: turngym/Maze-v0, "
                     "split: test, num_tasks: 2, max_turns: 40}\n")
    res = CliRunner().invoke(app, ["eval", str(suite), "--out", str(tmp_path / "a"),
                                   "--no-progress"])
    assert res.exit_code == 0, res.output
    lines = res.stdout.splitlines()
    header = ("entry\tepisodes\tsuccess [95% CI]\tpass@k\tturns\tinvalid\tstop reasons\t"
              "wall s/ep")
    assert lines[:2] == ["# tiny · scripted:expert · n=1 · seed 3", header]
    assert lines[2].startswith("maze\t2\t100% [34%, 100%]\t@1 1.00\t12.0\t0.0%\t"
                               "terminated 100%\t")
    assert lines[4:7] == ["# success by task type",
                          "entry\ttype\tepisodes\tsuccess [95% CI]\tturns",
                          "maze\tall\t2\t100% [34%, 100%]\t12.0"]
    res = CliRunner().invoke(app, ["eval", str(suite), "--out", str(tmp_path / "b"),
                                   "--no-progress", "--json"])
    assert res.exit_code == 0, res.output
    assert json.loads(res.stdout) == json.loads((tmp_path / "b" / "results.json").read_text())
    assert res.stderr.startswith("wrote ")


def test_bench_list_plain_and_json(app, tmp_path: Path) -> None:
    (tmp_path / "fast.py").write_text('def main():\n    pass  # takes "--quick"\n')
    (tmp_path / "slow.py").write_text("def main():\n    pass\n")
    res = CliRunner().invoke(app, ["bench", "--list", "--dir", str(tmp_path)])
    assert res.stdout == "# performance scripts\nscript\tquick\nfast\t--quick\nslow\t-\n"
    res = CliRunner().invoke(app, ["bench", "--list", "--dir", str(tmp_path), "--json"])
    assert json.loads(res.stdout) == [{"script": "fast", "quick": True},
                                      {"script": "slow", "quick": False}]


def test_swe_tasks_plain_and_json(app) -> None:
    from turngym.envs.swe.tasks import load_tasks, summary

    counts = summary(load_tasks(None))
    res = CliRunner().invoke(app, ["swe", "tasks"])
    assert res.exit_code == 0, res.output
    lines = res.stdout.splitlines()
    assert lines[:2] == ["# tasks by split", "split\ttasks"]
    assert lines[2:2 + len(counts["split"])] == [f"{k}\t{counts['split'][k]}"
                                                 for k in sorted(counts["split"])]
    assert lines[-1] == "360 tasks"
    res = CliRunner().invoke(app, ["swe", "tasks", "--json"])
    assert json.loads(res.stdout) == {"tasks": 360, "counts": counts}


def test_train_summary_plain_and_json(capsys) -> None:
    from turngym.harness.cli.cmd_train import _print_summary

    out = {"before": {"eval/success": 0.25, "eval/return": 1.0, "env/success": 0.9},
           "after": {"eval/success": 0.5}, "out_dir": "runs/x"}
    _print_summary(out)
    assert capsys.readouterr().out == ("# held-out evaluation\nmetric\tbefore\tafter\n"
                                       "eval/return\t1.000\t-\neval/success\t0.250\t0.500\n"
                                       "run dir: runs/x (metrics.jsonl, tb/, curves.png, "
                                       "checkpoints/)\n")
    _print_summary(out, json_out=True)
    got = capsys.readouterr()
    assert json.loads(got.out) == [{"metric": "eval/return", "before": 1.0, "after": None},
                                   {"metric": "eval/success", "before": 0.25, "after": 0.5}]
    assert got.err.startswith("run dir: runs/x")
