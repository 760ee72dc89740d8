"""Credit assignment as a registry (``turngym.harness.learn.credit``): hand-computed cases."""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import pytest

from turngym.algos.state_graph import stable_key_ids
from turngym.harness.config import load_config
from turngym.harness.learn import credit
from turngym.harness.learn.credit import Modifier, assign_credit, reference_first
from turngym.harness.rollout.trajectory import Group, StopReason, Trajectory, Turn

HARNESS = Path(__file__).resolve().parents[3] / "harness"


def _traj(group: str, tid: str, rewards: list[float]) -> Trajectory:
    turns = tuple(Turn(group_id=group, traj_id=tid, task_id=group, turn=k, prompt_ids=[1, 2],
                       response_ids=[5, 6], response_logprobs=[-1.0, -1.0], reward=r,
                       state_key=f"s{k}", action_valid=True, done=k == len(rewards) - 1,
                       won=False) for k, r in enumerate(rewards))
    return Trajectory(group_id=group, traj_id=tid, task_id=group, seed=0, env_id="e",
                      turns=turns, stop_reason=StopReason.TERMINATED, won=sum(rewards) > 0)


def _groups() -> list[Group]:
    """Group g1 is mixed (returns 1 and 0), group g2 is uniform (returns 1 and 1)."""
    g1 = Group(group_id="g1", task_id="g1", seed=0,
               trajectories=(_traj("g1", "a", [0.0, 1.0]), _traj("g1", "b", [0.0, 0.0])))
    g2 = Group(group_id="g2", task_id="g2", seed=0,
               trajectories=(_traj("g2", "c", [1.0]), _traj("g2", "d", [1.0])))
    return [g1, g2]


def test_grpo_credit_by_hand() -> None:
    # g1: mean 0.5, unbiased std sqrt(0.5) = 0.707107 -> A = +-0.5 / (0.707107 + 1e-6);
    # every turn of an episode gets its episode's advantage; g2 (all equal) gets 0
    out = assign_credit(_groups(), load_config(None, ["algo.name=grpo"]))
    a = 0.5 / (np.sqrt(0.5) + 1e-6)
    assert [x for s in out.samples for x in s.adv] == pytest.approx(
        [a, a, a, a, -a, -a, -a, -a, 0.0, 0.0, 0.0, 0.0], rel=1e-9)
    assert out.metrics["algo/signal_groups"] == 1.0
    assert out.metrics["algo/signal_groups_frac"] == 0.5


def test_dynamic_sampling_modifier_drops_the_uniform_group() -> None:
    cfg = load_config(None, ["algo.name=grpo", "algo.dynamic_sampling=true"])
    out = assign_credit(_groups(), cfg)
    assert len(out.samples) == 4  # g2's two episodes are gone
    assert out.metrics["algo/groups_dropped"] == 1.0
    assert out.metrics["algo/signal_groups_frac"] == 1.0


def test_active_modifiers_follow_the_config() -> None:
    plain = load_config(None, ["algo.name=gigpo"])
    assert credit.active_modifiers(plain) == [] and not reference_first(plain)
    ds = load_config(None, ["algo.name=gigpo", "algo.dynamic_sampling=true"])
    assert [m.name for m in credit.active_modifiers(ds)] == ["dynamic_sampling"]
    kl = load_config(None, ["algo.name=reinforce_pp", "algo.advantage.kl_coef=0.1"])
    assert [m.name for m in credit.active_modifiers(kl)] == ["kl_in_reward"]
    assert reference_first(kl)  # the reference scores the rollout before credit


