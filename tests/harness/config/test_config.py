"""TrainConfig: YAML + dotted overrides; bad keys and values fail naming the key."""

from __future__ import annotations

from pathlib import Path

import pytest

from turngym.errors import ConfigError
from turngym.harness.config import (
    ALGO_NAMES,
    TrainConfig,
    apply_overrides,
    dump_config,
    load_config,
)

CONFIGS = sorted((Path(__file__).resolve().parents[3] / "configs").glob("*.yaml"))


def test_defaults_are_valid() -> None:
    cfg = TrainConfig()
    assert cfg.algo.name == "gigpo" and cfg.curriculum.name == "none"
    assert cfg.optim.micro_batch_size <= cfg.optim.mini_batch_size
    assert cfg.eval.temperature == 0.0


def test_trust_region_defaults() -> None:
    # one AdamW step per RL step for batches up to 512 turns, k3 KL 0.01 to the initial
    # weights, and the reference model switched on by the KL term that needs it
    cfg = load_config(None, [])
    assert cfg.optim.mini_batch_size == 512 and cfg.optim.lr == 1e-5
    assert (cfg.algo.loss.kl_coef, cfg.algo.loss.kl_estimator) == (0.01, "k3")
    assert cfg.ref.enabled is True
    assert load_config(None, ["algo.loss.kl_coef=0"]).ref.enabled is False
    assert load_config(None, ["algo.loss.kl_coef=0", "ref.enabled=true"]).ref.enabled is True
    rpp = ["algo.name=reinforce_pp", "algo.loss.kl_coef=0", "algo.advantage={kl_coef: 0.1}"]
    assert load_config(None, rpp).ref.enabled is True


@pytest.mark.parametrize("path", CONFIGS, ids=[p.name for p in CONFIGS])
def test_shipped_configs_load(path: Path) -> None:
    cfg = load_config(path)
    assert cfg.steps >= 1


def test_every_algorithm_has_an_example_config() -> None:
    names = {load_config(p).algo.name for p in CONFIGS}
    assert set(ALGO_NAMES) <= names


@pytest.mark.parametrize("overrides, key, value", [
    (["algo.name=grpo"], ("algo", "name"), "grpo"),
    (["env.id=turngym/Sokoban-v0"], ("env", "id"), "turngym/Sokoban-v0"),
    (["optim.lr=3e-4"], ("optim", "lr"), 3e-4),
    (["rollout.group_size=8"], ("rollout", "group_size"), 8),
    (["lora.enabled=true"], ("lora", "enabled"), True),
    (["env.kwargs={size: 3}"], ("env", "kwargs"), {"size": 3}),
    (["optim.betas=[0.8, 0.9]"], ("optim", "betas"), (0.8, 0.9)),
    (["curriculum.name=tcod", "curriculum.mode=f2b", "curriculum.delta=3"],
     ("curriculum", "delta"), 3),
])
def test_dotted_overrides(overrides: list[str], key: tuple[str, str], value: object) -> None:
    cfg = load_config(None, overrides)
    assert getattr(getattr(cfg, key[0]), key[1]) == value


def test_override_beats_yaml(tmp_path: Path) -> None:
    p = tmp_path / "c.yaml"
    p.write_text("steps: 3\nalgo: {name: rloo}\n")
    cfg = load_config(p, ["algo.name=grpo"])
    assert (cfg.steps, cfg.algo.name) == (3, "grpo")


@pytest.mark.parametrize("overrides, named", [
    (["algo.nme=grpo"], "algo.nme"),
    (["algo.name=ppo2"], "algo.name"),
    (["optim.lr=-1"], "optim.lr"),
    (["optim.lr=fast"], "optim.lr"),
    (["rollout.group_size=0"], "rollout.group_size"),
    (["stepz=3"], "stepz"),
    (["curriculum.name=b2f"], "curriculum.name"),
    (["optim.micro_batch_size=64", "optim.mini_batch_size=8"], "micro_batch_size"),
    (["algo.name=opd"], "teacher.path"),
    (["algo.loss.kl_coef=0.1", "ref.enabled=false"], "ref.enabled"),
    (["algo.advantage.gama=0.9"], "algo.advantage.gama"),
    (["algo.advantage.gamma=2.0"], "algo.advantage.gamma"),
    (["rollout.step_mode=inline", "rollout.env_timeout_s=5"], "env_timeout_s"),
])
def test_bad_keys_and_values_name_the_key(overrides: list[str], named: str) -> None:
    with pytest.raises(ConfigError) as err:
        load_config(None, overrides)
    assert named in str(err.value)


@pytest.mark.parametrize("text, named", [
    ("algo: {name: grpo, foo: 1}\n", "algo.foo"),
    ("optim: 3\n", "optim"),
    ("- a\n- b\n", "mapping"),
    ("algo: {name: [\n", "not valid YAML"),
])
def test_bad_yaml_files(tmp_path: Path, text: str, named: str) -> None:
    p = tmp_path / "bad.yaml"
    p.write_text(text)
    with pytest.raises(ConfigError) as err:
        load_config(p)
    assert named in str(err.value)


def test_missing_file_and_bad_override_syntax(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="does not exist"):
        load_config(tmp_path / "nope.yaml")
    with pytest.raises(ConfigError, match="KEY=VALUE"):
        apply_overrides({}, ["algo.name"])
    with pytest.raises(ConfigError, match="not a section"):
        apply_overrides({"steps": 3}, ["steps.x=1"])


def test_dump_round_trips(tmp_path: Path) -> None:
    cfg = load_config(None, ["algo.name=rloo", "env.kwargs={size: 2}", "seed=5"])
    dump_config(cfg, tmp_path / "c.yaml")
    assert load_config(tmp_path / "c.yaml") == cfg


def test_cli_fails_before_work_naming_the_key() -> None:
    from turngym.harness.cli.main import main

    assert main(["train", "algo.nme=grpo"]) == 2
    assert main(["sft", "sft.epochs=0"]) == 2
