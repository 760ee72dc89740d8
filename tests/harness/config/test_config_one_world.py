"""One config world: the train config holds the ``turngym.algos`` config classes, so each
default is set once; old keys fail naming the new ones."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

from turngym.algos.gae import GAEConfig
from turngym.algos.gigpo import GiGPOConfig
from turngym.algos.grpo import GRPOConfig
from turngym.algos.hgpo import HGPOConfig
from turngym.algos.mismatch import MismatchConfig
from turngym.algos.opd import OPDConfig
from turngym.algos.ppo_loss import PPOLossConfig
from turngym.algos.reinforce_pp import ReinforcePPConfig
from turngym.algos.rloo import RLOOConfig
from turngym.algos.sod import SODConfig
from turngym.algos.task_sampler import TaskSamplerConfig
from turngym.algos.tcod import TCODConfig
from turngym.errors import ConfigError
from turngym.harness.config import (
    RENAMED,
    RENAMED_VALUES,
    TrainConfig,
    dump_config,
    load_config,
)
from turngym.harness.rollout.config import RolloutConfig

ROOT = Path(__file__).resolve().parents[3]
CONFIGS = sorted((ROOT / "configs").glob("*.yaml"))

#: Classes the harness config must not define again: the algos classes are the sections.
ALGOS_CLASSES = ("PPOLossConfig", "OPDConfig", "SODConfig", "TCODConfig", "MismatchConfig",
                 "TaskSamplerConfig", "GAEConfig", "GiGPOConfig", "GRPOConfig")


def test_the_sections_are_the_algos_classes() -> None:
    cfg = TrainConfig()
    assert type(cfg.algo.loss) is PPOLossConfig
    assert type(cfg.algo.opd) is OPDConfig
    assert type(cfg.algo.mismatch) is MismatchConfig
    assert type(cfg.algo.advantage) is GiGPOConfig
    tcod = load_config(None, ["curriculum.name=tcod"]).curriculum
    assert type(tcod) is TCODConfig
    sampler = load_config(None, ["sampler.name=difficulty"]).sampler
    assert type(sampler) is TaskSamplerConfig


def test_each_default_exists_once() -> None:
    cfg = TrainConfig()
    assert cfg.algo.loss == PPOLossConfig()
    assert (cfg.algo.loss.clip_high, cfg.algo.loss.kl_coef) == (0.28, 0.01)  # today's training
    assert cfg.algo.opd == OPDConfig() and cfg.algo.opd.rl_coef == 1.0 and cfg.algo.opd.sod
    sod = SODConfig()
    assert (sod.beta, sod.delta, sod.eps) == (OPDConfig().beta, OPDConfig().sod_delta,
                                              OPDConfig().sod_eps)
    assert cfg.algo.mismatch == MismatchConfig()
    assert cfg.algo.advantage == GiGPOConfig()
    tcod = load_config(None, ["curriculum.name=tcod"]).curriculum
    assert tcod == TCODConfig() and tcod.delta == 1  # the trainer's delta, in the algos class
    assert load_config(None, ["sampler.name=difficulty"]).sampler == TaskSamplerConfig()


def test_rollout_section_reuses_the_engine_fields() -> None:
    section = TrainConfig().rollout
    shared = [k for k in type(section).model_fields if k in RolloutConfig.model_fields]
    assert len(shared) >= 10
    for key in shared:  # same type bounds and description: one definition
        mine, theirs = type(section).model_fields[key], RolloutConfig.model_fields[key]
        assert mine.metadata == theirs.metadata and mine.description == theirs.description
    # the training defaults the section sets on top (docstring of RolloutSection)
    assert (section.max_tokens, section.group_size, section.max_turns) == (48, 4, 8)
    engine = section.engine_config("turngym/Maze-v0", {}, seed=3)
    for key in shared:
        assert getattr(engine, key) == getattr(section, key)


def test_harness_config_defines_no_algos_class() -> None:
    names = set()
    for path in (ROOT / "harness" / "config").glob("*.py"):
        tree = ast.parse(path.read_text())
        names |= {n.name for n in ast.walk(tree) if isinstance(n, ast.ClassDef)}
    assert not names & set(ALGOS_CLASSES)


@pytest.mark.parametrize("recipe, cls", [
    ("grpo", GRPOConfig), ("rloo", RLOOConfig), ("reinforce_pp", ReinforcePPConfig),
    ("gigpo", GiGPOConfig), ("hgpo", HGPOConfig), ("gigpo+opd", GiGPOConfig), ("ppo", GAEConfig),
])
def test_the_recipe_picks_the_estimator_class(recipe: str, cls: type) -> None:
    cfg = load_config(None, [f"algo.name={recipe}", "teacher.expert_hint=true"])
    assert type(cfg.algo.advantage) is cls


def test_pure_opd_has_no_estimator() -> None:
    cfg = load_config(None, ["algo.name=opd", "teacher.expert_hint=true"])
    assert cfg.algo.advantage is None
    with pytest.raises(ConfigError, match="algo.advantage: algo.name=opd takes no advantage"):
        load_config(None, ["algo.name=opd", "teacher.expert_hint=true",
                           "algo.advantage.gamma=0.9"])


def test_advantage_settings_follow_the_recipe() -> None:
    cfg = load_config(None, ["algo.name=gigpo", "algo.advantage.gamma=0.5"])
    assert cfg.algo.advantage.gamma == 0.5
    # a GiGPO block still works after switching to HGPO (HGPOConfig extends GiGPOConfig)
    cfg = load_config(None, ["algo.advantage={gamma: 0.5, step_weight: 2.0}", "algo.name=hgpo"])
    assert type(cfg.algo.advantage) is HGPOConfig and cfg.algo.advantage.step_weight == 2.0
    cfg = load_config(None, ["algo.name=gigpo", "algo.advantage.name=gigpo"])  # consistent
    assert type(cfg.algo.advantage) is GiGPOConfig


def test_a_contradicting_estimator_names_both_keys() -> None:
    with pytest.raises(ConfigError) as err:
        load_config(None, ["algo.name=grpo", "algo.advantage.name=gigpo"])
    assert "algo.advantage.name=gigpo" in str(err.value) and "algo.name=grpo" in str(err.value)
    assert "algo.name=gigpo" in str(err.value)  # the fix


def test_old_adv_key_names_algo_advantage(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=r"algo\.adv was renamed algo\.advantage .*"
                                          r"algo\.advantage\.gamma"):
        load_config(None, ["algo.adv={gamma: 0.9}"])
    p = tmp_path / "old.yaml"
    p.write_text("algo:\n  name: gigpo\n  adv: {gamma: 0.9}\n")
    with pytest.raises(ConfigError, match="algo.adv was renamed algo.advantage"):
        load_config(p)


@pytest.mark.parametrize("key", sorted(RENAMED))
def test_every_renamed_key_fails_naming_its_replacement(key: str) -> None:
    with pytest.raises(ConfigError) as err:
        load_config(None, [f"{key}=1"])
    assert str(err.value) == f"bad config: {RENAMED[key]}"
    assert key in str(err.value)


@pytest.mark.parametrize("key, old", sorted(RENAMED_VALUES))
def test_every_renamed_value_fails_naming_the_new_one(key: str, old: str) -> None:
    with pytest.raises(ConfigError) as err:
        load_config(None, [f"{key}={old}"])
    assert str(err.value) == f"bad config: {RENAMED_VALUES[key, old]}"
    assert "curriculum.name=tcod" in str(err.value) and "curriculum.mode=" in str(err.value)


def test_curriculum_and_sampler_settings_need_their_name() -> None:
    with pytest.raises(ConfigError, match="curriculum.delta needs curriculum.name"):
        load_config(None, ["curriculum.delta=3"])
    with pytest.raises(ConfigError, match="sampler.ema needs sampler.name"):
        load_config(None, ["sampler.ema=0.5"])
    with pytest.raises(ConfigError, match="curriculum.name: 'b2f' is not one of"):
        load_config(None, ["curriculum.name=b2f"])
    cfg = load_config(None, ["curriculum.name=tcod", "curriculum.mode=b2f", "curriculum.delta=2"])
    assert (cfg.curriculum.mode, cfg.curriculum.delta) == ("b2f", 2)


@pytest.mark.parametrize("path", CONFIGS, ids=[p.name for p in CONFIGS])
def test_every_shipped_config_loads_and_round_trips(path: Path, tmp_path: Path) -> None:
    cfg = load_config(path)
    dump_config(cfg, tmp_path / "c.yaml")
    assert load_config(tmp_path / "c.yaml") == cfg
    assert "adv:" not in path.read_text()  # the old key