def test_a_registered_modifier_runs_after_the_estimator(monkeypatch) -> None:
    # the docs' worked example: a modifier that keeps only the first turn of each episode
    def first_turn_only(state: credit.CreditState, cfg) -> dict[str, float]:
        state.mask_N = state.mask_N & (state.batch.turn_N == 0)
        return {"algo/first_turn_rows": float(state.mask_N.sum())}

    monkeypatch.setattr(credit, "MODIFIERS", [*credit.MODIFIERS, Modifier(
        "first_turn_only", lambda cfg: True, first_turn_only)])
    out = assign_credit(_groups(), load_config(None, ["algo.name=grpo"]))
    a = 0.5 / (np.sqrt(0.5) + 1e-6)
    assert [x for s in out.samples for x in s.adv] == pytest.approx(
        [a, a, -a, -a, 0.0, 0.0, 0.0, 0.0], rel=1e-9)
    assert out.metrics["algo/first_turn_rows"] == 4.0


def test_the_loop_names_no_algorithm() -> None:
    # no branch on algorithm names anywhere in the harness, and no recipe name at all in the
    # loop (the credit registry reads the typed config)
    branch = re.compile(r"rl_name ==|algo\.name ==")
    named = re.compile(r"[\"'](grpo|rloo|reinforce_pp|gigpo|hgpo|opd|gigpo\+opd|ppo|gae)[\"']")
    offenders = [f"{p.relative_to(HARNESS)}:{i}" for p in HARNESS.rglob("*.py")
                 for i, line in enumerate(p.read_text().splitlines(), 1)
                 if branch.search(line) or (p.name == "train.py"
                                            and named.search(line))]
    assert offenders == []


def test_a_registered_estimator_is_a_config_and_a_recipe_at_once() -> None:
    # "one file plus one registry line": the config union and the recipe names are built
    # from ADVANTAGES, so nothing else lists the estimators
    from typing import get_args

    from turngym.algos.registry import ADVANTAGES, AdvantageConfig
    from turngym.harness.config.sections import ALGO_NAMES

    union = get_args(get_args(AdvantageConfig)[0])
    assert set(union) == {model for model, _ in ADVANTAGES.values()}
    assert set(ADVANTAGES) - {"gae"} <= set(ALGO_NAMES)  # gae runs as the ppo recipe
    for name in set(ADVANTAGES) - {"gae"}:
        assert type(load_config(None, [f"algo.name={name}"]).algo.advantage) is \
            ADVANTAGES[name][0]


# ---------------------------------------------------------------- the state graph modifier
#: GiGPO without std (mean_norm), gamma 0.5; the graph: singleton mode, a state's mean is used
#: from its first visit on (min_count 1), no decay, keyed by state alone.
GRAPH = ["algo.name=gigpo", "algo.advantage={mode: mean_norm, gamma: 0.5}",
         ("algo.state_graph={enabled: true, mode: singleton, min_count: 1, decay: 1.0, "
          "per_task: false}")]


def _ep(group: str, tid: str, states: list[str], rewards: list[float],
        stop: StopReason = StopReason.TERMINATED) -> Trajectory:
    turns = tuple(Turn(group_id=group, traj_id=tid, task_id=group, turn=k, prompt_ids=[1, 2],
                       response_ids=[5, 6], response_logprobs=[-1.0, -1.0], reward=r,
                       state_key=s, action_valid=True, done=k == len(rewards) - 1, won=r > 0)
                  for k, (s, r) in enumerate(zip(states, rewards)))
    return Trajectory(group_id=group, traj_id=tid, task_id=group, seed=0, env_id="e",
                      turns=turns, stop_reason=stop, won=sum(rewards) > 0)


def _group(gid: str, *trajs: Trajectory) -> Group:
    return Group(group_id=gid, task_id=gid, seed=0, trajectories=trajs)


def _adv(out) -> list[float]:
    return [s.adv[0] for s in out.samples]  # every token of a turn carries its advantage


def _stats(graph, *states: str, task: str | None = None) -> list[tuple[int, float]]:
    ids = stable_key_ids(states, None if task is None else [task] * len(states))
    s = graph.lookup(ids)
    return list(zip(s.count_N.tolist(), s.mean_N.tolist()))


