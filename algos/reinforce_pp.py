"""REINFORCE++: returns normalised over the whole batch, no critic (Hu, arXiv 2501.03262).

Turn level (:func:`reinforce_pp_advantage`, the registry entry). For the kept turn rows of
each trajectory, the return is ``G_t = sum_{k >= t} gamma^(k - t) r_k`` (gamma default 1,
as in the paper), and the advantage is normalised over *all* kept rows of the batch, not per
group:

    A_t = (G_t - mean_batch(G)) / (std_batch(G) + eps)        (std with ddof 0, eps 1e-8)

Token level with a KL penalty in the reward (:func:`reinforce_pp_token_advantage`, used
when ``kl_coef > 0``): each response token gets reward ``-kl_coef * KL_t`` (``KL_t`` from
:func:`turngym.algos.kl.kl_estimate`, k1 as in the paper), the last response token also gets the
turn's return ``G``; token returns are the discounted suffix sums within the row, and the
advantage is whitened over all masked tokens of the batch.

Edge cases: a batch whose returns are all equal gets all-zero advantages; rows with
``mask_N`` False are left out and get 0; an empty batch raises ``ConfigError``.

Worked example (gamma=1): two one-turn trajectories with rewards 1 and 0 give G = [1, 0],
mean 0.5, std 0.5, ``A = [0.5/(0.5+1e-8), -0.5/(0.5+1e-8)] ~ [1, -1]``.
"""

from __future__ import annotations

from typing import Literal

import numpy as np
from pydantic import BaseModel, ConfigDict, Field

from turngym.algos.batch import TurnBatch
from turngym.algos.grpo import episode_metrics, scatter
from turngym.algos.kl import kl_estimate
from turngym.algos.result import AdvantageResult
from turngym.algos.segments import discounted_suffix_sum, segments, traj_sums
from turngym.errors import ConfigError


class ReinforcePPConfig(BaseModel):
    """Config of :func:`reinforce_pp_advantage`."""

    model_config = ConfigDict(extra="forbid", frozen=True)
    name: Literal["reinforce_pp"] = "reinforce_pp"
    gamma: float = Field(1.0, ge=0.0, le=1.0)
    """Discount of later turns' rewards in a turn's return."""
    eps: float = Field(1e-8, gt=0.0, le=1.0)
    """Added to the batch std before dividing."""
    kl_coef: float = Field(0.0, ge=0.0, le=10.0)
    """Per-token KL penalty in the reward (token-level variant only; 0 = off)."""
    kl_estimator: Literal["k1", "k2", "k3"] = "k1"
    """KL estimator of the per-token penalty."""


def reinforce_pp_returns(batch: TurnBatch, cfg: ReinforcePPConfig) -> np.ndarray:
    """Unnormalised return ``G`` of every turn row (0 for masked rows)."""
    seg = segments(batch)
    g_M = discounted_suffix_sum(batch.reward_N[seg.rows_M], seg.end_M, cfg.gamma)
    return scatter(g_M, seg, len(batch))


def reinforce_pp_advantage(batch: TurnBatch, cfg: ReinforcePPConfig) -> AdvantageResult:
    """Batch-normalised REINFORCE++ advantage of every turn row (no KL term)."""
    seg = segments(batch)
    reward_M = batch.reward_N[seg.rows_M]
    g_M = discounted_suffix_sum(reward_M, seg.end_M, cfg.gamma)
    adv_M = (g_M - g_M.mean()) / (g_M.std() + cfg.eps)
    metrics = episode_metrics(seg, traj_sums(reward_M, seg), adv_M)
    metrics["algo/return_mean"] = float(g_M.mean())
    metrics["algo/return_std"] = float(g_M.std())
    return AdvantageResult(adv_N=scatter(adv_M, seg, len(batch)), metrics=metrics)


def reinforce_pp_token_advantage(return_B, logprobs_BT, ref_logprobs_BT, mask_BT,
                                 cfg: ReinforcePPConfig):
    """Token-level REINFORCE++ advantage with the KL penalty inside the reward (torch).

    ``return_B`` is each row's turn return (:func:`reinforce_pp_returns`); the other inputs
    are ``(B, T)`` tensors. Returns ``adv_BT`` (no gradient), 0 on masked tokens.
    """
    import torch

    if logprobs_BT.numel() == 0:
        raise ConfigError("empty batch: reinforce_pp_token_advantage got no tokens")
    with torch.no_grad():
        mask = mask_BT.to(logprobs_BT.dtype)
        if float(mask.sum()) == 0:
            raise ConfigError("reinforce_pp_token_advantage: every token is masked")
        r_BT = -cfg.kl_coef * kl_estimate(logprobs_BT, ref_logprobs_BT, cfg.kl_estimator) * mask
        t_idx = torch.arange(mask.shape[1], device=mask.device)
        last_B = (mask * (t_idx + 1)).argmax(dim=1)  # last masked-in token of each row
        ret_B = torch.as_tensor(return_B, dtype=r_BT.dtype, device=r_BT.device)
        has_tok = mask.sum(dim=1) > 0
        r_BT[torch.arange(len(last_B))[has_tok], last_B[has_tok]] += ret_B[has_tok]
        g_BT = torch.zeros_like(r_BT)
        running = torch.zeros(r_BT.shape[0], dtype=r_BT.dtype, device=r_BT.device)
        for t in range(r_BT.shape[1] - 1, -1, -1):  # loop over token positions, not rows
            running = r_BT[:, t] + cfg.gamma * running * mask[:, t] + running * (1 - mask[:, t])
            g_BT[:, t] = running
        n = mask.sum()
        mean = (g_BT * mask).sum() / n
        std = (((g_BT - mean) ** 2) * mask).sum().div(n).sqrt()
        return (g_BT - mean) / (std + cfg.eps) * mask
