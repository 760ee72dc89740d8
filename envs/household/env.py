"""``turngym/Household-v0``: ALFWorld-like household tasks in a fast pure-Python world."""

from __future__ import annotations

from functools import lru_cache
from typing import Any

from turngym.envs.core import TurnEnv
from turngym.envs.household.commands import CommandParser
from turngym.envs.household.expert import expert_action, goal_met
from turngym.envs.household.sim import HouseState, listing
from turngym.envs.household.tasks import (
    SPLIT_SIZES,
    TASK_TYPES,
    Task,
    check_task_args,
    make_task,
    task_ids,
)

#: Admissible lists are memoised per state key; the memo is cleared past this size
#: (an entry is about 3 KB, so the memo stays under ~12 MB per env).
_MEMO_LIMIT = 4096


@lru_cache(maxsize=512)
def _parser(task: Task) -> CommandParser:
    """One parser per task (two name dicts; its memo is the bounded process-wide one in
    :mod:`turngym.envs.household.commands`), shared by the envs playing the task."""
    return CommandParser(task.scene)


class HouseholdEnv(TurnEnv):
    """ALFWorld-like household tasks: generated rooms, numbered receptacles and objects.

    **Description.** A kitchen, bedroom, bathroom or living room with numbered receptacles
    (``cabinet 3``, ``countertop 1``, ``fridge 1``, ``sinkbasin 1``...) and objects in
    plausible places (``apple 2`` in ``fridge 1``). Six task types, as in ALFWorld:
    ``pick_and_place``, ``pick_two_obj_and_place``, ``look_at_obj_in_light``,
    ``pick_clean_then_place``, ``pick_heat_then_place``, ``pick_cool_then_place``. The
    rules follow ALFRED's PDDL domain; ``turngym.envs.household.pddl`` exports any task for it.

    **Actions.** ALFWorld's commands: ``go to R``, ``open R``, ``close R``,
    ``take O from R``, ``put O in/on R`` (``put O in R``, ``put O on R`` and
    ``move O to R`` are accepted too), ``clean O with R``, ``heat O with R``,
    ``cool O with R``, ``use L`` (a lamp), ``examine R`` (here) / ``examine O`` (held),
    ``look``, ``inventory``. One object is carried at a time. Case, articles
    and a trailing period are ignored. Text that does not parse, or names an unknown
    thing, is invalid with an explanation. A well-formed command that is impossible now
    gives ``"Nothing happens."`` and ``action_valid=False``. Neither changes the state.

    **Observations.** ALFWorld's text. The first one is
    ``"-= Welcome to TextWorld, ALFRED! =-\\n\\nYou are in the middle of a room. Looking
    quickly around you, you see a cabinet 1, ..., and a toaster 1.\\n\\nYour task is to:
    put a clean mug in coffeemachine."``; later ones are the command's feedback, e.g.
    ``"You arrive at fridge 1. The fridge 1 is closed."``.

    **Tools.** None.

    **Rewards.** ``win_reward`` (default 10) on the step that solves the task, else 0.

    **Episode end.** ``terminated`` when the goal holds. The turn budget (``max_turns``,
    50 by default) truncates.

    **Info keys.** ``state_key`` (location, held object, open receptacles, object
    placements, object states; no turn count or history), ``action_valid``, ``won``,
    ``task_id``, ``admissible_actions`` (the exact list of valid commands now),
    ``task_type`` (one of the six types above, for per-type metrics).

    **Arguments.** ``split``: ``train`` (3000 tasks), ``valid_seen`` (140, layouts seen in
    train) or ``valid_unseen`` (134, held-out layouts and object/receptacle combinations);
    ``task_types``: optional subset of the six types; ``win_reward`` (default 10.0).

    **Memory.** Bounded whatever the actions. The command parsers share one process-wide
    memo of commands that parse and are at most 160 characters (at most 16,384: under
    ~7 MB); garbage and long text are never kept. The admissible-action memo is per env,
    at most 4096 states (about 3 KB each, ~12 MB); ``close()`` drops it with the episode.
    Module caches hold only generated tasks, layouts and their parsers (bounded by the
    task set and ``lru_cache`` sizes).

    **Version history.** v0: first version.
    """

    family = "household"
    splits = tuple(SPLIT_SIZES)
    extra_info_keys = ("task_type",)

    def __init__(self, split: str = "train", task_types: list[str] | tuple[str, ...] | None = None,
                 win_reward: float = 10.0, render_mode: str | None = None):
        super().__init__(render_mode)
        types = check_task_args(split, task_types)
        self.split, self.task_types, self.win_reward = split, types, float(win_reward)
        self.task: Task | None = None
        self.state: HouseState | None = None
        self._parser: CommandParser | None = None
        self._memo: dict[str, tuple[list[str], frozenset[str]]] = {}
        self._ids: list[str] | None = None
        self._won: tuple[str, bool] = ("", False)
        self._last: tuple[str, tuple[list[str], frozenset[str]]] = ("", ([], frozenset()))

    # ------------------------------------------------------------------ tasks
    def task_ids(self, split: str | None = None) -> list[str]:
        """Task ids of ``split``; ``None`` means this env's own ``split`` kwarg (so a reset
        without a ``task_id`` never draws a validation task in a training env)."""
        if split is None and self._ids is not None:
            return self._ids
        ids = task_ids(split or self.split)
        if self.task_types != TASK_TYPES:
            ids = [t for t in ids if TASK_TYPES[int(t.rsplit("-", 1)[1]) % 6] in self.task_types]
        if split is None:
            self._ids = ids
        return ids

    def _reset(self, task_id: str) -> str:
        task = make_task(task_id)
        if task is not self.task:  # memos stay valid across resets of the same task
            self.task, self._memo = task, {}
            self._parser = _parser(task)
        self.state = HouseState(task.scene)
        seen = listing(list(self.task.scene.recep_names))
        return (f"-= Welcome to TextWorld, ALFRED! =-\n\nYou are in the middle of a room. "
                f"Looking quickly around you, you see {seen}.\n\n"
                f"Your task is to: {self.task.text}")

    # ------------------------------------------------------------------ stepping
    def _step(self, action: str) -> tuple[str, float, bool, bool, bool]:
        parsed = self._parser.parse(action)
        if isinstance(parsed, str):
            return parsed, 0.0, False, False, self.won()
        canonical, verb, obj, rec = parsed
        if canonical not in self._admissible()[1]:
            return "Nothing happens.", 0.0, False, False, self.won()
        obs = self.state.apply(verb, obj, rec)
        won = self.won()
        return obs, (self.win_reward if won else 0.0), won, True, won

    def _admissible(self) -> tuple[list[str], frozenset[str]]:
        key = self.state.key()
        if key is self._last[0]:  # same state as the last call (the key string is cached)
            return self._last[1]
        hit = self._memo.get(key)
        if hit is None:
            if len(self._memo) > _MEMO_LIMIT:
                self._memo.clear()
            acts = self.state.admissible()
            hit = self._memo[key] = (acts, frozenset(acts))
        self._last = (key, hit)
        return hit

    # ------------------------------------------------------------------ contract
    def admissible_actions(self) -> list[str] | None:
        return list(self._admissible()[0]) if self.state is not None else None

    def won(self) -> bool:
        if self.state is None:
            return False
        key = self.state.key()
        if self._won[0] is not key:
            self._won = (key, goal_met(self.task, self.state))
        return self._won[1]

    def state_key(self) -> str:
        return self.state.key() if self.state is not None else "unset"

    def extra_info(self) -> dict[str, Any]:
        return {"task_type": self.task.task_type if self.task else ""}

    def expert_action(self) -> str | None:
        if self.state is None:
            return None
        return expert_action(self.task, self.state)

    def _state(self) -> Any:
        return self.state.dump()

    def _set_state(self, state: Any) -> None:
        task = make_task(self.task_id)
        if task is not self.task:
            self.task, self._memo = task, {}
            self._parser = _parser(task)
        self.state = HouseState(task.scene)
        self.state.load(state)

    def close(self) -> None:
        """Drop the per-env memos and the episode (a closed env holds no per-task data)."""
        super().close()
        self.task = self.state = self._parser = None
        self._memo = {}
        self._won = ("", False)
        self._last = ("", ([], frozenset()))

    def __getstate__(self) -> dict[str, Any]:
        state = self.__dict__.copy()
        state["_memo"] = {}
        state["_last"] = ("", ([], frozenset()))
        state["_won"] = ("", False)
        return state
