"""The PDDL export, as text (no engine needed; the engine tests are in test_alfworld_pddl)."""

from __future__ import annotations

import pytest

from turngym.envs.household.env import HouseholdEnv
from turngym.envs.household.pddl import alfworld_id, export_problem, pddl_id
from turngym.envs.household.tasks import TASK_TYPES, make_task

HEAT_TASK = "valid_seen-00004"  # "put a hot plate in cabinet."; plate 1 on shelf 1


def test_start_state_facts_and_goal() -> None:
    text = export_problem(make_task(HEAT_TASK))
    assert text.startswith("(define (problem household_valid_seen_00004)\n  (:domain alfred)")
    for fact in ["(atLocation agent1 loc_middle)", "(inReceptacle plate_1 shelf_1)",
                 "(objectAtLocation plate_1 loc_shelf_1)", "(heatable plate_1)",
                 "(openable cabinet_1)", "(receptacleType microwave_1 MicrowaveType)",
                 "(canContain CabinetType PlateType)"]:
        assert f"    {fact}\n" in text, fact
    init = text.split("(:goal")[0]
    assert "(opened " not in init and "(holds " not in init and "(isHot " not in init
    assert text.rstrip().endswith(
        "(:goal (exists (?r - receptacle ?o - object) (and (receptacleType ?r CabinetType) "
        "(objectType ?o PlateType) (inReceptacle ?o ?r) (isHot ?o))))\n)")


def test_mid_episode_state_is_exported() -> None:
    env = HouseholdEnv(split="valid_seen")
    env.reset(seed=0, options={"task_id": HEAT_TASK})
    for a in ["go to cabinet 2", "open cabinet 2", "go to shelf 1", "take plate 1 from shelf 1",
              "go to microwave 1", "heat plate 1 with microwave 1"]:
        assert env.step(a)[4]["action_valid"], a
    text = export_problem(env.task, env.state)
    for fact in ["(atLocation agent1 loc_microwave_1)", "(opened cabinet_2)",
                 "(holds agent1 plate_1)", "(holdsAny agent1)", "(isHot plate_1)"]:
        assert f"    {fact}\n" in text, fact
    assert "(inReceptacle plate_1 " not in text


@pytest.mark.parametrize("index", range(6))
def test_every_task_type_has_a_goal(index: int) -> None:
    task = make_task(f"valid_unseen-{index:05d}")
    assert task.task_type == TASK_TYPES[index]
    text = export_problem(task)
    assert "(:goal (exists" in text and text.count("(") == text.count(")")
    if task.task_type == "pick_two_obj_and_place":
        assert "(not (= ?o1 ?o2))" in text
    if task.task_type == "look_at_obj_in_light":
        assert "(isOn ?lamp)" in text and "(toggleable " in text


def test_ids() -> None:
    assert pddl_id("cabinet 3") == "cabinet_3"
    assert alfworld_id("apple 2") == "apple_bar__plus_00_dot_02"
    assert alfworld_id("sinkbasin 1") == "sink_bar__plus_00_dot_01_bar_sinkbasin"
