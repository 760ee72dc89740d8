"""Export a household task (from its start or any state) as a PDDL problem for ALFRED.

The problem is written for ALFWorld's own domain (``alfworld/data/alfred.pddl``) and text
grammar (``alfred.twl2``), which ship inside the ``alfworld`` wheel, so TextWorld's PDDL
engine (``textworld.envs.pddl.PddlEnv``) can play it: see ``turngym.envs.alfworld_pddl``.

Names map one to one: receptacle ``cabinet 3`` is the PDDL object ``cabinet_3`` at location
``loc_cabinet_3``; object ``apple 1`` is ``apple_1``; the agent starts at ``loc_middle``.
"""

from __future__ import annotations

from collections.abc import Callable

from turngym.envs.household.catalog import CLEAN, COOL, HEAT, PICK, TOGGLE, pddl_type
from turngym.envs.household.sim import S_CLEAN, S_COOL, S_HOT, S_ON, HouseState
from turngym.envs.household.tasks import Task

#: Types the domain's actions name as constants; every problem declares them.
_DOMAIN_RTYPES = ("SinkBasinType", "MicrowaveType", "FridgeType")
_DOMAIN_OTYPES = ("KnifeType", "ButterKnifeType")


def pddl_id(name: str) -> str:
    """``"cabinet 3"`` -> ``"cabinet_3"``."""
    return name.replace(" ", "_")


def _goal(task: Task) -> str:
    ot, tt = pddl_type(task.goal_obj), pddl_type(task.goal_target)
    if task.task_type == "look_at_obj_in_light":
        return (f"(exists (?o - object ?lamp - object ?r - receptacle ?l - location) (and "
                f"(objectType ?o {ot}) (holds agent1 ?o) (objectType ?lamp {tt}) (isOn ?lamp) "
                f"(inReceptacle ?lamp ?r) (receptacleAtLocation ?r ?l) (atLocation agent1 ?l)))")
    state = {"pick_clean_then_place": "isClean", "pick_heat_then_place": "isHot",
             "pick_cool_then_place": "isCool"}.get(task.task_type)
    if task.count == 2:
        return (f"(exists (?r - receptacle ?o1 - object ?o2 - object) (and "
                f"(receptacleType ?r {tt}) (objectType ?o1 {ot}) (objectType ?o2 {ot}) "
                f"(not (= ?o1 ?o2)) (inReceptacle ?o1 ?r) (inReceptacle ?o2 ?r)))")
    extra = f" ({state} ?o)" if state else ""
    return (f"(exists (?r - receptacle ?o - object) (and (receptacleType ?r {tt}) "
            f"(objectType ?o {ot}) (inReceptacle ?o ?r){extra}))")


def alfworld_id(name: str) -> str:
    """An id mangled like the official ALFWorld files (``apple 2`` ->
    ``apple_bar__plus_00_dot_02``; ``sinkbasin 1`` -> ``sink_bar__plus_00_dot_01_bar_sinkbasin``),
    which ALFWorld's ``Demangler`` turns back into kind names (it renumbers instances)."""
    kind, _, number = name.rpartition(" ")
    if kind.endswith("basin"):
        return f"{kind[:-5]}_bar__plus_00_dot_{int(number):02d}_bar_{kind}"
    return f"{kind}_bar__plus_00_dot_{int(number):02d}"


def export_problem(task: Task, state: HouseState | None = None,
                   ids: Callable[[str], str] = pddl_id) -> str:
    """The PDDL problem of ``task`` in ``state`` (default: the start state). ``ids`` maps a
    receptacle or object name to its PDDL id (default :func:`pddl_id`)."""
    sc = task.scene
    st = state or HouseState(sc)
    recs = [ids(n) for n in sc.recep_names]
    objs = [ids(n) for n in sc.obj_names]
    rtypes = sorted(set(map(pddl_type, sc.recep_kinds)) | set(_DOMAIN_RTYPES))
    otypes = sorted(set(map(pddl_type, sc.obj_kinds)) | set(_DOMAIN_OTYPES))
    init = ["(atLocation agent1 %s)" % ("loc_middle" if st.loc < 0 else f"loc_{recs[st.loc]}")]
    for r, kind in enumerate(sc.recep_kinds):
        init.append(f"(receptacleAtLocation {recs[r]} loc_{recs[r]})")
        init.append(f"(receptacleType {recs[r]} {pddl_type(kind)})")
        if sc.openable[r]:
            init.append(f"(openable {recs[r]})")
            if st.is_open(r):
                init.append(f"(opened {recs[r]})")
    for i, kind in enumerate(sc.obj_kinds):
        o, props, flags = objs[i], sc.obj_props[i], st.flag(i)
        init.append(f"(objectType {o} {pddl_type(kind)})")
        for bit, pred in ((PICK, "pickupable"), (CLEAN, "cleanable"), (HEAT, "heatable"),
                          (COOL, "coolable"), (TOGGLE, "toggleable")):
            if props & bit:
                init.append(f"({pred} {o})")
        for bit, pred in ((S_CLEAN, "isClean"), (S_HOT, "isHot"), (S_COOL, "isCool"),
                          (S_ON, "isOn")):
            if flags & bit:
                init.append(f"({pred} {o})")
        where = st.obj_loc[i]
        if where < 0:
            init += [f"(holds agent1 {o})", "(holdsAny agent1)"]
        else:
            init += [f"(inReceptacle {o} {recs[where]})",
                     f"(objectAtLocation {o} loc_{recs[where]})"]
    init += [f"(canContain {rt} {ot})" for rt in sorted(set(map(pddl_type, sc.recep_kinds)))
             for ot in sorted(set(pddl_type(k) for k, p in zip(sc.obj_kinds, sc.obj_props)
                                  if p & PICK))]
    locs = " ".join(["loc_middle"] + [f"loc_{r}" for r in recs])
    lines = [
        f"(define (problem household_{pddl_id(task.task_id).replace('-', '_')})",
        "  (:domain alfred)",
        "  (:objects",
        "    agent1 - agent",
        f"    {locs} - location",
        f"    {' '.join(recs)} - receptacle",
        f"    {' '.join(objs)} - object",
        f"    {' '.join(rtypes)} - rtype",
        f"    {' '.join(otypes)} - otype",
        "  )",
        "  (:init",
        *[f"    {fact}" for fact in init],
        "  )",
        f"  (:goal {_goal(task)})",
        ")",
    ]
    return "\n".join(lines) + "\n"

