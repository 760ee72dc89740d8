"""The sections of the train config (:class:`turngym.harness.config.TrainConfig`).

One config world: where a section configures an algorithm, the section IS the
``turngym.algos`` config class (``algo.loss`` is :class:`turngym.algos.ppo_loss.PPOLossConfig`,
``algo.advantage`` the estimator's class of :data:`turngym.algos.registry.AdvantageConfig`,
``algo.opd`` :class:`turngym.algos.opd.OPDConfig`, ``algo.mismatch``
:class:`turngym.algos.mismatch.MismatchConfig`, ``algo.state_graph``
:class:`turngym.algos.state_graph.StateGraphConfig`, ``curriculum``
:class:`turngym.algos.tcod.TCODConfig`, ``sampler``
:class:`turngym.algos.task_sampler.TaskSamplerConfig`), so each default is set once, in
``turngym.algos``. Sections with a choice of class are pydantic unions discriminated by
``name``. The ``rollout`` section reuses the fields of
:class:`turngym.harness.rollout.config.RolloutConfig` (:class:`RolloutSection`).

The sections below are the trainer's own settings (model, env, optimiser, logging, ...).
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator
from pydantic.fields import FieldInfo
from pydantic_core import PydanticCustomError

from turngym.algos.gigpo import GiGPOConfig
from turngym.algos.hgpo import HGPOConfig
from turngym.algos.mismatch import MismatchConfig
from turngym.algos.opd import OPDConfig
from turngym.algos.ppo_loss import PPOLossConfig
from turngym.algos.registry import ADVANTAGES, AdvantageConfig
from turngym.algos.reinforce_pp import ReinforcePPConfig
from turngym.algos.state_graph import StateGraphConfig
from turngym.algos.task_sampler import TaskSamplerConfig
from turngym.algos.tcod import TCODConfig
from turngym.harness.rollout.config import RolloutConfig, StepMode

#: The training recipes (``algo.name``); ``opd`` and ``gigpo+opd`` add the teacher term,
#: ``ppo`` adds a critic (a value head) and uses GAE (``turngym.algos.gae``).
#: Recipe -> its advantage estimator (a key of ``turngym.algos.registry.ADVANTAGES``, None
#: for pure OPD); a recipe not listed is its own estimator.
RECIPE_ESTIMATOR: dict[str, str | None] = {"opd": None, "gigpo+opd": "gigpo", "ppo": "gae"}

#: Every ``algo.name``: each registered estimator is a recipe of its own (a new estimator in
#: ``ADVANTAGES`` is one at once), except the critic's ``gae``, which ``ppo`` runs with its
#: value head; plus the composite recipes above.
ALGO_NAMES: tuple[str, ...] = tuple(
    n for n in ADVANTAGES if n != RECIPE_ESTIMATOR["ppo"]) + tuple(RECIPE_ESTIMATOR)


def estimator_of(recipe: str) -> str | None:
    """The advantage estimator of training recipe ``recipe`` (None for pure ``opd``)."""
    return RECIPE_ESTIMATOR.get(recipe, recipe)


def keyed_error(message: str) -> PydanticCustomError:
    """A validation error whose ``message`` names its keys itself (printed as it is)."""
    return PydanticCustomError("keyed", "{message}", {"message": message})


class _Section(BaseModel):
    model_config = ConfigDict(extra="forbid", validate_assignment=True, frozen=False)


class ModelConfig(_Section):
    """The policy model and the backend that generates rollouts with it."""

    path: str = "default"
    """HF model dir; ``default`` = SmolLM2-135M-Instruct
    (``turngym.agents.models.default_model_dir``), ``tiny`` = the tiny random Llama used in
    tests; a run dir (its newest checkpoint's model); or a hub id (``org/name``) in the
    local Hugging Face cache, never downloaded (``turngym.agents.models.hub_model_dir``;
    checked when training starts)."""
    backend: Literal["hf", "vllm"] = "hf"
    """Rollout backend (weights are synced into it after every update)."""
    dtype: Literal["float32", "bfloat16"] = "float32"
    """Learner dtype (float32 on CPU)."""
    device: Literal["auto", "cpu", "cuda"] = "auto"
    """Learner device for one process (``auto``: ``cuda`` when torch sees a GPU, else
    ``cpu``). Under torchrun each rank uses its local GPU or the CPU
    (``turngym.harness.distributed.fsdp``)."""
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


def _rollout_field(name: str, **changes: Any) -> Any:
    """:class:`RolloutConfig`'s field ``name`` (type bounds, description), with ``changes``."""
    return FieldInfo.merge_field_infos(RolloutConfig.model_fields[name], **changes)


class RolloutSection(_Section):
    """Group sampling and generation settings, passed on to the rollout engine.

    The fields shared with :class:`turngym.harness.rollout.config.RolloutConfig` (the
    engine's config, also used by ``turngym rollout`` and ``turngym eval``) are that
    class's fields, bounds included; this section changes only the defaults that make a
    training run, named here once: ``group_size`` 4 (GRPO needs a group; the engine's 1 is
    a plain rollout), ``max_turns`` 8 (the engine's None is the env's own budget) and
    ``max_tokens`` 48, today's training value: actions of the shipped envs take a few
    dozen tokens, and a shorter budget makes CPU rollouts and the learner's padded
    batches cheaper. The engine's 256 stays the default of standalone rollouts and of
    evaluation suites (``sampling.max_tokens``), which also serve chattier models.
    :meth:`engine_config` builds the engine's config from this section."""

    tasks_per_step: int = Field(default=4, ge=1)
    group_size: int = _rollout_field("group_size", default=4)
    max_turns: int = _rollout_field("max_turns", default=8)
    temperature: float = _rollout_field("temperature")
    top_p: float = _rollout_field("top_p")
    max_tokens: int = _rollout_field("max_tokens", default=48)
    history_length: int = _rollout_field("history_length")
    max_prompt_tokens: int = Field(default=1536, ge=16)
    """Longest prompt the agent builds (``turngym.agents.agent.Agent``); a longer one ends the
    episode."""
    top_k: int = _rollout_field("top_k")
    step_mode: StepMode = _rollout_field("step_mode")
    num_workers: int = _rollout_field("num_workers")
    env_timeout_s: float | None = _rollout_field("env_timeout_s")
    max_parse_errors: int | None = _rollout_field("max_parse_errors")

    def engine_config(self, env_id: str, env_kwargs: dict[str, Any], seed: int,
                      **override: Any) -> RolloutConfig:
        """The rollout engine's :class:`RolloutConfig` for this run."""
        values = {k: getattr(self, k) for k in type(self).model_fields
                  if k in RolloutConfig.model_fields}
        values.update(env_id=env_id, env_kwargs=dict(env_kwargs), seed=seed)
        values.update(override)
        return RolloutConfig.build(**values)


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
    """The training recipe: advantage estimator, loss, OPD/SOD, critic, mismatch correction.

    ``name`` is the recipe; ``advantage`` is its estimator's typed config (a member of
    :data:`turngym.algos.registry.AdvantageConfig`, chosen by its ``name``). Left out, or
    without ``name``, ``advantage.name`` is the recipe's estimator (:data:`RECIPE_ESTIMATOR`:
    ``gigpo+opd`` -> ``gigpo``, ``ppo`` -> ``gae``, ``opd`` -> none), so one
    ``advantage`` block follows an ``algo.name=...`` override; an ``advantage.name`` that
    contradicts the recipe fails naming both keys."""

    name: Literal[ALGO_NAMES] = "gigpo"  # type: ignore[valid-type]
    advantage: AdvantageConfig | None = Field(default_factory=lambda: ADVANTAGES["gigpo"][0]())
    """The estimator's settings (e.g. ``gamma``, ``step_weight`` for gigpo; the classes in
    ``turngym.algos.registry.ADVANTAGES``); unknown keys fail at load time. None for
    ``opd``."""
    loss: PPOLossConfig = Field(default_factory=PPOLossConfig)
    """The clipped policy loss (``turngym.algos.ppo_loss``), KL to the reference included."""
    opd: OPDConfig = Field(default_factory=OPDConfig)
    """On-policy distillation (``opd``, ``gigpo+opd``; ``turngym.algos.opd`` / ``sod``)."""
    dynamic_sampling: bool = False
    """Drop groups whose rewards are all equal (DAPO)."""
    value: ValueConfig = Field(default_factory=ValueConfig)
    """The critic of ``ppo`` (ignored by the other algorithms)."""
    mismatch: MismatchConfig = Field(default_factory=MismatchConfig)
    """Train-inference mismatch correction of behaviour log-probs from engines that are not
    the learner (``turngym.algos.mismatch``; ``auto``: on for vllm/openai/Ray engines, off
    for hf)."""
    state_graph: StateGraphConfig = Field(default_factory=StateGraphConfig)
    """A persistent map from ``state_key`` to running return statistics, kept across steps
    and saved in checkpoints, used as a baseline (``turngym.algos.state_graph``,
    ``turngym.algos.graph_credit``; docs/step-credit.md). Off by default."""

    @model_validator(mode="after")
    def _check_state_graph(self) -> AlgoConfig:
        g, adv = self.state_graph, self.advantage
        if not g.enabled:
            return self
        if adv is None:
            raise keyed_error(f"algo.state_graph.enabled: algo.name={self.name} has no RL "
                              "advantage for the graph to change; set "
                              "algo.state_graph.enabled=false")
        if g.mode == "singleton" and not isinstance(adv, GiGPOConfig | HGPOConfig):
            raise keyed_error(f"algo.state_graph.mode=singleton baselines GiGPO/HGPO's "
                              f"singleton step groups, but algo.name={self.name} has none: "
                              "use algo.name=gigpo or hgpo, or algo.state_graph.mode=value")
        if isinstance(adv, ReinforcePPConfig) and adv.kl_coef > 0:
            raise keyed_error("algo.state_graph.enabled: algo.advantage.kl_coef > 0 replaces "
                              "the per-turn advantage by a per-token one after credit, which "
                              "would drop the graph's term; set algo.advantage.kl_coef=0")
        return self

    @model_validator(mode="before")
    @classmethod
    def _fill_advantage(cls, data: Any) -> Any:
        if not isinstance(data, dict):
            return data
        recipe = data.get("name", cls.model_fields["name"].default)
        if recipe not in ALGO_NAMES:
            return data  # the name's own check reports it
        est = estimator_of(recipe)
        adv = data.get("advantage")
        if isinstance(adv, BaseModel):
            adv = adv.model_dump(exclude_unset=True) | {"name": getattr(adv, "name", None)}
        if est is None:
            if adv:
                raise keyed_error(f"algo.advantage: algo.name={recipe} takes no advantage "
                                  f"settings (it has no RL estimator), got {adv!r}")
            return {**data, "advantage": None}
        if adv is None:
            adv = {}
        if not isinstance(adv, dict):
            return data  # not a section: the field's own check reports it
        named = adv.get("name")
        if named is not None and named != est:
            hint = next((r for r in ALGO_NAMES if estimator_of(r) == named), None)
            fix = f" or set algo.name={hint}" if hint else ""
            raise keyed_error(f"algo.advantage.name={named} contradicts algo.name={recipe} "
                              f"(whose estimator is {est}): drop algo.advantage.name{fix}")
        return {**data, "advantage": {**adv, "name": est}}

    @property
    def rl_name(self) -> str | None:
        """The RL advantage estimator (None for pure ``opd``)."""
        return estimator_of(self.name)

    @property
    def uses_critic(self) -> bool:
        """Whether the learner needs a value head (PPO with GAE)."""
        return self.name == "ppo"

    @property
    def uses_teacher(self) -> bool:
        return self.name in ("opd", "gigpo+opd")


class NoCurriculum(_Section):
    """``curriculum.name: none``: every episode runs the full horizon."""

    name: Literal["none"] = "none"


#: ``curriculum``: none, or TCOD (:class:`turngym.algos.tcod.TCODConfig`: ``mode`` f2b or
#: b2f, ``delta``, ``k0``, ``t_max``; its defaults are the trainer's).
CurriculumConfig = Annotated[NoCurriculum | TCODConfig, Field(discriminator="name")]


class UniformSampler(_Section):
    """``sampler.name: uniform``: every train task equally likely (the default)."""

    name: Literal["uniform"] = "uniform"


#: ``sampler``: uniform, or ``difficulty`` (:class:`turngym.algos.task_sampler.TaskSamplerConfig`,
#: favouring tasks solved about half the time; ``ema``, ``prior``, ``min_weight``).
SamplerConfig = Annotated[UniformSampler | TaskSamplerConfig, Field(discriminator="name")]


def fill_name(value: Any, section: str, default: str, on: str) -> Any:
    """A discriminated section given as its name alone (``curriculum: none``) or as a mapping
    without ``name``: the mapping with ``name`` (``default`` when it is empty; settings
    without a name fail, naming ``on``, the name that takes them)."""
    if isinstance(value, str):
        return {"name": value}
    if isinstance(value, dict) and "name" not in value:
        if value:
            keys = " ".join(f"{section}.{k}" for k in value)
            raise keyed_error(f"{keys} needs {section}.name (e.g. {section}.name={on}; "
                              f"the default {default} takes no settings)")
        return {"name": default}
    return value


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
    ``algo.advantage.kl_coef > 0``); ``false`` with a KL term is refused."""


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
