"""The typed training config: YAML + dotted command-line overrides.

``load_config("configs/quickstart.yaml", ["algo.name=gigpo", "env.id=turngym/Maze-v0"])``
returns a validated :class:`TrainConfig`. Every section is a pydantic model with
``extra="forbid"``: an unknown key or a bad value raises :class:`turngym.errors.ConfigError`
naming the dotted key, before any model is loaded.

Sections: ``model`` (policy + rollout backend), ``env``, ``rollout``, ``algo`` (advantage
estimator, PPO loss, OPD/SOD), ``curriculum`` (none / tcod_f2b / tcod_b2f), ``optim``,
``sampler`` (uniform / difficulty), ``lora``, ``teacher``, ``ref`` (KL), ``eval``,
``checkpoint``, ``logging``, ``distributed`` (local vs Ray, engines, env workers, async
staleness; docs/scale-out.md).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated, Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from turngym.algos.mismatch import MismatchConfig
from turngym.algos.task_sampler import TaskSamplerConfig
from turngym.errors import ConfigError

#: Advantage estimators the trainer knows; ``opd`` and ``gigpo+opd`` add the teacher term,
#: ``ppo`` adds a critic (a value head) and uses GAE (``turngym.algos.gae``).
ALGO_NAMES = ("grpo", "rloo", "reinforce_pp", "gigpo", "hgpo", "opd", "gigpo+opd", "ppo")


class _Section(BaseModel):
    model_config = ConfigDict(extra="forbid", validate_assignment=True, frozen=False)


class ModelConfig(_Section):
    """The policy model and the backend that generates rollouts with it."""

    path: str = "default"
    """HF model dir; ``default`` = SmolLM2-135M-Instruct (``turngym.agents.models.default_model_dir``),
    ``tiny`` = the tiny random Llama used in tests; a run dir (its newest checkpoint's
    model); or a hub id (``org/name``) in the local Hugging Face cache, never downloaded
    (``turngym.agents.models.hub_model_dir``; checked when training starts)."""
    backend: Literal["hf", "vllm"] = "hf"
    """Rollout backend (weights are synced into it after every update)."""
    dtype: Literal["float32", "bfloat16"] = "float32"
    """Learner dtype (float32 on CPU)."""
    device: Literal["auto", "cpu", "cuda"] = "auto"
    """Learner device for one process (``auto``: ``cuda`` when torch sees a GPU, else ``cpu``).
    Under torchrun each rank uses its local GPU or the CPU (``turngym.harness.distributed.fsdp``)."""
    gradient_checkpointing: bool = False


class EnvConfig(_Section):
    """Which env to train on and which tasks are train / held-out."""

    id: str = "turngym/Sokoban-v0"
    kwargs: dict[str, Any] = Field(default_factory=dict)
    """Constructor kwargs for ``envs.make``."""
    train_split: str = "train"
    eval_split: str = "test"
    num_train_tasks: int | None = Field(default=None, ge=1)
    """Use only the first N train tasks (None = all)."""


class RolloutSection(_Section):
    """Group sampling and generation settings (passed on to the rollout engine)."""

    tasks_per_step: int = Field(default=4, ge=1)
    group_size: int = Field(default=4, ge=1)
    max_turns: int = Field(default=8, ge=1)
    temperature: float = Field(default=1.0, ge=0.0, le=5.0)
    top_p: float = Field(default=1.0, gt=0.0, le=1.0)
    max_tokens: int = Field(default=48, ge=1, le=4096)
    history_length: int = Field(default=2, ge=0)
    max_prompt_tokens: int = Field(default=1536, ge=16)
    top_k: int = Field(default=-1, ge=-1)
    step_mode: Literal["auto", "inline", "threads", "processes"] = "auto"
    num_workers: int = Field(default=8, ge=1)
    env_timeout_s: float | None = Field(default=None, gt=0)
    max_parse_errors: int | None = Field(default=None, ge=1)

    def engine_config(self, env_id: str, env_kwargs: dict[str, Any], seed: int,
                      **override: Any) -> Any:
        """The rollout helper's :class:`turngym.harness.rollout.config.RolloutConfig` for this run."""
        from turngym.harness.rollout.config import RolloutConfig

        values = dict(env_id=env_id, env_kwargs=dict(env_kwargs), group_size=self.group_size,
                      max_turns=self.max_turns, temperature=self.temperature,
                      top_p=self.top_p, top_k=self.top_k, max_tokens=self.max_tokens,
                      seed=seed, history_length=self.history_length,
                      step_mode=self.step_mode, num_workers=self.num_workers,
                      env_timeout_s=self.env_timeout_s,
                      max_parse_errors=self.max_parse_errors)
        values.update(override)
        return RolloutConfig.build(**values)


