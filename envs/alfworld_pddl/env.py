"""``turngym/ALFWorld-PDDL-v0``: household tasks played by ALFWorld's real PDDL engine."""

from __future__ import annotations

from typing import Any

from turngym.envs.alfworld_pddl.assets import alfred_domain, alfred_grammar
from turngym.envs.alfworld_pddl.engine import EngineStep, PddlEngine
from turngym.envs.core import TurnEnv
from turngym.envs.household.commands import CommandParser
from turngym.envs.household.expert import expert_action
from turngym.envs.household.pddl import export_problem
from turngym.envs.household.sim import HouseState
from turngym.envs.household.tasks import (
    SPLIT_SIZES,
    TASK_TYPES,
    Task,
    check_task_args,
    make_task,
    task_ids,
)


def to_engine(canonical: str) -> str:
    """Our canonical command -> ALFWorld grammar's (``put X in/on Y`` -> ``move X to Y``)."""
    if canonical.startswith("put ") and " in/on " in canonical:
        obj, _, rec = canonical[4:].partition(" in/on ")
        return f"move {obj} to {rec}"
    return canonical


def from_engine(command: str) -> str:
    """ALFWorld grammar's command -> our canonical one (``move X to Y`` -> ``put X in/on Y``)."""
    if command.startswith("move ") and " to " in command:
        obj, _, rec = command[5:].partition(" to ")
        return f"put {obj} in/on {rec}"
    return command


def _readable(pddl_id: str) -> str:
    return pddl_id.replace("_", " ")


