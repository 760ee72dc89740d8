"""GiGPO: the docstring's worked example, edge cases, and agreement with the plain-loop reference."""

import math

import numpy as np
import pytest

from algos.batch import TurnBatch
from algos.gigpo import GiGPOConfig, gigpo_advantage
from algos.grpo import GRPOConfig, grpo_advantage
from benchmarks.gigpo_speed import gigpo_dict_of_lists, synthetic_batch
from envs.errors import ConfigError

# The worked example of algos/gigpo.py: A loops on s1 (invalid action) and wins, B is truncated.
EXAMPLE = {"group": [0, 0, 0, 0, 0], "traj": [0, 0, 0, 1, 1], "turn": [0, 1, 2, 0, 1],
           "reward": [0, 0, 1, 0, 0], "state": ["s0", "s1", "s1", "s0", "s2"],
           "valid": [True, False, True, True, True]}


def as_lists(b: TurnBatch):
    return [a.tolist() for a in (b.group_N, b.traj_N, b.turn_N, b.reward_N, b.state_N,
                                 b.valid_N, b.mask_N)]


def test_docstring_worked_example():
    res = gigpo_advantage(TurnBatch.from_lists(**EXAMPLE), GiGPOConfig(mode="mean_norm", gamma=0.5))
    np.testing.assert_allclose(res.adv_N, [0.55, 0.15, 0.75, -0.55, -0.45], rtol=0, atol=1e-15)
    m = res.metrics
    assert m["algo/step_groups"] == 3.0
    assert m["algo/step_group_size_mean"] == pytest.approx(5 / 3)
    assert m["algo/step_group_singleton_frac"] == pytest.approx(1 / 3)
    assert m["algo/step_group_size_max"] == 2.0
    assert m["algo/invalid_frac"] == pytest.approx(0.2)
    assert m["algo/episode_return_mean"] == pytest.approx(0.45)


def test_worked_example_mean_std_norm():
    res = gigpo_advantage(TurnBatch.from_lists(**EXAMPLE), GiGPOConfig(gamma=0.5))
    e = 0.45 / (math.sqrt(2 * 0.45**2) + 1e-6)          # episode: returns [0.9, 0]
    s0 = 0.1 / (math.sqrt(2 * 0.1**2) + 1e-6)           # step group s0: [0.2, 0]
    s1 = 0.3 / (math.sqrt(2 * 0.3**2) + 1e-6)           # step group s1: [0.4, 1.0]
    np.testing.assert_allclose(res.adv_N, [e + s0, e - s1, e + s1, -e - s0, -e],
                               rtol=1e-12, atol=1e-15)


def test_default_config_values():
    cfg = GiGPOConfig()
    assert (cfg.mode, cfg.gamma, cfg.step_weight, cfg.invalid_penalty, cfg.eps) == (
        "mean_std_norm", 0.95, 1.0, 0.1, 1e-6)


def test_padding_and_duplicate_rows_never_enter_statistics():
    ex = {k: list(v) for k, v in EXAMPLE.items()}
    # a padding row of B and a duplicated row of A's last turn, both masked out
    ex["group"] += [0, 0]
    ex["traj"] += [1, 0]
    ex["turn"] += [2, 2]
    ex["reward"] += [0, 1]
    ex["state"] += ["pad", "s1"]
    ex["valid"] += [False, True]
    mask = [True] * 5 + [False, False]
    cfg = GiGPOConfig(mode="mean_norm", gamma=0.5)
    res = gigpo_advantage(TurnBatch.from_lists(**ex, mask=mask), cfg)
    np.testing.assert_allclose(res.adv_N, [0.55, 0.15, 0.75, -0.55, -0.45, 0, 0], atol=1e-15)
    assert res.metrics["algo/step_groups"] == 3.0


def test_singleton_step_groups_and_all_equal_rewards():
    # every turn in its own state -> step advantage 0; all returns equal -> episode part 0
    b = TurnBatch.from_lists(group=[0, 0, 0, 0], traj=[0, 0, 1, 1], turn=[0, 1, 0, 1],
                             reward=[0, 1, 0, 1], state=["a", "b", "c", "d"])
    res = gigpo_advantage(b, GiGPOConfig())
    assert res.adv_N.tolist() == [0.0] * 4
    assert res.metrics["algo/step_group_singleton_frac"] == 1.0
    # a whole singleton task group (one trajectory) gets 0 everywhere, even with a loop
    b = TurnBatch.from_lists(group=[3, 3, 3], traj=[0, 0, 0], turn=[0, 1, 2], reward=[0, 0, 1],
                             state=["a", "a", "b"])
    res = gigpo_advantage(b, GiGPOConfig(mode="mean_norm", gamma=1.0, invalid_penalty=0.0))
    # episode singleton -> 0; step group "a" = {turn 0: 1, turn 1: 1} -> 0; "b" singleton
    assert res.adv_N.tolist() == [0.0, 0.0, 0.0]