class PPOLossConfig(_Section):
    """The clipped policy loss (mapped onto ``turngym.algos.ppo_loss.PPOLossConfig``)."""

    clip_low: float = Field(default=0.2, ge=0.0, le=1.0)
    clip_high: float = Field(default=0.28, ge=0.0, le=10.0)
    """Clip-higher (DAPO); set equal to ``clip_low`` for symmetric PPO."""
    dual_clip: float | None = Field(default=None, gt=1.0, le=100.0)
    agg: Literal["token-mean", "seq-mean-token-mean", "seq-mean-token-sum"] = "token-mean"
    kl_coef: float = Field(default=0.01, ge=0.0, le=10.0)
    """Weight of the KL to the reference model (the initial weights; ``ref.enabled`` follows
    it). 0.01 with k3, as the GiGPO paper: a trust region around the warm start for the
    small, noisy batches of turn-level RL (docs/training.md). 0 trains without a reference
    model."""
    kl_estimator: Literal["k1", "k2", "k3"] = "k3"
    entropy_coef: float = Field(default=0.0, ge=0.0, le=1.0)


class OPDConfig(_Section):
    """On-policy distillation: per-token ``beta * (teacher_lp - student_lp)`` advantage."""

    beta: float = Field(default=1.0, gt=0.0, le=100.0)
    rl_coef: float = Field(default=1.0, ge=0.0, le=100.0)
    """Weight of the RL advantage the OPD term is added to (gigpo+opd)."""
    sod: bool = True
    """Scale each turn's OPD term by SOD step weights (``turngym.algos.sod``)."""
    sod_delta: float = Field(default=0.2, ge=0.0, le=10.0)
    sod_eps: float = Field(default=1e-6, gt=0.0, le=1.0)


class ValueConfig(_Section):
    """PPO's critic (``algo.name: ppo``): a linear value head on the policy's final hidden
    state of each turn's last prompt token (``turngym.harness.learn.learner.ValueHead``).

    Loss ``coef * mean_b max((V_b - G_b)^2, (V_old_b + clip(V_b - V_old_b, -clip, clip) - G_b)^2)``
    over the turn samples (the clipped term only when ``clip`` is set; ``V_old`` is the value
    of the rollout-time pass, ``G`` the GAE return)."""

    coef: float = Field(default=0.5, gt=0.0, le=100.0)
    """Weight of the value loss."""
    lr: float = Field(default=1e-4, gt=0.0, le=1.0)
    """AdamW learning rate of the head (its own param group; the warmup schedule applies to it
    too). Adam moves every weight by about ``lr`` per step, so ``V`` moves by up to
    ``lr * (1 + |h|_1)`` per step: ~0.06 for SmolLM2-135M (``|h|_1`` ~ 640), ~0.01 for the
    tiny test model (~100)."""
    clip: float | None = Field(default=None, gt=0.0, le=100.0)
    """PPO value clipping range around ``V_old`` (None = off, the default)."""


