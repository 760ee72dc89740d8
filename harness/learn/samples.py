"""From rollout records to training samples.

:func:`turn_batch` flattens groups of trajectories into the per-turn arrays
(:class:`turngym.algos.batch.TurnBatch`) that advantage estimators read; :func:`build_samples` pairs
each trainable turn with its per-token advantage (the turn's RL advantage broadcast over its
response tokens, plus per-token terms: OPD when a teacher scored it, or REINFORCE++'s
token-level advantage with the KL penalty in the reward) into :class:`Sample` rows for
the PPO update. Expert-prefix turns (``trainable=False``) stay in the batch for grouping
statistics only when masked out, and never become samples.
"""

from __future__ import annotations

import hashlib

import numpy as np
import torch

from turngym.algos.batch import TurnBatch
from turngym.algos.kl import kl_estimate
from turngym.algos.opd import opd_advantage
from turngym.algos.reinforce_pp import (
    ReinforcePPConfig,
    reinforce_pp_returns,
    reinforce_pp_token_advantage,
)
from turngym.algos.sod import sod_step_weights, turn_divergence
from turngym.harness.learn.learner import Sample
from turngym.harness.rollout.trajectory import Group, StopReason, Turn


def flat_turns(groups: list[Group]) -> tuple[list[Turn], list[int], list[int]]:
    """All turns in (group, trajectory, turn) order with their group and trajectory index."""
    rows: list[Turn] = []
    g_idx: list[int] = []
    t_idx: list[int] = []
    j = 0
    for gi, group in enumerate(groups):
        for traj in group.trajectories:
            for turn in traj.turns:
                rows.append(turn)
                g_idx.append(gi)
                t_idx.append(j)
            j += 1
    return rows, g_idx, t_idx


def turn_batch(groups: list[Group]) -> tuple[TurnBatch, list[Turn]]:
    """The :class:`TurnBatch` of all turns and the matching turns.

    A row is kept (``mask_N``) when it is a trainable turn with response tokens of an episode
    that did not end with ``env_error``: a crashed env says nothing about the policy, so
    such episodes enter no group statistic, advantage or loss (their groups are computed
    from the other trajectories; a group left with one trajectory has no baseline and gets 0).
    """
    rows, g_idx, t_idx = flat_turns(groups)
    crashed = {t.traj_id for g in groups for t in g.trajectories
               if t.stop_reason == StopReason.ENV_ERROR}
    batch = TurnBatch.from_lists(
        group=g_idx, traj=t_idx, turn=[r.turn for r in rows], reward=[r.reward for r in rows],
        state=[r.state_key for r in rows], valid=[r.action_valid for r in rows],
        mask=[r.trainable and len(r.response_ids) > 0 and r.traj_id not in crashed
              for r in rows],
        format_valid=[r.format_valid for r in rows])
    return batch, rows


def opd_token_adv(rows: list[Turn], mask_N: np.ndarray, traj_N: np.ndarray, beta: float,
                  sod: bool, delta: float, eps: float
                  ) -> tuple[list[np.ndarray], dict[str, float]]:
    """Per-token OPD advantage ``beta * (teacher - student)`` of each row (0 for rows without
    teacher log-probs), scaled by SOD step weights when ``sod``. Student = behaviour
    log-probs of the rollout."""
    out = [np.zeros(len(r.response_ids)) for r in rows]
    idx = [i for i, r in enumerate(rows) if mask_N[i] and r.teacher_logprobs is not None]
    if not idx:
        return out, {}
    T = max(len(rows[i].response_ids) for i in idx)
    s_BT = np.zeros((len(idx), T))
    t_BT = np.zeros((len(idx), T))
    m_BT = np.zeros((len(idx), T), dtype=bool)
    for b, i in enumerate(idx):
        n = len(rows[i].response_ids)
        s_BT[b, :n] = rows[i].response_logprobs
        t_BT[b, :n] = rows[i].teacher_logprobs
        m_BT[b, :n] = True
    adv_BT = opd_advantage(s_BT, t_BT, m_BT, beta)
    metrics = {"algo/opd_gap": float(turn_divergence(s_BT, t_BT, m_BT).mean()),
               "algo/opd_adv_mean": float(adv_BT[m_BT].mean()) if m_BT.any() else 0.0}
    if sod:
        turn_B = np.asarray([rows[i].turn for i in idx])
        w_B = sod_step_weights(s_BT, t_BT, m_BT, traj_N[idx], turn_B, delta=delta, eps=eps)
        adv_BT = adv_BT * w_B[:, None]
        metrics["algo/sod_weight_mean"] = float(w_B.mean())
    for b, i in enumerate(idx):
        out[i] = adv_BT[b, :len(rows[i].response_ids)].astype(np.float64)
    return out, metrics


