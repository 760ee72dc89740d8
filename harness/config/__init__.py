"""The typed training config: YAML + dotted command-line overrides.

``load_config("configs/quickstart.yaml", ["algo.name=gigpo", "env.id=turngym/Maze-v0"])``
returns a validated :class:`TrainConfig`. Every section is a pydantic model with
``extra="forbid"``: an unknown key or a bad value raises :class:`turngym.errors.ConfigError`
naming the dotted key, before any model is loaded; an old key fails naming its replacement.

Sections: ``model`` (policy + rollout backend), ``env``, ``rollout``, ``algo`` (recipe,
``advantage`` estimator, PPO ``loss``, ``opd``/SOD, critic, ``mismatch``), ``curriculum``
(none / tcod), ``optim``, ``sampler`` (uniform / difficulty), ``lora``, ``teacher``, ``ref``
(KL), ``eval``, ``checkpoint``, ``logging``, ``distributed`` (local vs Ray, engines, env
workers, async staleness; docs/scale-out.md).

The algorithm sections are the ``turngym.algos`` config classes themselves, so each default
exists once (:mod:`turngym.harness.config.sections`). Modules: ``sections`` (the section
models), ``train_config`` (:class:`TrainConfig` and its cross-section checks), ``load``
(YAML, overrides, error messages, renamed keys, dumping).
"""

from turngym.harness.config.load import (
    RENAMED,
    RENAMED_VALUES,
    apply_overrides,
    check_renamed,
    config_from_dict,
    dump_config,
    load_config,
)
from turngym.harness.config.sections import (
    ALGO_NAMES,
    RECIPE_ESTIMATOR,
    AlgoConfig,
    CheckpointConfig,
    CurriculumConfig,
    DistributedConfig,
    EnvConfig,
    EvalConfig,
    LoggingConfig,
    LoraConfig,
    ModelConfig,
    NoCurriculum,
    OptimConfig,
    RefConfig,
    RolloutSection,
    SamplerConfig,
    SFTConfig,
    TeacherConfig,
    UniformSampler,
    ValueConfig,
    WandbConfig,
    estimator_of,
)
from turngym.harness.config.train_config import TrainConfig

__all__ = [
    "ALGO_NAMES",
    "RECIPE_ESTIMATOR",
    "RENAMED",
    "RENAMED_VALUES",
    "AlgoConfig",
    "CheckpointConfig",
    "CurriculumConfig",
    "DistributedConfig",
    "EnvConfig",
    "EvalConfig",
    "LoggingConfig",
    "LoraConfig",
    "ModelConfig",
    "NoCurriculum",
    "OptimConfig",
    "RefConfig",
    "RolloutSection",
    "SFTConfig",
    "SamplerConfig",
    "TeacherConfig",
    "TrainConfig",
    "UniformSampler",
    "ValueConfig",
    "WandbConfig",
    "apply_overrides",
    "check_renamed",
    "config_from_dict",
    "dump_config",
    "estimator_of",
    "load_config",
]
