"""Adapter for the official ALFWorld game files, when a user has them on disk.

ALFWorld's data (``alfworld-download``; it cannot be fetched here, and turngym never needs
it) unpacks to ``$ALFWORLD_DATA/json_2.1.1/{train,valid_seen,valid_unseen}/<task>/<trial>/``
with ``traj_data.json`` (task type, goal) and ``game.tw-pddl`` (the PDDL problem). This env
plays those games through the same engine as ``turngym/ALFWorld-PDDL-v0``, with ALFWorld's
own name demangling and goal text.
"""

from __future__ import annotations

import hashlib
import json
import os
from functools import lru_cache
from pathlib import Path
from typing import Any

from turngym.envs.alfworld_pddl.assets import alfred_domain, alfred_grammar
from turngym.envs.alfworld_pddl.engine import EngineStep, PddlEngine
from turngym.envs.alfworld_pddl.env import from_engine, to_engine
from turngym.envs.core import TurnEnv
from turngym.errors import ConfigError

ENV_VAR = "ALFWORLD_DATA"
SPLIT_DIRS = {"train": "train", "valid_seen": "valid_seen", "valid_unseen": "valid_unseen"}
#: ALFWorld's task-type directory prefixes -> turngym's six type names.
TYPE_PREFIXES = {
    "pick_and_place_simple": "pick_and_place", "pick_two_obj_and_place": "pick_two_obj_and_place",
    "look_at_obj_in_light": "look_at_obj_in_light",
    "pick_clean_then_place_in_recep": "pick_clean_then_place",
    "pick_heat_then_place_in_recep": "pick_heat_then_place",
    "pick_cool_then_place_in_recep": "pick_cool_then_place",
}


def resolve_data_path(data_path: str | os.PathLike | None) -> Path:
    """``data_path``, else ``$ALFWORLD_DATA``; the folder holding ``json_2.1.1``."""
    raw = data_path if data_path is not None else os.environ.get(ENV_VAR)
    if not raw:
        raise ConfigError(f"data_path is not set and ${ENV_VAR} is empty: point either at the "
                          "folder that holds ALFWorld's json_2.1.1 game files")
    path = Path(raw).expanduser()
    if not (path / "json_2.1.1").is_dir():
        raise ConfigError(f"data_path {str(path)!r} has no json_2.1.1 folder of ALFWorld games")
    return path


@lru_cache(maxsize=8)
def find_games(root: str, split: str) -> tuple[tuple[str, str], ...]:
    """``(task_id, game folder)`` of every solvable game of ``split`` under ``root``."""
    base = Path(root) / "json_2.1.1" / SPLIT_DIRS[split]
    games = []
    for traj in sorted(base.rglob("traj_data.json")):
        folder = traj.parent
        game = folder / "game.tw-pddl"
        if "movable" in str(folder) or "Sliced" in str(folder) or not game.is_file():
            continue
        if not json.loads(game.read_text()).get("solvable", False):
            continue
        rel = folder.relative_to(base).as_posix()
        games.append((f"{split}/{rel}", str(folder)))
    return tuple(games)


def task_type_of(task_id: str) -> str:
    """turngym's task type of an ALFWorld game path (``pick_heat_then_place_in_recep-...``)."""
    name = task_id.split("/", 1)[-1]
    for prefix, kind in TYPE_PREFIXES.items():
        if name.startswith(prefix):
            return kind
    return "unknown"


def goal_text(traj: dict) -> str:
    """ALFWorld's templated goal of a ``traj_data.json`` (its first template: ALFWorld's own
    ``get_templated_task_desc`` draws one with the global RNG, which turngym never touches)."""
    import alfworld.gen.goal_library as glib

    params = traj["pddl_params"]
    kind = traj["task_type"] + ("_slice" if params.get("object_sliced") else "")
    template = glib.gdict[kind]["templates"][0]
    return template.format(obj=params["object_target"].lower(),
                           recep=params["parent_target"].lower(),
                           toggle=params.get("toggle_target", "").lower(),
                           mrecep=params.get("mrecep_target", "").lower())


