"""Equivalence with ALFWorld's real engine (TextWorld's PDDL env + alfred.pddl/alfred.twl2),
and the official-game-files adapter."""

from __future__ import annotations

import json
import os
from pathlib import Path

import numpy as np
import pytest

pytest.importorskip("textworld", reason="needs textworld: pip install turngym[classic]")
pytest.importorskip("alfworld", reason="needs alfworld: pip install turngym[classic]")

from turngym import envs
from turngym.envs.alfworld_pddl import AlfworldOfficialEnv, AlfworldPddlEnv
from turngym.envs.alfworld_pddl.assets import alfred_domain, alfred_grammar
from turngym.envs.alfworld_pddl.engine import PddlEngine
from turngym.envs.household.env import HouseholdEnv
from turngym.envs.household.pddl import alfworld_id, export_problem
from turngym.envs.household.tasks import TASK_TYPES, make_task

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def pairs() -> dict[str, tuple[HouseholdEnv, AlfworldPddlEnv]]:
    """A household env and an engine env per split (the engine is costly to start)."""
    made = {s: (HouseholdEnv(split=s), AlfworldPddlEnv(split=s)) for s in ("train", "valid_unseen")}
    yield made
    for _, engine in made.values():
        engine.close()


@pytest.fixture
def pair(pairs) -> tuple[HouseholdEnv, AlfworldPddlEnv]:
    return pairs["valid_unseen"]


def _same_step(ours: tuple, theirs: tuple) -> None:
    obs_a, r_a, term_a, trunc_a, info_a = ours
    obs_b, r_b, term_b, trunc_b, info_b = theirs
    assert obs_a == obs_b
    assert (r_a, term_a, trunc_a) == (r_b, term_b, trunc_b)
    for key in ("state_key", "action_valid", "won", "task_type"):
        assert info_a[key] == info_b[key], key
    assert sorted(info_a["admissible_actions"]) == sorted(info_b["admissible_actions"])


SAMPLE = [("valid_unseen", i) for i in range(6)] + [("train", 606 + i) for i in range(6)]
SAMPLE_IDS = [f"{s}-{TASK_TYPES[i % 6]}" for s, i in SAMPLE]


@pytest.mark.parametrize("split, index", SAMPLE, ids=SAMPLE_IDS)
def test_expert_plan_wins_in_both_engines_with_identical_text(pairs, split: str,
                                                               index: int) -> None:
    ours, engine = pairs[split]
    tid = f"{split}-{index:05d}"
    obs_a, info_a = ours.reset(seed=0, options={"task_id": tid})
    obs_b, info_b = engine.reset(seed=0, options={"task_id": tid})
    assert obs_a == obs_b and info_a["state_key"] == info_b["state_key"]
    assert info_a["task_type"] == TASK_TYPES[index % 6]
    assert sorted(info_a["admissible_actions"]) == sorted(info_b["admissible_actions"])
    for _ in range(30):
        action = ours.expert_action()
        assert engine.expert_action() == action  # same expert over the mirrored state
        step_a, step_b = ours.step(action), engine.step(action)
        _same_step(step_a, step_b)
        if step_a[2]:
            break
    assert step_a[4]["won"] and step_b[4]["won"] and step_b[1] == 10.0


