"""GiGPO: group-in-group policy optimisation (Feng et al., arXiv 2505.10978).

Two levels of groups inside one task group (the trajectories that share ``task_id`` and
seed):

1. Episode advantage ``A_E``: GRPO over the trajectories' returns ``R = sum_t r_t``
   (:func:`turngym.algos.grpo.episode_advantage`).
2. Step returns within each trajectory: ``R_t = sum_{k >= t} gamma^(k - t) r_k``
   (gamma default 0.95; no bootstrap, so a truncated episode's return is what it earned).
3. Step groups: the turns of one task group whose ``state_N`` (the ``state_key`` the turn
   acted from) is equal. That is the paper's anchor-state grouping; a trajectory that loops
   back to a state puts several of its own turns in one step group. ``A_S`` normalises
   ``R_t`` within its step group; a singleton step group gives ``A_S = 0``.
4. ``A = A_E + omega * A_S - p * [penalised turn]`` (omega default 1, p =
   ``invalid_penalty``, default 0.1).

``mode="mean_norm"`` subtracts the group mean at both levels; ``mode="mean_std_norm"``
also divides by the group std + eps (ddof 1, as ``torch.std`` in verl-agent). Rows with
``mask_N`` False (padding, duplicated rows, TCOD expert-prefix turns) are removed before
anything is computed: they are not part of any return, group or statistic, and get
``A = 0``. Step returns discount by position among a trajectory's kept rows. An empty batch
raises ``ConfigError``. Everything is vectorised (dense ids, np.bincount statistics, Horner's
rule over a turn-position table; see :mod:`turngym.algos.segments`);
``benchmarks/gigpo_speed.py`` measures it.

**The invalid-action penalty.** ``penalize`` picks the turns it hits: ``"format"``
(default) the turns whose response did not parse into an action (``format_valid_N``
False); ``"action"`` every turn the env could not apply (``valid_N`` False: a Maze move
into a wall, and also every format error, which never reaches the env). ``penalty_stage``
picks where it enters:

- ``"advantage"`` (default): ``A_E`` and ``A_S`` are computed from the unpenalised rewards
  and ``p`` is subtracted from the advantage of the penalised row only, after
  normalisation. A difference made by penalties alone is then exactly ``p`` in both modes.
- ``"reward"`` (the old behaviour, the paper's "penalty in the reward" reading):
  ``r'_t = r_t - p * [penalised turn]`` replaces ``r_t`` in steps 1-2, so the penalty
  enters every return of the trajectory up to that turn, and ``mean_std_norm`` rescales
  it: a task group whose trajectories all fail with returns ``0, 0, 0, -p`` gets
  ``A_E = +0.5, +0.5, +0.5, -1.5``, as large as solved vs. not solved in a mixed group,
  and ``A_S`` adds as much again wherever the step groups differ by the penalty alone.

Why these defaults. A malformed response is a property of the model's text alone; a wall
bump is a legal, well-formed move that is merely useless, and the success signal already
punishes it (with a tight turn budget a bump means failure). verl-agent marks a response
valid when it parses into an action (its Sokoban projection), so a wall bump is not
penalised there either. Applying ``p`` after normalisation keeps it a fixed, small
correction whatever the spread of the group: with 0/1 rewards the advantage gap between a
solved and a failed trajectory is 1 (``mean_norm``) or about 2 and more (``mean_std_norm``).
Keeping it out of the std division costs nothing the paper measured: its "w/o std" ablation
(1.5B) gives ALFWorld 86.1 vs 86.7 and WebShop success 67.4 vs 65.0, i.e. the division is
not what makes GiGPO work.

Differences from verl-agent (``compute_step_discounted_returns`` +
``apply_invalid_action_penalty`` + ``compute_gigpo_outcome_advantage``), which agree with
this module to float32 rounding when configured alike (``episode_stats="turn"``, no
penalised turn, at least two trajectories per task group):

- episode statistics: per trajectory here by default (Eq. 3 of the paper), per turn row
  there (``compute_mean_std_cross_steps=True``, long trajectories weigh more);
  ``episode_stats="turn"`` gives verl-agent's form.
- the penalty: verl-agent subtracts it from the offending row only, like
  ``penalty_stage="advantage"``, but from the row's episode score and its already
  discounted step return, i.e. *before* the group normalisation, which still scales it;
  here it is subtracted after. ``penalty_stage="reward"`` instead puts it into the turn
  reward, so it reaches the returns of all earlier turns and of the whole trajectory.
- ``is_action_valid`` there comes from the env's text projection; the Sokoban one marks a
  response valid when it parses into a move (``penalize="format"``), so a wall bump is valid.

Worked example (``GiGPOConfig(mode="mean_norm", gamma=0.5)``; omega 1, penalty 0.1 on
format errors after normalisation). One task group, two trajectories; states ``s0, s1, s2``:

    traj A: s0 -> s1, s1 (unparseable response: no env step), s1 -> won   rewards 0, 0, 1
    traj B: s0 -> s2, s2 -> truncated                                      rewards 0, 0

- returns ``R_A = 1``, ``R_B = 0``, mean 0.5, so ``A_E = +0.5`` for A's turns and ``-0.5``
  for B's.
- step returns (gamma 0.5): A ``[0.25, 0.5, 1.0]``, B ``[0, 0]``.
- step groups: s0 ``{A0: 0.25, B0: 0}`` (mean 0.125), s1 ``{A1: 0.5, A2: 1.0}`` (mean
  0.75), s2 ``{B1}`` (singleton): ``A_S`` = A ``[0.125, -0.25, 0.25]``, B ``[-0.125, 0]``.
- ``A_E + A_S`` = A ``[0.625, 0.25, 0.75]``, B ``[-0.625, -0.5]``; the format error A1
  loses 0.1: ``A`` = A ``[0.625, 0.15, 0.75]``, B ``[-0.625, -0.5]``. 3 step groups, mean
  size 5/3, singleton fraction 1/3.
- had A1 been a wall bump (format valid, ``valid_N`` False), nothing is subtracted:
  A ``[0.625, 0.25, 0.75]``; with ``penalize="action"`` it is 0.15 again.
- ``penalty_stage="reward"`` (either ``penalize``): rewards A ``[0, -0.1, 1]``, returns
  0.9 and 0, ``A_E = +-0.45``, step returns A ``[0.2, 0.4, 1.0]``, ``A_S`` = A
  ``[0.1, -0.3, 0.3]``, B ``[-0.1, 0]``: ``A`` = A ``[0.55, 0.15, 0.75]``,
  B ``[-0.55, -0.45]``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import numpy as np
from pydantic import BaseModel, ConfigDict, Field

from turngym.algos.batch import TurnBatch
from turngym.algos.grouping import dense_ids, subtract_baseline
from turngym.algos.grpo import episode_advantage, episode_metrics, scatter
from turngym.algos.result import AdvantageResult
from turngym.algos.segments import Segments, discounted_suffix_sum, segments


class GiGPOConfig(BaseModel):
    """Config of :func:`gigpo_advantage`."""

    model_config = ConfigDict(extra="forbid", frozen=True)
    name: Literal["gigpo"] = "gigpo"
    mode: Literal["mean_norm", "mean_std_norm"] = "mean_std_norm"
    """Normalise by the group mean only, or by mean and std (the paper's main form)."""
    gamma: float = Field(0.95, ge=0.0, le=1.0)
    """Discount of the step returns."""
    step_weight: float = Field(1.0, ge=0.0, le=10.0)
    """omega, the weight of the step advantage."""
    invalid_penalty: float = Field(0.1, ge=0.0, le=10.0)
    """p, subtracted for each penalised turn (which: ``penalize``; where: ``penalty_stage``)."""
    penalize: Literal["format", "action"] = "format"
    """Which turns the penalty hits: responses that did not parse into an action
    (``format_valid_N`` False), or every action the env could not apply (``valid_N`` False:
    wall bumps and format errors alike)."""
    penalty_stage: Literal["advantage", "reward"] = "advantage"
    """Subtract p from the penalised row's advantage after normalisation (a penalty-only
    difference stays exactly p), or from its reward before anything (the old behaviour:
    it enters the returns and is rescaled by ``mean_std_norm``)."""
    eps: float = Field(1e-6, gt=0.0, le=1.0)
    """Added to the std before dividing (mean_std_norm)."""
    episode_stats: Literal["trajectory", "turn"] = "trajectory"
    """Episode statistics over one value per trajectory, or per turn row (verl-agent)."""
    unbiased_std: bool = True
    """Use the unbiased (ddof=1) std, as torch.std does."""


def gigpo_advantage(batch: TurnBatch, cfg: GiGPOConfig) -> AdvantageResult:
    """GiGPO advantage ``A_E + omega * A_S`` (``- p`` on penalised rows) of every turn row.

    See the module docstring for the penalty's two stages and the worked example.
    """
    parts = gigpo_parts(batch, cfg)
    seg = parts.seg
    # Step level: discounted returns, grouped by (task group, anchor state).
    sid_M, num_steps = dense_ids(seg.group_J[seg.traj_M], batch.state_N[seg.rows_M])
    adv_s_M = step_advantage(parts.step_return_M, sid_M, num_steps, cfg)
    return gigpo_result(batch, cfg, parts, adv_s_M, sid_M, num_steps)


@dataclass(frozen=True)
class GiGPOParts:
    """Everything but the step groups: steps 1-2 of the module docstring.

    Public so that :mod:`turngym.algos.hgpo`, which only changes the step groups, reuses it.
    """

    seg: Segments
    """The kept rows, sorted by trajectory and turn (every ``_M`` array follows them)."""
    hit_M: np.ndarray
    """bool, rows the penalty hits (``penalize``)."""
    adv_e_M: np.ndarray
    """Episode advantage ``A_E`` of each row."""
    return_J: np.ndarray
    """Episode return of each trajectory (with the penalty when ``penalty_stage="reward"``)."""
    step_return_M: np.ndarray
    """Discounted step return ``R_t`` of each row."""


def gigpo_parts(batch: TurnBatch, cfg: GiGPOConfig) -> GiGPOParts:
    """Penalised rows, the episode advantage and the discounted step returns."""
    seg = segments(batch)
    rows = seg.rows_M
    ok_N = batch.format_valid_N if cfg.penalize == "format" else batch.valid_N
    hit_M = ~ok_N[rows]  # rows the penalty hits
    reward_M = batch.reward_N[rows]
    if cfg.penalty_stage == "reward":
        reward_M = reward_M - cfg.invalid_penalty * hit_M
    norm = "mean" if cfg.mode == "mean_norm" else "mean_std"
    # Episode level: GRPO over the trajectories of each task group.
    adv_e_M, return_J = episode_advantage(seg, reward_M, norm=norm, stats=cfg.episode_stats,
                                          eps=cfg.eps, unbiased_std=cfg.unbiased_std)
    step_return_M = discounted_suffix_sum(reward_M, seg.end_M, cfg.gamma)
    return GiGPOParts(seg=seg, hit_M=hit_M, adv_e_M=adv_e_M, return_J=return_J,
                      step_return_M=step_return_M)


def step_advantage(step_return_M: np.ndarray, sid_M: np.ndarray, num_steps: int,
                   cfg: GiGPOConfig) -> np.ndarray:
    """``A_S``: the step returns normalised within their step group (``cfg.mode``)."""
    norm = "mean" if cfg.mode == "mean_norm" else "mean_std"
    ddof = 1 if cfg.unbiased_std else 0
    return subtract_baseline(step_return_M, sid_M, num_steps, norm, eps=cfg.eps, ddof=ddof)


def gigpo_result(batch: TurnBatch, cfg: GiGPOConfig, parts: GiGPOParts, adv_s_M: np.ndarray,
                 sid_M: np.ndarray, num_steps: int) -> AdvantageResult:
    """Step 4, ``A = A_E + omega * A_S - p * [penalised]``, and the metrics.

    ``sid_M`` / ``num_steps`` are the step groups the size metrics describe.
    """
    seg, hit_M, adv_e_M = parts.seg, parts.hit_M, parts.adv_e_M
    rows = seg.rows_M
    adv_M = adv_e_M + cfg.step_weight * adv_s_M
    if cfg.penalty_stage == "advantage":  # after normalisation: never rescaled
        adv_M = adv_M - cfg.invalid_penalty * hit_M
    metrics = episode_metrics(seg, parts.return_J, adv_M)
    metrics.update(step_metrics(sid_M, num_steps, adv_e_M, adv_s_M, parts.step_return_M))
    metrics["algo/invalid_frac"] = float(np.mean(~batch.valid_N[rows]))
    metrics["algo/format_error_frac"] = float(np.mean(~batch.format_valid_N[rows]))
    metrics["algo/penalized_frac"] = float(np.mean(hit_M))
    return AdvantageResult(adv_N=scatter(adv_M, seg, len(batch)), metrics=metrics)


def step_metrics(sid_M: np.ndarray, num_steps: int, adv_e_M: np.ndarray, adv_s_M: np.ndarray,
                 step_return_M: np.ndarray) -> dict[str, float]:
    """Step-group size statistics and the spread of both advantage parts."""
    size_S = np.bincount(sid_M, minlength=num_steps)
    return {
        "algo/step_groups": float(num_steps),
        "algo/step_group_size_mean": float(size_S.mean()),
        "algo/step_group_size_max": float(size_S.max()),
        "algo/step_group_singleton_frac": float(np.mean(size_S == 1)),
        "algo/step_return_mean": float(step_return_M.mean()),
        "algo/episode_adv_std": float(adv_e_M.std()),
        "algo/step_adv_std": float(adv_s_M.std()),
    }
