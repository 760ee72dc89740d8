"""The whole training run's config (:class:`TrainConfig`) and its cross-section checks."""

from __future__ import annotations

from typing import Any

from pydantic import Field, field_validator, model_validator

from turngym.algos.reinforce_pp import ReinforcePPConfig
from turngym.harness.config.sections import (
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
    _Section,
    fill_name,
)


class TrainConfig(_Section):
    """The whole training run."""

    seed: int = Field(default=0, ge=0)
    steps: int = Field(default=10, ge=0)
    out_dir: str = "runs/train"
    model: ModelConfig = Field(default_factory=ModelConfig)
    env: EnvConfig = Field(default_factory=EnvConfig)
    rollout: RolloutSection = Field(default_factory=RolloutSection)
    algo: AlgoConfig = Field(default_factory=AlgoConfig)
    curriculum: CurriculumConfig = Field(default_factory=NoCurriculum)
    """TCOD temporal curriculum: ``name: none`` (the default) or ``name: tcod`` with
    ``mode`` f2b (growing horizon) or b2f (shrinking expert prefix)."""
    sampler: SamplerConfig = Field(default_factory=UniformSampler)
    """Which train tasks each step plays: ``name: uniform`` (the default) or ``difficulty``."""
    optim: OptimConfig = Field(default_factory=OptimConfig)
    lora: LoraConfig = Field(default_factory=LoraConfig)
    teacher: TeacherConfig = Field(default_factory=TeacherConfig)
    ref: RefConfig = Field(default_factory=RefConfig)
    eval: EvalConfig = Field(default_factory=EvalConfig)
    checkpoint: CheckpointConfig = Field(default_factory=CheckpointConfig)
    logging: LoggingConfig = Field(default_factory=LoggingConfig)
    sft: SFTConfig = Field(default_factory=SFTConfig)
    distributed: DistributedConfig = Field(default_factory=DistributedConfig)

    @field_validator("curriculum", mode="before")
    @classmethod
    def _curriculum_name(cls, value: Any) -> Any:
        return fill_name(value, "curriculum", "none", on="tcod")

    @field_validator("sampler", mode="before")
    @classmethod
    def _sampler_name(cls, value: Any) -> Any:
        return fill_name(value, "sampler", "uniform", on="difficulty")

    @model_validator(mode="after")
    def _cross_checks(self) -> TrainConfig:
        if self.algo.uses_teacher and not self.teacher.path:
            if not self.teacher.expert_hint:
                raise ValueError(f"algo.name={self.algo.name} needs teacher.path (a model dir) "
                                 "or teacher.expert_hint=true")
            self.teacher.path = self.model.path
        adv = self.algo.advantage
        kl_reward = isinstance(adv, ReinforcePPConfig) and adv.kl_coef > 0
        if self.ref.enabled is None:
            self.ref.enabled = self.algo.loss.kl_coef > 0 or kl_reward
        if self.algo.loss.kl_coef > 0 and not self.ref.enabled:
            raise ValueError("algo.loss.kl_coef > 0 needs ref.enabled=true (or set "
                             "algo.loss.kl_coef=0 to train without a reference model)")
        if kl_reward and not self.ref.enabled:
            raise ValueError("algo.advantage.kl_coef > 0 (REINFORCE++ KL in the reward) needs "
                             "ref.enabled=true")
        return self