def reinforce_pp_kl_token_adv(batch: TurnBatch, rows: list[Turn], mask_N: np.ndarray,
                              cfg: ReinforcePPConfig) -> tuple[list[np.ndarray], dict[str, float]]:
    """REINFORCE++ with the KL penalty inside the reward, per token of each kept row.

    Each row's turn return ``G`` (:func:`turngym.algos.reinforce_pp.reinforce_pp_returns`) lands on
    its last response token, every token gets ``-kl_coef * KL_t`` between the behaviour and
    the reference log-probs, and :func:`turngym.algos.reinforce_pp.reinforce_pp_token_advantage`
    whitens the token returns over the batch. Rows need ``ref_logprobs`` (``ref.enabled``).
    """
    out = [np.zeros(len(r.response_ids)) for r in rows]
    idx = [i for i, r in enumerate(rows) if mask_N[i] and r.response_ids]
    if not idx:
        return out, {}
    missing = [rows[i].traj_id for i in idx if rows[i].ref_logprobs is None]
    if missing:
        raise ValueError(f"REINFORCE++ KL reward needs reference log-probs; {len(missing)} "
                         f"turns have none (first: {missing[0]}); set ref.enabled=true")
    g_N = reinforce_pp_returns(batch, cfg)
    T = max(len(rows[i].response_ids) for i in idx)
    lp_BT, ref_BT = torch.zeros(len(idx), T, dtype=torch.float64), torch.zeros(
        len(idx), T, dtype=torch.float64)
    m_BT = torch.zeros(len(idx), T, dtype=torch.bool)
    for b, i in enumerate(idx):
        n = len(rows[i].response_ids)
        lp_BT[b, :n] = torch.tensor(rows[i].response_logprobs, dtype=torch.float64)
        ref_BT[b, :n] = torch.tensor(rows[i].ref_logprobs, dtype=torch.float64)
        m_BT[b, :n] = True
    adv_BT = reinforce_pp_token_advantage(g_N[idx], lp_BT, ref_BT, m_BT, cfg).numpy()
    for b, i in enumerate(idx):
        out[i] = adv_BT[b, :len(rows[i].response_ids)]
    kl = kl_estimate(lp_BT, ref_BT, cfg.kl_estimator)[m_BT]
    return out, {"algo/kl_reward_mean": float(kl.mean()),
                 "algo/token_adv_abs_mean": float(np.abs(adv_BT[m_BT.numpy()]).mean())}


def build_samples(rows: list[Turn], mask_N: np.ndarray, adv_N: np.ndarray | None,
                  token_adv: list[np.ndarray] | None, rl_coef: float = 1.0,
                  return_N: np.ndarray | None = None, value_N: np.ndarray | None = None
                  ) -> list[Sample]:
    """One :class:`Sample` per kept row: token adv = rl_coef * turn advantage + the per-token
    term of the row (OPD / REINFORCE++ KL; ``token_adv[i]`` has one value per token).
    With a critic (PPO), ``return_N[i]`` becomes the row's ``value_target`` and
    ``value_N[i]`` (the rollout-time ``V(s_t)``) its ``old_value``."""
    samples = []
    for i, r in enumerate(rows):
        if not mask_N[i]:
            continue
        T = len(r.response_ids)
        tok = np.full(T, rl_coef * float(adv_N[i]) if adv_N is not None else 0.0)
        if token_adv is not None:
            tok = tok + token_adv[i]
        samples.append(Sample(prompt_ids=list(r.prompt_ids), response_ids=list(r.response_ids),
                              old_logprobs=list(r.response_logprobs), adv=tok.tolist(),
                              ref_logprobs=r.ref_logprobs,
                              value_target=None if return_N is None else float(return_N[i]),
                              old_value=None if value_N is None else float(value_N[i])))
    return samples


def signal_metrics(batch: TurnBatch, mask_N: np.ndarray, adv_N: np.ndarray | None,
                   token_adv: list[np.ndarray] | None) -> dict[str, float]:
    """How many task groups carry learning signal: a kept row with a non-zero advantage
    (turn advantage or any per-token term). A group whose trajectories all succeed or all
    fail carries none under GRPO/RLOO, and the update skips it
    (``turngym.harness.learn.learner``)."""
    nonzero_N = np.zeros(len(batch), dtype=bool)
    if adv_N is not None:
        nonzero_N |= np.asarray(adv_N) != 0
    if token_adv is not None:
        nonzero_N |= np.asarray([bool(np.any(t != 0)) for t in token_adv], dtype=bool)
    groups = np.unique(batch.group_N[mask_N])
    live = np.unique(batch.group_N[mask_N & nonzero_N])
    return {"algo/signal_groups": float(len(live)),
            "algo/signal_groups_frac": float(len(live) / max(len(groups), 1))}


def batch_digest(samples: list[Sample]) -> str:
    """A short hash of the samples' ids and advantages (the resume test compares it)."""
    h = hashlib.sha256()
    for s in samples:
        h.update(np.asarray(s.prompt_ids + [-1] + s.response_ids, np.int64).tobytes())
        h.update(np.round(np.asarray(s.adv, np.float64), 9).tobytes())
        if s.value_target is not None:  # PPO: the critic's targets and values too
            h.update(np.round(np.asarray([s.value_target, s.old_value or 0.0]), 9).tobytes())
    return h.hexdigest()[:16]
