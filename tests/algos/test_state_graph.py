"""The persistent state graph and the credit helpers on it, on hand-computed inputs."""

import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from turngym.algos.batch import TurnBatch
from turngym.algos.graph_credit import (
    graph_credit,
    singleton_step_advantage,
    value_baseline_advantage,
)
from turngym.algos.state_graph import StateDictError, StateGraph, StateGraphConfig, stable_key_ids
from turngym.benchmarks.state_graph_speed import dict_update
from turngym.errors import CheckpointError, ConfigError

ARRAYS = ("key_ids", "count", "weight", "mean", "m2", "last_step")
REPO = Path(__file__).resolve().parents[2]


def k(*ids: int) -> np.ndarray:
    return np.array(ids, dtype=np.int64)


def r(*values: float) -> np.ndarray:
    return np.array(values, dtype=np.float64)


def assert_same_graph(a: StateGraph, b: StateGraph) -> None:
    assert a.step == b.step
    for name in ARRAYS:
        assert np.array_equal(getattr(a, name), getattr(b, name)), name


def random_stream(seed: int, steps: int, rows: int, pool: int):
    """Batches of keys in ``[-pool, pool)`` (with duplicates); steps advance by 0, 1 or 2."""
    rng = np.random.default_rng(seed)
    step = 0
    for _ in range(steps):
        step += int(rng.integers(0, 3))
        yield rng.integers(-pool, pool, size=rows).astype(np.int64), rng.normal(size=rows), step


# -- stable ids -------------------------------------------------------------------------------

def test_stable_key_ids_are_pinned_and_ignore_str_vs_bytes():
    ids = stable_key_ids(["s0", "room=kitchen;holding=apple", ""])
    assert ids.dtype == np.int64
    assert ids.tolist() == [-8145276404835237915, -8473833097751823376, 7666009970429756469]
    assert stable_key_ids([b"s0", np.str_("s0")]).tolist() == [ids[0]] * 2
    assert stable_key_ids([]).tolist() == []


def test_task_pairs_get_their_own_ids():
    pair = stable_key_ids(["s0", "s0"], task_ids=["t1", "t2"])
    assert pair.tolist()[0] == 8285767367517314096
    assert len({*pair.tolist(), *stable_key_ids(["s0"]).tolist()}) == 3
    # length prefix: ("ab", "c") and ("a", "bc") do not share an encoding
    a, b = stable_key_ids(["c", "bc"], task_ids=["ab", "a"]).tolist()
    assert a != b


def test_stable_key_ids_equal_in_another_process_with_another_hash_seed():
    code = ("from turngym.algos.state_graph import stable_key_ids; "
            "print(stable_key_ids(['s0', 'x' * 300], task_ids=['t', 't']).tolist())")
    outs = {subprocess.run([sys.executable, "-c", code], cwd=REPO, capture_output=True,
                           text=True, check=True, env={**os.environ, "PYTHONHASHSEED": seed}
                           ).stdout for seed in ("1", "2")}
    assert outs == {str(stable_key_ids(["s0", "x" * 300], task_ids=["t", "t"]).tolist()) + "\n"}


@pytest.mark.parametrize("keys, task_ids, match", [
    ([1, 2], None, "must be str or bytes"),
    (["a", "b"], ["t"], "one task id per key"),
])
def test_stable_key_ids_rejects_bad_input(keys, task_ids, match):
    with pytest.raises(ConfigError, match=match):
        stable_key_ids(keys, task_ids=task_ids)


# -- statistics -------------------------------------------------------------------------------

def test_means_and_variances_by_hand_without_decay():
    g = StateGraph(max_states=10, decay=1.0)
    g.update(k(5, 5, 9, 5), r(1.0, 3.0, 2.0, 5.0), step=0)
    s = g.lookup(k(5, 9))
    assert s.count_N.tolist() == [3, 1]
    assert s.mean_N.tolist() == [3.0, 2.0]
    np.testing.assert_allclose(s.var_N, [8 / 3, 0.0], rtol=1e-15)   # ((-2)^2 + 0 + 2^2) / 3
    g.update(k(5), r(7.0), step=1)                                   # 1, 3, 5, 7
    s = g.lookup(k(5))
    assert (s.count_N[0], s.mean_N[0], s.last_step_N[0]) == (4, 4.0, 1)
    np.testing.assert_allclose(s.var_N, [5.0], rtol=1e-15)          # (9 + 1 + 1 + 9) / 4


