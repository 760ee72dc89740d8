"""``train()`` called as a library refuses an ``out_dir`` that holds a run, as ``turngym train``
does, before it touches any file; resuming that run is still allowed."""

from __future__ import annotations

import hashlib
from pathlib import Path

import pytest

from turngym.errors import ConfigError, MissingDependencyError
from turngym.harness.config import load_config
from turngym.harness.runs import RUN_FILES, check_new_run, check_run_start, free_run_dir
from turngym.harness.train import train

#: 1 step of 1 task x 2 rollouts on a 2x2 maze with the tiny model.
TINY = ["model.path=tiny", "env.id=turngym/Maze-v0", "env.kwargs={size: 2}", "steps=1",
        "rollout.tasks_per_step=1", "rollout.group_size=2", "rollout.max_turns=2",
        "rollout.max_tokens=6", "rollout.history_length=1", "eval.num_tasks=1",
        "eval.at_start=false", "optim.mini_batch_size=4", "optim.micro_batch_size=2",
        "logging.plot=false", "logging.progress=false", "logging.tensorboard=false",
        "logging.rollouts=2", "algo.name=grpo", "algo.loss.kl_coef=0",
        "algo.loss.entropy_coef=0.01"]


def digests(folder: Path) -> dict[str, str]:
    """sha256 of every file under ``folder``, by relative path."""
    return {str(p.relative_to(folder)): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(folder.rglob("*")) if p.is_file()}


def message(out: Path, found: str) -> str:
    return (f"out_dir {str(out)!r} exists and holds a run ({found}): pass --resume {out} "
            f"(from Python: train(cfg, resume={str(out)!r})) to continue it, or a new "
            f"out_dir (out_dir={out}-2)")


@pytest.mark.slow
def test_a_second_train_call_on_one_out_dir_is_refused_and_changes_nothing(
        tmp_path: Path) -> None:
    out = tmp_path / "run"
    train(load_config(None, [*TINY, f"out_dir={out}"]))
    before = digests(out)
    metrics = (out / "metrics.jsonl").read_bytes()
    assert {"metrics.jsonl", "batches.jsonl", "rollouts.jsonl", "config.yaml"} <= set(before)

    again = load_config(None, [*TINY, f"out_dir={out}", "seed=7"])  # even its config.yaml
    with pytest.raises(ConfigError) as err:
        train(again)
    assert str(err.value) == message(
        out, "metrics.jsonl, batches.jsonl, rollouts.jsonl, checkpoints")
    assert (out / "metrics.jsonl").read_bytes() == metrics
    assert digests(out) == before

    # resuming the same run is not refused: one step more, appended after the first
    longer = load_config(None, [*TINY, f"out_dir={out}", "steps=2"])
    resumed = train(longer, resume=out)
    assert [h["step"] for h in resumed["history"]] == [2]
    assert (out / "metrics.jsonl").read_bytes().startswith(metrics)


@pytest.mark.parametrize("present", [(name,) for name in RUN_FILES])
def test_each_run_file_marks_a_used_out_dir(tmp_path: Path, present: tuple[str]) -> None:
    for name in present:
        if name.endswith(".jsonl"):
            (tmp_path / name).write_text("")
        else:
            (tmp_path / name).mkdir()
    with pytest.raises(ConfigError) as err:
        check_new_run(tmp_path)
    assert str(err.value) == message(tmp_path, present[0])


def test_a_folder_with_only_a_config_is_not_a_run(tmp_path: Path) -> None:
    (tmp_path / "config.yaml").write_text("steps: 1\n")  # a run that failed at its setup
    cfg = load_config(None, [f"out_dir={tmp_path}"])
    assert check_run_start(cfg, None) is None
    assert check_new_run(tmp_path / "missing") is None


def test_wandb_enabled_without_the_package_fails_before_any_work(tmp_path: Path,
                                                                 monkeypatch) -> None:
    import importlib.util

    real = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec",
                        lambda name, *a: None if name == "wandb" else real(name, *a))
    cfg = load_config(None, [f"out_dir={tmp_path / 'run'}", "logging.wandb=true"])
    with pytest.raises(MissingDependencyError) as err:
        train(cfg)
    assert str(err.value) == ("logging.wandb.enabled=true needs wandb: "
                              "pip install 'turngym[wandb]'")
    assert not (tmp_path / "run").exists()


def test_free_run_dir_takes_the_first_missing_or_empty_sibling(tmp_path) -> None:
    out = tmp_path / "qs"
    assert free_run_dir(out) == out  # missing
    out.mkdir()
    assert free_run_dir(out) == out  # empty
    (out / "base").mkdir()
    assert free_run_dir(out) == tmp_path / "qs-2"
    (tmp_path / "qs-2").mkdir()
    (tmp_path / "qs-2" / "x").write_text("")
    (tmp_path / "qs-3").mkdir()
    assert free_run_dir(out) == tmp_path / "qs-3"  # empty sibling
    (tmp_path / "qs-3" / "y").write_text("")
    assert free_run_dir(str(out)) == tmp_path / "qs-4"
