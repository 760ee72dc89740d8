"""GraphGPO: the docstring's worked example, hand-computed edge cases, a plain-loop reference."""

import math
from collections import defaultdict, deque

import numpy as np
import pytest

from turngym.algos.batch import TurnBatch
from turngym.algos.graphgpo import GraphGPOConfig, graphgpo_advantage
from turngym.algos.grpo import GRPOConfig, grpo_advantage
from turngym.errors import ConfigError

# The worked example of algos/graphgpo.py, a corridor with a loop: s (start), h (hall),
# p (pit). A wins in two moves; B falls into the pit, climbs back, reaches the hall and is
# truncated there; C's first response does not parse (it stays at s), then C wins.
EXAMPLE = {"group": [0] * 9, "traj": [0, 0, 1, 1, 1, 1, 2, 2, 2],
           "turn": [0, 1, 0, 1, 2, 3, 0, 1, 2], "reward": [0, 1, 0, 0, 0, 0, 0, 0, 1],
           "state": ["s", "h", "s", "p", "s", "h", "s", "s", "h"],
           "valid": [True] * 6 + [False, True, True],
           "format_valid": [True] * 6 + [False, True, True]}
# omega 0.5, d: GOAL 0, h 1, s 2, p 3. R = 0.5^d(next): s->h 1/2, h->GOAL 1, s->p 1/8,
# p->s 1/4, s->s 1/4; B3 (h -> truncated) has no known successor and is not scored.
# Step group s = {A0 1/2, B0 1/8, B2 1/2, C0 1/4, C1 1/2}, mean 3/8:
#   A_G = A0 1/8, B0 -1/4, B2 1/8, C0 -1/8, C1 1/8;  h = {A1 1, C2 1}: 0;  p = {B1}: 0.
# Returns 1, 0, 1 (mean 2/3): A_E = 1/3, -2/3, 1/3. C0 is a format error: -0.1.
EXAMPLE_ADV = [1 / 3 + 1 / 8, 1 / 3,
               -2 / 3 - 1 / 4, -2 / 3, -2 / 3 + 1 / 8, -2 / 3,
               1 / 3 - 1 / 8 - 0.1, 1 / 3 + 1 / 8, 1 / 3]
MEAN_HALF = {"mode": "mean_norm", "omega": 0.5}
#: the graph term alone: no episode term, no penalty
STEP_ONLY = {**MEAN_HALF, "episode_weight": 0.0, "invalid_penalty": 0.0}


def batch(**lists) -> TurnBatch:
    return TurnBatch.from_lists(**lists)


def adv(cfg: dict, **lists) -> np.ndarray:
    return graphgpo_advantage(batch(**lists), GraphGPOConfig(**cfg)).adv_N


def test_docstring_worked_example():
    res = graphgpo_advantage(batch(**EXAMPLE), GraphGPOConfig(**MEAN_HALF))
    np.testing.assert_allclose(res.adv_N, EXAMPLE_ADV, rtol=0, atol=1e-15)
    m = res.metrics
    assert m["algo/step_groups"] == 3.0  # s, h, p
    assert m["algo/step_group_size_mean"] == pytest.approx(8 / 3)  # 8 scored rows
    assert m["algo/step_group_size_max"] == 5.0
    assert m["algo/step_group_singleton_frac"] == pytest.approx(1 / 3)
    assert m["algo/goal_groups_frac"] == 1.0
    assert m["algo/goal_scored_frac"] == pytest.approx(8 / 9)  # all but B3
    assert m["algo/goal_unreachable_frac"] == 0.0
    # d(s_t) of the scored rows: s 2 (x5), h 1 (A1, C2), p 3 (B1): 15 / 8
    assert m["algo/goal_dist_mean"] == pytest.approx(15 / 8)
    assert m["algo/goal_graph_nodes_mean"] == 4.0  # s, h, p, GOAL
    assert m["algo/goal_graph_edges_mean"] == 5.0  # s->h, h->GOAL, s->p, p->s, s->s
    assert m["algo/format_error_frac"] == m["algo/penalized_frac"] == pytest.approx(1 / 9)
    assert m["algo/episode_return_mean"] == pytest.approx(2 / 3)


