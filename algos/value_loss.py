"""PPO's value loss for a critic (``algo.name=ppo``; the advantage side is
:mod:`turngym.algos.gae`)."""

from __future__ import annotations

import torch


def value_loss(value_B: torch.Tensor, target_B: torch.Tensor, old_B: torch.Tensor,
               coef: float, clip: float | None) -> tuple[torch.Tensor, dict[str, float]]:
    """PPO's value loss over B turn samples (Schulman et al., arXiv 1707.06347):

        L = coef * mean_b max((V_b - G_b)^2, (V_old_b + clip(V_b - V_old_b, -c, c) - G_b)^2)

    with only the first term when ``clip`` (c) is None. Worked example (coef 0.5, no clip):
    ``V = [0.5, 0]``, ``G = [1, 0]`` gives ``0.5 * (0.25 + 0) / 2 = 0.0625``.
    Metrics: ``algo/value_loss`` (L), ``algo/value_clip_frac`` (rows where the clipped term
    was the larger, with ``clip``)."""
    err_B = (value_B - target_B) ** 2
    metrics: dict[str, float] = {}
    if clip is not None:
        clipped_B = old_B + (value_B - old_B).clamp(-clip, clip)
        err_c_B = (clipped_B - target_B) ** 2
        metrics["algo/value_clip_frac"] = float((err_c_B > err_B).float().mean())
        err_B = torch.maximum(err_B, err_c_B)
    loss = coef * err_B.mean()
    metrics["algo/value_loss"] = float(loss.detach())
    return loss, metrics