def test_decay_weights_returns_by_their_age_in_steps():
    g = StateGraph(max_states=10, decay=0.5)
    g.update(k(1), r(1.0), step=0)
    g.update(k(1), r(4.0), step=2)       # old return weighs 0.5^2 = 0.25
    s = g.lookup(k(1))
    np.testing.assert_allclose(s.mean_N, [3.4], rtol=1e-15)         # (0.25 * 1 + 4) / 1.25
    np.testing.assert_allclose(s.var_N, [1.44], rtol=1e-14)         # (0.25*2.4^2 + 0.6^2)/1.25
    assert s.count_N.tolist() == [2]                                 # visits are not decayed
    np.testing.assert_allclose(g.weight, [1.25], rtol=1e-15)


def test_duplicate_keys_in_one_batch_are_all_folded_in():
    g = StateGraph(max_states=10, decay=0.9)
    g.update(k(7, 7, 7), r(1.0, 2.0, 6.0), step=3)
    s = g.lookup(k(7))
    assert (len(g), s.count_N[0], s.mean_N[0]) == (1, 3, 3.0)
    np.testing.assert_allclose(s.var_N, [14 / 3], rtol=1e-15)       # (4 + 1 + 9) / 3


@pytest.mark.parametrize("decay", [1.0, 0.9])
def test_one_batch_equals_row_by_row(decay):
    batched, rowwise = StateGraph(1000, decay), StateGraph(1000, decay)
    for keys, rets, step in random_stream(seed=1, steps=12, rows=40, pool=30):
        batched.update(keys, rets, step)
        for key, ret in zip(keys, rets):
            rowwise.update(key[None], ret[None], step)
    for name in ("key_ids", "count", "last_step"):
        assert np.array_equal(getattr(batched, name), getattr(rowwise, name)), name
    for name in ("weight", "mean", "m2"):
        np.testing.assert_allclose(getattr(batched, name), getattr(rowwise, name), rtol=1e-12,
                                   atol=1e-12)


@pytest.mark.parametrize("decay", [1.0, 0.9])
def test_matches_the_dict_reference_with_eviction(decay):
    g, table = StateGraph(50, decay), {}
    for keys, rets, step in random_stream(seed=3, steps=12, rows=40, pool=40):
        g.update(keys, rets, step)
        dict_update(table, keys.tolist(), rets.tolist(), step, 50, decay)
    ref = np.array([table[key] for key in sorted(table)], dtype=np.float64)
    assert len(g) == 50 and g.key_ids.tolist() == sorted(table)   # the same keys survive
    assert g.count.tolist() == ref[:, 0].astype(int).tolist()
    assert g.last_step.tolist() == ref[:, 4].astype(int).tolist()
    for name, col in (("weight", 1), ("mean", 2), ("m2", 3)):
        np.testing.assert_allclose(getattr(g, name), ref[:, col], rtol=1e-12, atol=1e-12)


def test_two_updates_at_one_step_equal_one_combined_update():
    a, b = StateGraph(10, 0.8), StateGraph(10, 0.8)
    for g in (a, b):
        g.update(k(1, 2), r(1.0, 2.0), step=0)
    a.update(k(1, 3), r(5.0, 1.0), step=4)
    a.update(k(1), r(-1.0), step=4)
    b.update(k(1, 3, 1), r(5.0, 1.0, -1.0), step=4)
    assert a.key_ids.tolist() == b.key_ids.tolist() and a.count.tolist() == b.count.tolist()
    for name in ("weight", "mean", "m2"):
        np.testing.assert_allclose(getattr(a, name), getattr(b, name), rtol=1e-14)


def test_misses_give_count_zero():
    g = StateGraph(10)
    empty = g.lookup(k(3, 4))
    assert empty.count_N.tolist() == [0, 0] and empty.mean_N.tolist() == [0.0, 0.0]
    g.update(k(10, 20), r(1.5, 2.5), step=0)
    mean, count = g.baseline(k(5, 10, 15, 20, 25))      # below, between and above the stored
    assert mean.tolist() == [0.0, 1.5, 0.0, 2.5, 0.0]
    assert count.tolist() == [0, 1, 0, 1, 0]
    assert g.lookup(k(5, 10)).last_step_N.tolist() == [-1, 0]
    assert g.lookup(k()).mean_N.shape == (0,)


