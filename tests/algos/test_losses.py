"""PPO policy loss, KL estimators, OPD and SOD step weights on hand-computed cases."""

import math

import numpy as np
import pytest
import torch

from turngym.algos.kl import kl_estimate
from turngym.algos.opd import OPDConfig, mix_advantages, opd_advantage
from turngym.algos.ppo_loss import PPOLossConfig, aggregate, ppo_policy_loss
from turngym.algos.sod import SODConfig, sod_opd_advantage, sod_step_weights, turn_divergence
from turngym.errors import ConfigError


def lp_of(ratios):
    return torch.log(torch.tensor([ratios], dtype=torch.float64))


@pytest.mark.parametrize("cfg, loss, clip_frac", [
    (PPOLossConfig(clip_high=0.2, kl_coef=0), (-1.2 + 0.8) / 2, 1.0),
    (PPOLossConfig(kl_coef=0), (-1.28 + 0.8) / 2, 1.0),  # the default: clip-higher 0.28
    (PPOLossConfig(clip_low=0.6, clip_high=0.6, kl_coef=0), (-1.5 + 0.5) / 2, 0.0),
])
def test_ppo_clip_and_clip_higher(cfg, loss, clip_frac):
    lp = lp_of([1.5, 0.5]).requires_grad_()
    old = torch.zeros(1, 2, dtype=torch.float64)
    out, m = ppo_policy_loss(lp, old, torch.tensor([[1.0, -1.0]], dtype=torch.float64),
                             torch.ones(1, 2), cfg)
    assert float(out.detach()) == pytest.approx(loss, abs=1e-12)
    assert m["algo/pg_clip_frac"] == clip_frac
    assert m["algo/ratio_mean"] == pytest.approx(1.0)
    assert m["algo/ppo_kl"] == pytest.approx(-(math.log(1.5) + math.log(0.5)) / 2)
    out.backward()  # gradient flows only where the unclipped term was taken
    want = [0.0, 0.0] if clip_frac else [-1.5 / 2, 0.5 / 2]
    np.testing.assert_allclose(lp.grad.numpy()[0], want, atol=1e-12)


def test_ppo_dual_clip():
    lp = lp_of([5.0, 5.0])
    adv = torch.tensor([[-1.0, 1.0]], dtype=torch.float64)
    old = torch.zeros(1, 2, dtype=torch.float64)
    sym = {"clip_high": 0.2, "kl_coef": 0.0}
    plain, _ = ppo_policy_loss(lp, old, adv, torch.ones(1, 2), PPOLossConfig(**sym))
    dual, m = ppo_policy_loss(lp, old, adv, torch.ones(1, 2),
                              PPOLossConfig(dual_clip=3.0, **sym))
    # A<0 token: max(5, 1.2) = 5, dual clip caps it at 3; A>0 token: max(-5, -1.2) = -1.2
    assert float(plain) == pytest.approx((5.0 - 1.2) / 2)
    assert float(dual) == pytest.approx((3.0 - 1.2) / 2)
    assert m["algo/pg_clip_frac_lower"] == 0.5


@pytest.mark.parametrize("agg, want", [("token-mean", -7 / 3),
                                       ("seq-mean-token-mean", (-1.5 - 4) / 2),
                                       ("seq-mean-token-sum", (-3 - 4) / 2)])
def test_ppo_aggregations(agg, want):
    lp = torch.zeros(3, 3)
    adv = torch.tensor([[1.0, 2.0, 9.0], [4.0, 9.0, 9.0], [9.0, 9.0, 9.0]])
    mask = torch.tensor([[1, 1, 0], [1, 0, 0], [0, 0, 0]])  # row 2 is all padding
    loss, _ = ppo_policy_loss(lp, lp, adv, mask, PPOLossConfig(agg=agg, kl_coef=0))
    assert float(loss) == pytest.approx(want)


def test_kl_estimators_hand_computed():
    lp, ref = torch.tensor([0.0]), torch.tensor([math.log(0.5)])
    assert float(kl_estimate(lp, ref, "k1")) == pytest.approx(math.log(2))
    assert float(kl_estimate(lp, ref, "k2")) == pytest.approx(0.5 * math.log(2) ** 2)
    assert float(kl_estimate(lp, ref, "k3")) == pytest.approx(0.5 - 1 + math.log(2))
    assert kl_estimate(np.array([0.0]), np.array([math.log(0.5)]), "k3")[0] == pytest.approx(
        0.5 - 1 + math.log(2))
    assert math.isfinite(float(kl_estimate(torch.tensor([0.0]), torch.tensor([500.0]), "k3")))
    with pytest.raises(ValueError, match="unknown KL"):
        kl_estimate(lp, ref, "k4")


