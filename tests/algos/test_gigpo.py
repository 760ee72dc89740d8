"""GiGPO: the docstring's worked example, edge cases, and agreement with the plain-loop
reference."""

import math

import numpy as np
import pytest

from turngym.algos.batch import TurnBatch
from turngym.algos.gigpo import GiGPOConfig, gigpo_advantage
from turngym.algos.grpo import GRPOConfig, grpo_advantage
from turngym.benchmarks.gigpo_speed import gigpo_dict_of_lists, synthetic_batch
from turngym.errors import ConfigError

# The worked example of algos/gigpo.py: A's response on s1 does not parse (a format error:
# no env step, so also an invalid action), then A wins; B is truncated.
EXAMPLE = {"group": [0, 0, 0, 0, 0], "traj": [0, 0, 0, 1, 1], "turn": [0, 1, 2, 0, 1],
           "reward": [0, 0, 1, 0, 0], "state": ["s0", "s1", "s1", "s0", "s2"],
           "valid": [True, False, True, True, True],
           "format_valid": [True, False, True, True, True]}
# The same turns with A1 a wall bump instead: well-formed, but the env could not apply it.
WALL_BUMP = {**EXAMPLE, "format_valid": [True] * 5}
OLD = {"penalize": "action", "penalty_stage": "reward"}  # the semantics before the options


def as_lists(b: TurnBatch):
    return [a.tolist() for a in (b.group_N, b.traj_N, b.turn_N, b.reward_N, b.state_N,
                                 b.valid_N, b.mask_N)]


def reference(b: TurnBatch, cfg: GiGPOConfig) -> list[float]:
    return gigpo_dict_of_lists(*as_lists(b), cfg, b.format_valid_N.tolist())


def test_docstring_worked_example():
    res = gigpo_advantage(TurnBatch.from_lists(**EXAMPLE), GiGPOConfig(mode="mean_norm", gamma=0.5))
    # A_E = +-0.5; A_S = A [0.125, -0.25, 0.25], B [-0.125, 0]; A1 then loses 0.1
    np.testing.assert_allclose(res.adv_N, [0.625, 0.15, 0.75, -0.625, -0.5], rtol=0, atol=1e-15)
    m = res.metrics
    assert m["algo/step_groups"] == 3.0
    assert m["algo/step_group_size_mean"] == pytest.approx(5 / 3)
    assert m["algo/step_group_singleton_frac"] == pytest.approx(1 / 3)
    assert m["algo/step_group_size_max"] == 2.0
    assert m["algo/invalid_frac"] == pytest.approx(0.2)
    assert m["algo/format_error_frac"] == pytest.approx(0.2)
    assert m["algo/penalized_frac"] == pytest.approx(0.2)
    assert m["algo/episode_return_mean"] == pytest.approx(0.5)  # unpenalised returns


@pytest.mark.parametrize("penalize", ["format", "action"])
def test_docstring_worked_example_old_reward_stage(penalize):
    # the penalty in the reward: A's rewards [0, -0.1, 1], returns 0.9 and 0 (the old numbers)
    cfg = GiGPOConfig(mode="mean_norm", gamma=0.5, penalize=penalize, penalty_stage="reward")
    res = gigpo_advantage(TurnBatch.from_lists(**EXAMPLE), cfg)
    np.testing.assert_allclose(res.adv_N, [0.55, 0.15, 0.75, -0.55, -0.45], rtol=0, atol=1e-15)
    assert res.metrics["algo/episode_return_mean"] == pytest.approx(0.45)


@pytest.mark.parametrize("cfg, want", [
    ({}, [0.625, 0.25, 0.75, -0.625, -0.5]),                       # default: not penalised
    ({"penalize": "action"}, [0.625, 0.15, 0.75, -0.625, -0.5]),   # penalised row only
    (OLD, [0.55, 0.15, 0.75, -0.55, -0.45]),                       # old: in the reward
])
def test_docstring_wall_bump(cfg, want):
    res = gigpo_advantage(TurnBatch.from_lists(**WALL_BUMP),
                          GiGPOConfig(mode="mean_norm", gamma=0.5, **cfg))
    np.testing.assert_allclose(res.adv_N, want, rtol=0, atol=1e-15)
    assert res.metrics["algo/invalid_frac"] == pytest.approx(0.2)
    assert res.metrics["algo/format_error_frac"] == 0.0
    assert res.metrics["algo/penalized_frac"] == pytest.approx(0.0 if not cfg else 0.2)


def test_worked_example_mean_std_norm():
    res = gigpo_advantage(TurnBatch.from_lists(**EXAMPLE), GiGPOConfig(gamma=0.5))
    e = 0.5 / (math.sqrt(2 * 0.5**2) + 1e-6)            # episode: returns [1, 0]
    s0 = 0.125 / (math.sqrt(2 * 0.125**2) + 1e-6)       # step group s0: [0.25, 0]
    s1 = 0.25 / (math.sqrt(2 * 0.25**2) + 1e-6)         # step group s1: [0.5, 1.0]
    np.testing.assert_allclose(res.adv_N, [e + s0, e - s1 - 0.1, e + s1, -e - s0, -e],
                               rtol=1e-12, atol=1e-15)