class AlgoConfig(_Section):
    """Advantage estimator + loss. ``adv`` holds the estimator's own (validated) settings."""

    name: Literal["grpo", "rloo", "reinforce_pp", "gigpo", "hgpo", "opd", "gigpo+opd",
                  "ppo"] = "gigpo"
    adv: dict[str, Any] = Field(default_factory=dict)
    """Settings of the RL estimator's config class in ``turngym.algos.registry.ADVANTAGES``
    (e.g. ``gamma``, ``step_weight`` for gigpo); unknown keys fail at load time."""
    loss: PPOLossConfig = Field(default_factory=PPOLossConfig)
    opd: OPDConfig = Field(default_factory=OPDConfig)
    dynamic_sampling: bool = False
    """Drop groups whose rewards are all equal (DAPO)."""
    value: ValueConfig = Field(default_factory=ValueConfig)
    """The critic of ``ppo`` (ignored by the other algorithms)."""
    mismatch: MismatchConfig = Field(default_factory=MismatchConfig)
    """Train-inference mismatch correction of behaviour log-probs from engines that are not
    the learner (``turngym.algos.mismatch``; ``auto``: on for vllm/openai/Ray engines, off for hf)."""

    @property
    def rl_name(self) -> str | None:
        """The RL advantage estimator (None for pure ``opd``)."""
        return {"opd": None, "gigpo+opd": "gigpo", "ppo": "gae"}.get(self.name, self.name)

    @property
    def uses_critic(self) -> bool:
        """Whether the learner needs a value head (PPO with GAE)."""
        return self.name == "ppo"

    @property
    def uses_teacher(self) -> bool:
        return self.name in ("opd", "gigpo+opd")


class CurriculumConfig(_Section):
    """TCOD temporal curriculum: none, f2b (growing horizon) or b2f (shrinking expert prefix)."""

    name: Literal["none", "tcod_f2b", "tcod_b2f"] = "none"
    delta: int = Field(default=1, ge=1)
    """Δ: steps per curriculum stage."""
    k0: int = Field(default=1, ge=1)
    """f2b: student turns at step 0."""
    t_max: int | None = Field(default=None, ge=1)
    """f2b: longest student horizon (default ``rollout.max_turns``)."""


class SamplerConfig(TaskSamplerConfig):
    """Which train tasks each step plays: ``uniform`` (the default) or ``difficulty``
    (:class:`turngym.algos.task_sampler.DifficultySampler`: favour tasks solved about half the
    time; ``ema``, ``prior`` and ``min_weight`` apply to it only)."""

    name: Literal["uniform", "difficulty"] = "uniform"  # type: ignore[assignment]


class OptimConfig(_Section):
    """AdamW + PPO epochs/mini-batches."""

    lr: float = Field(default=1e-5, gt=0.0, le=1.0)
    betas: tuple[float, float] = (0.9, 0.999)
    weight_decay: float = Field(default=0.0, ge=0.0)
    grad_clip: float = Field(default=1.0, gt=0.0)
    warmup_steps: int = Field(default=0, ge=0)
    ppo_epochs: int = Field(default=1, ge=1)
    mini_batch_size: int = Field(default=512, ge=1)
    """Turn samples per optimiser step. The default makes one AdamW step per RL step for
    batches up to 512 turns: several fresh Adam steps on one small noisy batch move every
    weight by about ``lr`` each, whatever the signal (LEARNING-NOTES §2.4, docs/training.md)."""
    micro_batch_size: int = Field(default=4, ge=1)
    """Turn samples per forward pass; mini_batch_size / micro_batch_size = grad accumulation."""

    @model_validator(mode="after")
    def _check(self) -> OptimConfig:
        if self.micro_batch_size > self.mini_batch_size:
            raise ValueError("micro_batch_size must be <= mini_batch_size")
        if not all(0.0 <= b < 1.0 for b in self.betas):
            raise ValueError("betas must be in [0, 1)")
        return self


class LoraConfig(_Section):
    """Optional LoRA adapters (peft)."""

    enabled: bool = False
    r: int = Field(default=8, ge=1)
    alpha: int = Field(default=16, ge=1)
    dropout: float = Field(default=0.0, ge=0.0, lt=1.0)
    target_modules: list[str] = Field(default_factory=lambda: ["q_proj", "v_proj"])


class TeacherConfig(_Section):
    """The OPD teacher: any model dir scored with the hf backend."""

    path: str | None = None
    """Model dir (a larger model, or an SFT'd checkpoint's ``model`` dir); ``default``/``tiny``
    as for ``model.path``. Required by ``opd`` and ``gigpo+opd`` unless ``expert_hint``
    (then it defaults to ``model.path``: the student's start weights, frozen)."""
    expert_hint: bool = False
    """Score with an expert-informed prompt: the student's prompt plus the env's expert
    action for that state (``turngym.harness.learn.teacher_hint``)."""


