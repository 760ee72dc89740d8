"""Property tests (hypothesis): shapes, row-order invariance, zero mean within groups,
and GiGPO against the plain-loop reference on random batches."""

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from turngym.algos.batch import TurnBatch
from turngym.algos.gigpo import GiGPOConfig, gigpo_advantage
from turngym.algos.grouping import dense_ids, subtract_baseline
from turngym.algos.grpo import GRPOConfig, grpo_advantage
from turngym.algos.reinforce_pp import ReinforcePPConfig, reinforce_pp_advantage
from turngym.algos.rloo import RLOOConfig, rloo_advantage
from turngym.algos.segments import _doubling_scan, _horner_table, discounted_suffix_sum
from turngym.benchmarks.gigpo_speed import gigpo_dict_of_lists

SETTINGS = settings(max_examples=60, deadline=None)


@st.composite
def turn_batches(draw):
    """1-4 groups of 1-4 trajectories of 1-6 turns, a small state alphabet, some masked rows."""
    group, traj, turn, reward, state, valid, mask, fmt = [], [], [], [], [], [], [], []
    t_id = 0
    for g in range(draw(st.integers(1, 4))):
        for _ in range(draw(st.integers(1, 4))):
            for k in range(draw(st.integers(1, 6))):
                group.append(g)
                traj.append(t_id)
                turn.append(k)
                reward.append(draw(st.sampled_from([0.0, 0.5, 1.0, -1.0, 0.25])))
                state.append(draw(st.integers(0, 3)))
                valid.append(draw(st.booleans()))
                fmt.append(valid[-1] or draw(st.booleans()))  # a format error is invalid
                mask.append(draw(st.sampled_from([True, True, True, False])))
            t_id += 1
    if not any(mask):
        mask[0] = True
    perm = draw(st.permutations(range(len(group))))
    cols = [np.asarray(c)[perm] for c in (group, traj, turn, reward, state, valid, mask, fmt)]
    return TurnBatch(cols[0].astype(np.int64), cols[1].astype(np.int64),
                     cols[2].astype(np.int64), cols[3].astype(np.float64),
                     cols[4].astype(np.int64), cols[5].astype(bool), cols[6].astype(bool),
                     cols[7].astype(bool))


def permuted(b: TurnBatch, perm: np.ndarray) -> TurnBatch:
    return TurnBatch(*(getattr(b, f)[perm] for f in ("group_N", "traj_N", "turn_N", "reward_N",
                                                     "state_N", "valid_N", "mask_N",
                                                     "format_valid_N")))


ESTIMATORS = [(grpo_advantage, GRPOConfig()), (grpo_advantage, GRPOConfig(stats="turn")),
              (rloo_advantage, RLOOConfig()), (reinforce_pp_advantage, ReinforcePPConfig()),
              (gigpo_advantage, GiGPOConfig()), (gigpo_advantage, GiGPOConfig(mode="mean_norm")),
              (gigpo_advantage, GiGPOConfig(penalize="action", penalty_stage="reward"))]


@SETTINGS
@given(turn_batches(), st.randoms(use_true_random=False))
def test_shapes_masking_and_row_order_invariance(b, rnd):
    perm = np.asarray(rnd.sample(range(len(b)), len(b)))
    for fn, cfg in ESTIMATORS:
        adv = fn(b, cfg).adv_N
        assert adv.shape == (len(b),) and adv.dtype == np.float64
        assert np.all(np.isfinite(adv))
        assert np.all(adv[~b.mask_N] == 0.0)
        np.testing.assert_allclose(fn(permuted(b, perm), cfg).adv_N, adv[perm],
                                   rtol=1e-12, atol=1e-12)


