"""HGPO: the docstring's worked example, K = 0 is GiGPO, edge cases, a plain-loop reference."""

import math
from collections import defaultdict

import numpy as np
import pytest

from turngym.algos.batch import TurnBatch
from turngym.algos.gigpo import GiGPOConfig, gigpo_advantage
from turngym.algos.hgpo import HGPOConfig, hgpo_advantage
from turngym.benchmarks.gigpo_speed import synthetic_batch
from turngym.errors import ConfigError

# The worked example of algos/hgpo.py: A and C reach x from a, B reaches x from b (and is
# truncated there: no reward, no bootstrap). A wins at x, C loses.
EXAMPLE = {"group": [0] * 9, "traj": [0, 0, 0, 1, 1, 1, 2, 2, 2], "turn": [0, 1, 2] * 3,
           "reward": [0, 0, 1, 0, 0, 0, 0, 0, 0],
           "state": ["s0", "a", "x", "s0", "b", "x", "s0", "a", "x"]}
EXAMPLE_ADV = [5 / 6, 11 / 12, 37 / 30, -5 / 12, -1 / 3, -2 / 3, -5 / 12, -7 / 12, -23 / 30]
MEAN_HALF = {"mode": "mean_norm", "gamma": 0.5}


def batch(**lists) -> TurnBatch:
    return TurnBatch.from_lists(**lists)


def test_docstring_worked_example():
    res = hgpo_advantage(batch(**EXAMPLE), HGPOConfig(**MEAN_HALF, history_levels=1))
    np.testing.assert_allclose(res.adv_N, EXAMPLE_ADV, rtol=0, atol=1e-15)
    m = res.metrics
    assert (m["algo/step_level0_groups"], m["algo/step_level1_groups"]) == (4.0, 5.0)
    assert m["algo/step_level0_group_size_mean"] == pytest.approx(9 / 4)
    assert m["algo/step_level1_group_size_mean"] == pytest.approx(9 / 5)
    assert m["algo/step_level0_singleton_frac"] == pytest.approx(1 / 4)
    assert m["algo/step_level1_singleton_frac"] == pytest.approx(2 / 5)
    assert m["algo/step_levels_used_mean"] == pytest.approx(5 / 3)
    assert m["algo/step_groups"] == 4.0  # GiGPO's keys describe level 0
    assert m["algo/episode_return_mean"] == pytest.approx(1 / 3)


def test_different_previous_states_are_not_pooled_at_level_1():
    b = batch(**EXAMPLE)
    gigpo = gigpo_advantage(b, GiGPOConfig(**MEAN_HALF)).adv_N
    hgpo = hgpo_advantage(b, HGPOConfig(**MEAN_HALF, history_levels=1)).adv_N
    # GiGPO pools x = {A2: 1, B2: 0, C2: 0} (mean 1/3): A2 = 2/3 + 2/3, C2 = -1/3 - 1/3
    np.testing.assert_allclose(gigpo[[2, 8]], [4 / 3, -2 / 3], rtol=0, atol=1e-15)
    # HGPO: (x, a) = {A2, C2} (mean 1/2) weighs 3, level 0 weighs 2
    np.testing.assert_allclose(hgpo[[2, 8]], [2 / 3 + 17 / 30, -1 / 3 - 13 / 30], atol=1e-15)
    changed = np.flatnonzero(np.abs(hgpo - gigpo) > 1e-12)
    assert changed.tolist() == [2, 8]  # B2 (x from b) is a singleton at level 1: unchanged
    # level 2 repeats level 1's groups ((x, a, s0) = {A2, C2}), and each level counts:
    # A2 = 2/3 + (2 * 2/3 + 3 * 1/2 + 4 * 1/2) / 9, C2 = -1/3 + (2 * -1/3 - 7 * 1/2) / 9
    deeper = hgpo_advantage(b, HGPOConfig(**MEAN_HALF, history_levels=2)).adv_N
    np.testing.assert_allclose(deeper[[2, 5, 8]], [2 / 3 + 29 / 54, -2 / 3, -1 / 3 - 25 / 54],
                               rtol=0, atol=1e-15)


