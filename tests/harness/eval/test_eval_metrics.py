"""Evaluation statistics on hand-computed cases."""

from __future__ import annotations

import math

import pytest

from turngym.harness.eval.metrics import (
    entry_metrics,
    k_values,
    pass_at_k,
    strip_timings,
    success_block,
    task_type,
    wilson_interval,
)
from turngym.harness.rollout.trajectory import StopReason, Trajectory, Turn


@pytest.mark.parametrize("s, n, lo, hi", [
    # p=.8, z^2/n=.38415: centre=.992073/1.38415=.716738, half=1.41601*sqrt(.0256037)=.226578
    (8, 10, 0.490162, 0.943318),
    # p=0: centre = half = (z^2/2n)/(1+z^2/n) = .138766 -> [0, .277533] (the "rule of 3.84")
    (0, 10, 0.0, 0.277533),
    (10, 10, 0.722467, 1.0),
    # p=.5, n=2: centre=.5, half=(1.95996/2.92073)*sqrt(.125+.240094)=.405469
    (1, 2, 0.094531, 0.905469),
])
def test_wilson_interval_hand_computed(s: int, n: int, lo: float, hi: float) -> None:
    got = wilson_interval(s, n)
    assert got[0] == pytest.approx(lo, abs=1e-6)
    assert got[1] == pytest.approx(hi, abs=1e-6)


def test_wilson_edge_cases() -> None:
    assert wilson_interval(0, 0) == (0.0, 1.0)
    with pytest.raises(ValueError, match="successes"):
        wilson_interval(3, 2)


@pytest.mark.parametrize("n, c, k, expected", [
    (5, 2, 1, 0.4),                # pass@1 = c/n
    (5, 2, 2, 1 - 3 / 10),         # 1 - C(3,2)/C(5,2) = 0.7
    (5, 2, 4, 1.0),                # n - c = 3 < k
    (10, 3, 5, 1 - 21 / 252),      # 1 - C(7,5)/C(10,5) = 0.916667
    (4, 0, 2, 0.0),
    (4, 4, 1, 1.0),
])
def test_pass_at_k_hand_computed(n: int, c: int, k: int, expected: float) -> None:
    assert pass_at_k(n, c, k) == pytest.approx(expected, abs=1e-12)
    assert pass_at_k(n, c, k) == pytest.approx(1 - math.comb(n - c, k) / math.comb(n, k))


def test_pass_at_k_rejects_bad_input() -> None:
    with pytest.raises(ValueError):
        pass_at_k(3, 4, 1)
    with pytest.raises(ValueError):
        pass_at_k(3, 1, 4)


def test_k_values() -> None:
    assert k_values(1) == [1]
    assert k_values(5) == [1, 2, 4, 5]
    assert k_values(8) == [1, 2, 4, 8]


def _traj(task: str, won: bool, turns: int, *, ttype: str | None = "a", valid: bool = True,
          stop: StopReason = StopReason.TERMINATED, qtype: str | None = None) -> Trajectory:
    ts = tuple(Turn(group_id="g", traj_id=f"{task}", task_id=task, turn=i,
                    prompt_ids=[1] * 10, response_ids=[2] * 3, response_logprobs=[0.0] * 3,
                    reward=1.0 if (won and i == turns - 1) else 0.0, state_key=str(i),
                    action_valid=valid or i > 0, done=i == turns - 1, won=won and i == turns - 1,
                    info={"question_type": qtype} if qtype else {})
               for i in range(turns))
    return Trajectory(group_id="g", traj_id=task, task_id=task, seed=0, env_id="e", turns=ts,
                      stop_reason=stop, won=won, task_type=ttype)