def test_mean_std_norm():
    # Step group s: centred 1/8, -1/4, 1/8, -1/8, 1/8; sum of squares 1/8, unbiased var
    # 1/32, std sqrt(2)/8: A_G = 1/sqrt(2) for s->h, -sqrt(2) for s->p, -1/sqrt(2) for s->s.
    a = adv({"omega": 0.5, "episode_weight": 0.0, "invalid_penalty": 0.0}, **EXAMPLE)
    r = 1 / math.sqrt(2)
    np.testing.assert_allclose(a, [r, 0, -2 * r, 0, r, 0, -r, r, 0], rtol=1e-4, atol=1e-12)
    # omega only spaces the distances: two distinct ones in a group give +-1/sqrt(2) for any
    two = {"group": [0] * 3, "traj": [0, 0, 1], "turn": [0, 1, 0], "reward": [0, 1, 0],
           "state": ["s", "h", "s"]}
    for omega in (0.1, 0.2, 0.9):
        a = adv({"omega": omega, "episode_weight": 0.0, "failed_end": "dead_end"}, **two)
        np.testing.assert_allclose(a, [r, 0, -r], rtol=1e-4)


def test_no_success_means_no_goal_and_no_step_term():
    lists = {**EXAMPLE, "reward": [0] * 9}
    res = graphgpo_advantage(batch(**lists), GraphGPOConfig(**MEAN_HALF))
    # returns all 0: A_E = 0; no goal: A_G = 0; only C0's format penalty remains
    np.testing.assert_array_equal(res.adv_N, [0, 0, 0, 0, 0, 0, -0.1, 0, 0])
    m = res.metrics
    assert m["algo/goal_groups_frac"] == 0.0 and m["algo/goal_scored_frac"] == 0.0
    assert m["algo/step_groups"] == 0.0 and m["algo/step_adv_std"] == 0.0
    assert m["algo/goal_graph_nodes_mean"] == m["algo/goal_dist_mean"] == 0.0


def test_truncated_episode_end():
    skip = adv(STEP_ONLY, **EXAMPLE)
    dead = adv({**STEP_ONLY, "failed_end": "dead_end"}, **EXAMPLE)
    # skip: B3 (h -> truncated) is out of the step groups: A_G 0, and h = {A1, C2} gives 0
    np.testing.assert_allclose(skip, [1 / 8, 0, -1 / 4, 0, 1 / 8, 0, -1 / 8, 1 / 8, 0],
                               atol=1e-15)
    # dead_end: B3 leads to d_max + 1 = 4, R = 1/16; h = {A1 1, B3 1/16, C2 1}, mean 11/16:
    # A1 = C2 = 5/16, B3 = -5/8. Every other row is unchanged.
    np.testing.assert_allclose(dead[[1, 5, 8]], [5 / 16, -5 / 8, 5 / 16], atol=1e-15)
    np.testing.assert_array_equal(np.delete(dead, [1, 5, 8]), np.delete(skip, [1, 5, 8]))
    res = graphgpo_advantage(batch(**EXAMPLE), GraphGPOConfig(**STEP_ONLY, failed_end="dead_end"))
    assert res.metrics["algo/goal_unreachable_frac"] == pytest.approx(1 / 9)  # B3 of 9 scored


# A wins via a -> b; B goes a -> c -> b and fails; C goes a -> c and fails.
MASKED = {"group": [0] * 7, "traj": [0, 0, 1, 1, 1, 2, 2], "turn": [0, 1, 0, 1, 2, 0, 1],
          "reward": [0, 1, 0, 0, 0, 0, 0], "state": ["a", "b", "a", "c", "b", "a", "c"]}


def test_masked_row_gets_zero_and_makes_no_edge():
    # Unmasked: c -> b (B1) puts c at d 2 (b 1, a 2). R: A0 a->b 1/2, B0 a->c 1/4,
    # C0 a->c 1/4; a = {1/2, 1/4, 1/4}, mean 1/3: A0 1/6, B0 C0 -1/12; c = {B1} (C1 is a
    # failed end, skipped): 0; b = {A1} (B2 skipped): 0.
    full = adv(STEP_ONLY, **MASKED)
    np.testing.assert_allclose(full, [1 / 6, 0, -1 / 12, 0, 0, -1 / 12, 0], atol=1e-15)
    # B1 masked: it gets 0 and c -> b is no edge. B0's next kept row is turn 2, not 1, so its
    # successor is unknown (not scored). c now has no path: d_max 2 (a), d(c) = 3,
    # R(C0) = 1/8; a = {A0 1/2, C0 1/8}, mean 5/16: A0 3/16, C0 -3/16.
    masked = adv(STEP_ONLY, **MASKED, mask=[True, True, True, False, True, True, True])
    np.testing.assert_allclose(masked, [3 / 16, 0, 0, 0, 0, -3 / 16, 0], atol=1e-15)
    assert masked[3] == 0.0
    # A masked last turn: A1 (the winning move) masked. A's return over kept rows is 0, so
    # no episode wins and there is no goal: no step term anywhere.
    no_win = adv(STEP_ONLY, **MASKED, mask=[True, False, True, True, True, True, True])
    np.testing.assert_array_equal(no_win, np.zeros(7))


