"""TCOD schedulers, DAPO dynamic sampling, the difficulty task sampler and GAE."""

import numpy as np
import pytest

from turngym.algos.batch import TurnBatch
from turngym.algos.dynamic_sampling import DynamicSamplingConfig, filter_batch, filter_groups
from turngym.algos.gae import GAEConfig, gae_advantage
from turngym.algos.task_sampler import DifficultySampler, TaskSamplerConfig
from turngym.algos.tcod import B2FSchedule, F2BSchedule, TCODConfig, make_schedule
from turngym.errors import CheckpointError, ConfigError


@pytest.mark.parametrize("step, k", [(0, 1), (9, 1), (10, 2), (19, 2), (39, 4), (40, 5),
                                     (10**6, 5)])
def test_f2b_worked_example(step, k):
    assert F2BSchedule(t_max=5, delta=10).horizon(step) == k


def test_f2b_k0_and_eval():
    s = F2BSchedule(t_max=8, delta=3, k0=2)
    assert [s.horizon(n) for n in (0, 2, 3, 17, 18, 100)] == [2, 2, 3, 7, 8, 8]
    assert s.horizon(5, training=False) is None  # evaluation: full horizon
    with pytest.raises(ConfigError, match=">= 0"):
        s.horizon(-1)
    with pytest.raises(ConfigError, match="t_max"):
        F2BSchedule(t_max=0, delta=1)


@pytest.mark.parametrize("step, c", [(0, 3), (9, 3), (10, 2), (20, 1), (30, 0), (500, 0)])
def test_b2f_worked_example(step, c):
    assert B2FSchedule(delta=10).prefix(step, expert_len=4) == c


def test_b2f_edges_and_eval():
    s = B2FSchedule(delta=1)
    assert s.prefix(0, expert_len=0) == 0 and s.prefix(0, expert_len=1) == 0
    assert s.prefix(0, expert_len=6, training=False) == 0
    with pytest.raises(ConfigError, match="expert_len"):
        s.prefix(0, expert_len=-1)


def test_schedulers_state_dict_round_trip():
    for cfg in (TCODConfig(mode="f2b", t_max=5, delta=2), TCODConfig(mode="b2f", delta=2)):
        s = make_schedule(cfg)
        for _ in range(7):
            s.advance()
        fresh = make_schedule(cfg)
        fresh.load_state_dict(s.state_dict())
        assert fresh.step == 7
        if cfg.mode == "f2b":
            assert fresh.horizon() == s.horizon() == 4
        else:
            assert fresh.prefix(None, 9) == s.prefix(None, 9) == 5
    with pytest.raises(CheckpointError, match="delta=2 but this run's config has 3"):
        F2BSchedule(5, 3).load_state_dict(F2BSchedule(5, 2).state_dict())
    with pytest.raises(CheckpointError, match="mode"):
        B2FSchedule(2).load_state_dict(F2BSchedule(5, 2).state_dict())


def test_dynamic_sampling_worked_example():
    res = filter_groups(group_J=[0, 0, 1, 1, 2, 2, 3], return_J=[1, 1, 0, 1, 0, 0, 1])
    assert res.keep_J.tolist() == [False, False, True, True, False, False, False]
    assert (res.kept_groups, res.dropped_groups) == (1, 3)  # the singleton group 3 is dropped
    assert res.metrics == {"algo/groups_kept": 1.0, "algo/groups_dropped": 3.0,
                           "algo/groups_dropped_frac": 0.75}
    assert filter_groups([0, 0], [1.0, 1.05], atol=0.1).dropped_groups == 1
    with pytest.raises(ConfigError, match="empty batch"):
        filter_groups([], [])


def test_dynamic_sampling_on_turn_batch():
    b = TurnBatch.from_lists(group=[0, 0, 0, 1, 1], traj=[0, 0, 1, 2, 3], turn=[0, 1, 0, 0, 0],
                             reward=[0, 1, 1, 0, 1], state=["s"] * 5,
                             mask=[True, True, True, True, False])
    res = filter_batch(b)
    # group 0: returns [1, 1] -> dropped; group 1: only traj 2 is kept (return 0) -> dropped
    assert res.keep_J.tolist() == [False] * 5 and res.dropped_groups == 2
    assert DynamicSamplingConfig().atol == 0.0
    # with atol, returns closer than it count as equal: group 1 of [0, 0.05] is dropped
    res = filter_groups([0, 0, 1, 1], [0.0, 1.0, 0.0, 0.05], atol=0.1)
    assert res.keep_J.tolist() == [True, True, False, False] and res.dropped_groups == 1


def test_task_sampler_worked_example_and_resume():
    ts = DifficultySampler(["a", "b"], TaskSamplerConfig(ema=0.5), seed=1)
    ts.update("a", 1.0)
    assert ts.success_K.tolist() == [0.75, 0.5]
    np.testing.assert_allclose(ts.weights(), np.array([0.1875, 0.25]) / 0.4375)
    assert sorted(ts.sample(2)) == ["a", "b"]  # without replacement
    assert len(ts.sample(5)) == 5
    saved = ts.state_dict()
    want = ts.sample(4)
    again = DifficultySampler(["a", "b"], TaskSamplerConfig(ema=0.5), seed=99)
    again.load_state_dict(saved)
    assert again.sample(4) == want
    with pytest.raises(CheckpointError, match="different task list"):
        DifficultySampler(["x"]).load_state_dict(saved)
    with pytest.raises(ConfigError, match="unknown task id"):
        ts.update("zzz", 1.0)
    solved = DifficultySampler(["a", "b"], TaskSamplerConfig(ema=0.0, min_weight=0.01))
    solved.update("a", 1.0)
    assert solved.weights()[0] == pytest.approx(0.01 / 0.26)  # floor keeps it drawable
    assert solved.metrics()["algo/task_frac_learnable"] == 0.5


def test_gae_worked_example_and_truncation():
    b = TurnBatch.from_lists(group=[0, 0, 0, 0], traj=[0, 0, 1, 1], turn=[0, 1, 0, 1],
                             reward=[0, 1, 0, 0], state=["s"] * 4)
    v = np.array([0.5, 0.5, 0.5, 0.5])
    adv, ret = gae_advantage(b, v, GAEConfig(gamma=1.0, lam=1.0),
                             next_value_N=np.array([0, 0, 0, 1.0]))  # traj 1 was cut
    np.testing.assert_allclose(adv, [0.5, 0.5, 0.5, 0.5])
    np.testing.assert_allclose(ret, [1.0, 1.0, 1.0, 1.0])
    adv, _ = gae_advantage(b, v, GAEConfig(gamma=0.5, lam=0.0))  # one-step TD
    np.testing.assert_allclose(adv, [0.0 + 0.25 - 0.5 + 0.0, 0.5, -0.25, -0.5])
    with pytest.raises(ConfigError, match="value_N has 2 rows"):
        gae_advantage(b, v[:2], GAEConfig())
