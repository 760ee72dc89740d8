"""The shared grouping helper and trajectory segments, on hand-computed inputs."""

import math

import numpy as np
import pytest

from turngym.algos.batch import TurnBatch
from turngym.algos.grouping import dense_ids, group_stats, subtract_baseline
from turngym.algos.segments import discounted_suffix_sum, segments, traj_sums
from turngym.errors import ConfigError


@pytest.mark.parametrize("keys, expected, k", [
    (([5, 3, 5, 9],), [1, 0, 1, 2], 3),
    (([10**15, -3, 10**15],), [1, 0, 1], 2),                 # sort path (wide range)
    (([0, 0, 1, 1], [7, 8, 7, 7]), [0, 1, 2, 2], 3),           # composite key
    (([0, 1, 0, 1], [7, 7, 7, 8]), [0, 1, 0, 2], 3),           # state shared by groups
    (([0, 0, 1], [4, 4, 9]), [0, 0, 1], 2),                    # state determines group
    ((np.array(["b", "a", "b"], dtype=object),), [1, 0, 1], 2),
])
def test_dense_ids(keys, expected, k):
    ids, num = dense_ids(*[np.asarray(x) for x in keys])
    assert num == k
    assert ids.tolist() == expected


def test_dense_ids_composite_wide_range_uses_packed_sort():
    g = np.array([0, 10**9, 0, 10**9])
    s = np.array([10**9, 10**9, 10**9, 0])
    ids, num = dense_ids(g, s)
    assert num == 3
    assert ids[0] == ids[2] and len({ids[0], ids[1], ids[3]}) == 3


def test_group_stats_hand_computed():
    st = group_stats(np.array([1.0, 3.0, 5.0, 2.0]), np.array([0, 0, 0, 1]), 2)
    assert st.count_K.tolist() == [3, 1]
    assert st.mean_K.tolist() == [3.0, 2.0]
    assert st.std_K[0] == pytest.approx(2.0)      # unbiased: sqrt((4 + 0 + 4) / 2)
    assert st.std_K[1] == 0.0                     # count <= ddof
    st0 = group_stats(np.array([1.0, 3.0, 5.0]), np.array([0, 0, 0]), 1, ddof=0)
    assert st0.std_K[0] == pytest.approx(math.sqrt(8 / 3))


@pytest.mark.parametrize("baseline, expected", [
    ("mean", [-2.0, 0.0, 2.0, 0.0]),
    ("mean_std", [-2.0 / (2.0 + 1e-6), 0.0, 2.0 / (2.0 + 1e-6), 0.0]),
    ("loo", [-3.0, 0.0, 3.0, 0.0]),                # 3/2 * (x - mean); singleton -> 0
])
def test_subtract_baseline(baseline, expected):
    adv = subtract_baseline(np.array([1.0, 3.0, 5.0, 2.0]), np.array([0, 0, 0, 1]), 2, baseline)
    np.testing.assert_allclose(adv, expected, rtol=0, atol=1e-15)


def test_subtract_baseline_unknown_raises():
    with pytest.raises(ValueError, match="unknown baseline"):
        subtract_baseline(np.array([1.0, 2.0]), np.array([0, 0]), 1, "median")


@pytest.mark.parametrize("gamma", [0.0, 0.5, 0.95, 1.0])
def test_discounted_suffix_sum_matches_loop(gamma):
    rng = np.random.default_rng(1)
    lengths = [1, 2, 3, 7, 8, 9, 33]
    r = rng.normal(size=sum(lengths))
    end = np.repeat(np.cumsum(lengths) - 1, lengths)
    want = np.empty_like(r)
    for i in range(len(r) - 1, -1, -1):
        want[i] = r[i] + (gamma * want[i + 1] if i < end[i] else 0.0)
    np.testing.assert_allclose(discounted_suffix_sum(r, end, gamma), want, rtol=1e-12,
                               atol=1e-12)


