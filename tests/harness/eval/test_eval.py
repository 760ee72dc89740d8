"""``turngym.harness.eval.evaluate`` and ``turngym eval``: suites, determinism, the CLI,
real backends."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from turngym.errors import ConfigError, TurngymError
from turngym.harness.cli.main import main as cli
from turngym.harness.eval.evaluate import EvalSettings, evaluate
from turngym.harness.eval.metrics import strip_timings
from turngym.harness.eval.suite import Suite, check_suite, load_suite
from turngym.harness.rollout.trajectory import read_jsonl

MINI = {"name": "mini", "seed": 3, "entries": [
    {"name": "sokoban", "env_id": "turngym/Sokoban-v0", "split": "test", "num_tasks": 3,
     "max_turns": 12},
    {"name": "household", "env_id": "turngym/Household-v0",
     "env_kwargs": {"split": "valid_unseen"}, "split": "valid_unseen", "num_tasks": 6,
     "max_turns": 10}]}


def _write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "suite.yaml"
    path.write_text(text)
    return path


@pytest.mark.parametrize("text, match", [
    ("name: x\nentries: [{name: a, env_id: turngym/Maze-v0, num_tasks: 2, bogus: 1}]",
     r"entries\.0\.bogus"),
    ("name: x\nentries: [{name: a, env_id: turngym/Maze-v0, num_tasks: 0}]",
     r"entries\.0\.num_tasks"),
    ("name: x\nentries: [{name: a, env_id: turngym/Maze-v0}]", "exactly one of task_ids"),
    ("name: x\nentries: [{name: a, env_id: turngym/Maze-v0, num_tasks: 2, seeds: [1]}]",
     "seeds has 1 values for 2 tasks"),
    ("name: x\nsamples: 0\nentries: [{name: a, env_id: turngym/Maze-v0, num_tasks: 2}]",
     r"samples"),
    ("name: x\nentries: []", "entries"),
    ("name: [unclosed", "not valid YAML"),
])
def test_bad_suite_files_fail_naming_the_key(tmp_path: Path, text: str, match: str) -> None:
    with pytest.raises(ConfigError, match=match):
        load_suite(_write(tmp_path, text))


@pytest.mark.parametrize("entry, match", [
    ({"name": "a", "env_id": "turngym/Maze-v0", "task_ids": ["nope-1"]}, "nope-1"),
    ({"name": "a", "env_id": "turngym/Household-v0", "split": "nosuch", "num_tasks": 2},
     "split 'nosuch'"),
    ({"name": "a", "env_id": "turngym/Maze-v0", "split": "test", "num_tasks": 100000},
     "num_tasks 100000"),
    ({"name": "a", "env_id": "turngym/Maze-v1", "split": "test", "num_tasks": 1},
     "(?i)did you mean"),
    ({"name": "a", "env_id": "turngym/Maze-v0", "split": "test", "num_tasks": 1,
      "rollout": {"seed": 3}}, "rollout.seed is set by the suite"),
    ({"name": "a", "env_id": "turngym/Maze-v0", "split": "test", "num_tasks": 1,
      "rollout": {"step_mod": "inline"}}, "step_mod"),
])
def test_check_suite_rejects_bad_entries(entry: dict, match: str) -> None:
    with pytest.raises(TurngymError, match=match):
        check_suite(Suite(name="x", entries=[entry]))


def test_unknown_suite_name_suggests_the_nearest() -> None:
    with pytest.raises(ConfigError, match="did you mean 'sokoban'"):
        load_suite("sokobn")


def test_tasks_and_seeds_are_fixed() -> None:
    tasks = check_suite(Suite(**MINI))
    assert tasks["sokoban"] == [("test-00000", 3), ("test-00001", 4), ("test-00002", 5)]
    explicit = Suite(name="x", entries=[{"name": "a", "env_id": "turngym/Maze-v0",
                                         "task_ids": ["test-00007", "train-00001"],
                                         "seeds": [11, 12]}])
    assert check_suite(explicit)["a"] == [("test-00007", 11), ("train-00001", 12)]


def test_bad_settings_fail_before_work() -> None:
    suite = Suite(**MINI)
    for settings, match in [(EvalSettings(policy="gpt"), "--policy"),
                            (EvalSettings(model="oracle"), "expert, random"),
                            (EvalSettings(samples=0), "--samples"),
                            (EvalSettings(price_prompt=-1.0), "price")]:
        with pytest.raises(ConfigError, match=match):
            evaluate(suite, settings)


def test_random_policy_is_deterministic_under_a_seed() -> None:
    suite = Suite(**MINI)
    settings = EvalSettings(policy="scripted", model="random", samples=3)
    a, b = evaluate(suite, settings), evaluate(suite, settings)
    assert strip_timings(a.results) == strip_timings(b.results)
    assert [[t.action for t in tr.turns] for tr in a.trajectories] == \
           [[t.action for t in tr.turns] for tr in b.trajectories]
    res = a.results
    assert res["samples"] == 3 and res["overall"]["episodes"] == 27
    assert set(res["entries"]["sokoban"]["pass_at_k"]) == {"1", "2", "3"}
    assert len(res["entries"]["household"]["by_type"]) == 6  # ids cycle over the 6 types
    # the three samples of a task start from one state but act differently
    first = [tr for tr in a.trajectories if tr.task_id == "test-00000"]
    assert len({tr.turns[0].state_key for tr in first}) == 1
    assert len({tuple(t.action for t in tr.turns) for tr in first}) > 1
    other = evaluate(suite, EvalSettings(policy="scripted", model="random", samples=3, seed=4))
    assert strip_timings(other.results) != strip_timings(a.results)


def test_expert_solves_the_mini_suite_and_limit_cuts_tasks() -> None:
    run = evaluate(Suite(**MINI), EvalSettings(limit=2))
    assert run.results["overall"]["success"]["rate"] == 1.0
    assert run.results["overall"]["episodes"] == 4
    assert run.results["overall"]["invalid_rate"] == 0.0
    assert run.results["entries"]["sokoban"]["stop_reasons"] == {"terminated": 1.0}


@pytest.mark.slow
def test_cli_quick_suite_with_the_expert(tmp_path: Path) -> None:
    out = tmp_path / "quick"
    assert cli(["eval", "quick", "--policy", "scripted", "--out", str(out),
                "--no-progress"]) == 0
    res = json.loads((out / "results.json").read_text())
    suite = load_suite("quick")
    assert list(res["entries"]) == [e.name for e in suite.entries]
    # every env in `quick` has a perfect expert
    for name, e in res["entries"].items():
        assert e["success"]["rate"] == 1.0, name
        assert e["stop_reasons"] == {"terminated": 1.0}, name
    trajs = list(read_jsonl(out / "trajectories.jsonl"))
    assert len(trajs) == res["overall"]["episodes"] == sum(e.num_tasks for e in suite.entries)
    assert res["entries"]["search"]["by_type"].keys() <= {"1hop", "2hop", "3hop", "comparison"}
    assert res["overall"]["cost_per_episode"] == 0.0


def test_cli_bad_suite_exits_2(tmp_path: Path) -> None:
    assert cli(["eval", "no-such-suite", "--out", str(tmp_path / "x")]) == 2
    assert not (tmp_path / "x").exists()


def test_hf_backend_tiny_model_tokens_cost_and_determinism(hf_backend) -> None:
    suite = Suite(name="tiny", seed=1, sampling={"temperature": 1.0, "max_tokens": 12},
                  entries=[{"name": "sokoban", "env_id": "turngym/Sokoban-v0", "split": "test",
                            "num_tasks": 2, "max_turns": 2}])
    settings = EvalSettings(policy="hf", samples=2, price_prompt=1.0, price_completion=2.0)
    a = evaluate(suite, settings, backend=hf_backend)
    b = evaluate(suite, settings, backend=hf_backend)
    assert strip_timings(a.results) == strip_timings(b.results)
    o = a.results["overall"]
    assert o["episodes"] == 4 and set(o["pass_at_k"]) == {"1", "2"}
    tok = o["tokens"]
    assert tok["prompt"] > 100 and 0 < tok["completion"] <= 4 * 2 * 12
    assert o["cost_per_episode"] == pytest.approx(
        (tok["prompt"] * 1.0 + tok["completion"] * 2.0) / 1e6 / 4)
    turn = a.trajectories[0].turns[0]
    assert turn.prompt_text and len(turn.prompt_ids) > 0  # the viewer gets the prompt


@pytest.mark.slow
def test_cli_quick_suite_with_the_default_model(tmp_path: Path, default_model_dir) -> None:
    out = tmp_path / "quick-hf"
    assert cli(["eval", "quick", "--policy", "hf", "--model", str(default_model_dir),
                "--limit", "1", "--max-turns", "1", "--max-tokens", "16", "--samples", "1",
                "--out", str(out), "--no-progress"]) == 0
    res = json.loads((out / "results.json").read_text())
    assert res["policy"] == "hf" and res["limit"] == 1
    assert res["overall"]["episodes"] == len(load_suite("quick").entries)
    for name, e in res["entries"].items():
        assert e["tokens"]["completion"] > 0, name
        assert e["turns_mean"] == 1.0, name