def test_a_masked_episode_end_is_not_a_goal_edge():
    # A wins (reward on its kept row A0), but its last turn A1 is masked: A0's successor is
    # unknown, and A1 is not an edge into the goal, so there is still no goal.
    lists = {"group": [0] * 4, "traj": [0, 0, 1, 1], "turn": [0, 1, 0, 1],
             "reward": [1, 0, 0, 0], "state": ["a", "b", "a", "c"]}
    res = graphgpo_advantage(batch(**lists, mask=[True, False, True, True]),
                             GraphGPOConfig(**STEP_ONLY))
    np.testing.assert_array_equal(res.adv_N, np.zeros(4))
    assert res.metrics["algo/goal_groups_frac"] == 0.0


def test_self_loop_never_shortens_a_distance():
    # A: s -> won. B: s -> t, t (unparseable: stays at t), t -> truncated.
    lists = {"group": [0] * 4, "traj": [0, 1, 1, 1], "turn": [0, 0, 1, 2],
             "reward": [1, 0, 0, 0], "state": ["s", "s", "t", "t"]}
    # d(s) = 1; t's only way out is t -> t: no path, d(t) = d_max + 1 = 2.
    # R: A0 1, B0 (s->t) 1/4, B1 (t->t) 1/4; s = {1, 1/4}, mean 5/8: +-3/8; t = {B1}: 0.
    np.testing.assert_allclose(adv(STEP_ONLY, **lists), [3 / 8, -3 / 8, 0, 0], atol=1e-15)
    # As a dead end, B2 scores like the self-loop (both d 2): t = {1/4, 1/4} gives 0, 0.
    dead = adv({**STEP_ONLY, "failed_end": "dead_end"}, **lists)
    np.testing.assert_allclose(dead, [3 / 8, -3 / 8, 0, 0], atol=1e-15)


def test_task_groups_are_kept_apart():
    # The same state keys in two task groups, with opposite routes to the goal.
    # Group 0: A a -> b -> won, B a -> c, c -> fails.   Group 1: C a -> c -> won, D a -> b,
    # b -> fails. Group 0: d(b) 1, d(a) 2, c has no path (3): A0 1/2, B0 1/8, mean 5/16:
    # A0 +3/16, B0 -3/16. Group 1, mirrored: C0 (a->c) +3/16, D0 (a->b) -3/16.
    two = {"group": [0, 0, 0, 0, 1, 1, 1, 1], "traj": [0, 0, 1, 1, 2, 2, 3, 3],
           "turn": [0, 1] * 4, "reward": [0, 1, 0, 0, 0, 1, 0, 0],
           "state": ["a", "b", "a", "c", "a", "c", "a", "b"]}
    a = adv(STEP_ONLY, **two)
    np.testing.assert_allclose(a, [3 / 16, 0, -3 / 16, 0, 3 / 16, 0, -3 / 16, 0], atol=1e-15)
    # Group 1 without a success has no goal, even though a and b reach group 0's goal.
    lose = {**two, "reward": [0, 1, 0, 0, 0, 0, 0, 0]}
    b = adv(STEP_ONLY, **lose)
    np.testing.assert_allclose(b, [3 / 16, 0, -3 / 16, 0, 0, 0, 0, 0], atol=1e-15)
    assert graphgpo_advantage(batch(**lose), GraphGPOConfig(**STEP_ONLY)).metrics[
        "algo/goal_groups_frac"] == 0.5


def test_row_order_and_ids_do_not_matter():
    perm = np.random.default_rng(0).permutation(9)
    shuffled = {k: [v[i] for i in perm] for k, v in EXAMPLE.items()}
    shuffled["traj"] = [10 * t + 7 for t in shuffled["traj"]]
    shuffled["group"] = [5] * 9
    a = adv(MEAN_HALF, **shuffled)
    np.testing.assert_allclose(a, np.asarray(EXAMPLE_ADV)[perm], rtol=0, atol=1e-15)


