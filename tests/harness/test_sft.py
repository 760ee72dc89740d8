"""``turngym sft`` (the warm start on expert trajectories) and ``turngym quickstart`` (the
README's main job), both on the tiny random Llama so they run in seconds."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.harness.conftest import SFT_TINY
from turngym.harness.config import load_config
from turngym.harness.train import train


@pytest.mark.slow
def test_sft_fits_expert_turns_and_saves_a_loadable_model(sft_run: dict) -> None:
    losses = sft_run["losses"]
    assert len(losses) == 6
    assert losses[-1] < 0.5 * losses[0], losses  # cross-entropy on the expert's tokens falls
    assert sft_run["sft/expert_success"] == 1.0  # the expert wins every 2x2 maze
    assert sft_run["sft/samples"] >= 16  # at least one turn per task
    model_dir = Path(sft_run["model_dir"])
    assert (model_dir / "config.json").is_file()
    assert (model_dir / "tokenizer_config.json").is_file()


@pytest.mark.slow
def test_sft_expert_plays_the_eval_turn_budget(tmp_path: Path) -> None:
    """A training budget tighter than the eval's (quickstart: 14 vs 20 turns) does not cut
    the expert's demonstrations: they play ``sft.max_turns``, else ``eval.max_turns``."""
    from turngym.harness.sft import run_sft

    size3 = [o.replace("{size: 2}", "{size: 3}") for o in SFT_TINY if "max_turns" not in o]
    size3 += ["rollout.max_turns=2", "sft.num_tasks=3", "sft.epochs=1"]

    def sft(*extra: str) -> dict:
        return run_sft(load_config(None, [*size3, *extra, f"out_dir={tmp_path / str(extra)}"]))

    cut = sft()  # shortest size-3 paths are 8+ moves: 2 turns solve none
    assert cut["sft/expert_success"] == 0.0 and cut["sft/samples"] == 6  # 3 tasks x 2 turns
    full = sft("eval.max_turns=20")
    assert full["sft/expert_success"] == 1.0 and full["sft/samples"] >= 24
    own = sft("eval.max_turns=20", "sft.max_turns=2")
    assert own["sft/expert_success"] == 0.0 and own["sft/samples"] == 6


@pytest.mark.slow
def test_sft_model_acts_in_format_where_the_base_never_does(sft_run: dict, sft_overrides,
                                                             tmp_path: Path) -> None:
    def held_out(model: str) -> dict:
        cfg = load_config(None, [*sft_overrides, f"model.path={model}", "steps=0",
                                 f"out_dir={tmp_path / Path(model).name}"])
        return train(cfg)["before"]

    base, sft = held_out("tiny"), held_out(sft_run["model_dir"])
    assert base["eval/invalid_rate"] == 1.0  # random weights never write an <action> tag
    assert sft["eval/invalid_rate"] < 0.5, sft
    assert sft["eval/success"] > base["eval/success"]


@pytest.mark.slow
def test_quickstart_prints_the_before_after_table(tmp_path: Path, capsys) -> None:
    from turngym.harness.cli.main import main

    rc = main(["quickstart", "model.path=tiny", "model.backend=hf", "steps=1",
               "sft.num_tasks=4", "sft.epochs=1",
               "eval.num_tasks=2", "rollout.tasks_per_step=1", "rollout.group_size=2",
               "rollout.max_turns=2", "rollout.max_tokens=6", "logging.plot=false",
               "logging.progress=false", "logging.tensorboard=false",
               f"out_dir={tmp_path / 'qs'}"])
    text = capsys.readouterr().out
    assert rc == 0, text
    for row in ("base (before)", "after SFT", "after SFT + gigpo (after)", "95% interval",
                "gigpo after SFT: +0.000 [", "within its interval: 2 tasks"):
        assert row in text
    assert (tmp_path / "qs" / "rl" / "checkpoints" / "latest").is_file()
    assert (tmp_path / "qs" / "sft" / "config.json").is_file()
    # a second quickstart (make quickstart again) writes a new folder, the first stays as it was
    first = (tmp_path / "qs" / "rl" / "metrics.jsonl").read_bytes()
    rc = main(["quickstart", "model.path=tiny", "model.backend=hf", "steps=0",
               "sft.num_tasks=1", "sft.epochs=1",
               "eval.num_tasks=1", "rollout.max_turns=1", "rollout.max_tokens=4",
               "logging.plot=false", "logging.progress=false", "logging.tensorboard=false",
               f"out_dir={tmp_path / 'qs'}"])
    text = capsys.readouterr().out
    assert rc == 0, text
    assert f"{tmp_path / 'qs'} holds an earlier quickstart: this one writes {tmp_path / 'qs-2'}" \
        in text.replace("\n", "")
    assert (tmp_path / "qs-2" / "sft" / "config.json").is_file()
    assert (tmp_path / "qs" / "rl" / "metrics.jsonl").read_bytes() == first


def test_quickstart_fallback_matches_the_yaml() -> None:
    """An installed wheel has no ``configs/quickstart.yaml``: its :data:`FALLBACK` settings
    must be the yaml's (training rollouts at T=1.3 / 14 turns, held-out evals at T=1 / 20)."""
    from turngym.harness.cli.cmd_main_job import FALLBACK, quickstart_config

    yaml, fallback = quickstart_config([]), load_config(None, FALLBACK)
    assert (yaml.rollout.temperature, yaml.rollout.max_turns) == (1.3, 14)
    assert (yaml.eval.temperature, yaml.eval.max_turns) == (1.0, 20)
    assert yaml.model.backend == fallback.model.backend == "vllm"
    assert yaml.algo.mismatch.mode == fallback.algo.mismatch.mode == "off"
    for section in ("env", "rollout", "eval", "optim"):
        assert getattr(yaml, section) == getattr(fallback, section), section
    for key in ("steps", "seed"):
        assert getattr(yaml, key) == getattr(fallback, key), key
    assert (yaml.algo.name, yaml.algo.loss.kl_coef) == (fallback.algo.name, 0.0)
    assert (yaml.sft.num_tasks, yaml.sft.epochs) == (fallback.sft.num_tasks, fallback.sft.epochs)