def test_worked_example_mean_std_norm_old_reward_stage():
    res = gigpo_advantage(TurnBatch.from_lists(**EXAMPLE), GiGPOConfig(gamma=0.5, **OLD))
    e = 0.45 / (math.sqrt(2 * 0.45**2) + 1e-6)          # episode: returns [0.9, 0]
    s0 = 0.1 / (math.sqrt(2 * 0.1**2) + 1e-6)           # step group s0: [0.2, 0]
    s1 = 0.3 / (math.sqrt(2 * 0.3**2) + 1e-6)           # step group s1: [0.4, 1.0]
    np.testing.assert_allclose(res.adv_N, [e + s0, e - s1, e + s1, -e - s0, -e],
                               rtol=1e-12, atol=1e-15)


# One task group of 4 one-turn trajectories from the same state, all failing; the last one's
# response did not parse. Returns differ by the penalty alone.
ALL_FAIL = {"group": [0] * 4, "traj": [0, 1, 2, 3], "turn": [0] * 4, "reward": [0.0] * 4,
            "state": ["s0"] * 4, "valid": [True, True, True, False],
            "format_valid": [True, True, True, False]}


@pytest.mark.parametrize("mode", ["mean_norm", "mean_std_norm"])
def test_penalty_only_difference_stays_the_penalty(mode):
    b = TurnBatch.from_lists(**ALL_FAIL)
    res = gigpo_advantage(b, GiGPOConfig(mode=mode))
    assert res.adv_N.tolist() == [0.0, 0.0, 0.0, -0.1]  # not +0.5/-1.5 (mean_std_norm)
    assert gigpo_advantage(b, GiGPOConfig(mode=mode, step_weight=0.0)).adv_N.tolist() == \
        [0.0, 0.0, 0.0, -0.1]


@pytest.mark.parametrize("mode, step_weight, want", [
    # returns [0, 0, 0, -0.1]: mean -0.025; A_E = [0.025]*3 + [-0.075]; the single-turn step
    # returns equal the returns, so A_S = A_E
    ("mean_norm", 0.0, [0.025, 0.025, 0.025, -0.075]),
    ("mean_norm", 1.0, [0.05, 0.05, 0.05, -0.15]),
    # unbiased std sqrt((3 * 0.025^2 + 0.075^2) / 3) = 0.05: A_E = [0.5]*3 + [-1.5]
    ("mean_std_norm", 0.0, [0.025 / 0.050001] * 3 + [-0.075 / 0.050001]),
    ("mean_std_norm", 1.0, [0.05 / 0.050001] * 3 + [-0.15 / 0.050001]),
])
def test_penalty_in_the_reward_reproduces_the_old_numbers(mode, step_weight, want):
    b = TurnBatch.from_lists(**ALL_FAIL)
    for penalize in ("format", "action"):
        cfg = GiGPOConfig(mode=mode, step_weight=step_weight, penalize=penalize,
                          penalty_stage="reward")
        np.testing.assert_allclose(gigpo_advantage(b, cfg).adv_N, want, rtol=1e-9, atol=1e-12)


@pytest.mark.parametrize("mode", ["mean_norm", "mean_std_norm"])
def test_wall_bump_is_penalised_only_with_penalize_action(mode):
    b = TurnBatch.from_lists(**{**ALL_FAIL, "format_valid": [True] * 4})  # a wall bump
    assert gigpo_advantage(b, GiGPOConfig(mode=mode)).adv_N.tolist() == [0.0] * 4
    got = gigpo_advantage(b, GiGPOConfig(mode=mode, penalize="action")).adv_N
    assert got.tolist() == [0.0, 0.0, 0.0, -0.1]


def test_penalty_in_a_mixed_group_is_row_local():
    # traj 0 wins after a format error on s0 (no step, stays on s0); traj 1 fails on s0, s1
    b = TurnBatch.from_lists(group=[0, 0, 0, 0], traj=[0, 0, 1, 1], turn=[0, 1, 0, 1],
                             reward=[0, 1, 0, 0], state=["s0", "s0", "s0", "s1"],
                             valid=[False, True, True, True],
                             format_valid=[False, True, True, True])
    res = gigpo_advantage(b, GiGPOConfig(mode="mean_norm", gamma=0.5))
    # A_E = +-0.5; step returns [0.5, 1], [0, 0]; s0 = {0.5, 1, 0} (mean 0.5), s1 singleton
    np.testing.assert_allclose(res.adv_N, [0.5 + 0.0 - 0.1, 0.5 + 0.5, -0.5 - 0.5, -0.5],
                               rtol=0, atol=1e-15)


def test_default_config_values():
    cfg = GiGPOConfig()
    assert (cfg.mode, cfg.gamma, cfg.step_weight, cfg.invalid_penalty, cfg.eps) == (
        "mean_std_norm", 0.95, 1.0, 0.1, 1e-6)
    assert (cfg.penalize, cfg.penalty_stage) == ("format", "advantage")