class AlfworldOfficialEnv(TurnEnv):
    """The official ALFWorld text games (needs the game files on disk).

    **Description.** Loads ``game.tw-pddl`` + ``traj_data.json`` of each ALFWorld game
    under ``data_path`` (or ``$ALFWORLD_DATA``) and plays it with TextWorld's PDDL engine,
    ALFWorld's domain/grammar from the ``alfworld`` wheel and ALFWorld's name demangler.

    **Actions.** ALFWorld's commands; ``put O in/on R`` is accepted for ``move O to R``.
    A command the engine cannot apply: ``"Nothing happens."``, ``action_valid=False``.

    **Observations.** The engine's text.

    **Tools.** None.

    **Rewards.** ``win_reward`` (default 10) when the engine reports the goal met.

    **Episode end.** ``terminated`` when won; the turn budget truncates.

    **Info keys.** ``state_key`` (hash of the PDDL facts, without the ``checked`` /
    ``examined`` bookkeeping facts), ``action_valid``, ``won``, ``task_id`` (split/game path),
    ``admissible_actions``, ``task_type``.

    **Arguments.** ``data_path`` (default ``$ALFWORLD_DATA``), ``split``, ``win_reward``.
    """

    family = "household"
    extra_info_keys = ("task_type",)

    def __init__(self, data_path: str | None = None, split: str = "valid_seen",
                 win_reward: float = 10.0, render_mode: str | None = None):
        super().__init__(render_mode)
        if split not in SPLIT_DIRS:
            raise ValueError(f"split must be one of {sorted(SPLIT_DIRS)}, got {split!r}")
        self.root = resolve_data_path(data_path)
        self.split, self.win_reward = split, float(win_reward)
        self._games = dict(find_games(str(self.root), split))
        if not self._games:
            raise ConfigError(f"no solvable ALFWorld games of split {split!r} under {self.root}")
        self._engine: PddlEngine | None = None
        self._last: EngineStep | None = None
        self._commands: list[str] = []

    def task_ids(self, split: str | None = None) -> list[str]:
        return list(self._games)

    def _start(self, task_id: str) -> EngineStep:
        from alfworld.agents.utils.misc import Demangler

        folder = Path(self._games[task_id])
        traj = json.loads((folder / "traj_data.json").read_text())
        game = json.loads((folder / "game.tw-pddl").read_text())
        data = {"pddl_domain": alfred_domain(), "grammar": alfred_grammar(),
                "pddl_problem": game["pddl_problem"]}
        if self._engine is None:
            self._engine = PddlEngine.acquire(facts=True)
        holder: dict[str, Any] = {}

        def rename(pddl_id: str) -> str:
            if "demangler" not in holder:
                holder["demangler"] = Demangler(game_infos=self._engine._env._entity_infos,
                                                shuffle=False)
            return holder["demangler"].demangle_alfred_name(pddl_id)

        self._engine.load(data, goal_text(traj), rename)
        self._commands = []
        self._last = self._engine.reset()
        return self._last

    def _reset(self, task_id: str) -> str:
        return self._start(task_id).feedback

    def _step(self, action: str) -> tuple[str, float, bool, bool, bool]:
        command = to_engine(" ".join(action.strip().lower().split()).rstrip("."))
        for alias in (" in ", " on "):  # "put X in Y" -> "move X to Y"
            if command.startswith("put ") and alias in command and " in/on " not in command:
                obj, _, rec = command[4:].partition(alias)
                command = f"move {obj} to {rec}"
        if command not in self._last.admissible:
            return "Nothing happens.", 0.0, False, False, self.won()
        self._last = self._engine.step(command)
        self._commands.append(command)
        won = self._last.won
        return self._last.feedback, (self.win_reward if won else 0.0), won, True, won

    def admissible_actions(self) -> list[str] | None:
        if self._last is None:
            return None
        return [from_engine(c) for c in self._last.admissible if c != "help"]

    def won(self) -> bool:
        return self._last is not None and self._last.won

    def state_key(self) -> str:
        if self._last is None:
            return "unset"
        facts = [f for f in self._engine.facts() if not f.startswith(("checked", "examined"))]
        return hashlib.sha1("\n".join(facts).encode()).hexdigest()

    def extra_info(self) -> dict[str, Any]:
        return {"task_type": task_type_of(self.task_id) if self.task_id else ""}

    def expert_action(self) -> str | None:
        """The first command of Fast Downward's plan from the current state."""
        if self._last is None or self.won():
            return None
        plan = self._engine.replan()
        return from_engine(plan[0]) if plan else None

    def close(self) -> None:
        """Give the engine back to the process's pool (see ``AlfworldPddlEnv.close``)."""
        super().close()
        if self._engine is not None:
            engine, self._engine = self._engine, None
            engine.release()
        self._last, self._commands = None, []

    def _state(self) -> Any:
        return tuple(self._commands)

    def _set_state(self, state: Any) -> None:
        self._start(self.task_id)
        for command in state:
            self._last = self._engine.step(command)
            self._commands.append(command)

    def __getstate__(self) -> dict[str, Any]:
        state = self.__dict__.copy()
        state["_engine"] = None
        state["_replay"] = tuple(self._commands) if self._ready else None
        return state

    def __setstate__(self, state: dict[str, Any]) -> None:
        replay = state.pop("_replay", None)
        self.__dict__.update(state)
        if replay is not None:
            self._set_state(replay)
