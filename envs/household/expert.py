"""The expert planner: a correct next command from *any* reachable state.

It is a small goal-regression policy over the simulator state, not a replay of a fixed
plan, so it also works after an agent's detours (TCOD's expert prefix, SFT data, DAgger):

1. If the goal holds: ``None``.
2. Lamp tasks: hold an object of the goal kind, go to the lamp, switch it on.
3. Placement tasks: choose the target receptacle ``r*`` of the goal kind that already holds
   the most finished goal objects. If the hands hold a goal object, finish it (clean / heat
   / cool at the appliance if needed) and put it in ``r*``; if they hold anything else, put
   it down here. Otherwise fetch the next goal object that is not finished in ``r*``
   (already-finished ones first), opening receptacles on the way.

Every branch strictly approaches the goal, so the expert never loops; a test runs it to a
win from random states of every task type.
"""

from __future__ import annotations

from functools import lru_cache

from turngym.envs.household.catalog import APPLIANCE, CLEAN, COOL, HEAT
from turngym.envs.household.sim import S_CLEAN, S_COOL, S_HOT, S_ON, HouseState
from turngym.envs.household.tasks import Task

_NEED = {"pick_clean_then_place": (S_CLEAN, CLEAN), "pick_heat_then_place": (S_HOT, HEAT),
         "pick_cool_then_place": (S_COOL, COOL)}
_VERB = {CLEAN: "clean", HEAT: "heat", COOL: "cool"}


@lru_cache(maxsize=8192)
def _goal_index(task: Task) -> tuple[tuple[int, ...], frozenset[int], tuple[int, ...], int]:
    """``(goal objects, target receptacles, lamps, needed state bit)`` of ``task``."""
    sc = task.scene
    objs = tuple(i for i, k in enumerate(sc.obj_kinds) if k == task.goal_obj)
    recs = frozenset(r for r, k in enumerate(sc.recep_kinds) if k == task.goal_target)
    lamps = tuple(i for i, k in enumerate(sc.obj_kinds) if k == task.goal_target)
    need = _NEED.get(task.task_type)
    return objs, recs, lamps, (need[0] if need else 0)


def goal_met(task: Task, st: HouseState) -> bool:
    """Whether ``task``'s goal holds in ``st``."""
    objs, recs, lamps, need = _goal_index(task)
    if task.task_type == "look_at_obj_in_light":
        if st.held not in objs or st.loc < 0:
            return False
        return any(st.flag(i) & S_ON and st.obj_loc[i] == st.loc for i in lamps)
    seen: dict[int, int] = {}
    for i in objs:
        r = st.obj_loc[i]
        if r in recs and (not need or st.flag(i) & need):
            seen[r] = seen.get(r, 0) + 1
            if seen[r] >= task.count:
                return True
    return False


def _finished(task: Task, st: HouseState, i: int) -> bool:
    need = _NEED.get(task.task_type)
    return st.scene.obj_kinds[i] == task.goal_obj and (need is None or st.flag(i) & need[0] > 0)


def _finished_counts(task: Task, st: HouseState) -> dict[int, int]:
    """Finished goal objects per receptacle of the goal kind."""
    sc = st.scene
    counts = {r: 0 for r, k in enumerate(sc.recep_kinds) if k == task.goal_target}
    for i, r in enumerate(st.obj_loc):
        if r in counts and _finished(task, st, i):
            counts[r] += 1
    return counts


def _goto_open(st: HouseState, r: int) -> str | None:
    """The command that brings ``r`` within reach, or ``None`` when it already is."""
    if st.loc != r:
        return f"go to {st.scene.recep_names[r]}"
    if not st.accessible(r):
        return f"open {st.scene.recep_names[r]}"
    return None


def _put_down(st: HouseState) -> str:
    """Put the held object down at the nearest receptacle that takes it."""
    sc = st.scene
    if st.loc < 0:
        r = next((i for i, o in enumerate(sc.openable) if not o), 0)
        return f"go to {sc.recep_names[r]}"
    return _goto_open(st, st.loc) or f"put {sc.obj_names[st.held]} in/on {sc.recep_names[st.loc]}"


def _fetch(st: HouseState, i: int) -> str:
    r = st.obj_loc[i]
    return _goto_open(st, r) or f"take {st.scene.obj_names[i]} from {st.scene.recep_names[r]}"


def expert_action(task: Task, st: HouseState) -> str | None:
    """A correct next command for ``task`` from ``st``, or ``None`` when the goal holds."""
    if goal_met(task, st):
        return None
    sc = st.scene
    if task.task_type == "look_at_obj_in_light":
        return _look_step(task, st)
    counts = _finished_counts(task, st)
    target = max(counts, key=lambda r: (counts[r], -r))
    held = st.held
    if held >= 0:
        if sc.obj_kinds[held] != task.goal_obj:
            return _put_down(st)
        need = _NEED.get(task.task_type)
        if need is not None and not st.flag(held) & need[0]:
            appliance = sc.recep_kinds.index(APPLIANCE[need[1]])
            if st.loc != appliance:
                return f"go to {sc.recep_names[appliance]}"
            return f"{_VERB[need[1]]} {sc.obj_names[held]} with {sc.recep_names[appliance]}"
        return _goto_open(st, target) or \
            f"put {sc.obj_names[held]} in/on {sc.recep_names[target]}"
    todo = [i for i, r in enumerate(st.obj_loc) if sc.obj_kinds[i] == task.goal_obj
            and not (r == target and _finished(task, st, i))]
    todo.sort(key=lambda i: (not _finished(task, st, i), st.obj_loc[i] != st.loc, i))
    return _fetch(st, todo[0])


def _look_step(task: Task, st: HouseState) -> str:
    sc = st.scene
    held = st.held
    if held >= 0 and sc.obj_kinds[held] != task.goal_obj:
        return _put_down(st)
    if held < 0:
        todo = [i for i in range(len(sc.obj_names)) if sc.obj_kinds[i] == task.goal_obj]
        todo.sort(key=lambda i: (st.obj_loc[i] != st.loc, i))
        return _fetch(st, todo[0])
    lamp = next(i for i, k in enumerate(sc.obj_kinds) if k == task.goal_target)
    if st.loc != st.obj_loc[lamp]:
        return f"go to {sc.recep_names[st.obj_loc[lamp]]}"
    return f"use {sc.obj_names[lamp]}"