@SETTINGS
@given(turn_batches())
def test_outcome_advantages_have_zero_mean_per_group(b):
    keep = b.mask_N
    first = {}
    for i in np.flatnonzero(keep):  # one row per kept trajectory
        first.setdefault(int(b.traj_N[i]), i)
    rows = np.asarray(sorted(first.values()))
    for fn, cfg in [(grpo_advantage, GRPOConfig()), (grpo_advantage, GRPOConfig(norm="mean")),
                    (rloo_advantage, RLOOConfig())]:
        adv = fn(b, cfg).adv_N
        sums = np.bincount(b.group_N[rows], weights=adv[rows])
        np.testing.assert_allclose(sums, 0.0, atol=1e-9)
    adv = reinforce_pp_advantage(b, ReinforcePPConfig()).adv_N
    assert abs(adv[keep].mean()) < 1e-9


@SETTINGS
@given(st.lists(st.floats(-10, 10), min_size=1, max_size=40),
       st.lists(st.integers(0, 5), min_size=1, max_size=40),
       st.sampled_from(["mean", "mean_std", "loo"]))
def test_baselines_have_zero_mean_within_groups(values, keys, baseline):
    n = min(len(values), len(keys))
    ids, k = dense_ids(np.asarray(keys[:n]))
    adv = subtract_baseline(np.asarray(values[:n]), ids, k, baseline)
    np.testing.assert_allclose(np.bincount(ids, weights=adv, minlength=k), 0.0, atol=1e-6)


@SETTINGS
@given(turn_batches(), st.sampled_from(["mean_norm", "mean_std_norm"]),
       st.sampled_from([0.0, 0.5, 0.95, 1.0]), st.sampled_from([0.0, 0.5, 1.0]),
       st.sampled_from(["format", "action"]), st.sampled_from(["advantage", "reward"]))
def test_gigpo_matches_reference(b, mode, gamma, omega, penalize, stage):
    cfg = GiGPOConfig(mode=mode, gamma=gamma, step_weight=omega, penalize=penalize,
                      penalty_stage=stage)
    lists = [getattr(b, f).tolist() for f in ("group_N", "traj_N", "turn_N", "reward_N",
                                              "state_N", "valid_N", "mask_N")]
    np.testing.assert_allclose(gigpo_advantage(b, cfg).adv_N,
                               gigpo_dict_of_lists(*lists, cfg, b.format_valid_N.tolist()),
                               rtol=1e-9, atol=1e-9)


@SETTINGS
@given(turn_batches(), st.sampled_from(["mean_norm", "mean_std_norm"]),
       st.sampled_from(["format", "action"]))
def test_gigpo_penalty_after_normalisation_is_exactly_p_per_penalised_row(b, mode, penalize):
    # the default stage: advantages with the penalty = advantages without it - p * [hit]
    with_p = gigpo_advantage(b, GiGPOConfig(mode=mode, penalize=penalize)).adv_N
    without = gigpo_advantage(b, GiGPOConfig(mode=mode, invalid_penalty=0.0)).adv_N
    hit = ~(b.format_valid_N if penalize == "format" else b.valid_N) & b.mask_N
    np.testing.assert_allclose(without - with_p, 0.1 * hit, rtol=0, atol=1e-12)


@SETTINGS
@given(st.lists(st.integers(1, 70), min_size=1, max_size=8), st.floats(0.0, 1.0))
def test_discounted_suffix_sum_matches_horner(lengths, gamma):
    r = np.arange(sum(lengths), dtype=np.float64) % 7 - 3
    end = np.repeat(np.cumsum(lengths) - 1, lengths)
    want = np.empty_like(r)
    for i in range(len(r) - 1, -1, -1):
        want[i] = r[i] + (gamma * want[i + 1] if i < end[i] else 0.0)
    np.testing.assert_allclose(discounted_suffix_sum(r, end, gamma), want, rtol=1e-9, atol=1e-9)
    # both internal paths, whichever the size heuristic would pick
    reach = end - np.arange(len(r))
    seg = np.repeat(np.arange(len(lengths)), lengths)
    np.testing.assert_allclose(_doubling_scan(r, reach, max(lengths), gamma), want, rtol=1e-9,
                               atol=1e-9)
    assert _horner_table(r, reach, seg, max(lengths), len(lengths), gamma).tolist() == \
        want.tolist()  # Horner's rule in the same order: bit for bit
