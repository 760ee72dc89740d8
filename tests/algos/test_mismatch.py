"""Train-inference mismatch weights and metrics (``turngym.algos.mismatch``) on
hand-computed ratios."""

from __future__ import annotations

import math

import pytest
import torch
from pydantic import ValidationError

from turngym.algos.mismatch import (
    MismatchConfig,
    mismatch_weights,
    resolve_mode,
    truncated_is_weights,
)

LOG = math.log


def k3(r: float) -> float:
    return r - math.log(r) - 1.0


# three tokens of one sequence with ratios pi_prox / pi_behav = 1.6, 0.625, 9 (float32
# inputs: keep hand-made ratios off the band's and C's edges)
PROX = [[LOG(0.8), LOG(0.25), LOG(0.9)]]
BEHAV = [[LOG(0.5), LOG(0.4), LOG(0.1)]]


def _run(mode: str, prox=PROX, behav=BEHAV, mask=None, **kw):
    prox_BT, behav_BT = torch.tensor(prox), torch.tensor(behav)
    mask_BT = torch.ones_like(prox_BT, dtype=torch.bool) if mask is None else torch.tensor(mask)
    return mismatch_weights(prox_BT, behav_BT, mask_BT, MismatchConfig(mode=mode, **kw))


@pytest.mark.parametrize("mode, weights, masked, clipped, w_mean", [
    ("tis", [1.6, 0.625, 2.0], 0.0, 1 / 3, 4.225 / 3),  # 9 truncated to C = 2
    ("mask", [1.0, 1.0, 0.0], 1 / 3, 0.0, 2 / 3),         # 9 is outside [0.5, 2]
    ("tis+mask", [1.6, 0.625, 0.0], 1 / 3, 0.0, 2.225 / 3),
    ("monitor", [1.0, 1.0, 1.0], 1 / 3, 0.0, 2.225 / 3),  # metrics of tis+mask, weights 1
])
def test_token_modes(mode, weights, masked, clipped, w_mean) -> None:
    w_BT, m = _run(mode)
    assert w_BT[0].tolist() == pytest.approx(weights, rel=1e-6)
    assert m["rollout/mismatch_masked_frac"] == pytest.approx(masked)
    assert m["rollout/mismatch_clip_frac"] == pytest.approx(clipped)
    assert m["rollout/mismatch_is_weight_mean"] == pytest.approx(w_mean, rel=1e-6)
    kl = (k3(1.6) + k3(0.625) + k3(9.0)) / 3  # 0.13000, 0.09500, 5.80278 -> 2.00926
    assert m["rollout/logprob_mismatch_kl"] == pytest.approx(kl, rel=1e-6)
    assert m["rollout/mismatch_abs_log_ratio_max"] == pytest.approx(LOG(9.0), rel=1e-6)
    assert m["rollout/mismatch_abs_log_ratio_mean"] == pytest.approx(
        (2 * LOG(1.6) + LOG(9.0)) / 3, rel=1e-6)


def test_off_returns_the_mask_and_no_metrics() -> None:
    w_BT, m = _run("off", mask=[[True, True, False]])
    assert w_BT.tolist() == [[1.0, 1.0, 0.0]] and m == {}


def test_wider_clip_and_band() -> None:
    w_BT, m = _run("tis+mask", is_clip=5.0, band=(0.125, 8.0))  # 9 > 8: masked
    assert w_BT[0].tolist() == pytest.approx([1.6, 0.625, 0.0], rel=1e-6)
    w_BT, m = _run("tis+mask", is_clip=5.0, band=(0.1, 10.0))  # 9 kept, truncated to 5
    assert w_BT[0].tolist() == pytest.approx([1.6, 0.625, 5.0], rel=1e-6)
    assert m["rollout/mismatch_clip_frac"] == pytest.approx(1 / 3)