def test_loop_within_one_trajectory_is_one_step_group():
    # traj 0 visits a, a (loop), then wins; traj 1 visits a once and loses
    b = TurnBatch.from_lists(group=[0, 0, 0, 0], traj=[0, 0, 0, 1], turn=[0, 1, 2, 0],
                             reward=[0, 0, 1, 0], state=["a", "a", "b", "a"])
    cfg = GiGPOConfig(mode="mean_norm", gamma=0.5, invalid_penalty=0.0, step_weight=2.0)
    res = gigpo_advantage(b, cfg)
    # step returns: traj 0 [0.25, 0.5, 1], traj 1 [0]; group a = {0.25, 0.5, 0}, mean 0.25
    # episode: returns [1, 0] -> +-0.5
    np.testing.assert_allclose(res.adv_N, [0.5 + 2 * 0.0, 0.5 + 2 * 0.25, 0.5, -0.5 - 2 * 0.25],
                               atol=1e-15)
    assert res.metrics["algo/step_groups"] == 2.0


def test_step_groups_never_cross_task_groups():
    # same state id in two task groups: two separate step groups
    b = TurnBatch.from_lists(group=[0, 0, 1, 1], traj=[0, 1, 2, 3], turn=[0, 0, 0, 0],
                             reward=[1, 0, 5, 5], state=["x"] * 4)
    res = gigpo_advantage(b, GiGPOConfig(mode="mean_norm", invalid_penalty=0.0))
    np.testing.assert_allclose(res.adv_N, [1.0, -1.0, 0.0, 0.0])
    assert res.metrics["algo/step_groups"] == 2.0


def test_zero_step_weight_is_grpo_on_penalised_rewards():
    b = synthetic_batch(3000, seed=3)
    pen = TurnBatch(b.group_N, b.traj_N, b.turn_N, b.reward_N - 0.1 * ~b.valid_N, b.state_N,
                    b.valid_N, b.mask_N)
    got = gigpo_advantage(b, GiGPOConfig(step_weight=0.0)).adv_N
    np.testing.assert_allclose(got, grpo_advantage(pen, GRPOConfig()).adv_N, rtol=1e-12)


@pytest.mark.parametrize("mode", ["mean_norm", "mean_std_norm"])
@pytest.mark.parametrize("gamma", [0.5, 1.0])
@pytest.mark.parametrize("episode_stats", ["trajectory", "turn"])
def test_matches_plain_loop_reference_exactly(mode, gamma, episode_stats):
    # dyadic rewards and gamma keep every sum exact, so both must agree bit for bit
    b = synthetic_batch(4000, seed=5)
    cfg = GiGPOConfig(mode=mode, gamma=gamma, invalid_penalty=0.125, episode_stats=episode_stats)
    got = gigpo_advantage(b, cfg).adv_N
    assert got.tolist() == gigpo_dict_of_lists(*as_lists(b), cfg)


@pytest.mark.parametrize("mode", ["mean_norm", "mean_std_norm"])
def test_matches_reference_on_random_floats_any_row_order(mode):
    b = synthetic_batch(5000, seed=7)
    rng = np.random.default_rng(0)
    perm = rng.permutation(len(b))
    mask = rng.random(len(b)) > 0.05
    b = TurnBatch(b.group_N[perm], b.traj_N[perm], b.turn_N[perm], rng.normal(size=len(b)),
                  b.state_N[perm], b.valid_N[perm], mask)
    cfg = GiGPOConfig(mode=mode)
    np.testing.assert_allclose(gigpo_advantage(b, cfg).adv_N,
                               gigpo_dict_of_lists(*as_lists(b), cfg), rtol=1e-9, atol=1e-9)


def test_long_trajectory_is_numerically_stable():
    n = 20_000
    b = TurnBatch(np.zeros(2 * n, np.int64), np.repeat([0, 1], n), np.tile(np.arange(n), 2),
                  np.tile(np.full(n, 0.01), 2) + np.repeat([0.0, 1e-3], n),
                  np.tile(np.arange(n), 2), np.ones(2 * n, bool), np.ones(2 * n, bool))
    cfg = GiGPOConfig(gamma=0.999)
    got = gigpo_advantage(b, cfg).adv_N
    assert np.all(np.isfinite(got))
    np.testing.assert_allclose(got, gigpo_dict_of_lists(*as_lists(b), cfg), rtol=1e-9, atol=1e-9)


def test_empty_batch_raises():
    b = TurnBatch.from_lists(**EXAMPLE, mask=[False] * 5)
    with pytest.raises(ConfigError, match="empty batch"):
        gigpo_advantage(b, GiGPOConfig())


@pytest.mark.parametrize("bad", [{"gamma": 1.5}, {"step_weight": -1}, {"mode": "std"},
                                 {"eps": 0}, {"omega": 1.0}])
def test_config_bounds(bad):
    with pytest.raises(ValueError):
        GiGPOConfig(**bad)