@pytest.mark.parametrize("alpha, a2, c2", [
    (0.0, (2 / 3 + 1 / 2) / 2, (-1 / 3 - 1 / 2) / 2),          # weights 1, 1
    (1.0, 17 / 30, -13 / 30),                                   # weights 2, 3
    (2.0, (4 * 2 / 3 + 9 / 2) / 13, (-4 / 3 - 9 / 2) / 13),     # weights 4, 9
])
def test_level_weights(alpha, a2, c2):
    # episode_weight 0 (the recipe's default: no episode term) leaves A = A_S
    cfg = HGPOConfig(**MEAN_HALF, history_levels=1, level_alpha=alpha, episode_weight=0.0)
    adv = hgpo_advantage(batch(**EXAMPLE), cfg).adv_N
    np.testing.assert_allclose(adv, [1 / 6, 1 / 4, a2, -1 / 12, 0, -1 / 3, -1 / 12, -1 / 4, c2],
                               rtol=0, atol=1e-15)


def gigpo_cfg_fields(mode, penalize, stage, episode_stats):
    return {"mode": mode, "penalize": penalize, "penalty_stage": stage,
            "episode_stats": episode_stats, "invalid_penalty": 0.125, "gamma": 0.5}


@pytest.mark.parametrize("mode", ["mean_norm", "mean_std_norm"])
@pytest.mark.parametrize("penalize, stage", [("format", "advantage"), ("action", "reward")])
@pytest.mark.parametrize("episode_stats", ["trajectory", "turn"])
@pytest.mark.parametrize("alpha", [1.0, 0.7])
def test_history_levels_zero_is_gigpo_exactly(mode, penalize, stage, episode_stats, alpha):
    fields = gigpo_cfg_fields(mode, penalize, stage, episode_stats)
    b = synthetic_batch(3000, seed=11)
    b = TurnBatch(b.group_N, b.traj_N, b.turn_N, b.reward_N, b.state_N % 4,  # repeated states
                  b.valid_N, b.mask_N, b.format_valid_N)
    for bb in (b, batch(**EXAMPLE)):
        want = gigpo_advantage(bb, GiGPOConfig(**fields))
        got = hgpo_advantage(bb, HGPOConfig(**fields, history_levels=0, level_alpha=alpha))
        assert got.adv_N.tolist() == want.adv_N.tolist()  # bit for bit
        assert {k: got.metrics[k] for k in want.metrics} == want.metrics


def test_the_start_of_a_trajectory_is_context():
    # A loops back to its start state s0 and wins there; B fails after b
    b = batch(group=[0] * 5, traj=[0, 0, 0, 1, 1], turn=[0, 1, 2, 0, 1],
              reward=[0, 0, 1, 0, 0], state=["s0", "a", "s0", "s0", "b"])
    res = hgpo_advantage(b, HGPOConfig(**MEAN_HALF, history_levels=1))
    # step returns A [1/4, 1/2, 1], B [0, 0]; A_E = +-1/2
    # level 0: s0 = {A0, A2, B0} (mean 5/12): A0 -1/6, A2 7/12, B0 -5/12; a, b singletons
    # level 1: (s0, START) = {A0, B0} (mean 1/8): +-1/8; (s0, a) = {A2} singleton
    # A0 = (2 * -1/6 + 3 * 1/8) / 5 = 1/120, B0 = (2 * -5/12 + 3 * -1/8) / 5 = -29/120
    # (verl-agent's recipe gives turn 0 level 0 only: A0 -1/6, B0 -5/12)
    np.testing.assert_allclose(res.adv_N, [1 / 2 + 1 / 120, 1 / 2, 1 / 2 + 7 / 12,
                                           -1 / 2 - 29 / 120, -1 / 2], rtol=0, atol=1e-15)


@pytest.mark.parametrize("skip, b23", [(False, -1 / 10), (True, -1 / 4)])
def test_truncated_loop_and_zero_levels(skip, b23):
    # A wins after 2 turns; B bumps into walls at a until its turn budget runs out (truncated)
    b = batch(group=[0] * 6, traj=[0, 0, 1, 1, 1, 1], turn=[0, 1, 0, 1, 2, 3],
              reward=[0, 1, 0, 0, 0, 0], state=["s0", "a", "s0", "a", "a", "a"],
              valid=[True, True, True, False, False, False])
    cfg = HGPOConfig(**MEAN_HALF, history_levels=1, skip_zero_levels=skip)
    res = hgpo_advantage(b, cfg)
    # step returns A [1/2, 1], B [0, 0, 0, 0]; A_E = +-1/2 (wall bumps are not penalised)
    # level 0: s0 = {A0, B0}: +-1/4; a = {A1, B1, B2, B3} (mean 1/4): A1 3/4, B1..B3 -1/4
    # level 1: (a, s0) = {A1, B1} (mean 1/2): +-1/2; (a, a) = {B2, B3}: both 0
    # A1 = (2 * 3/4 + 3 * 1/2) / 5 = 3/5, B1 = (2 * -1/4 + 3 * -1/2) / 5 = -2/5
    # B2, B3 = (2 * -1/4 + 3 * 0) / 5 = -1/10, or -1/4 when the zero level is skipped
    np.testing.assert_allclose(res.adv_N, [3 / 4, 1 / 2 + 3 / 5, -3 / 4, -1 / 2 - 2 / 5,
                                           -1 / 2 + b23, -1 / 2 + b23], rtol=0, atol=1e-15)
    assert res.metrics["algo/step_level1_groups"] == 3.0