def test_sequence_level_masks_on_the_geometric_mean() -> None:
    # ratios per row: (4, 1/4) geo 1 -> kept; (1.5, pad) geo 1.5 -> kept; (4, 4) geo 4 ->
    # the whole sequence dropped
    prox = [[LOG(0.8), LOG(0.1)], [LOG(0.3), 0.0], [LOG(0.8), LOG(0.4)]]
    behav = [[LOG(0.2), LOG(0.4)], [LOG(0.2), 123.0], [LOG(0.2), LOG(0.1)]]
    mask = [[True, True], [True, False], [True, True]]  # padding holds anything
    w_BT, m = _run("tis+mask", prox, behav, mask, level="sequence")
    for row, expected in zip(w_BT.tolist(), [[2.0, 0.25], [1.5, 0.0], [0.0, 0.0]]):
        assert row == pytest.approx(expected, rel=1e-6)
    assert m["rollout/mismatch_masked_frac"] == pytest.approx(2 / 5)
    assert m["rollout/mismatch_clip_frac"] == pytest.approx(1 / 5)  # the kept 4 -> C
    kl = (3 * k3(4.0) + k3(0.25) + k3(1.5)) / 5
    assert m["rollout/logprob_mismatch_kl"] == pytest.approx(kl, rel=1e-6)
    w_BT, _ = _run("mask", prox, behav, mask, level="sequence")
    assert w_BT.tolist() == [[1.0, 1.0], [1.0, 0.0], [0.0, 0.0]]
    w_BT, _ = _run("mask", prox, behav, mask, level="token")  # per token: 4 and 1/4 go
    assert w_BT.tolist() == [[0.0, 0.0], [1.0, 0.0], [0.0, 0.0]]


def test_identical_logprobs_are_a_no_op() -> None:
    lp = [[-0.1, -2.0, -5.0]]
    w_BT, m = _run("tis+mask", lp, lp)
    assert w_BT.tolist() == [[1.0, 1.0, 1.0]]
    assert m["rollout/logprob_mismatch_kl"] == 0.0
    assert m["rollout/mismatch_masked_frac"] == 0.0
    assert m["rollout/mismatch_is_weight_mean"] == 1.0


def test_non_finite_logprobs() -> None:
    # behaviour -inf (the engine had filtered the token): ratio e^20 -> C, or masked; NaN -> 0
    prox = [[-1.0, -1.0, -1.0]]
    behav = [[float("-inf"), float("nan"), -1.0]]
    w_BT, m = _run("tis", prox, behav)
    assert w_BT.tolist() == [[2.0, 0.0, 1.0]]
    assert math.isfinite(m["rollout/logprob_mismatch_kl"])
    assert m["rollout/mismatch_abs_log_ratio_max"] == 20.0
    w_BT, m = _run("tis+mask", prox, behav)
    assert w_BT.tolist() == [[0.0, 0.0, 1.0]]
    assert m["rollout/mismatch_masked_frac"] == pytest.approx(2 / 3)


def test_no_tokens() -> None:
    w_BT, m = _run("tis+mask", [[0.0]], [[0.0]], [[False]])
    assert w_BT.tolist() == [[0.0]] and m == {}


def test_truncated_is_weights() -> None:
    w = truncated_is_weights(torch.tensor([LOG(0.9), 0.0]), torch.tensor([LOG(0.3), 0.0]), 2.0)
    assert w.tolist() == pytest.approx([2.0, 1.0])


@pytest.mark.parametrize("mode, engine_is_learner, expected", [
    ("auto", True, "off"), ("auto", False, "tis+mask"), ("monitor", True, "monitor"),
    ("off", False, "off"), ("tis", True, "tis"),
])
def test_resolve_mode(mode, engine_is_learner, expected) -> None:
    assert resolve_mode(mode, engine_is_learner=engine_is_learner) == expected


def test_auto_must_be_resolved() -> None:
    with pytest.raises(ValueError, match="resolve"):
        _run("auto")


def test_config_defaults_and_bounds() -> None:
    cfg = MismatchConfig()
    assert (cfg.mode, cfg.is_clip, cfg.band, cfg.level) == ("auto", 2.0, (0.5, 2.0), "token")
    for bad in [{"band": (1.5, 2.0)}, {"band": (0.5, 0.9)}, {"band": (0.0, 2.0)},
                {"is_clip": 0.5}, {"mode": "clip"}, {"level": "geo"}, {"clip": 2.0}]:
        with pytest.raises(ValidationError):
            MismatchConfig(**bad)
    with pytest.raises(ValidationError):
        cfg.mode = "off"  # frozen
