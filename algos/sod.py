"""SOD step weights: scale each turn's on-policy-distillation term (arXiv 2605.07725).

For one trajectory with turns ``k = 1..K`` (in turn order), the divergence of turn ``k`` is
the mean absolute student-teacher log-prob gap over the tokens of that turn:

    d_k = mean_t |log pi_student(y_t) - log pi_teacher(y_t)|

and its weight is

    w_1 = 1,    w_k = min((d_1 + eps) / (d_k + eps), 1 + delta)      (delta 0.2, eps 1e-6)

so a turn where the student has drifted further from the teacher than on its first turn
gets a smaller weight (its teacher signal is less reliable off the teacher's distribution),
and no turn gets more than ``1 + delta``. The OPD term of turn ``k``
(:func:`turngym.algos.opd.opd_advantage`) is multiplied by ``w_k``.

Rows are turns: ``(B, T)`` token arrays plus ``traj_B`` / ``turn_B``; rows may come in any
order. The first turn is the row with the smallest ``turn_B`` of its trajectory (pass only
student turns, not TCOD expert-prefix turns). A row with no masked-in token has ``d = 0``.
If ``d_1 = 0`` later turns with a gap get a weight near 0 (``eps / (d_k + eps)``).
An empty batch raises ``ConfigError``.

Worked example (delta 0.2): ``d = [0.5, 1.0, 0.25]`` give
``w = [1, 0.5, min(2.0, 1.2)] = [1, 0.5, 1.2]`` (up to eps).
"""

from __future__ import annotations

from typing import Literal

import numpy as np
from pydantic import BaseModel, ConfigDict, Field

from turngym.algos.grouping import dense_ids
from turngym.algos.opd import OPDConfig, numel, opd_advantage
from turngym.errors import ConfigError

_OPD = OPDConfig.model_fields
#: SOD's defaults are :class:`turngym.algos.opd.OPDConfig`'s (``sod_delta``, ``sod_eps``),
#: the trainer's ``algo.opd`` section: set once, there.
DELTA: float = _OPD["sod_delta"].default
EPS: float = _OPD["sod_eps"].default


class SODConfig(BaseModel):
    """Config of SOD-weighted on-policy distillation (:func:`sod_opd_advantage`); defaults
    from :class:`turngym.algos.opd.OPDConfig` (``beta``, ``sod_delta``, ``sod_eps``)."""

    model_config = ConfigDict(extra="forbid", frozen=True)
    name: Literal["sod"] = "sod"
    beta: float = Field(_OPD["beta"].default, gt=0.0, le=100.0)
    """OPD coefficient."""
    delta: float = Field(DELTA, ge=0.0, le=10.0)
    """A turn's weight is at most ``1 + delta``."""
    eps: float = Field(EPS, gt=0.0, le=1.0)
    """Smoothing of the divergence ratio."""


def _np(x) -> np.ndarray:
    return x.detach().cpu().double().numpy() if hasattr(x, "detach") else np.asarray(x, float)


def turn_divergence(student_lp_BT, teacher_lp_BT, mask_BT) -> np.ndarray:
    """``d_B``: mean |student - teacher| log-prob gap over each row's masked-in tokens."""
    s, t, m = _np(student_lp_BT), _np(teacher_lp_BT), _np(mask_BT)
    if s.shape != t.shape or s.shape != m.shape:
        raise ConfigError(f"SOD: shapes differ: student {s.shape}, teacher {t.shape}, "
                          f"mask {m.shape}")
    if s.size == 0:
        raise ConfigError("empty batch: SOD step weights need at least one turn")
    return (np.abs(s - t) * m).sum(axis=1) / np.maximum(m.sum(axis=1), 1.0)


def sod_step_weights(student_lp_BT, teacher_lp_BT, mask_BT, traj_B, turn_B,
                     delta: float = DELTA, eps: float = EPS) -> np.ndarray:
    """``w_B``, the SOD weight of each turn row (float64; see the module docstring)."""
    d_B = turn_divergence(student_lp_BT, teacher_lp_BT, mask_BT)
    traj_B, turn_B = np.asarray(traj_B), np.asarray(turn_B)
    if len(traj_B) != len(d_B) or len(turn_B) != len(d_B):
        raise ConfigError(f"SOD: traj_B has {len(traj_B)} and turn_B {len(turn_B)} entries, "
                          f"expected one per row ({len(d_B)})")
    tid_B, num_traj = dense_ids(traj_B)
    order = np.lexsort((turn_B, tid_B))
    first = np.ones(len(order), bool)
    first[1:] = tid_B[order][1:] != tid_B[order][:-1]
    d1_J = np.empty(num_traj)
    d1_J[tid_B[order][first]] = d_B[order][first]
    w_B = np.minimum((d1_J[tid_B] + eps) / (d_B + eps), 1.0 + delta)
    w_B[order[first]] = 1.0
    return w_B


def sod_opd_advantage(student_lp_BT, teacher_lp_BT, mask_BT, traj_B, turn_B, cfg: SODConfig):
    """OPD advantage with each row scaled by its SOD weight (same array type as the input)."""
    if numel(student_lp_BT) == 0:
        raise ConfigError("empty batch: sod_opd_advantage got no tokens")
    w_B = sod_step_weights(student_lp_BT, teacher_lp_BT, mask_BT, traj_B, turn_B,
                           cfg.delta, cfg.eps)
    adv_BT = opd_advantage(student_lp_BT, teacher_lp_BT, mask_BT, cfg.beta)
    if hasattr(adv_BT, "detach"):
        import torch

        return adv_BT * torch.as_tensor(w_B, dtype=adv_BT.dtype, device=adv_BT.device)[:, None]
    return adv_BT * w_B[:, None]