def test_without_the_step_term_it_is_grpo():
    b = batch(**EXAMPLE)
    a = graphgpo_advantage(b, GraphGPOConfig(step_weight=0.0, invalid_penalty=0.0)).adv_N
    np.testing.assert_array_equal(a, grpo_advantage(b, GRPOConfig()).adv_N)


def test_all_rows_masked_raises():
    with pytest.raises(ConfigError, match="empty batch"):
        graphgpo_advantage(batch(**EXAMPLE, mask=[False] * 9), GraphGPOConfig())


def reference_step_adv(lists: dict, omega: float, failed_end: str) -> np.ndarray:
    """A_G with dicts and a queue (mean_norm): the module docstring, step by step."""
    n = len(lists["group"])
    mask = lists.get("mask", [True] * n)
    kept_by_traj, last_turn = defaultdict(list), defaultdict(lambda: -1)
    for i in range(n):
        t = lists["traj"][i]
        last_turn[t] = max(last_turn[t], lists["turn"][i])
        if mask[i]:
            kept_by_traj[t].append(i)
    succ, goal_groups = {}, set()
    for t, rows in kept_by_traj.items():
        rows.sort(key=lambda i: lists["turn"][i])
        won = sum(lists["reward"][i] for i in rows) > 0
        for p, i in enumerate(rows):
            g = lists["group"][i]
            if p + 1 < len(rows) and lists["turn"][rows[p + 1]] == lists["turn"][i] + 1:
                succ[i] = (g, lists["state"][rows[p + 1]])
            elif p == len(rows) - 1 and lists["turn"][i] == last_turn[t]:
                succ[i] = (g, "GOAL") if won else "DEAD"
                if won:
                    goal_groups.add(g)
    into = defaultdict(set)  # reversed edges
    for i, s in succ.items():
        if s != "DEAD":
            into[s].add((lists["group"][i], lists["state"][i]))
    dist = {(g, "GOAL"): 0 for g in goal_groups}
    queue = deque(dist)
    while queue:
        v = queue.popleft()
        for u in into[v]:
            if u not in dist:
                dist[u] = dist[v] + 1
                queue.append(u)
    dmax = defaultdict(int)
    for (g, _), d in dist.items():
        dmax[g] = max(dmax[g], d)
    rewards = {}
    for i, s in succ.items():
        g = lists["group"][i]
        if g not in goal_groups or (s == "DEAD" and failed_end == "skip"):
            continue
        rewards[i] = omega ** (dmax[g] + 1 if s == "DEAD" else dist.get(s, dmax[g] + 1))
    by_source = defaultdict(list)
    for i in rewards:
        by_source[(lists["group"][i], lists["state"][i])].append(i)
    out = np.zeros(n)
    for rows in by_source.values():
        mean = sum(rewards[i] for i in rows) / len(rows)
        for i in rows:
            out[i] = rewards[i] - mean
    return out


def random_lists(rng: np.random.Generator) -> dict:
    """Random walks over 5 states in 3 task groups of 3 episodes, some won, some rows masked,
    in shuffled order."""
    lists = defaultdict(list)
    traj = 0
    for g in range(3):
        for _ in range(3):
            length = int(rng.integers(1, 7))
            won = rng.random() < 0.5
            for t in range(length):
                lists["group"].append(g)
                lists["traj"].append(traj)
                lists["turn"].append(t)
                lists["reward"].append(float(won and t == length - 1))
                lists["state"].append(f"s{rng.integers(5)}")
                lists["mask"].append(bool(rng.random() > 0.15))
            traj += 1
    perm = rng.permutation(len(lists["group"]))
    return {k: [v[i] for i in perm] for k, v in lists.items()}


@pytest.mark.parametrize("failed_end", ["skip", "dead_end"])
def test_random_batches_match_a_plain_loop(failed_end):
    rng = np.random.default_rng(1)
    for _ in range(200):
        lists = random_lists(rng)
        if not any(lists["mask"]):
            continue
        got = adv({**STEP_ONLY, "failed_end": failed_end, "omega": 0.3}, **lists)
        np.testing.assert_allclose(got, reference_step_adv(lists, 0.3, failed_end),
                                   rtol=0, atol=1e-12)