class AlfworldPddlEnv(TurnEnv):
    """The household tasks of ``turngym/Household-v0``, run by ALFWorld's own engine.

    **Description.** Each task is exported as a PDDL problem for ALFRED's domain
    (``alfred.pddl``) and played through TextWorld's PDDL engine with ALFWorld's text
    grammar (``alfred.twl2``), both shipped inside the ``alfworld`` wheel. It is the
    reference the fast simulator is tested against, and a baseline for its speed.
    Needs ``pip install turngym[classic]`` (textworld, alfworld).

    **Actions.** The household commands (``go to R``, ``take O from R``,
    ``put O in/on R``...). ``put O in/on R`` is sent to the engine as ALFWorld's
    ``move O to R``; both spellings are accepted. Text that does not parse is invalid
    without reaching the engine; a command the engine cannot apply gives
    ``"Nothing happens."`` and ``action_valid=False``.

    **Observations.** The engine's feedback text, e.g. ``"You move the apple 1 to the
    fridge 1."``; the first one is ALFWorld's intro with the goal.

    **Tools.** None.

    **Rewards.** ``win_reward`` (default 10) on the step the engine reports the goal met.

    **Episode end.** ``terminated`` when won; the turn budget (50) truncates.

    **Info keys.** ``state_key`` (same canonical key as the household env, from a mirror of
    the state kept in step with the engine), ``action_valid``, ``won`` (the engine's
    goal check), ``task_id``, ``admissible_actions`` (the engine's list, ``move`` shown as
    ``put ... in/on``, without ``help``), ``task_type``.

    **Arguments.** ``split`` (``train``, ``valid_seen``, ``valid_unseen``), ``task_types``,
    ``win_reward``: as in ``turngym/Household-v0``.

    **Memory.** Each open env holds one engine with its own copy of fast-downward's
    library (about 2 MB resident, never unloaded by the library); ``close()`` returns it
    to a per-process pool (at most ``engine.POOL_LIMIT`` idle) that later envs reuse, so
    memory is bounded by the envs open at once, not by the envs ever built.

    **Version history.** v0: first version.
    """

    family = "household"
    slow_steps = True
    splits = tuple(SPLIT_SIZES)
    extra_info_keys = ("task_type",)

    def __init__(self, split: str = "train", task_types: list[str] | tuple[str, ...] | None = None,
                 win_reward: float = 10.0, render_mode: str | None = None):
        super().__init__(render_mode)
        types = check_task_args(split, task_types)
        self.split, self.task_types, self.win_reward = split, types, float(win_reward)
        self.task: Task | None = None
        self.mirror: HouseState | None = None
        self._parser: CommandParser | None = None
        self._engine: PddlEngine | None = None
        self._last: EngineStep | None = None
        self._commands: list[tuple[str, str, int, int]] = []

    def task_ids(self, split: str | None = None) -> list[str]:
        """Task ids of ``split``; ``None`` means this env's own ``split`` kwarg (so a reset
        without a ``task_id`` never draws a validation task in a training env)."""
        ids = task_ids(split or self.split)
        if self.task_types != TASK_TYPES:
            ids = [t for t in ids if TASK_TYPES[int(t.rsplit("-", 1)[1]) % 6] in self.task_types]
        return ids

    # ------------------------------------------------------------------ engine
    def _start(self, task_id: str) -> EngineStep:
        self.task = make_task(task_id)
        self.mirror = HouseState(self.task.scene)
        self._parser = CommandParser(self.task.scene)
        if self._engine is None:
            self._engine = PddlEngine.acquire()
        game = {"pddl_domain": alfred_domain(), "grammar": alfred_grammar(),
                "pddl_problem": export_problem(self.task)}
        self._engine.load(game, self.task.text, _readable)
        self._commands = []
        self._last = self._engine.reset()
        return self._last

    def _reset(self, task_id: str) -> str:
        return self._start(task_id).feedback

    def _step(self, action: str) -> tuple[str, float, bool, bool, bool]:
        parsed = self._parser.parse(action)
        if isinstance(parsed, str):
            return parsed, 0.0, False, False, self.won()
        canonical, verb, obj, rec = parsed
        result = self._engine.step(to_engine(canonical))
        if not result.valid:  # the engine's state is unchanged; keep its admissible list
            return result.feedback, 0.0, False, False, self.won()
        self._last = result
        self.mirror.apply(verb, obj, rec)
        self._commands.append(parsed)
        return result.feedback, (self.win_reward if result.won else 0.0), result.won, True, \
            result.won

    # ------------------------------------------------------------------ contract
    def admissible_actions(self) -> list[str] | None:
        if self._last is None:
            return None
        return [from_engine(c) for c in self._last.admissible if c != "help"]

    def won(self) -> bool:
        return self._last is not None and self._last.won

    def state_key(self) -> str:
        return self.mirror.key() if self.mirror is not None else "unset"

    def extra_info(self) -> dict[str, Any]:
        return {"task_type": self.task.task_type if self.task else ""}

    def expert_action(self) -> str | None:
        """The household expert on the mirrored state (the engine's own planner is
        :meth:`planner_actions`)."""
        if self.mirror is None or self.won():
            return None
        return expert_action(self.task, self.mirror)

    def planner_actions(self) -> list[str]:
        """Fast Downward's plan from the current engine state, in our command spelling."""
        return [from_engine(c) for c in self._engine.replan()]

    def close(self) -> None:
        """Give the engine (and its copy of fast-downward's library) back to the process's
        pool and drop the episode, so a closed env holds no engine memory."""
        super().close()
        if self._engine is not None:
            engine, self._engine = self._engine, None
            engine.release()
        self.mirror = self._last = self._parser = None
        self._commands = []

    def _state(self) -> Any:
        return tuple(self._commands)

    def _set_state(self, state: Any) -> None:
        self._start(self.task_id)
        for canonical, verb, obj, rec in state:
            self._last = self._engine.step(to_engine(canonical))
            self.mirror.apply(verb, obj, rec)
            self._commands.append((canonical, verb, obj, rec))

    def __getstate__(self) -> dict[str, Any]:
        state = self.__dict__.copy()
        state["_engine"] = None  # a loaded C library; rebuilt by replay on restore
        if self.task_id is not None and self._ready:
            state["_replay"] = tuple(self._commands)
        return state

    def __setstate__(self, state: dict[str, Any]) -> None:
        replay = state.pop("_replay", None)
        self.__dict__.update(state)
        if replay is not None:
            self._set_state(replay)
