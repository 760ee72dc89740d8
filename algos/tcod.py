"""TCOD temporal curricula: how much of an episode the student plays at step n (arXiv 2604.24005).

- ``f2b`` (front to back): the student acts for the first

      k(n) = min(T_max, k0 + floor(n / Delta))

  turns at training step n, then the episode is cut (stop reason ``horizon``). k0 defaults to
  1, which gives DESIGN.md's ``min(T, 1 + floor(n / Delta))``.
- ``b2f`` (back to front): the first

      c(n) = max(0, L_expert - 1 - floor(n / Delta))

  actions of the expert's solution (length ``L_expert``) are replayed as untrainable turns,
  then the student acts to the end. Early on the student only has to finish the last step.

Evaluation always runs the full horizon: ``horizon(n, training=False)`` is ``None`` (no
cut) and ``prefix(n, L, training=False)`` is 0. Both schedulers are pure functions of the
step; ``state_dict`` / ``load_state_dict`` carry their config and the current ``step`` so a
resumed run continues the same schedule.

Worked example: f2b with T_max 5, Delta 10, k0 1 gives k = 1 for n = 0..9, 2 for n = 10..19,
..., 5 from n = 40 on. b2f with Delta 10 and L_expert 4 gives c = 3, 2, 1, 0 for
n = 0, 10, 20, 30 and 0 after.
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from turngym.errors import CheckpointError, ConfigError


class TCODConfig(BaseModel):
    """Config of a TCOD curriculum; the train config's ``curriculum`` section is this class
    (``curriculum.name: tcod``), so its defaults are the trainer's.

    ``delta`` defaults to 1, the value training runs have always used (the train config's
    default before it held this class): one stage per step suits the short runs turn-level
    RL makes on a CPU; the paper's schedules are longer (``delta=10`` in the worked example
    above)."""

    model_config = ConfigDict(extra="forbid", frozen=True)
    name: Literal["tcod"] = "tcod"
    mode: Literal["f2b", "b2f"] = "f2b"
    """Front-to-back horizon growth, or back-to-front expert-prefix shrinking."""
    delta: int = Field(1, ge=1, le=1_000_000)
    """Delta: training steps per curriculum stage."""
    t_max: int | None = Field(None, ge=1, le=100_000)
    """T_max: the longest student horizon (f2b); None = the episode's turn budget
    (``max_turns`` of :func:`make_schedule`; the trainer passes ``rollout.max_turns``)."""
    k0: int = Field(1, ge=1, le=100_000)
    """Student turns at step 0 (f2b)."""


class F2BSchedule:
    """Front-to-back horizon: ``k(n) = min(t_max, k0 + n // delta)``."""

    def __init__(self, t_max: int, delta: int, k0: int = 1) -> None:
        if t_max < 1 or delta < 1 or k0 < 1:
            raise ConfigError(f"F2BSchedule needs t_max, delta, k0 >= 1; got t_max={t_max}, "
                              f"delta={delta}, k0={k0}")
        self.t_max, self.delta, self.k0 = t_max, delta, k0
        self.step = 0

    def horizon(self, step: int | None = None, *, training: bool = True) -> int | None:
        """Student turns at ``step`` (default: the current step); None (no cut) when evaluating."""
        if not training:
            return None
        n = self.step if step is None else step
        if n < 0:
            raise ConfigError(f"training step must be >= 0, got {n}")
        return min(self.t_max, self.k0 + n // self.delta)

    def advance(self) -> None:
        """Move to the next training step."""
        self.step += 1

    def state_dict(self) -> dict[str, Any]:
        """Config and progress, for checkpoints."""
        return {"mode": "f2b", "t_max": self.t_max, "delta": self.delta, "k0": self.k0,
                "step": self.step}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Restore :meth:`state_dict`; raises ``CheckpointError`` on a config mismatch."""
        _check_state(state, {"mode": "f2b", "t_max": self.t_max, "delta": self.delta,
                             "k0": self.k0})
        self.step = int(state["step"])


class B2FSchedule:
    """Back-to-front expert prefix: ``c(n) = max(0, L_expert - 1 - n // delta)``."""

    def __init__(self, delta: int) -> None:
        if delta < 1:
            raise ConfigError(f"B2FSchedule needs delta >= 1, got delta={delta}")
        self.delta = delta
        self.step = 0

    def prefix(self, step: int | None, expert_len: int, *, training: bool = True) -> int:
        """Expert actions to replay before the student acts; 0 when evaluating."""
        if expert_len < 0:
            raise ConfigError(f"expert_len must be >= 0, got {expert_len}")
        if not training:
            return 0
        n = self.step if step is None else step
        if n < 0:
            raise ConfigError(f"training step must be >= 0, got {n}")
        return max(0, expert_len - 1 - n // self.delta)

    def advance(self) -> None:
        """Move to the next training step."""
        self.step += 1

    def state_dict(self) -> dict[str, Any]:
        """Config and progress, for checkpoints."""
        return {"mode": "b2f", "delta": self.delta, "step": self.step}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Restore :meth:`state_dict`; raises ``CheckpointError`` on a config mismatch."""
        _check_state(state, {"mode": "b2f", "delta": self.delta})
        self.step = int(state["step"])


def make_schedule(cfg: TCODConfig, max_turns: int | None = None) -> F2BSchedule | B2FSchedule:
    """The scheduler a :class:`TCODConfig` describes; ``max_turns`` is f2b's ``T_max`` when
    ``cfg.t_max`` is None."""
    if cfg.mode == "f2b":
        t_max = cfg.t_max or max_turns
        if t_max is None:
            raise ConfigError("TCOD f2b needs t_max (or make_schedule(cfg, max_turns=...))")
        return F2BSchedule(t_max=t_max, delta=cfg.delta, k0=cfg.k0)
    return B2FSchedule(delta=cfg.delta)


def _check_state(state: dict[str, Any], expected: dict[str, Any]) -> None:
    if "step" not in state:
        raise CheckpointError("curriculum state has no 'step'")
    for key, want in expected.items():
        if state.get(key) != want:
            raise CheckpointError(f"curriculum state has {key}={state.get(key)!r} but this run's "
                                  f"config has {want!r}; resume with the same curriculum config")