class RefConfig(_Section):
    """Frozen reference model for the KL term (the initial policy weights)."""

    enabled: bool | None = None
    """None (default): on when a KL term uses it (``algo.loss.kl_coef > 0`` or REINFORCE++'s
    ``algo.adv.kl_coef > 0``); ``false`` with a KL term is refused."""


class EvalConfig(_Section):
    """Held-out evaluation every ``every`` steps (0 = only before and after training)."""

    every: int = Field(default=0, ge=0)
    num_tasks: int = Field(default=8, ge=1)
    temperature: float = Field(default=0.0, ge=0.0)
    """Validation temperature (0 = greedy)."""
    max_turns: int | None = Field(default=None, ge=1)
    at_start: bool = True


class CheckpointConfig(_Section):
    every: int = Field(default=0, ge=0)
    """Checkpoint every N steps (0 = only at the end)."""
    keep: int = Field(default=2, ge=1)
    resume_allow_changes: bool = False
    """Resume even when the config differs from the checkpoint's in a key that changes
    training (``algo``, ``optim``, ``rollout``, ``env``, ...); the CLI's ``--resume-changed``.
    Without it such a resume is refused with the list of differences."""


class SFTConfig(_Section):
    """``turngym sft``: supervised warm start on scripted-expert trajectories."""

    num_tasks: int = Field(default=64, ge=1)
    """Train tasks to collect one expert trajectory each on."""
    epochs: int = Field(default=2, ge=1)
    lr: float = Field(default=5e-5, gt=0.0, le=1.0)
    batch_size: int = Field(default=8, ge=1)
    """Turn samples per optimiser step (micro-batches of ``optim.micro_batch_size``)."""
    max_turns: int | None = Field(default=None, ge=1)
    """Turn budget of the expert's episodes (None: ``eval.max_turns``, else
    ``rollout.max_turns``): a training budget tighter than the eval's does not cut the
    demonstrations of the longest tasks."""
    out_dir: str | None = None
    """Where the SFT'd model goes (default: ``OUT_DIR/sft``); use it as ``model.path``."""


class WandbConfig(_Section):
    """Weights & Biases logging (``pip install 'turngym[wandb]'``; docs/training.md).
    ``logging.wandb=true`` is short for ``logging.wandb.enabled=true``. The wandb run gets
    the resolved config once, when it is created; a resumed training run continues the same
    wandb run (its id is kept in ``OUT_DIR/wandb/run-id``)."""

    enabled: bool = False
    project: str = Field(default="turngym", min_length=1, max_length=128)
    """W&B project (without ``/ \\ # ? % :``)."""
    entity: str | None = Field(default=None, min_length=1, max_length=128)
    """W&B team or user (None: the account's default entity)."""
    name: str | None = Field(default=None, min_length=1, max_length=128)
    """Run display name (None: the ``out_dir`` folder's name)."""
    tags: list[Annotated[str, Field(min_length=1, max_length=64)]] = Field(
        default_factory=list, max_length=100)
    mode: Literal["online", "offline", "disabled"] | None = None
    """None: ``$WANDB_MODE`` if set, else ``online`` when W&B credentials are found
    (``WANDB_API_KEY`` or a netrc entry for the W&B host), else ``offline`` (upload the
    ``OUT_DIR/wandb/offline-run-*`` folders later with ``wandb sync``)."""

    @field_validator("project")
    @classmethod
    def _project_chars(cls, value: str) -> str:
        bad = sorted(set(value) & set("/\\#?%:"))
        if bad:
            raise ValueError(f"a W&B project name cannot contain {' '.join(bad)}")
        return value


class LoggingConfig(_Section):
    tensorboard: bool = True
    """Scalars per step in ``OUT_DIR/tb``, and the resolved config as one text summary."""
    wandb: WandbConfig = Field(default_factory=WandbConfig)
    progress: bool = True
    plot: bool = True
    rollouts: Literal["all"] | Annotated[int, Field(ge=0, le=1_000_000)] = 4
    """Trajectories of each step written to ``rollouts.jsonl`` in the run dir (the
    ``turngym eval`` format plus a ``step`` key): ``all``, a number N (one per group in
    turn, so N <= groups gives N different tasks), or 0 for none."""

    @field_validator("wandb", mode="before")
    @classmethod
    def _wandb_shorthand(cls, value: Any) -> Any:
        return {"enabled": value} if isinstance(value, bool) else value