def test_empty_update_changes_nothing_but_the_clock():
    g = StateGraph(10)
    g.update(k(1), r(1.0), step=0)
    before = g.state_dict()
    assert g.update(k(), r(), step=5)["algo/graph_new_states"] == 0.0
    assert g.step == 5
    assert all(np.array_equal(before[n], getattr(g, n)) for n in ARRAYS)


@pytest.mark.parametrize("keys, rets, step, match", [
    (k(1), r(1.0), 2, "never decrease"),
    (k(1), r(1.0), -1, "never decrease"),
    (k(1, 2), r(1.0), 4, "one return per key id"),
    (k(1), r(np.nan), 4, "not finite"),
    (np.array([1.5]), r(1.0), 4, "1-D integer array"),
])
def test_update_rejects_bad_input(keys, rets, step, match):
    g = StateGraph(10)
    g.update(k(0), r(0.0), step=3)
    with pytest.raises(ConfigError, match=match):
        g.update(keys, rets, step)


@pytest.mark.parametrize("kwargs", [{"max_states": 0}, {"decay": 0.0}, {"decay": 1.5}])
def test_config_is_bounded(kwargs):
    with pytest.raises(ValueError):
        StateGraph(**kwargs)
    assert StateGraphConfig().decay == 0.95 and StateGraphConfig().max_states == 10**6


# -- eviction ---------------------------------------------------------------------------------

def test_eviction_drops_least_recently_updated_then_smaller_key():
    g = StateGraph(max_states=3, decay=1.0)
    g.update(k(20, 10), r(0.0, 0.0), step=0)
    g.update(k(30), r(0.0), step=1)
    m = g.update(k(40), r(0.0), step=2)             # 10 and 20 tie at step 0: 10 goes
    assert g.key_ids.tolist() == [20, 30, 40] and m["algo/graph_evicted"] == 1.0
    g.update(k(20, 50), r(1.0, 1.0), step=3)         # 20 refreshed: 30 is the oldest now
    assert g.key_ids.tolist() == [20, 40, 50]
    assert g.last_step.tolist() == [3, 2, 3] and g.count.tolist() == [2, 1, 1]
    m = g.update(k(5, 1, 3, 3, 7), np.zeros(5), step=4)  # 4 new keys, room for 3:
    assert g.key_ids.tolist() == [3, 5, 7]                # all old ones go, then key 1
    assert m == {"algo/graph_states": 3.0, "algo/graph_new_states": 4.0,
                 "algo/graph_evicted": 4.0}
    assert g.nbytes == 3 * 48


# -- resume -----------------------------------------------------------------------------------

@pytest.mark.parametrize("via_npz", [False, True])
def test_resume_is_bit_exact(tmp_path, via_npz):
    stream = list(random_stream(seed=2, steps=16, rows=64, pool=80))
    straight, first = StateGraph(60, 0.9), StateGraph(60, 0.9)
    for keys, rets, step in stream[:8]:
        straight.update(keys, rets, step)
        first.update(keys, rets, step)
    state = first.state_dict()
    first.update(*stream[8])                          # the saved dict must not change
    if via_npz:
        np.savez(tmp_path / "g.npz", **state)
        state = dict(np.load(tmp_path / "g.npz"))
    resumed = StateGraph(60, 0.9)
    resumed.load_state_dict(state)
    for keys, rets, step in stream[8:]:
        a, b = straight.lookup(keys), resumed.lookup(keys)
        for name in ("mean_N", "var_N", "count_N", "last_step_N"):
            assert np.array_equal(getattr(a, name), getattr(b, name))
        assert straight.update(keys, rets, step) == resumed.update(keys, rets, step)
        assert_same_graph(straight, resumed)


def test_an_empty_graph_round_trips():
    g = StateGraph(5)
    h = StateGraph(5)
    h.load_state_dict(g.state_dict())
    assert_same_graph(g, h)