def test_ppo_kl_and_entropy_terms():
    lp, ref = torch.zeros(1, 2), torch.full((1, 2), math.log(0.5))
    adv, ent = torch.zeros(1, 2), torch.tensor([[1.0, 3.0]])
    cfg = PPOLossConfig(kl_coef=0.5, kl_estimator="k1", entropy_coef=0.1)
    loss, m = ppo_policy_loss(lp, lp, adv, torch.ones(1, 2), cfg, ref_logprobs_BT=ref,
                              entropy_BT=ent)
    assert float(loss) == pytest.approx(0.5 * math.log(2) - 0.1 * 2.0)
    assert m["algo/kl_ref"] == pytest.approx(math.log(2))
    assert m["algo/entropy"] == pytest.approx(2.0)
    assert m["algo/approx_kl"] == 0.0


def test_ppo_input_errors():
    z = torch.zeros(1, 2)
    with pytest.raises(ConfigError, match="empty batch"):
        ppo_policy_loss(torch.zeros(0, 3), torch.zeros(0, 3), torch.zeros(0, 3),
                        torch.zeros(0, 3), PPOLossConfig())
    with pytest.raises(ConfigError, match="adv_BT has shape"):
        ppo_policy_loss(z, z, torch.zeros(2, 2), z, PPOLossConfig())
    with pytest.raises(ConfigError, match="needs ref_logprobs_BT"):
        ppo_policy_loss(z, z, z, z, PPOLossConfig(kl_coef=0.1))
    loss, _ = ppo_policy_loss(z.requires_grad_(), z, z, torch.zeros(1, 2),
                              PPOLossConfig(kl_coef=0))
    assert float(loss.detach()) == 0.0 and loss.requires_grad  # fully masked: 0, still in the graph
    assert float(aggregate(torch.ones(2, 2), torch.zeros(2, 2), "seq-mean-token-sum")) == 0.0


def test_opd_worked_example_and_mix():
    s = torch.tensor([[-1.0, -2.0, -7.0]], requires_grad=True)
    t = torch.tensor([[-0.5, -3.0, 0.0]])
    mask = torch.tensor([[1, 1, 0]])
    adv = opd_advantage(s, t, mask, beta=1.0)
    assert adv.tolist() == [[0.5, -1.0, 0.0]] and not adv.requires_grad
    assert opd_advantage(s.detach().numpy(), t.numpy(), mask.numpy(), 2.0).tolist() == [
        [1.0, -2.0, 0.0]]
    mixed = mix_advantages(torch.tensor([[1.0, 1.0, 0.0]]), adv, rl_coef=0.5)
    assert mixed.tolist() == [[1.0, -0.5, 0.0]]
    with pytest.raises(ConfigError, match="shapes differ"):
        opd_advantage(s, t[:, :2], mask, 1.0)
    with pytest.raises(ConfigError, match="empty batch"):
        opd_advantage(torch.zeros(0, 2), torch.zeros(0, 2), torch.zeros(0, 2), 1.0)
    assert OPDConfig().beta == 1.0


def test_sod_worked_example():
    # rows (turns 0, 1, 2 of one trajectory) with gaps d = [0.5, 1.0, 0.25]
    s = np.array([[0.0, 0.0], [0.0, 0.0], [0.0, 0.0]])
    t = np.array([[0.5, -0.5], [1.0, 9.0], [0.25, 0.0]])
    mask = np.array([[1, 1], [1, 0], [1, 0]])
    np.testing.assert_allclose(turn_divergence(s, t, mask), [0.5, 1.0, 0.25])
    w = sod_step_weights(s, t, mask, traj_B=[4, 4, 4], turn_B=[0, 1, 2])
    np.testing.assert_allclose(w, [1.0, (0.5 + 1e-6) / (1.0 + 1e-6), 1.2], rtol=1e-12)
    # row order and several trajectories: the first turn is the smallest turn index
    w2 = sod_step_weights(s[::-1], t[::-1], mask[::-1], traj_B=[4, 4, 4], turn_B=[2, 1, 0])
    np.testing.assert_allclose(w2, w[::-1])
    w3 = sod_step_weights(s, t, mask, traj_B=[1, 2, 1], turn_B=[0, 0, 5], delta=0.0)
    assert w3.tolist() == [1.0, 1.0, 1.0]  # delta 0 caps at 1; row 1 is traj 2's first turn


def test_sod_scales_opd_per_turn():
    s = torch.zeros(2, 2)
    t = torch.tensor([[1.0, 1.0], [-2.0, -2.0]])
    adv = sod_opd_advantage(s, t, torch.ones(2, 2), [0, 0], [0, 1], SODConfig())
    w1 = (1.0 + 1e-6) / (2.0 + 1e-6)
    np.testing.assert_allclose(adv.numpy(), [[1.0, 1.0], [-2 * w1, -2 * w1]], rtol=1e-6)
    with pytest.raises(ConfigError, match="empty batch"):
        sod_step_weights(np.zeros((0, 2)), np.zeros((0, 2)), np.zeros((0, 2)), [], [])
    with pytest.raises(ConfigError, match="one per row"):
        sod_step_weights(np.zeros((2, 2)), np.zeros((2, 2)), np.ones((2, 2)), [0], [0])
