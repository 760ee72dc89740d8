"""Credit assignment as a registry (``turngym.harness.learn.credit``): hand-computed cases."""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import pytest

from turngym.harness.config import load_config
from turngym.harness.learn import credit
from turngym.harness.learn.credit import Modifier, assign_credit, reference_first
from turngym.harness.rollout.trajectory import Group, StopReason, Trajectory, Turn

HARNESS = Path(__file__).resolve().parents[2] / "harness"


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