@pytest.mark.parametrize("levels, want", [
    (0, [-3 / 8, -3 / 16, -3 / 16, 3 / 16, 9 / 16]),   # GiGPO
    (1, [-3 / 8, -3 / 16, -3 / 10, 3 / 16, 9 / 20]),
    (2, [-3 / 8, -3 / 16, -1 / 3, 3 / 16, 5 / 12]),
])
def test_one_trajectory_with_loops(levels, want):
    # a, b, a, b, a, then won: step returns [1/16, 1/8, 1/4, 1/2, 1]; one trajectory: A_E = 0
    # level 0: a = {t0, t2, t4} (mean 7/16), b = {t1, t3} (mean 5/16)
    # level 1: (a, b) = {t2, t4} (mean 5/8): -3/8, 3/8; (a, START) = {t0}; (b, a) = {t1, t3}
    # level 2: (a, b, a) = {t2, t4} again; (b, a, START), (b, a, b) split t1, t3
    b = batch(group=[7] * 5, traj=[3] * 5, turn=[0, 1, 2, 3, 4], reward=[0, 0, 0, 0, 1],
              state=["a", "b", "a", "b", "a"])
    res = hgpo_advantage(b, HGPOConfig(**MEAN_HALF, history_levels=levels))
    np.testing.assert_allclose(res.adv_N, want, rtol=0, atol=1e-15)
    if levels == 2:
        m = res.metrics
        assert [m[f"algo/step_level{k}_groups"] for k in range(3)] == [2.0, 3.0, 4.0]
        assert m["algo/step_level1_singleton_frac"] == pytest.approx(1 / 3)
        assert m["algo/step_level2_singleton_frac"] == pytest.approx(3 / 4)
        assert m["algo/step_levels_used_mean"] == pytest.approx(11 / 5)


@pytest.mark.parametrize("mode", ["mean_norm", "mean_std_norm"])
def test_singleton_groups_at_every_level(mode):
    b = batch(group=[0] * 4, traj=[0, 0, 1, 1], turn=[0, 1, 0, 1], reward=[0, 1, 0, 0],
              state=["a", "b", "c", "d"])
    res = hgpo_advantage(b, HGPOConfig(mode=mode, history_levels=3))
    e = 0.5 if mode == "mean_norm" else 0.5 / (math.sqrt(0.5) + 1e-6)  # returns [1, 0]
    np.testing.assert_allclose(res.adv_N, [e, e, -e, -e], rtol=1e-15, atol=0)  # A_S = 0
    for k in range(4):
        assert res.metrics[f"algo/step_level{k}_singleton_frac"] == 1.0
    assert res.metrics["algo/step_levels_used_mean"] == 0.0


def test_masked_rows_are_ignored_everywhere():
    ex = {k: list(v) for k, v in EXAMPLE.items()}
    # C gets a masked expert-prefix turn before its own (its turns shift to 1..3), B a padding
    # row after its end, A a duplicate of its last turn; none is data, nor history
    ex["turn"][6:9] = [1, 2, 3]
    rows = [(2, 0, "e", 5.0), (1, 3, "pad", 0.0), (0, 2, "x", 1.0)]  # (traj, turn, state, r)
    for traj, turn, state, reward in rows:
        ex["group"].append(0)
        ex["traj"].append(traj)
        ex["turn"].append(turn)
        ex["state"].append(state)
        ex["reward"].append(reward)
    res = hgpo_advantage(batch(**ex, mask=[True] * 9 + [False] * 3),
                         HGPOConfig(**MEAN_HALF, history_levels=1))
    # had C's prefix counted as history, C0's level-1 context would be (s0, e), not START
    np.testing.assert_allclose(res.adv_N, EXAMPLE_ADV + [0, 0, 0], rtol=0, atol=1e-15)
    assert res.metrics["algo/step_level1_groups"] == 5.0


