"""Train-inference mismatch: truncated / masked importance weights for behaviour log-probs.

The rollout engine (vLLM, an OpenAI-compatible server, Ray engine actors) records the
behaviour log-probs ``log pi_behav(a_t)`` of the tokens it samples with its own kernels
(fused attention, another reduction order, often another dtype), so even with identical
weights they differ from the learner's forward pass ``log pi_prox(a_t)``: PPO's ratio is off
from step 0 and the update is silently off-policy (Yao et al. 2025, "Your efficient RL
framework secretly brings you off-policy RL training"; Liu, Li et al. 2025, "When speed kills
stability"). The fix is the decoupled objective (Hilton et al. 2021, arXiv:2110.00641): the
learner's log-probs become PPO's ``old_logprobs`` (so the ratio starts at exactly 1) and each
token's advantage is multiplied by an importance weight with no gradient::

    r_t = pi_prox(a_t) / pi_behav(a_t) = exp(prox_t - behav_t)
    tis:        w_t = min(r_t, C)                              (truncated IS, IMPALA
                                                                arXiv:1802.01561)
    mask:       w_t = 1[lo <= rho <= hi]                       (masked IS / rejection)
    tis+mask:   w_t = min(r_t, C) * 1[lo <= rho <= hi]
    rho = r_t                              (level "token": each token on its own)
    rho = exp(mean_{t in seq} log r_t)     (level "sequence": the geometric-mean ratio of
                                            the token's sequence, so the whole sequence is
                                            kept or dropped)

Truncation only bounds the variance from tokens the learner likes more than the engine
(``r > C``); masking drops tokens (or sequences) whose ratio leaves the band on either side,
the "toxic tail" where the two policies disagree badly (a numerical failure rather than a
learning signal). prime-rl masks tokens outside ``[1/8, 8]``; verl's rollout correction
(``rollout_is_threshold=2`` with the reciprocal lower bound) uses ``[0.5, 2]`` per token. We
default to ``[0.5, 2]``: symmetric in log space (``|log r| <= log 2``) and equal to ``C`` at the
top, so ``tis+mask`` keeps the exact ratio inside the band. The band applies to the
geometric mean in sequence mode, where it is loose (a mean over many tokens moves little);
tighten it there (verl suggests an upper threshold of 1.0002-1.001 for its geometric
level).

Metrics (over the response tokens of ``mask_BT``; ``lr_t = prox_t - behav_t``):

* ``rollout/logprob_mismatch_kl``: ``mean(exp(lr) - lr - 1)``, the k3 estimator
  (Schulman 2020) of ``KL(pi_behav || pi_prox)``: tokens are drawn from ``pi_behav``, so
  ``E_behav[r - 1 - log r] = KL(behav || prox)``; unbiased and ``>= 0`` per token (the k1
  estimate ``mean(-lr)`` can be negative on a finite sample).
* ``rollout/mismatch_abs_log_ratio_mean``, ``rollout/mismatch_abs_log_ratio_max``.
* ``rollout/mismatch_is_weight_mean``: mean of the weights applied (masked tokens count 0).
* ``rollout/mismatch_masked_frac``: fraction of tokens whose weight is 0.
* ``rollout/mismatch_clip_frac``: fraction of tokens kept but truncated at ``C``.

Modes: ``off`` (nothing), ``monitor`` (metrics of the ``tis+mask`` correction that would be
applied; weights stay 1), ``tis``, ``mask``, ``tis+mask``; ``auto`` resolves with
:func:`resolve_mode` (``tis+mask`` when the engine is not the learner's own forward pass).

Edge cases: padded positions (``mask_BT`` false) get weight 0 and count in no metric. A
non-finite log ratio (``-inf`` behaviour log-prob for a token the engine's sampler had
filtered, NaN) is clamped to ``+-20`` (ratio ``e^{+-20}``), so it is truncated at ``C`` by
``tis`` and masked by the masking modes, and a NaN gets weight 0 in every correcting mode.
A sequence with no response tokens has ratio 1. With no tokens at all the metrics are
empty. Weighting the advantage (rather than dropping tokens from the loss mask, as verl does)
keeps masked tokens in the token-mean denominator and in the KL/entropy terms.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator

if TYPE_CHECKING:  # torch is imported on use: turngym.harness.config imports MismatchConfig
    import torch

Mode = Literal["auto", "off", "monitor", "tis", "mask", "tis+mask"]

#: Log ratios are clamped to this magnitude (non-finite ones included).
MAX_LOG_RATIO = 20.0


class MismatchConfig(BaseModel):
    """``algo.mismatch``: correction of behaviour log-probs that are not the learner's."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    mode: Mode = "auto"
    """``auto``: ``tis+mask`` for engines that are not the learner's forward pass (vllm,
    openai, Ray engines), ``off`` for the in-process ``hf`` backend (equal to 1e-5)."""
    is_clip: float = Field(default=2.0, ge=1.0, le=100.0)
    """C of the truncated weight ``min(r, C)``."""
    band: tuple[float, float] = (0.5, 2.0)
    """``(lo, hi)``: ratios outside are masked (weight 0); ``0 < lo < 1 < hi <= 1000``."""
    level: Literal["token", "sequence"] = "token"
    """Masking per token, or per sequence on the geometric-mean ratio."""

    @field_validator("band")
    @classmethod
    def _check_band(cls, band: tuple[float, float]) -> tuple[float, float]:
        lo, hi = band
        if not (0.0 < lo < 1.0 < hi <= 1000.0):
            raise ValueError(f"band={band}: need 0 < lo < 1 < hi <= 1000, e.g. (0.5, 2.0)")
        return band