def test_state_graph_modifier_by_hand_over_two_steps() -> None:
    cfg = load_config(None, GRAPH)
    assert [m.name for m in credit.active_modifiers(cfg)] == ["state_graph"]
    graph = credit.build_state_graph(cfg)
    # Step 0, empty graph: nothing changes. a: x -> y -> won (0, 1); b: x -> z (0, 0).
    # A_E = +-0.5; step returns (gamma 0.5) a [0.5, 1], b [0, 0]; step group x {0.5, 0}
    # gives A_S = +-0.25; y and z are singletons (A_S = 0, and unseen by the graph: 0).
    out = assign_credit([_group("g1", _ep("g1", "a", ["x", "y"], [0.0, 1.0]),
                                _ep("g1", "b", ["x", "z"], [0.0, 0.0]))], cfg, graph=graph,
                        step=0)
    assert _adv(out) == pytest.approx([0.75, 0.5, -0.75, -0.5])
    m = out.metrics
    assert (m["algo/graph_hit_frac"], m["algo/graph_baselined_frac"]) == (0.0, 0.0)
    assert m["algo/graph_singleton_row_frac"] == 0.5 and m["algo/graph_states"] == 3.0
    # the update came after the credit: the batch's own returns are in the graph now
    assert _stats(graph, "x", "y", "z") == [(2, 0.25), (1, 1.0), (1, 0.0)]

    # Step 1. g1: a2: x -> y, truncated (0, 0); b2: x -> w -> won (0, 1). g2: c crashed in y
    # (env_error: never enters the graph), d: v -> won alone (one trajectory: A_E = 0).
    # GiGPO: A_E -0.5 / +0.5; step returns a2 [0, 0], b2 [0.5, 1]; x {0, 0.5}: A_S -+0.25.
    # The graph: y is a singleton seen once with mean 1, so a2's second turn gets
    # 0 - 1 = -1; w and v are unseen singletons (0); x has peers in the batch (0).
    out = assign_credit([
        _group("g1", _ep("g1", "a2", ["x", "y"], [0.0, 0.0], StopReason.TRUNCATED),
               _ep("g1", "b2", ["x", "w"], [0.0, 1.0])),
        _group("g2", _ep("g2", "c", ["y"], [0.0], StopReason.ENV_ERROR),
               _ep("g2", "d", ["v"], [1.0]))], cfg, graph=graph, step=1)
    assert _adv(out) == pytest.approx([-0.75, -1.5, 0.75, 0.5, 0.0])
    m = out.metrics
    assert m["algo/graph_hit_frac"] == pytest.approx(3 / 5)  # x, y, x of 5 kept rows
    assert m["algo/graph_baselined_frac"] == pytest.approx(1 / 5)
    assert m["algo/graph_singleton_row_frac"] == pytest.approx(3 / 5)  # y, w, v
    assert m["algo/graph_adv_abs_mean"] == 1.0
    assert (m["algo/graph_new_states"], m["algo/graph_states"]) == (2.0, 5.0)  # w, v
    # x: 0.5, 0, 0, 0.5; y: 1 and the truncated 0 (not c's crashed 0); w: 1; v: 1
    assert _stats(graph, "x", "y", "z", "w", "v") == [(4, 0.25), (2, 0.5), (1, 0.0), (1, 1.0),
                                                      (1, 1.0)]
    assert graph.step == 1


def test_min_count_and_unseen_states_keep_gigpo_as_it_is() -> None:
    # min_count 2: y (seen once) is not used yet, so the advantages are plain GiGPO's
    cfg = load_config(None, [*GRAPH, "algo.state_graph.min_count=2"])
    plain = load_config(None, GRAPH[:2])
    graph = credit.build_state_graph(cfg)
    graph.update(stable_key_ids(["y"]), np.array([1.0]), step=0)
    groups = [_group("g1", _ep("g1", "a", ["x", "y"], [0.0, 0.0]),
                     _ep("g1", "b", ["x", "w"], [0.0, 1.0]))]
    out = assign_credit(groups, cfg, graph=graph, step=1)
    assert _adv(out) == _adv(assign_credit(groups, plain))
    assert out.metrics["algo/graph_baselined_frac"] == 0.0
    assert out.metrics["algo/graph_hit_frac"] == 0.25
    # the next batch sees y with 2 visits (mean 0.5): now it baselines
    out = assign_credit(groups, cfg, graph=graph, step=2)
    assert (np.array(_adv(out)) - _adv(assign_credit(groups, plain))).tolist() == [
        0.0, -0.5, 0.0, 0.0]