def test_entry_metrics_hand_computed() -> None:
    # task x: 2 of 3 samples won; task y: 0 of 3
    trajs = [_traj("x", True, 2), _traj("x", True, 4), _traj("x", False, 3, valid=False),
             _traj("y", False, 5, ttype="b", stop=StopReason.TRUNCATED),
             _traj("y", False, 5, ttype="b", stop=StopReason.TRUNCATED),
             _traj("y", False, 5, ttype="b", stop=StopReason.TRUNCATED)]
    m = entry_metrics(trajs, samples=3, price_prompt=2.0, price_completion=10.0, wall_s=6.0)
    assert m["episodes"] == 6 and m["tasks"] == 2
    assert m["success"]["rate"] == pytest.approx(2 / 6)
    # pass@1 = mean(2/3, 0); pass@2 = mean(1 - C(1,2)/C(3,2) = 1, 0); pass@3 = mean(1, 0)
    assert m["pass_at_k"] == pytest.approx({"1": 1 / 3, "2": 0.5, "3": 0.5})
    assert m["by_type"]["a"]["success"]["rate"] == pytest.approx(2 / 3)
    assert m["by_type"]["b"]["success"]["n"] == 3
    assert m["turns_mean"] == pytest.approx(24 / 6)
    assert m["turns_hist"] == {"2": 1, "3": 1, "4": 1, "5": 3}
    assert m["invalid_rate"] == pytest.approx(1 / 24)  # only turn 0 of one episode
    assert m["stop_reasons"] == {"terminated": 0.5, "truncated": 0.5}
    assert m["tokens"] == {"prompt": 240, "completion": 72, "per_episode": 52.0}
    # (240 * 2 + 72 * 10) / 1e6 / 6 episodes
    assert m["cost_per_episode"] == pytest.approx(1200 / 1e6 / 6)
    assert m["wall_s_per_episode"] == pytest.approx(1.0)


def test_task_type_falls_back_to_info_key() -> None:
    t = _traj("q", True, 2, ttype=None, qtype="2hop")
    assert task_type(t, "question_type") == "2hop"
    assert task_type(t, "task_type") == "all"
    assert task_type(_traj("r", True, 1, ttype="boil"), "task_type") == "boil"
    assert success_block([]) == {"rate": 0.0, "ci95": [0.0, 1.0], "successes": 0, "n": 0}


def test_strip_timings_drops_wall_clock_keys_only() -> None:
    doc = {"wall_s": 1.0, "entries": {"a": {"wall_s_per_episode": 2.0, "env_s": 3.0,
                                             "success": {"rate": 1.0}}}, "turns_mean": 2.0}
    assert strip_timings(doc) == {"entries": {"a": {"success": {"rate": 1.0}}},
                                  "turns_mean": 2.0}


def test_difference_interval_matches_newcombes_worked_example() -> None:
    # Newcombe (1998), Table II example (a): 56/70 - 48/80 = 0.2, method 10: 0.0524 to 0.3339.
    from turngym.harness.eval.metrics import difference_interval

    d, lo, hi = difference_interval(48, 80, 56, 70)
    assert d == pytest.approx(0.2)
    assert (round(lo, 4), round(hi, 4)) == (0.0524, 0.3339)
    d, lo, hi = difference_interval(56, 70, 48, 80)  # the other way round: mirrored
    assert (round(d, 4), round(lo, 4), round(hi, 4)) == (-0.2, -0.3339, -0.0524)


def test_the_quickstart_says_whether_rl_moved_beyond_its_interval() -> None:
    from turngym.harness.cli.cmd_main_job import lift_line

    up = lift_line("gigpo", {"eval/success": 0.25}, {"eval/success": 0.75}, 48)
    assert up.startswith("gigpo after SFT: +0.500 [") and "a lift larger than its interval" in up
    flat = lift_line("gigpo", {"eval/success": 0.5}, {"eval/success": 0.5625}, 48)
    assert "within its interval: 48 tasks" in flat
    down = lift_line("grpo", {"eval/success": 0.75}, {"eval/success": 0.25}, 48)
    assert "a drop larger than its interval" in down