def resolve_mode(mode: Mode, *, engine_is_learner: bool) -> str:
    """``auto`` -> ``off`` when the behaviour log-probs come from the learner's own forward
    pass (``engine_is_learner``), else ``tis+mask``; any other mode is returned as is."""
    if mode != "auto":
        return mode
    return "off" if engine_is_learner else "tis+mask"


def truncated_is_weights(prox_T: torch.Tensor, behav_T: torch.Tensor, clip: float
                         ) -> torch.Tensor:
    """``min(exp(prox - behav), clip)`` per token (no gradient)."""
    import torch

    return torch.exp(prox_T.detach() - behav_T).clamp(max=clip)


def _log_ratio(prox_BT: torch.Tensor, behav_BT: torch.Tensor, mask_BT: torch.Tensor
               ) -> tuple[torch.Tensor, torch.Tensor]:
    """(clamped log ratio with 0 on padding, NaN positions)."""
    import torch

    lr_BT = prox_BT.detach().double() - behav_BT.detach().double()
    nan_BT = torch.isnan(lr_BT) & mask_BT
    lr_BT = torch.nan_to_num(lr_BT, nan=0.0, posinf=MAX_LOG_RATIO, neginf=-MAX_LOG_RATIO)
    lr_BT = lr_BT.clamp(-MAX_LOG_RATIO, MAX_LOG_RATIO)
    return torch.where(mask_BT, lr_BT, torch.zeros_like(lr_BT)), nan_BT


def mismatch_weights(prox_BT: torch.Tensor, behav_BT: torch.Tensor, mask_BT: torch.Tensor,
                     cfg: MismatchConfig) -> tuple[torch.Tensor, dict[str, float]]:
    """Per-token weights ``w_BT`` (float32, 0 on padding) and the ``rollout/*`` metrics.

    ``cfg.mode`` must be resolved (not ``auto``). ``off`` returns ``mask_BT`` as weights and
    no metrics; ``monitor`` returns ``mask_BT`` and the metrics of ``tis+mask``.
    """
    import torch

    if cfg.mode == "auto":
        raise ValueError("mismatch_weights needs a resolved mode; call resolve_mode first")
    mask_BT = mask_BT.bool()
    ones_BT = mask_BT.float()
    if cfg.mode == "off":
        return ones_BT, {}
    lr_BT, nan_BT = _log_ratio(prox_BT, behav_BT, mask_BT)
    r_BT = torch.exp(lr_BT)
    mode = "tis+mask" if cfg.mode == "monitor" else cfg.mode
    w_BT = r_BT.clamp(max=cfg.is_clip) if "tis" in mode else torch.ones_like(r_BT)
    keep_BT = mask_BT & ~nan_BT
    if "mask" in mode:
        lo, hi = cfg.band
        if cfg.level == "token":
            rho_BT = r_BT
        else:  # geometric mean of each sequence's ratios, broadcast over its tokens
            n_B = mask_BT.sum(-1).clamp(min=1)
            rho_BT = torch.exp(lr_BT.sum(-1) / n_B).unsqueeze(-1).expand_as(r_BT)
        keep_BT = keep_BT & (rho_BT >= lo) & (rho_BT <= hi)
    w_BT = torch.where(keep_BT, w_BT, torch.zeros_like(w_BT))
    n = int(mask_BT.sum())
    if n == 0:
        return (ones_BT if cfg.mode == "monitor" else w_BT.float()), {}
    lr = lr_BT[mask_BT]
    w = w_BT[mask_BT]
    clipped = keep_BT[mask_BT] & (r_BT[mask_BT] > cfg.is_clip) if "tis" in mode else None
    metrics = {
        "rollout/logprob_mismatch_kl": float((torch.exp(lr) - lr - 1.0).mean()),
        "rollout/mismatch_abs_log_ratio_mean": float(lr.abs().mean()),
        "rollout/mismatch_abs_log_ratio_max": float(lr.abs().max()),
        "rollout/mismatch_is_weight_mean": float(w.mean()),
        "rollout/mismatch_masked_frac": float((w == 0).double().mean()),
        "rollout/mismatch_clip_frac": float(clipped.double().mean()) if clipped is not None
        else 0.0,
    }
    return (ones_BT if cfg.mode == "monitor" else w_BT.float()), metrics