def test_value_mode_with_a_loop_and_a_truncated_episode() -> None:
    # value mode, weight 0.5: every row whose state was seen gets 0.5 * (R_t - mean). a loops
    # x -> x -> y -> won (0, 0, 1): step returns 0.25, 0.5, 1 and both x rows read the mean
    # from before the batch (0.5), not each other's; b is cut after one turn in x (return 0).
    cfg = load_config(None, ["algo.name=grpo", ("algo.state_graph={enabled: true, "
                                                "mode: value, min_count: 1, decay: 1.0, "
                                                "weight: 0.5, gamma: 0.5, per_task: false}")])
    graph = credit.build_state_graph(cfg)
    graph.update(stable_key_ids(["x"]), np.array([0.5]), step=0)
    groups = [_group("g1", _ep("g1", "a", ["x", "x", "y"], [0.0, 0.0, 1.0]),
                     _ep("g1", "b", ["x"], [0.0], StopReason.TRUNCATED))]
    out = assign_credit(groups, cfg, graph=graph, step=1)
    base = _adv(assign_credit(groups, load_config(None, ["algo.name=grpo"])))
    assert np.array(_adv(out)) - base == pytest.approx([-0.125, 0.0, 0.0, -0.25])
    # folded in after: x gets three more returns (0.25, 0.5, 0), y its first (1)
    assert _stats(graph, "x", "y") == [(4, pytest.approx(0.3125)), (1, 1.0)]


def test_per_task_keys_do_not_share_a_state_across_tasks() -> None:
    cfg = load_config(None, [*GRAPH, "algo.state_graph.per_task=true"])
    graph = credit.build_state_graph(cfg)
    groups = [_group("g1", _ep("g1", "a", ["y"], [1.0]), _ep("g1", "b", ["z"], [0.0]))]
    assign_credit(groups, cfg, graph=graph, step=0)
    assert _stats(graph, "y", task="g1") == [(1, 1.0)] and _stats(graph, "y") == [(0, 0.0)]
    other = [_group("g3", _ep("g3", "a", ["y"], [0.0]), _ep("g3", "b", ["z"], [1.0]))]
    out = assign_credit(other, cfg, graph=graph, step=1)  # the same states, another task
    assert out.metrics["algo/graph_hit_frac"] == 0.0
    assert _stats(graph, "y", task="g3") == [(1, 0.0)]


def test_the_state_graph_needs_its_graph_and_an_estimator_with_step_groups() -> None:
    from turngym.errors import ConfigError

    cfg = load_config(None, GRAPH)
    with pytest.raises(ConfigError, match="got no graph"):
        assign_credit(_groups(), cfg)
    assert credit.build_state_graph(load_config(None, ["algo.name=gigpo"])) is None
    with pytest.raises(ConfigError, match="mode=singleton"):
        load_config(None, ["algo.name=grpo", "algo.state_graph.enabled=true"])
    with pytest.raises(ConfigError, match="no RL"):
        load_config(None, ["algo.name=opd", "teacher.path=tiny",
                           "algo.state_graph={enabled: true, mode: value}"])
    with pytest.raises(ConfigError, match="kl_coef"):
        load_config(None, ["algo.name=reinforce_pp", "algo.advantage.kl_coef=0.1",
                           "algo.state_graph={enabled: true, mode: value}"])
    hgpo = load_config(None, ["algo.name=hgpo", "algo.state_graph.enabled=true"])
    assert hgpo.algo.state_graph.discount(hgpo.algo.advantage) == 0.95  # the estimator's gamma
    ds = load_config(None, [*GRAPH, "algo.dynamic_sampling=true"])
    assert [m.name for m in credit.active_modifiers(ds)] == ["state_graph", "dynamic_sampling"]