def test_padding_and_duplicate_rows_never_enter_statistics():
    ex = {k: list(v) for k, v in EXAMPLE.items()}
    # a padding row of B and a duplicated row of A's last turn, both masked out
    ex["group"] += [0, 0]
    ex["traj"] += [1, 0]
    ex["turn"] += [2, 2]
    ex["reward"] += [0, 1]
    ex["state"] += ["pad", "s1"]
    ex["valid"] += [False, False]
    ex["format_valid"] += [True, False]  # a masked format error is not penalised either
    mask = [True] * 5 + [False, False]
    cfg = GiGPOConfig(mode="mean_norm", gamma=0.5)
    res = gigpo_advantage(TurnBatch.from_lists(**ex, mask=mask), cfg)
    np.testing.assert_allclose(res.adv_N, [0.625, 0.15, 0.75, -0.625, -0.5, 0, 0], atol=1e-15)
    assert res.metrics["algo/step_groups"] == 3.0
    assert res.metrics["algo/penalized_frac"] == pytest.approx(0.2)


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
    assert (~b.format_valid_N).any() and (b.format_valid_N & ~b.valid_N).any()
    pen = TurnBatch(b.group_N, b.traj_N, b.turn_N, b.reward_N - 0.1 * ~b.valid_N, b.state_N,
                    b.valid_N, b.mask_N)
    got = gigpo_advantage(b, GiGPOConfig(step_weight=0.0, **OLD)).adv_N
    np.testing.assert_allclose(got, grpo_advantage(pen, GRPOConfig()).adv_N, rtol=1e-12)


def test_zero_step_weight_is_grpo_minus_the_penalty_on_format_errors():
    b = synthetic_batch(3000, seed=3)
    got = gigpo_advantage(b, GiGPOConfig(step_weight=0.0)).adv_N
    want = grpo_advantage(b, GRPOConfig()).adv_N - 0.1 * ~b.format_valid_N
    np.testing.assert_allclose(got, want, rtol=1e-12, atol=1e-15)


@pytest.mark.parametrize("mode", ["mean_norm", "mean_std_norm"])
@pytest.mark.parametrize("gamma", [0.5, 1.0])
@pytest.mark.parametrize("episode_stats", ["trajectory", "turn"])
@pytest.mark.parametrize("penalize, stage", [("format", "advantage"), ("action", "advantage"),
                                             ("action", "reward"), ("format", "reward")])
def test_matches_plain_loop_reference_exactly(mode, gamma, episode_stats, penalize, stage):
    # dyadic rewards and gamma keep every sum exact, so both must agree bit for bit
    b = synthetic_batch(4000, seed=5)
    cfg = GiGPOConfig(mode=mode, gamma=gamma, invalid_penalty=0.125, episode_stats=episode_stats,
                      penalize=penalize, penalty_stage=stage)
    got = gigpo_advantage(b, cfg).adv_N
    assert got.tolist() == reference(b, cfg)


@pytest.mark.parametrize("mode", ["mean_norm", "mean_std_norm"])
def test_matches_reference_on_random_floats_any_row_order(mode):
    b = synthetic_batch(5000, seed=7)
    rng = np.random.default_rng(0)
    perm = rng.permutation(len(b))
    mask = rng.random(len(b)) > 0.05
    b = TurnBatch(b.group_N[perm], b.traj_N[perm], b.turn_N[perm], rng.normal(size=len(b)),
                  b.state_N[perm], b.valid_N[perm], mask, b.format_valid_N[perm])
    for cfg in (GiGPOConfig(mode=mode), GiGPOConfig(mode=mode, **OLD)):
        np.testing.assert_allclose(gigpo_advantage(b, cfg).adv_N, reference(b, cfg),
                                   rtol=1e-9, atol=1e-9)


def test_long_trajectory_is_numerically_stable():
    n = 20_000
    b = TurnBatch(np.zeros(2 * n, np.int64), np.repeat([0, 1], n), np.tile(np.arange(n), 2),
                  np.tile(np.full(n, 0.01), 2) + np.repeat([0.0, 1e-3], n),
                  np.tile(np.arange(n), 2), np.ones(2 * n, bool), np.ones(2 * n, bool))
    cfg = GiGPOConfig(gamma=0.999)
    got = gigpo_advantage(b, cfg).adv_N
    assert np.all(np.isfinite(got))
    np.testing.assert_allclose(got, reference(b, cfg), rtol=1e-9, atol=1e-9)


def test_empty_batch_raises():
    b = TurnBatch.from_lists(**EXAMPLE, mask=[False] * 5)
    with pytest.raises(ConfigError, match="empty batch"):
        gigpo_advantage(b, GiGPOConfig())


@pytest.mark.parametrize("bad", [{"gamma": 1.5}, {"step_weight": -1}, {"mode": "std"},
                                 {"eps": 0}, {"omega": 1.0}, {"penalize": "both"},
                                 {"penalty_stage": "return"}, {"invalid_penalty": -0.1}])
def test_config_bounds(bad):
    with pytest.raises(ValueError):
        GiGPOConfig(**bad)