def test_random_walk_with_impossible_commands_matches(pair) -> None:
    ours, engine = pair
    rng = np.random.default_rng(0)
    tid = "valid_unseen-00003"
    _, info = ours.reset(seed=0, options={"task_id": tid})
    engine.reset(seed=0, options={"task_id": tid})
    impossible = ["take plate 1 from fridge 1", "heat fork 1 with microwave 1", "use desklamp 1",
                  "close drawer 1", "put fork 1 in/on countertop 1"]
    for t in range(16):
        adm = info["admissible_actions"]
        action = impossible[t // 3 % 5] if t % 3 == 0 else adm[int(rng.integers(len(adm)))]
        step_a, step_b = ours.step(action), engine.step(action)
        _same_step(step_a, step_b)
        info = step_a[4]


def test_export_from_a_mid_episode_state_is_solved_by_the_engine() -> None:
    rng = np.random.default_rng(1)
    ours = HouseholdEnv(split="valid_seen")
    _, info = ours.reset(seed=0, options={"task_id": "valid_seen-00005"})  # cool a tomato
    for _ in range(12):
        adm = info["admissible_actions"]
        info = ours.step(adm[int(rng.integers(len(adm)))])[4]
    engine = PddlEngine()
    game = {"pddl_domain": alfred_domain(), "grammar": alfred_grammar(),
            "pddl_problem": export_problem(ours.task, ours.state)}
    engine.load(game, ours.task.text, lambda i: i.replace("_", " "))
    result = engine.reset()
    assert not result.won
    while (action := ours.expert_action()) is not None:
        ours.step(action)
        result = engine.step(action.replace("put ", "move ").replace(" in/on ", " to "))
        assert result.valid, action
    assert ours.won() and result.won


def test_registered_and_checked_through_make() -> None:
    env = envs.make("turngym/ALFWorld-PDDL-v0", split="valid_seen", task_types=["pick_and_place"])
    ids = env.unwrapped.task_ids()
    assert len(ids) == 24 and all(int(t[-5:]) % 6 == 0 for t in ids)
    assert envs.spec("turngym/ALFWorld-PDDL-v0").requires == ("textworld", "alfworld")


# --------------------------------------------------------------------------- official files
def _write_official_layout(root: Path, task_id: str) -> Path:
    """An ALFWorld-format game folder (traj_data.json + game.tw-pddl, mangled ids) made from
    one of our tasks: the official files cannot be downloaded here."""
    task = make_task(task_id)
    folder = root / "json_2.1.1" / "valid_seen" / "pick_heat_then_place_in_recep-Plate-None-" \
        "Cabinet-27" / "trial_T0"
    folder.mkdir(parents=True)
    traj = {"task_type": "pick_heat_then_place_in_recep",
            "pddl_params": {"object_target": "Plate", "parent_target": "Cabinet",
                            "toggle_target": "", "mrecep_target": "", "object_sliced": False}}
    (folder / "traj_data.json").write_text(json.dumps(traj))
    game = {"pddl_problem": export_problem(task, ids=alfworld_id), "solvable": True}
    (folder / "game.tw-pddl").write_text(json.dumps(game))
    return root


def test_official_adapter_plays_alfworld_format_files(tmp_path: Path) -> None:
    root = _write_official_layout(tmp_path, "valid_seen-00004")  # "put a hot plate in cabinet."
    env = AlfworldOfficialEnv(data_path=str(root), split="valid_seen")
    (tid,) = env.task_ids()
    obs, info = env.reset(seed=0, options={"task_id": tid})
    assert obs.endswith("Your task is to: put a hot plate in cabinet.")
    assert info["task_type"] == "pick_heat_then_place"
    assert "go to cabinet 1" in info["admissible_actions"]
    for _ in range(20):
        obs, reward, term, trunc, info = env.step(env.expert_action())
        if term:
            break
    assert info["won"] and reward == 10.0


def test_official_adapter_needs_a_data_path(tmp_path: Path, monkeypatch) -> None:
    monkeypatch.delenv("ALFWORLD_DATA", raising=False)
    with pytest.raises(envs.ConfigError, match="ALFWORLD_DATA"):
        AlfworldOfficialEnv()
    with pytest.raises(envs.ConfigError, match="json_2.1.1"):
        AlfworldOfficialEnv(data_path=str(tmp_path))


def _official_files_present() -> bool:
    # alfworld itself defaults $ALFWORLD_DATA to ~/.cache/alfworld, so check for the games
    root = os.environ.get("ALFWORLD_DATA")
    return bool(root) and (Path(root).expanduser() / "json_2.1.1").is_dir()


@pytest.mark.skipif(not _official_files_present(),
                    reason="optional: official ALFWorld game files not on disk (set ALFWORLD_DATA "
                           "to the folder holding json_2.1.1; alfworld-download cannot run here)")
def test_official_game_files_when_present() -> None:
    env = AlfworldOfficialEnv(split="valid_seen")
    obs, info = env.reset(seed=0, options={"task_id": env.task_ids()[0]})
    assert "Your task is to:" in obs
    for _ in range(50):
        obs, reward, term, trunc, info = env.step(env.expert_action())
        if term:
            break
    assert info["won"]


def _downward_copies() -> int:
    """Copies of fast-downward's library mapped into this process (one per engine built)."""
    with open("/proc/self/maps") as f:
        return len({line.split()[-1] for line in f if "libdownward" in line})


def test_close_frees_the_engine_for_reuse() -> None:
    """Every engine loads its own copy of fast-downward's library, which is never unloaded:
    each env used to keep ~2 MB after ``close()``. Closed envs give their engine back to a
    pool, so building envs one after another maps no new copy."""
    env = AlfworldPddlEnv(split="valid_seen")
    env.reset(seed=0, options={"task_id": "valid_seen-00004"})
    engine = env._engine
    env.close()
    assert env._engine is None and env.mirror is None and env._last is None
    copies = _downward_copies()
    for k in range(3):
        other = AlfworldPddlEnv(split="valid_seen")
        _, info = other.reset(seed=0, options={"task_id": f"valid_seen-0000{k}"})
        assert other._engine is engine  # the pooled engine, not a new library copy
        assert (info["admissible_actions"]
                and other.step(info["admissible_actions"][0])[4]["action_valid"])
        other.close()
    assert _downward_copies() == copies