class DistributedConfig(_Section):
    """Scale-out (``turngym.harness.distributed``; docs/scale-out.md). The defaults run everything
    in this process; ``mode: ray`` puts env workers and engines into Ray actors."""

    mode: Literal["local", "ray"] = "local"
    """``local``: one process; ``ray``: env-worker actors + engine actors behind a router."""
    ray_address: str | None = None
    """``ray.init(address=...)``: None starts a local cluster, ``auto`` joins a running one."""
    num_env_workers: int = Field(default=1, ge=1, le=4096)
    """Env-worker actors; each holds an equal share of the concurrent episodes' envs."""
    resources_per_worker: dict[str, float] = Field(default_factory=lambda: {"num_cpus": 1.0})
    """Ray resources of each env-worker actor (``num_cpus``, ``memory``, custom keys)."""
    num_engines: int = Field(default=1, ge=1, le=1024)
    """Generation engine actors (``model.backend`` inside each); a router balances them."""
    tensor_parallel_size: int = Field(default=1, ge=1, le=64)
    """GPUs per vLLM engine actor (vLLM's ``tensor_parallel_size``); 1 on CPU."""
    engine_num_cpus: float = Field(default=1.0, ge=0.0)
    """CPUs reserved per engine actor."""
    weight_sync: Literal["broadcast", "object_store"] = "broadcast"
    """Learner -> engines after each update: ``broadcast`` over a process group of the
    trainer and the engines (gloo on CPU, NCCL on GPU), or Ray's ``object_store``."""
    async_staleness: int = Field(default=0, ge=0, le=16)
    """0 = synchronous. k > 0: rollouts for step n+1.. run while step n trains, with
    behaviour weights at most k updates old (truncated importance correction)."""
    is_clip: float = Field(default=2.0, ge=1.0, le=100.0)
    """C of the truncated importance weight min(pi_theta / pi_behav, C) (async mode)."""
    timeout_min: float = Field(default=180.0, gt=0.0, le=10080.0)
    """Under ``torchrun``: the process group's timeout. Learner ranks other than 0 wait in
    a collective while rank 0 rolls out and evaluates, so it must exceed those phases."""


class TrainConfig(_Section):
    """The whole training run."""

    seed: int = Field(default=0, ge=0)
    steps: int = Field(default=10, ge=0)
    out_dir: str = "runs/train"
    model: ModelConfig = Field(default_factory=ModelConfig)
    env: EnvConfig = Field(default_factory=EnvConfig)
    rollout: RolloutSection = Field(default_factory=RolloutSection)
    algo: AlgoConfig = Field(default_factory=AlgoConfig)
    curriculum: CurriculumConfig = Field(default_factory=CurriculumConfig)
    sampler: SamplerConfig = Field(default_factory=SamplerConfig)
    optim: OptimConfig = Field(default_factory=OptimConfig)
    lora: LoraConfig = Field(default_factory=LoraConfig)
    teacher: TeacherConfig = Field(default_factory=TeacherConfig)
    ref: RefConfig = Field(default_factory=RefConfig)
    eval: EvalConfig = Field(default_factory=EvalConfig)
    checkpoint: CheckpointConfig = Field(default_factory=CheckpointConfig)
    logging: LoggingConfig = Field(default_factory=LoggingConfig)
    sft: SFTConfig = Field(default_factory=SFTConfig)
    distributed: DistributedConfig = Field(default_factory=DistributedConfig)

    @model_validator(mode="after")
    def _cross_checks(self) -> TrainConfig:
        if self.algo.uses_teacher and not self.teacher.path:
            if not self.teacher.expert_hint:
                raise ValueError(f"algo.name={self.algo.name} needs teacher.path (a model dir) "
                                 "or teacher.expert_hint=true")
            self.teacher.path = self.model.path
        kl_reward = (self.algo.rl_name == "reinforce_pp"
                     and float(self.algo.adv.get("kl_coef") or 0) > 0)
        if self.ref.enabled is None:
            self.ref.enabled = self.algo.loss.kl_coef > 0 or kl_reward
        if self.algo.loss.kl_coef > 0 and not self.ref.enabled:
            raise ValueError("algo.loss.kl_coef > 0 needs ref.enabled=true (or set "
                             "algo.loss.kl_coef=0 to train without a reference model)")
        if kl_reward and not self.ref.enabled:
            raise ValueError("algo.adv.kl_coef > 0 (REINFORCE++ KL in the reward) needs "
                             "ref.enabled=true")
        return self