def test_discounted_suffix_sum_skewed_lengths_use_the_scan():
    # 3000 one-turn segments and one 40k-turn segment: the table would be 40k x 3001 cells,
    # so the log-depth scan runs; it must match Horner's rule per segment.
    lengths = [1] * 3000 + [40_000]
    r = np.random.default_rng(2).normal(size=sum(lengths))
    end = np.repeat(np.cumsum(lengths) - 1, lengths)
    want = r.copy()
    running = 0.0
    for i in range(len(r) - 1, 2999, -1):
        running = r[i] + 0.99 * running
        want[i] = running
    np.testing.assert_allclose(discounted_suffix_sum(r, end, 0.99), want, rtol=1e-10, atol=1e-12)


def test_discounted_suffix_sum_hand_computed_and_long():
    out = discounted_suffix_sum(np.array([1.0, 2.0, 4.0, 8.0]), np.array([2, 2, 2, 3]), 0.5)
    assert out.tolist() == [1 + 1 + 1, 2 + 2, 4.0, 8.0]
    # 100k-turn trajectory: stays finite and exact-to-rounding (no gamma^-t rescaling).
    n = 100_000
    out = discounted_suffix_sum(np.ones(n), np.full(n, n - 1), 0.95)
    assert np.all(np.isfinite(out))
    assert out[0] == pytest.approx(1 / 0.05, rel=1e-12)
    assert out[-1] == 1.0 and out[-2] == pytest.approx(1.95)


def test_segments_sorts_rows_and_skips_masked():
    b = TurnBatch.from_lists(group=[1, 0, 1, 0, 0], traj=[7, 3, 7, 3, 3], turn=[1, 1, 0, 0, 2],
                             reward=[1, 2, 4, 8, 16], state=["a"] * 5,
                             mask=[True, True, True, True, False])
    seg = segments(b)
    assert seg.rows_M.tolist() == [3, 1, 2, 0]
    assert seg.traj_M.tolist() == [0, 0, 1, 1]
    assert seg.end_M.tolist() == [1, 1, 3, 3]
    assert seg.group_J.tolist() == [0, 1]
    assert traj_sums(b.reward_N[seg.rows_M], seg).tolist() == [10.0, 5.0]


def test_segments_errors():
    with pytest.raises(ConfigError, match="empty batch"):
        TurnBatch.from_lists([], [], [], [], [])
    b = TurnBatch.from_lists([0, 0], [0, 1], [0, 0], [1, 1], ["a", "a"], mask=[False, False])
    with pytest.raises(ConfigError, match="mask_N False"):
        segments(b)
    b = TurnBatch.from_lists([0, 1], [5, 5], [0, 1], [1, 1], ["a", "a"])
    with pytest.raises(ConfigError, match="trajectory 5 has rows in more than one group"):
        segments(b)


def test_turn_batch_format_valid_defaults_and_checks():
    b = TurnBatch.from_lists([0, 0], [0, 1], [0, 0], [1, 1], ["a", "a"], valid=[True, False])
    assert b.format_valid_N.tolist() == [True, True] and b.format_valid_N.dtype == bool
    positional = TurnBatch(b.group_N, b.traj_N, b.turn_N, b.reward_N, b.state_N, b.valid_N,
                           b.mask_N)  # the field is optional, also positionally
    assert positional.format_valid_N.tolist() == [True, True]
    b = TurnBatch.from_lists([0, 0], [0, 1], [0, 0], [1, 1], ["a", "a"], valid=[True, False],
                             format_valid=[True, False])
    assert b.format_valid_N.tolist() == [True, False]
    with pytest.raises(ConfigError, match="format_valid_N has 1 rows, expected 2"):
        TurnBatch(b.group_N, b.traj_N, b.turn_N, b.reward_N, b.state_N, b.valid_N, b.mask_N,
                  np.ones(1, bool))
    with pytest.raises(ConfigError, match="row 1 has format_valid_N False but valid_N True"):
        TurnBatch.from_lists([0, 0], [0, 1], [0, 0], [1, 1], ["a", "a"],
                             format_valid=[True, False])
