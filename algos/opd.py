"""On-policy distillation (OPD): the teacher scores the student's own samples.

Per response token ``y_t`` sampled by the student (Agarwal et al., arXiv 2306.13649; the
"on-policy distillation" recipe of Thinking Machines, 2025):

    A_t = beta * (log pi_teacher(y_t | ...) - log pi_student(y_t | ...))

which is ``-beta`` times a single-sample estimate of the per-token reverse KL
``KL(pi_student || pi_teacher)``. Used as the advantage of a policy-gradient loss, it pushes
the student towards tokens the teacher finds likelier. It is a fixed target: no gradient
flows through it. Masked tokens get 0.

Usable alone (``A = opd``) or added to any RL advantage broadcast to tokens
(:func:`mix_advantages`). SOD scales it per turn (:mod:`turngym.algos.sod`).

Worked example: student ``[-1.0, -2.0]``, teacher ``[-0.5, -3.0]``, beta 1 give
``A = [0.5, -1.0]``.
"""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from turngym.errors import ConfigError


class OPDConfig(BaseModel):
    """Config of the on-policy distillation term; the train config's ``algo.opd`` section is
    this class (``algo.name`` opd or gigpo+opd), so its defaults are the trainer's."""

    model_config = ConfigDict(extra="forbid", frozen=True)
    name: Literal["opd"] = "opd"
    beta: float = Field(1.0, gt=0.0, le=100.0)
    """Coefficient of the teacher-minus-student log-prob advantage."""
    rl_coef: float = Field(1.0, ge=0.0, le=100.0)
    """Weight of the RL advantage the OPD term is added to (gigpo+opd; pure ``opd`` has no
    RL term, so it does not apply there)."""
    sod: bool = True
    """Scale each turn's term by SOD step weights (:mod:`turngym.algos.sod`)."""
    sod_delta: float = Field(0.2, ge=0.0, le=10.0)
    """SOD: a turn's weight is at most ``1 + sod_delta``."""
    sod_eps: float = Field(1e-6, gt=0.0, le=1.0)
    """SOD: smoothing of the divergence ratio."""


def opd_advantage(student_lp_BT, teacher_lp_BT, mask_BT, beta: float):
    """``beta * (teacher - student)`` per token, 0 where masked (torch or numpy, no grad)."""
    if student_lp_BT.shape != teacher_lp_BT.shape or student_lp_BT.shape != mask_BT.shape:
        raise ConfigError(f"opd_advantage: shapes differ: student {tuple(student_lp_BT.shape)}, "
                          f"teacher {tuple(teacher_lp_BT.shape)}, mask {tuple(mask_BT.shape)}")
    if numel(student_lp_BT) == 0:
        raise ConfigError("empty batch: opd_advantage got no tokens")
    diff = teacher_lp_BT - student_lp_BT
    if hasattr(diff, "detach"):
        diff = diff.detach()
        return beta * diff * mask_BT.to(diff.dtype)
    return beta * diff * mask_BT.astype(diff.dtype)


def numel(x) -> int:
    """Number of elements of a torch tensor or numpy array."""
    return int(x.numel()) if hasattr(x, "numel") else int(x.size)


def mix_advantages(rl_adv_BT, opd_adv_BT, rl_coef: float = 1.0):
    """``rl_coef * rl_adv + opd_adv``: OPD added to any RL advantage broadcast to tokens."""
    if rl_adv_BT.shape != opd_adv_BT.shape:
        raise ConfigError(f"mix_advantages: RL advantage shape {tuple(rl_adv_BT.shape)} != "
                          f"OPD advantage shape {tuple(opd_adv_BT.shape)}")
    return rl_coef * rl_adv_BT + opd_adv_BT
