"""PPO clipped policy loss with clip-higher, dual clip, KL to a reference and entropy bonus.

Per token, with ``ratio = exp(logprobs - old_logprobs)`` and advantage ``A``
(Schulman et al., arXiv 1707.06347):

    pg = max(-A * ratio, -A * clip(ratio, 1 - clip_low, 1 + clip_high))

``clip_high > clip_low`` is DAPO's clip-higher (arXiv 2503.14476). Dual clip
(Ye et al., arXiv 1912.09729), when ``dual_clip`` is set to ``c > 1``: for ``A < 0`` the loss
is also capped at ``-A * c``, so a huge ratio on a bad token cannot blow up the update.

    loss = agg(pg) + kl_coef * agg(KL(pi || pi_ref)) - entropy_coef * agg(entropy)

with the KL per token from :func:`turngym.algos.kl.kl_estimate` (k1, k2 or k3). ``agg`` over the
``(B, T)`` tokens with ``mask_BT``:

- ``token-mean``: sum over all tokens / number of tokens (DAPO; every token weighs the same)
- ``seq-mean-token-mean``: mean over rows of each row's token mean (GRPO paper)
- ``seq-mean-token-sum``: mean over rows of each row's token sum (Dr. GRPO-style, no length
  normalisation)

Rows with no masked-in token are left out of the ``seq-mean-*`` means. A fully masked batch
gives loss 0 (still connected to the graph); an empty batch raises ``ConfigError``.

Metrics: ``algo/pg_loss``, ``algo/pg_clip_frac`` (tokens where the clipped term was taken),
``algo/pg_clip_frac_lower`` (tokens capped by the dual clip), ``algo/ppo_kl`` (k1 estimate of
KL(old || new), as verl), ``algo/approx_kl`` (k3 estimate, always >= 0),
``algo/ratio_mean``, ``algo/entropy`` and ``algo/kl_ref`` when given, ``algo/loss``.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Literal

from pydantic import BaseModel, ConfigDict, Field

from turngym.errors import ConfigError

if TYPE_CHECKING:  # torch is imported on use: the train config (turngym.harness.config)
    import torch  # holds PPOLossConfig and loads without torch

Aggregation = Literal["token-mean", "seq-mean-token-mean", "seq-mean-token-sum"]


class PPOLossConfig(BaseModel):
    """Config of :func:`ppo_policy_loss`; the train config's ``algo.loss`` section is this class.

    Its defaults are the trainer's (clip-higher 0.28, KL 0.01 with k3): the one place they
    are set. A unit of the loss alone passes ``kl_coef=0`` when it has no reference."""

    model_config = ConfigDict(extra="forbid", frozen=True)
    name: Literal["ppo"] = "ppo"
    clip_low: float = Field(0.2, ge=0.0, le=1.0)
    """Lower clip: the ratio is clipped at ``1 - clip_low``."""
    clip_high: float = Field(0.28, ge=0.0, le=10.0)
    """Upper clip: the ratio is clipped at ``1 + clip_high``. 0.28 is DAPO's clip-higher;
    set it equal to ``clip_low`` for symmetric PPO."""
    dual_clip: float | None = Field(None, gt=1.0, le=100.0)
    """``c`` of the dual clip for negative advantages (e.g. 3.0); None = off."""
    agg: Aggregation = "token-mean"
    """How token losses are averaged."""
    kl_coef: float = Field(0.01, ge=0.0, le=10.0)
    """Weight of the KL to the reference policy (needs ``ref_logprobs_BT``; in training the
    initial weights, ``ref.enabled`` follows it). 0.01 with k3, as the GiGPO paper: a trust
    region around the warm start for the small, noisy batches of turn-level RL
    (docs/training.md). 0 trains without a reference model."""
    kl_estimator: Literal["k1", "k2", "k3"] = "k3"
    """Per-token KL estimator."""
    entropy_coef: float = Field(0.0, ge=0.0, le=1.0)
    """Weight of the entropy bonus (needs ``entropy_BT``)."""


def aggregate(x_BT: torch.Tensor, mask_BT: torch.Tensor, agg: Aggregation) -> torch.Tensor:
    """Reduce token values to a scalar with the chosen aggregation."""
    m = mask_BT.to(x_BT.dtype)
    if agg == "token-mean":
        return (x_BT * m).sum() / m.sum().clamp(min=1.0)
    tok_B = m.sum(dim=1)
    has_B = (tok_B > 0).to(x_BT.dtype)
    if agg == "seq-mean-token-mean":
        per_B = (x_BT * m).sum(dim=1) / tok_B.clamp(min=1.0)
    elif agg == "seq-mean-token-sum":
        per_B = (x_BT * m).sum(dim=1)
    else:
        raise ConfigError(f"unknown aggregation {agg!r}; use 'token-mean', "
                          "'seq-mean-token-mean' or 'seq-mean-token-sum'")
    return (per_B * has_B).sum() / has_B.sum().clamp(min=1.0)


def ppo_policy_loss(logprobs_BT: torch.Tensor, old_logprobs_BT: torch.Tensor,
                    adv_BT: torch.Tensor, mask_BT: torch.Tensor, cfg: PPOLossConfig,
                    ref_logprobs_BT: torch.Tensor | None = None,
                    entropy_BT: torch.Tensor | None = None,
                    ) -> tuple[torch.Tensor, dict[str, float]]:
    """The PPO loss (a scalar with gradient through ``logprobs_BT``) and its metrics."""
    import torch

    from turngym.algos.kl import kl_estimate

    _check_inputs(logprobs_BT, old_logprobs_BT, adv_BT, mask_BT, cfg, ref_logprobs_BT,
                  entropy_BT)
    m = mask_BT.to(logprobs_BT.dtype)
    log_ratio = logprobs_BT - old_logprobs_BT
    ratio = torch.exp(log_ratio.clamp(-20.0, 20.0))
    pg1 = -adv_BT * ratio
    pg2 = -adv_BT * ratio.clamp(1.0 - cfg.clip_low, 1.0 + cfg.clip_high)
    pg = torch.maximum(pg1, pg2)
    lower_capped = torch.zeros_like(pg, dtype=torch.bool)
    if cfg.dual_clip is not None:
        pg3 = -adv_BT * cfg.dual_clip
        lower_capped = (adv_BT < 0) & (pg3 < pg)
        pg = torch.where(adv_BT < 0, torch.minimum(pg, pg3), pg)
    pg_loss = aggregate(pg, mask_BT, cfg.agg)
    loss = pg_loss

    n = m.sum().clamp(min=1.0)
    with torch.no_grad():
        metrics = {
            "algo/pg_loss": float(pg_loss.detach()),
            "algo/pg_clip_frac": float(((pg2 > pg1).to(m.dtype) * m).sum() / n),
            "algo/pg_clip_frac_lower": float((lower_capped.to(m.dtype) * m).sum() / n),
            "algo/ppo_kl": float((-log_ratio * m).sum() / n),
            "algo/approx_kl": float((kl_estimate(old_logprobs_BT, logprobs_BT, "k3") * m).sum()
                                    / n),
            "algo/ratio_mean": float((ratio * m).sum() / n),
        }
    if ref_logprobs_BT is not None:
        kl = aggregate(kl_estimate(logprobs_BT, ref_logprobs_BT, cfg.kl_estimator), mask_BT,
                       cfg.agg)
        metrics["algo/kl_ref"] = float(kl.detach())
        if cfg.kl_coef > 0:
            loss = loss + cfg.kl_coef * kl
    if entropy_BT is not None:
        ent = aggregate(entropy_BT, mask_BT, cfg.agg)
        metrics["algo/entropy"] = float(ent.detach())
        if cfg.entropy_coef > 0:
            loss = loss - cfg.entropy_coef * ent
    metrics["algo/loss"] = float(loss.detach())
    return loss, metrics


def _check_inputs(logprobs_BT, old_logprobs_BT, adv_BT, mask_BT, cfg, ref_BT, ent_BT) -> None:
    if logprobs_BT.numel() == 0:
        raise ConfigError("empty batch: ppo_policy_loss got no tokens (logprobs_BT is empty)")
    for name, t in (("old_logprobs_BT", old_logprobs_BT), ("adv_BT", adv_BT),
                    ("mask_BT", mask_BT), ("ref_logprobs_BT", ref_BT), ("entropy_BT", ent_BT)):
        if t is not None and t.shape != logprobs_BT.shape:
            raise ConfigError(f"ppo_policy_loss: {name} has shape {tuple(t.shape)}, expected "
                              f"{tuple(logprobs_BT.shape)} like logprobs_BT")
    if cfg.kl_coef > 0 and ref_BT is None:
        raise ConfigError("ppo_policy_loss: kl_coef > 0 needs ref_logprobs_BT")
    if cfg.entropy_coef > 0 and ent_BT is None:
        raise ConfigError("ppo_policy_loss: entropy_coef > 0 needs entropy_BT")