def _corrupt(state: dict, change: str) -> dict:
    s = {n: (v.copy() if isinstance(v, np.ndarray) else v) for n, v in state.items()}
    if change == "missing":
        del s["m2"]
    elif change == "extra":
        s["visits"] = s["count"]
    elif change == "version":
        s["version"] = 99
    elif change == "max_states":
        s["max_states"] = 7
    elif change == "decay":
        s["decay"] = 0.5
    elif change == "dtype":
        s["key_ids"] = s["key_ids"].astype(np.float64)
    elif change == "length":
        s["mean"] = s["mean"][:-1]
    elif change == "unsorted":
        s["key_ids"] = s["key_ids"][::-1].copy()
    elif change == "negative_m2":
        s["m2"][0] = -1.0
    elif change == "nan_mean":
        s["mean"][1] = np.nan
    elif change == "future":
        s["last_step"][0] = s["step"] + 1
    elif change == "step":
        s["step"] = "3"
    return s


@pytest.mark.parametrize("change, match", [
    ("missing", "expected"), ("extra", "expected"), ("version", "version"),
    ("max_states", "max_states=7"), ("decay", "decay=0.5"), ("dtype", "key_ids"),
    ("length", "different lengths"), ("unsorted", "strictly sorted"),
    ("negative_m2", "m2 >= 0"), ("nan_mean", "finite mean"), ("future", "last_step <= step"),
    ("step", "integer"),
])
def test_corrupted_or_mismatched_state_dict_raises(change, match):
    g = StateGraph(10, 0.9)
    g.update(k(3, 1, 2), r(1.0, 2.0, 3.0), step=4)
    fresh = StateGraph(10, 0.9)
    with pytest.raises(StateDictError, match=match) as info:
        fresh.load_state_dict(_corrupt(g.state_dict(), change))
    assert isinstance(info.value, ValueError) and isinstance(info.value, CheckpointError)
    assert len(fresh) == 0 and fresh.step == -1                     # left untouched


# -- credit helpers ---------------------------------------------------------------------------

@pytest.fixture
def credit_graph() -> StateGraph:
    """State 1: returns 1 and 3 (mean 2, count 2); state 2: return 5 (count 1)."""
    g = StateGraph(10, decay=1.0)
    g.update(k(1, 1, 2), r(1.0, 3.0, 5.0), step=0)
    return g


def test_singleton_step_advantage_by_hand(credit_graph):
    keys, rets = k(1, 1, 2, 3), r(4.0, 0.0, 7.0, 1.0)
    before = credit_graph.state_dict()
    adv = singleton_step_advantage(credit_graph, keys, rets, np.arange(4), min_count=2)
    assert adv.tolist() == [2.0, -2.0, 0.0, 0.0]       # state 2: 1 visit < 2; state 3: none
    assert singleton_step_advantage(credit_graph, keys, rets, np.arange(4),
                                    min_count=1).tolist() == [2.0, -2.0, 2.0, 0.0]
    assert all(np.array_equal(before[n], getattr(credit_graph, n)) for n in ARRAYS)


def test_singleton_step_advantage_leaves_real_step_groups_alone(credit_graph):
    # rows 0 and 1 share step group 0 (the batch scores them), row 2 is alone
    adv = singleton_step_advantage(credit_graph, k(1, 1, 1), r(4.0, 0.0, 9.0), k(0, 0, 1))
    assert adv.tolist() == [0.0, 0.0, 7.0]
    assert singleton_step_advantage(credit_graph, k(), r(), k()).shape == (0,)


def test_value_baseline_advantage_by_hand(credit_graph):
    keys, rets = k(1, 1, 2, 3), r(4.0, 0.0, 7.0, 1.0)
    assert value_baseline_advantage(credit_graph, keys, rets).tolist() == [2.0, -2.0, 2.0, 0.0]
    assert value_baseline_advantage(credit_graph, keys, rets,
                                    prior=0.5).tolist() == [2.0, -2.0, 2.0, 0.5]
    assert value_baseline_advantage(credit_graph, keys, rets, min_count=2,
                                    prior=0.0).tolist() == [2.0, -2.0, 7.0, 1.0]
    # SPO's batch normalisation: [2, -2, 2, 0] has mean 0.5 and unbiased std sqrt(11/3)
    adv = value_baseline_advantage(credit_graph, keys, rets, global_norm=True, eps=0.0)
    np.testing.assert_allclose(adv, (r(2.0, -2.0, 2.0, 0.0) - 0.5) / np.sqrt(11 / 3))
    assert value_baseline_advantage(credit_graph, k(), r()).shape == (0,)
    assert value_baseline_advantage(credit_graph, k(1), r(4.0), global_norm=True).tolist() == [
        0.0]


