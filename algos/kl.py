"""Per-token KL estimators between the sampling policy and a reference policy.

Tokens are sampled from the policy ``pi``; with ``log_r = log pi_ref(y) - log pi(y)``
(Schulman, "Approximating KL divergence", 2020):

    k1 = -log_r                     unbiased for KL(pi || pi_ref), can be negative
    k2 = 0.5 * log_r^2              biased, always >= 0, its gradient is that of KL
    k3 = exp(log_r) - 1 - log_r     unbiased, always >= 0 (GRPO's KL term)

``log_r`` is clamped to [-20, 20] before ``exp`` in k3 so one outlier token cannot give inf
(verl does the same). Works on torch tensors and numpy arrays alike.
"""

from __future__ import annotations

from typing import Literal

import numpy as np

KLEstimator = Literal["k1", "k2", "k3"]


def kl_estimate(logprobs_BT, ref_logprobs_BT, estimator: KLEstimator = "k3"):
    """Per-token KL estimate of shape ``logprobs_BT.shape`` (same array type as the input)."""
    log_r = ref_logprobs_BT - logprobs_BT
    if estimator == "k1":
        return -log_r
    if estimator == "k2":
        return 0.5 * log_r * log_r
    if estimator == "k3":
        if isinstance(log_r, np.ndarray):
            log_r = np.clip(log_r, -20.0, 20.0)
            return np.exp(log_r) - 1.0 - log_r
        log_r = log_r.clamp(-20.0, 20.0)
        return log_r.exp() - 1.0 - log_r
    raise ValueError(f"unknown KL estimator {estimator!r}; use 'k1', 'k2' or 'k3'")