# ---------------------------------------------------------------------------- loading
def _parse_value(text: str) -> Any:
    """``"3"`` -> 3, ``"true"`` -> True, ``"[1,2]"`` -> [1, 2]; anything else stays text."""
    try:
        return yaml.safe_load(text)
    except yaml.YAMLError:
        return text


def apply_overrides(data: dict[str, Any], overrides: list[str]) -> dict[str, Any]:
    """Apply ``a.b.c=value`` overrides to a nested dict (values parsed as YAML)."""
    for item in overrides:
        key, sep, raw = item.partition("=")
        if not sep or not key.strip():
            raise ConfigError(f"bad override {item!r}: expected KEY=VALUE, e.g. algo.name=gigpo")
        parts = key.strip().split(".")
        node = data
        for i, part in enumerate(parts[:-1]):
            nxt = node.setdefault(part, {})
            if isinstance(nxt, bool) and _has_enabled(parts[:i + 1]):
                nxt = node[part] = {"enabled": nxt}  # `wandb: true`, then wandb.project=...
            if not isinstance(nxt, dict):
                raise ConfigError(f"bad override {item!r}: {'.'.join(parts[:i + 1])} is not a "
                                  "section")
            node = nxt
        node[parts[-1]] = _parse_value(raw)
    return data


def _has_enabled(loc: list[str]) -> bool:
    """Whether the section at ``loc`` of :class:`TrainConfig` has an ``enabled`` switch."""
    section = _section(tuple(loc), TrainConfig)
    return section is not None and "enabled" in section.model_fields


def _section(loc: tuple[Any, ...], root: type[BaseModel]) -> type[BaseModel] | None:
    """The config class at dotted location ``loc`` under ``root`` (None if not a section)."""
    cls: Any = root
    for part in loc:
        field = cls.model_fields.get(str(part)) if isinstance(cls, type) and issubclass(
            cls, BaseModel) else None
        if field is None:
            return None
        cls = field.annotation
    return cls if isinstance(cls, type) and issubclass(cls, BaseModel) else None


def _suggestion(err: dict[str, Any], root: type[BaseModel], prefix: str) -> str:
    """" (did you mean ...?)" for a misspelt key, or for a value given to a whole section
    (``model=tiny``: ``model.path=tiny``); "" when nothing is close."""
    import difflib

    loc = tuple(err["loc"])
    if err["type"] == "extra_forbidden":
        parent = _section(loc[:-1], root)
        if parent is None:
            return ""
        near = difflib.get_close_matches(str(loc[-1]), list(parent.model_fields), n=2)
        keys = [".".join([prefix, *map(str, loc[:-1]), k]).lstrip(".") for k in near]
        return f" (did you mean {' or '.join(keys)}?)" if keys else ""
    section = _section(loc, root)
    if section is not None and not isinstance(err.get("input"), dict):
        if "enabled" in section.model_fields:  # lora=..., logging.wandb=...: a switch
            key = ".".join([prefix, *map(str, loc), "enabled"]).lstrip(".")
            return f" (did you mean {key}=true?)"
        main = next((k for k in ("path", "id", "name") if k in section.model_fields), None)
        if main is not None:
            key = ".".join([prefix, *map(str, loc), main]).lstrip(".")
            return f" (did you mean {key}={err.get('input')}?)"
    return ""


