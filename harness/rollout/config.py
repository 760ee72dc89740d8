"""The typed config of the rollout engine (:class:`RolloutConfig`).

Unknown keys and out-of-range values raise :class:`turngym.errors.ConfigError` naming the key,
before any env or model is built.
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from turngym.errors import ConfigError

StepMode = Literal["auto", "inline", "threads", "processes"]


class RolloutConfig(BaseModel):
    """How :class:`turngym.harness.rollout.engine.RolloutEngine` runs episodes."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    env_id: str
    """Registered env id, e.g. ``turngym/Sokoban-v0``."""
    env_kwargs: dict[str, Any] = Field(default_factory=dict)
    """Constructor kwargs passed to :func:`envs.make`."""
    group_size: int = Field(default=1, ge=1, le=1024)
    """G: rollouts per (task_id, seed)."""
    max_turns: int | None = Field(default=None, ge=1)
    """Turn budget (the env's registered default when None); expert-prefix turns count."""
    # ---- sampling
    temperature: float = Field(default=1.0, ge=0.0, le=5.0)
    top_p: float = Field(default=1.0, gt=0.0, le=1.0)
    top_k: int = Field(default=-1, ge=-1)
    max_tokens: int = Field(default=256, ge=1, le=32768)
    """Max generated tokens per turn."""
    stop: tuple[str, ...] = ()
    seed: int = Field(default=0, ge=0)
    """Run seed: sampling seeds of every generate call are derived from it."""
    history_length: int = Field(default=2, ge=0)
    """Memory window of the agent (used when the engine builds the agent itself)."""
    # ---- env stepping
    step_mode: StepMode = "auto"
    """``inline`` steps envs one after another in this thread (fastest for microsecond
    envs, no timeout); ``threads``/``processes`` step them concurrently with a per-env
    timeout; ``auto`` picks ``threads`` when the env declares ``slow_steps = True`` or its
    reset takes more than ``inline_max_reset_s``, else ``inline``."""
    workers: Literal["local", "ray"] = "local"
    """``ray``: each env lives in a Ray actor (``step_mode`` is then ignored)."""
    num_workers: int = Field(default=8, ge=1, le=1024)
    """Threads of the ``threads`` pool."""
    env_timeout_s: float | None = Field(default=None, gt=0)
    """Per env call deadline (threads, processes, ray). None = wait forever."""
    inline_max_reset_s: float = Field(default=0.005, gt=0)
    """``auto``: envs whose mean reset is slower than this step in a thread pool."""
    scripted_processes: int = Field(default=0, ge=0, le=256)
    """Scripted policies only: play whole groups in this many worker processes
    (:mod:`turngym.harness.rollout.procs`; same trajectories, W cores). 0 or 1 = this process."""
    pipeline_splits: int = Field(default=2, ge=1, le=8)
    """With a concurrent pool, live episodes are split into this many micro-batches so
    that one micro-batch's env steps overlap the next one's generation (1 = off)."""
    pause_gc: bool = True
    """Pause Python's cyclic garbage collector during a run (reference counting still frees
    memory; cycles are collected after the run). With thousands of live Turn records the
    collector's full passes cost more than a fast env's step."""
    # ---- fault handling
    backend_retries: int = Field(default=3, ge=0, le=20)
    """Retries of a failed ``generate`` call before the run fails with BackendError."""
    backend_backoff_s: float = Field(default=1.0, ge=0.0)
    """First retry delay; it doubles on each retry."""
    max_parse_errors: int | None = Field(default=None, ge=1)
    """Stop an episode with ``parse_error`` after this many consecutive unparseable
    responses (None = never; they stay invalid turns)."""

    @model_validator(mode="after")
    def _check(self) -> RolloutConfig:
        if self.step_mode == "inline" and self.env_timeout_s is not None:
            raise ValueError("env_timeout_s cannot be enforced with step_mode='inline'; use "
                             "step_mode='threads' or 'processes', or unset env_timeout_s")
        return self

    @classmethod
    def build(cls, **values: Any) -> RolloutConfig:
        """Validate ``values``; errors become :class:`ConfigError` naming the key."""
        try:
            return cls(**values)
        except ValidationError as exc:
            parts = []
            for err in exc.errors():
                key = ".".join(str(p) for p in err["loc"]) or "rollout"
                parts.append(f"rollout.{key}: {err['msg']}")
            raise ConfigError("; ".join(parts)) from None