def test_empty_batch_raises():
    with pytest.raises(ConfigError, match="empty batch"):
        hgpo_advantage(batch(**EXAMPLE, mask=[False] * 9), HGPOConfig())


def test_config_defaults_and_gigpo_fields():
    cfg = HGPOConfig()
    assert (cfg.history_levels, cfg.level_alpha, cfg.skip_zero_levels, cfg.episode_weight) == (
        2, 1.0, False, 1.0)
    assert cfg.gigpo_config() == GiGPOConfig()
    custom = HGPOConfig(mode="mean_norm", gamma=0.5, penalize="action", history_levels=0)
    assert custom.gigpo_config() == GiGPOConfig(mode="mean_norm", gamma=0.5, penalize="action")


@pytest.mark.parametrize("bad", [{"history_levels": -1}, {"history_levels": 33},
                                 {"level_alpha": -0.5}, {"episode_weight": -1.0},
                                 {"mode": "std"}, {"gamma": 1.5}, {"levels": 2}])
def test_config_bounds(bad):
    with pytest.raises(ValueError):
        HGPOConfig(**bad)


def loop_step_advantage(b: TurnBatch, cfg: HGPOConfig) -> list[float]:
    """``A_S`` by plain loops over dicts of lists keyed by ``(group, s_t, ..., s_{t-k})``."""
    rows_of = defaultdict(list)
    for i in np.flatnonzero(b.mask_N):
        rows_of[int(b.traj_N[i])].append(int(i))
    ret, ctx = {}, {}
    for rows in rows_of.values():
        rows.sort(key=lambda i: b.turn_N[i])
        run = 0.0
        for i in reversed(rows):
            run = float(b.reward_N[i]) + cfg.gamma * run
            ret[i] = run
        states = [int(b.state_N[i]) for i in rows]
        for t, i in enumerate(rows):
            for k in range(cfg.history_levels + 1):
                hist = tuple(states[t - j] if t >= j else "START" for j in range(k + 1))
                ctx[i, k] = (int(b.group_N[i]), hist)
    members = defaultdict(list)
    for (i, k), key in ctx.items():
        members[k, key].append(ret[i])
    out = [0.0] * len(b)
    for i, ret_i in ret.items():
        num = den = 0.0
        for k in range(cfg.history_levels + 1):
            vals = members[k, ctx[i, k]]
            if len(vals) < 2:
                continue
            mean = sum(vals) / len(vals)
            a = ret_i - mean
            if cfg.mode == "mean_std_norm":
                ddof = 1 if cfg.unbiased_std else 0
                a /= math.sqrt(sum((v - mean) ** 2 for v in vals) / (len(vals) - ddof)) + cfg.eps
            if cfg.skip_zero_levels and a == 0.0:
                continue
            w = (k + 2) ** cfg.level_alpha
            num, den = num + w * a, den + w
        out[i] = num / den if den else 0.0
    return out


@pytest.mark.parametrize("mode", ["mean_norm", "mean_std_norm"])
@pytest.mark.parametrize("levels, alpha, skip, unbiased", [
    (1, 1.0, False, True), (3, 1.0, True, True), (3, 0.0, False, False), (2, 2.5, True, False),
])
@pytest.mark.parametrize("floats", [False, True])
def test_matches_plain_loop_reference(mode, levels, alpha, skip, unbiased, floats):
    # 4 states per task, so deep groups have peers; rows shuffled, 5% masked (any turn)
    b = synthetic_batch(2000, seed=13)
    rng = np.random.default_rng(1)
    perm = rng.permutation(len(b))
    reward_N = rng.normal(size=len(b)) if floats else b.reward_N  # dyadic: exact zeros
    b = TurnBatch(b.group_N[perm], b.traj_N[perm], b.turn_N[perm], reward_N[perm],
                  b.state_N[perm] % 4, b.valid_N[perm], rng.random(len(b)) > 0.05)
    cfg = HGPOConfig(mode=mode, gamma=0.5, history_levels=levels, level_alpha=alpha,
                     skip_zero_levels=skip, unbiased_std=unbiased, episode_weight=0.0,
                     invalid_penalty=0.0)  # A = A_S
    res = hgpo_advantage(b, cfg)
    np.testing.assert_allclose(res.adv_N, loop_step_advantage(b, cfg), rtol=1e-12, atol=1e-12)
    assert res.metrics[f"algo/step_level{levels}_singleton_frac"] < 1.0  # deep levels used