def _error_text(exc: ValidationError, root: type[BaseModel] | None = None,
                prefix: str = "") -> str:
    root = root or TrainConfig
    lines = []
    for err in exc.errors():
        key = ".".join(str(p) for p in err["loc"]) or "(config)"
        msg = err["msg"]
        if err["type"] == "extra_forbidden":
            msg = "unknown key"
        elif err["type"] == "model_type":
            msg = "a section, not a value"
        if not err["loc"]:  # a cross-field check; its message names the keys
            lines.append(msg.removeprefix("Value error, "))
        elif err["type"] == "missing":
            lines.append(f"{key}: {msg}")
        else:
            hint = _suggestion(err, root, prefix) if isinstance(root, type) and issubclass(
                root, BaseModel) else ""
            msg = msg.removeprefix("Value error, ")
            lines.append(f"{key}: {msg} (got {err.get('input')!r}){hint}")
    return "; ".join(lines)


def _validate_adv(cfg: TrainConfig) -> None:
    """Check ``algo.adv`` against the registry's config class of the RL estimator."""
    if cfg.algo.rl_name is None:
        if cfg.algo.adv:
            raise ConfigError(f"algo.adv: algo.name=opd takes no advantage settings, got "
                              f"{sorted(cfg.algo.adv)}")
        return
    try:
        from turngym.algos.registry import ADVANTAGES
    except ImportError:  # the registry is optional at config time; checked again at run time
        return
    if cfg.algo.rl_name not in ADVANTAGES:
        raise ConfigError(f"algo.name: {cfg.algo.rl_name!r} is not in the algos registry "
                          f"({sorted(ADVANTAGES)})")
    cls = ADVANTAGES[cfg.algo.rl_name][0]
    try:
        cls(**cfg.algo.adv)
    except ValidationError as exc:
        detail = "; ".join(f"algo.adv.{e}" for e in _error_text(exc, cls, "algo.adv")
                           .split("; "))
        raise ConfigError(f"bad config: {detail}") from None
    except TypeError as exc:
        raise ConfigError(f"algo.adv: {exc}") from None


def advantage_config(cfg: TrainConfig) -> Any:
    """The registry config object for the RL estimator (None for pure OPD)."""
    if cfg.algo.rl_name is None:
        return None
    from turngym.algos.registry import ADVANTAGES

    return ADVANTAGES[cfg.algo.rl_name][0](**cfg.algo.adv)


def config_from_dict(data: dict[str, Any]) -> TrainConfig:
    """Validate a nested dict; errors become one :class:`ConfigError` naming each key."""
    try:
        cfg = TrainConfig.model_validate(data)
    except ValidationError as exc:
        raise ConfigError(f"bad config: {_error_text(exc)}") from None
    _validate_adv(cfg)
    from turngym.harness.runs import run_model_dir  # model.path=RUN_DIR: the run's newest model

    cfg.model.path = run_model_dir(cfg.model.path) or cfg.model.path
    cfg.teacher.path = run_model_dir(cfg.teacher.path)
    try:
        cfg.rollout.engine_config(cfg.env.id, cfg.env.kwargs, cfg.seed)
    except ImportError:  # the rollout engine is checked again when the run starts
        pass
    return cfg


def load_config(path: str | Path | None = None, overrides: list[str] | None = None
                ) -> TrainConfig:
    """Load YAML (optional), apply dotted overrides, validate."""
    data: dict[str, Any] = {}
    if path is not None:
        p = Path(path)
        if not p.is_file():
            raise ConfigError(f"config file {str(p)!r} does not exist")
        try:
            loaded = yaml.safe_load(p.read_text()) or {}
        except yaml.YAMLError as exc:
            raise ConfigError(f"config file {str(p)!r} is not valid YAML: {exc}") from None
        if not isinstance(loaded, dict):
            raise ConfigError(f"config file {str(p)!r} must hold a mapping at the top level")
        data = loaded
    return config_from_dict(apply_overrides(data, list(overrides or [])))


def dump_config(cfg: TrainConfig, path: str | Path) -> None:
    """Write the resolved config as YAML (round-trips through :func:`load_config`)."""
    Path(path).write_text(yaml.safe_dump(json.loads(cfg.model_dump_json()), sort_keys=False))
