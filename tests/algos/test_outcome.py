"""GRPO, RLOO and REINFORCE++ on hand-computed cases."""

import math

import numpy as np
import pytest
import torch

from turngym.algos.batch import TurnBatch
from turngym.algos.grpo import GRPOConfig, grpo_advantage
from turngym.algos.reinforce_pp import (
    ReinforcePPConfig,
    reinforce_pp_advantage,
    reinforce_pp_returns,
    reinforce_pp_token_advantage,
)
from turngym.algos.rloo import RLOOConfig, rloo_advantage
from turngym.errors import ConfigError


def one_turn_batch(groups, rewards):
    n = len(rewards)
    return TurnBatch.from_lists(group=groups, traj=list(range(n)), turn=[0] * n,
                                reward=rewards, state=["s"] * n)


# Group 0: two trajectories A (turns 0,1; return 1) and B (turn 0; return 0), plus a padding
# row of A with a big reward that must be ignored. Group 1: a singleton trajectory C (return 2).
MIXED = TurnBatch.from_lists(group=[0, 0, 0, 0, 1], traj=[0, 0, 0, 1, 2], turn=[0, 1, 2, 0, 0],
                             reward=[0.0, 1.0, 100.0, 0.0, 2.0], state=["a"] * 5,
                             mask=[True, True, False, True, True])


def test_grpo_worked_example():
    res = grpo_advantage(one_turn_batch([0] * 4, [1, 0, 0, 1]), GRPOConfig())
    a = 0.5 / (math.sqrt(1 / 3) + 1e-6)
    np.testing.assert_allclose(res.adv_N, [a, -a, -a, a], rtol=1e-15)
    assert res.metrics["algo/episode_groups"] == 1.0
    assert res.metrics["algo/episode_group_size_mean"] == 4.0
    assert res.metrics["algo/episode_return_mean"] == 0.5


@pytest.mark.parametrize("cfg, expected", [
    (GRPOConfig(norm="mean"), [0.5, 0.5, 0.0, -0.5, 0.0]),
    (GRPOConfig(norm="mean", stats="turn"), [1 / 3, 1 / 3, 0.0, -2 / 3, 0.0]),
    (GRPOConfig(norm="mean", singleton="reward"), [0.5, 0.5, 0.0, -0.5, 2.0]),
    (GRPOConfig(norm="mean_std", unbiased_std=False),
     [0.5 / (0.5 + 1e-6), 0.5 / (0.5 + 1e-6), 0.0, -0.5 / (0.5 + 1e-6), 0.0]),
])
def test_grpo_variants_singleton_and_padding(cfg, expected):
    res = grpo_advantage(MIXED, cfg)
    np.testing.assert_allclose(res.adv_N, expected, rtol=1e-12, atol=1e-15)


def test_grpo_turn_stats_mean_std():
    # per-row values [1, 1, 0]: mean 2/3, unbiased std sqrt((1/9 + 1/9 + 4/9) / 2) = sqrt(1/3)
    res = grpo_advantage(MIXED, GRPOConfig(stats="turn"))
    s = math.sqrt(1 / 3) + 1e-6
    np.testing.assert_allclose(res.adv_N, [1 / 3 / s, 1 / 3 / s, 0, -2 / 3 / s, 0], rtol=1e-12)


@pytest.mark.parametrize("fn, cfg", [(grpo_advantage, GRPOConfig()),
                                     (grpo_advantage, GRPOConfig(norm="mean")),
                                     (rloo_advantage, RLOOConfig())])
def test_all_equal_rewards_give_zero(fn, cfg):
    res = fn(one_turn_batch([0, 0, 0, 1, 1], [1, 1, 1, 0, 0]), cfg)
    assert res.adv_N.tolist() == [0.0] * 5


def test_rloo_hand_computed():
    res = rloo_advantage(one_turn_batch([0, 0, 0, 0, 1, 1, 2], [1, 0, 0, 1, 3, 1, 5]),
                         RLOOConfig())
    np.testing.assert_allclose(res.adv_N, [2 / 3, -2 / 3, -2 / 3, 2 / 3, 2.0, -2.0, 0.0],
                               rtol=1e-12)
    # multi-turn trajectories with padding: A return 1, B return 0 -> +1 / -1; singleton 0
    np.testing.assert_allclose(rloo_advantage(MIXED, RLOOConfig()).adv_N, [1, 1, 0, -1, 0])


def test_reinforce_pp_turn_level():
    res = reinforce_pp_advantage(one_turn_batch([0, 1], [1, 0]), ReinforcePPConfig())
    a = 0.5 / (0.5 + 1e-8)
    np.testing.assert_allclose(res.adv_N, [a, -a], rtol=1e-15)
    # MIXED, gamma 1: returns A [1, 1], B [0], C [2] -> mean 1, std sqrt(2/4)
    g = reinforce_pp_returns(MIXED, ReinforcePPConfig())
    assert g.tolist() == [1.0, 1.0, 0.0, 0.0, 2.0]
    res = reinforce_pp_advantage(MIXED, ReinforcePPConfig())
    s = math.sqrt(0.5) + 1e-8
    np.testing.assert_allclose(res.adv_N, [0, 0, 0, -1 / s, 1 / s], atol=1e-15)
    # gamma 0.5 discounts A's first turn: [0.5, 1]
    assert reinforce_pp_returns(MIXED, ReinforcePPConfig(gamma=0.5)).tolist()[:2] == [0.5, 1.0]


def test_reinforce_pp_token_level_with_kl():
    lp = torch.tensor([[0.2, 0.0], [0.0, 0.4]])
    ref = torch.zeros(2, 2)
    mask = torch.ones(2, 2)
    cfg = ReinforcePPConfig(kl_coef=0.1)  # k1: KL = lp - ref
    adv = reinforce_pp_token_advantage(np.array([1.0, 0.0]), lp, ref, mask, cfg)
    # token rewards: row 0 [-0.02, 1], row 1 [0, -0.04]; returns [0.98, 1], [-0.04, -0.04]
    g = np.array([[0.98, 1.0], [-0.04, -0.04]])
    want = (g - g.mean()) / (g.std() + 1e-8)
    np.testing.assert_allclose(adv.numpy(), want, rtol=1e-5)
    # no KL, padding at the end of row 1: every real token of a row gets its return, whitened
    mask = torch.tensor([[1.0, 1.0], [1.0, 0.0]])
    adv = reinforce_pp_token_advantage([3.0, 0.0], lp, ref, mask, ReinforcePPConfig())
    g = np.array([3.0, 3.0, 0.0])
    want = (g - g.mean()) / (g.std() + 1e-8)
    np.testing.assert_allclose(adv.numpy(), [[want[0], want[1]], [want[2], 0.0]], rtol=1e-5)
    with pytest.raises(ConfigError, match="every token is masked"):
        reinforce_pp_token_advantage([1.0, 0.0], lp, ref, torch.zeros(2, 2), cfg)


@pytest.mark.parametrize("fn, cfg", [(grpo_advantage, GRPOConfig()), (rloo_advantage, RLOOConfig()),
                                     (reinforce_pp_advantage, ReinforcePPConfig())])
def test_empty_batches_raise(fn, cfg):
    with pytest.raises(ConfigError, match="empty batch"):
        fn(TurnBatch.from_lists([0], [0], [0], [1.0], ["s"], mask=[False]), cfg)