def test_value_baseline_on_an_empty_graph_is_zero_or_the_prior():
    g = StateGraph(10)
    assert value_baseline_advantage(g, k(1, 2), r(1.0, 0.0)).tolist() == [0.0, 0.0]
    assert value_baseline_advantage(g, k(1, 2), r(1.0, 0.0), prior=0.5).tolist() == [0.5, -0.5]


# -- the trainer's credit term ----------------------------------------------------------------

def _batch(states, rewards, traj, group, mask=None) -> TurnBatch:
    turn = [i - traj.index(t) for i, t in enumerate(traj)]
    return TurnBatch.from_lists(group=group, traj=traj, turn=turn, reward=rewards, state=states,
                                mask=mask)


def test_graph_credit_by_hand(credit_graph):
    # one task group; trajectory 0: states 1 -> 3 -> 2 (rewards 0, 0, 4), trajectory 1:
    # 1 -> 2 (0, 2), then a masked row (state 1). gamma 0.5: returns [1, 2, 4], [1, 2].
    # step groups: state 1 {row 0, row 3}, state 3 {row 1}, state 2 {row 2, row 4}.
    b = _batch(["1", "3", "2", "1", "2", "1"], [0.0, 0.0, 4.0, 0.0, 2.0, 9.0],
               traj=[0, 0, 0, 1, 1, 1], group=[0] * 6, mask=[True] * 5 + [False])
    keys = k(1, 3, 2, 1, 2, 1)
    single = graph_credit(credit_graph, b, b.mask_N, keys,
                          StateGraphConfig(mode="singleton", min_count=1), gamma=0.5)
    assert single.return_N.tolist() == [1.0, 2.0, 4.0, 1.0, 2.0, 0.0]
    assert single.adv_N.tolist() == [0.0] * 6           # the only singleton (3) is unseen
    assert single.metrics == {"algo/graph_hit_frac": 0.8, "algo/graph_baselined_frac": 0.0,
                              "algo/graph_singleton_row_frac": 0.2,
                              "algo/graph_adv_abs_mean": 0.0}
    value = graph_credit(credit_graph, b, b.mask_N, keys,
                         StateGraphConfig(mode="value", min_count=1, weight=2.0), gamma=0.5)
    # state 1: mean 2, state 2: mean 5 (one visit), state 3 unseen; the masked row gets 0
    assert value.adv_N.tolist() == [-2.0, 0.0, -2.0, -2.0, -6.0, 0.0]
    kept = b.mask_N
    assert (value.adv_N[kept] / 2).tolist() == value_baseline_advantage(
        credit_graph, keys[kept], value.return_N[kept]).tolist()
    assert value.metrics["algo/graph_adv_abs_mean"] == 3.0
    assert value.keep_N.tolist() == kept.tolist()


def test_graph_credit_singleton_rows_match_the_helper(credit_graph):
    # two task groups: state 1 is a singleton in group 1, so only that row gets its baseline
    b = _batch(["1", "1", "1", "2"], [3.0, 0.0, 5.0, 1.0], traj=[0, 1, 2, 3], group=[0, 0, 1, 1])
    keys = k(1, 1, 1, 2)
    res = graph_credit(credit_graph, b, b.mask_N, keys, StateGraphConfig(min_count=2), 1.0)
    assert res.adv_N.tolist() == [0.0, 0.0, 3.0, 0.0]   # 5 - 2; state 2 has 1 visit < 2
    assert res.adv_N.tolist() == singleton_step_advantage(
        credit_graph, keys, res.return_N, np.array([0, 0, 1, 2]), min_count=2).tolist()
    none = graph_credit(credit_graph, b, np.zeros(4, bool), keys, StateGraphConfig(), 1.0)
    assert none.adv_N.tolist() == [0.0] * 4 and none.metrics["algo/graph_hit_frac"] == 0.0


def test_the_config_defaults_and_discount():
    cfg = StateGraphConfig()
    assert (cfg.enabled, cfg.mode, cfg.min_count, cfg.weight, cfg.gamma, cfg.per_task) == (
        False, "singleton", 2, 1.0, None, True)
    assert cfg.discount(None) == 1.0 and StateGraphConfig(gamma=0.9).discount(None) == 0.9
    g = StateGraph.from_config(StateGraphConfig(enabled=True, max_states=7, mode="value"))
    assert g.cfg.mode == "value" and g.cfg.max_states == 7
