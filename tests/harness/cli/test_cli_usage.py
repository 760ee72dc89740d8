"""Usage errors of the ``turngym`` command, run as a user runs them (a subprocess of the
console script): one line with a suggestion, exit code 2, never a traceback. Typer 0.2x
raises the exceptions of the click it vendors, not ``click``'s own; both are handled."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

TURNGYM = str(Path(sys.executable).parent / "turngym")


def run(*args: str) -> subprocess.CompletedProcess:
    env = {**os.environ, "COLUMNS": "80", "TERM": "dumb"}
    return subprocess.run([TURNGYM, *args], check=False, capture_output=True, text=True,
                          timeout=120, env=env)


@pytest.mark.parametrize(("args", "line"), [
    (("evl",), "error: No such command 'evl'. Did you mean 'eval'? (see turngym --help)"),
    (("envs", "chek", "x"),
     "error: No such command 'chek'. Did you mean 'check'? (see turngym envs --help)"),
    (("eval", "--polcy", "x"),
     "error: No such option: --polcy. Did you mean --policy? (see turngym eval --help)"),
    (("train", "--resum", "runs/x"), ("error: No such option: --resum. Did you mean --resume "
                                      "or --resume-changed? (see turngym train --help)")),
    (("eval",), "error: Missing argument 'suite'. (see turngym eval --help)"),
    (("eval", "quick", "--limit", "abc"), "error: Invalid value for '--limit': "),
    (("rollout", "--env", "turngym/Maze-v0", "--tasks", "0"),
     "error: Invalid value for '--tasks': "),
], ids=["command", "subcommand", "option", "two-options", "missing-argument", "bad-type",
        "out-of-range"])
def test_usage_error_is_one_line_with_exit_2(args: tuple[str, ...], line: str) -> None:
    out = run(*args)
    assert out.returncode == 2
    assert "Traceback" not in out.stderr
    lines = out.stderr.strip().splitlines()
    assert len(lines) == 1, out.stderr
    assert lines[0].startswith(line)
    assert out.stdout == ""


def test_bare_command_prints_help() -> None:
    out = run()
    assert "Traceback" not in out.stderr + out.stdout
    assert "Usage: turngym" in out.stdout + out.stderr
    assert "eval" in out.stdout + out.stderr


def test_typer_version_is_in_the_supported_range() -> None:
    """pyproject.toml bounds typer; the handler above is tested on the installed one."""
    import tomllib
    from importlib.metadata import version

    from packaging.requirements import Requirement

    deps = tomllib.loads((Path(__file__).parents[3] / "pyproject.toml").read_text())
    spec = next(Requirement(d) for d in deps["project"]["dependencies"]
                if d.startswith("typer"))
    assert spec.specifier.contains(version("typer")), (spec, version("typer"))


def test_print_config_prints_the_resolved_config_and_trains_nothing(tmp_path: Path) -> None:
    from turngym.harness.config import load_config

    out = run("train", "configs/grpo.yaml", "model.path=tiny", "steps=3",
              f"out_dir={tmp_path / 'run'}", "--print-config")
    assert out.returncode == 0, out.stderr
    assert "steps: 3\n" in out.stdout and "  path: tiny\n" in out.stdout
    assert not (tmp_path / "run").exists()  # no run folder: nothing started
    (tmp_path / "run.yaml").write_text(out.stdout)
    want = load_config("configs/grpo.yaml", ["model.path=tiny", "steps=3",
                                             f"out_dir={tmp_path / 'run'}"])
    assert load_config(tmp_path / "run.yaml") == want  # the printout is a config train takes


@pytest.mark.parametrize(("override", "hint"), [
    ("model=tiny", "model: a section, not a value (got 'tiny') (did you mean model.path=tiny?)"),
    ("optim.lrr=1", "optim.lrr: unknown key (got 1) (did you mean optim.lr?)"),
])
def test_config_mistakes_get_a_suggestion_on_the_command_line(override: str, hint: str) -> None:
    out = run("train", override, "--print-config")
    assert out.returncode == 2
    assert out.stderr.strip() == f"error: bad config: {hint}"
