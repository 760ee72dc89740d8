"""turngym/Household-v0: rules and text on a hand-checked task, state keys, snapshot, kwargs."""

from __future__ import annotations

import pickle

import pytest

from turngym import envs
from turngym.envs.household.prompt import system_prompt
from turngym.envs.household.tasks import TASK_TYPES

HEAT_TASK = "valid_seen-00004"  # kitchen-027, "put a hot plate in cabinet."; plate 1 on shelf 1
HEAT_PLAN = ["go to shelf 1", "take plate 1 from shelf 1", "go to microwave 1",
             "heat plate 1 with microwave 1", "go to cabinet 1", "open cabinet 1",
             "put plate 1 in/on cabinet 1"]


def _env(split: str = "valid_seen", **kwargs):
    return envs.make("turngym/Household-v0", split=split, **kwargs)


def test_first_observation_and_admissible_actions_are_alfworld_text() -> None:
    env = _env()
    obs, info = env.reset(seed=0, options={"task_id": HEAT_TASK})
    assert obs.startswith("-= Welcome to TextWorld, ALFRED! =-\n\nYou are in the middle of a "
                          "room. Looking quickly around you, you see a cabinet 1, a cabinet 2,")
    assert obs.endswith("and a stoveburner 4.\n\nYour task is to: put a hot plate in cabinet.")
    assert info["task_type"] == "pick_heat_then_place" and info["won"] is False
    adm = info["admissible_actions"]
    assert len(adm) == 25  # 23 receptacles to go to + inventory + look
    assert adm[0] == "go to cabinet 1" and adm[-2:] == ["inventory", "look"]


def test_expert_plan_step_by_step_with_exact_text_and_reward() -> None:
    env = _env()
    env.reset(seed=0, options={"task_id": HEAT_TASK})
    texts, rewards = [], []
    for expected in HEAT_PLAN:
        assert env.unwrapped.expert_action() == expected
        obs, reward, term, trunc, info = env.step(expected)
        assert info["action_valid"] is True and trunc is False
        texts.append(obs)
        rewards.append(reward)
    assert texts[0] == "You arrive at shelf 1. On the shelf 1, you see a plate 1."
    assert texts[1] == "You pick up the plate 1 from the shelf 1."
    assert texts[2] == "You arrive at microwave 1. The microwave 1 is closed."
    assert texts[3] == "You heat the plate 1 using the microwave 1."
    assert texts[5] == "You open the cabinet 1. The cabinet 1 is open. In it, you see nothing."
    assert texts[6] == "You move the plate 1 to the cabinet 1."
    assert rewards == [0.0] * 6 + [10.0]
    assert term is True and info["won"] is True
    assert env.unwrapped.expert_action() is None


@pytest.mark.parametrize("action, valid, text", [
    ("take plate 1 from shelf 1", False, "Nothing happens."),  # not at shelf 1
    ("open fridge 1", False, "Nothing happens."),  # not at the fridge
    ("put plate 1 in cabinet 1", False, "Nothing happens."),  # alias, but not holding it
    ("fly to the moon", False, "I don't understand 'fly to the moon'."),
    ("go to spaceship 1", False, "There is no receptacle called 'spaceship 1' here."),
    ("", False, "I don't understand ''."),
    ("Go to the Shelf 1.", True, "You arrive at shelf 1."),  # case, article, period ignored
    ("inventory", True, "You are not carrying anything."),
])
def test_invalid_and_aliased_actions(action: str, valid: bool, text: str) -> None:
    env = _env()
    _, info0 = env.reset(seed=0, options={"task_id": HEAT_TASK})
    obs, reward, term, trunc, info = env.step(action)
    assert info["action_valid"] is valid and obs.startswith(text)
    assert reward == 0.0 and not term and not trunc
    if not valid:
        assert info["state_key"] == info0["state_key"]


def test_examine_held_object_states_and_heat_clears_cool() -> None:
    env = _env()
    env.reset(seed=0, options={"task_id": HEAT_TASK})
    for a in HEAT_PLAN[:4]:
        env.step(a)
    assert env.step("examine plate 1")[0] == "This is a hot plate 1."
    env.step("go to fridge 1")
    obs, _, _, _, info = env.step("cool plate 1 with fridge 1")
    assert obs == "You cool the plate 1 using the fridge 1."
    assert env.step("examine plate 1")[0] == "This is a cold plate 1."
    assert env.step("inventory")[0] == "You are carrying: a plate 1."


def test_state_key_ignores_history_and_turns() -> None:
    a, b = _env(), _env()
    a.reset(seed=0, options={"task_id": HEAT_TASK})
    b.reset(seed=1, options={"task_id": HEAT_TASK})
    for act in ["go to fridge 1", "look", "go to shelf 2", "inventory", "go to shelf 1"]:
        a.step(act)
    _, _, _, _, info_b = b.step("go to shelf 1")
    assert a.unwrapped.state_key() == info_b["state_key"]
    key = info_b["state_key"]
    for act in ["look", "inventory", "examine shelf 1"]:
        assert b.step(act)[4]["state_key"] == key  # observing changes nothing
    b.step("take plate 1 from shelf 1")
    assert b.unwrapped.state_key() != key


def test_snapshot_restore_and_pickle_give_the_same_future() -> None:
    env = _env()
    env.reset(seed=0, options={"task_id": HEAT_TASK})
    for act in HEAT_PLAN[:3]:
        env.step(act)
    blob = env.snapshot()
    future = [env.step(a)[:4] for a in HEAT_PLAN[3:]]
    env.restore(blob)
    assert [env.step(a)[:4] for a in HEAT_PLAN[3:]] == future
    env.restore(blob)
    clone = pickle.loads(pickle.dumps(env))
    assert [clone.step(a)[:4] for a in HEAT_PLAN[3:]] == future


def test_task_types_kwarg_filters_tasks_and_info_reports_the_type() -> None:
    env = _env(split="train", task_types=["look_at_obj_in_light"])
    ids = env.unwrapped.task_ids()
    assert len(ids) == 500 and ids[0] == "train-00002"
    _, info = env.reset(seed=3)
    assert info["task_type"] == "look_at_obj_in_light"


@pytest.mark.parametrize("kwargs, message", [
    ({"split": "test"}, "split must be one of"),
    ({"task_types": ["pick_and_eat"]}, "task_types ['pick_and_eat'] are unknown"),
    ({"colour": "red"}, "unknown kwarg(s) ['colour']"),
])
def test_bad_config_fails_before_work_naming_the_key(kwargs: dict, message: str) -> None:
    with pytest.raises(envs.ConfigError) as err:
        envs.make("turngym/Household-v0", **kwargs)
    assert message in str(err.value)


def test_every_task_type_has_a_prompt_with_the_action_format() -> None:
    text = system_prompt("put a hot plate in cabinet.")
    assert "put a hot plate in cabinet." in text
    assert "<think>" in text and "<action>" in text and "in/on" in text
    assert len(TASK_TYPES) == 6
