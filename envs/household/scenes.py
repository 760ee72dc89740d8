"""Scene generation: a room layout (numbered receptacles) and the objects placed in it.

A *layout* is the furniture of one room and depends only on ``(room, layout_index)``.
A *scene* is a layout plus numbered objects, each in a plausible starting receptacle; it is
drawn per task. Both are plain frozen data; the simulator keeps the mutable state.
"""

from __future__ import annotations

import zlib
from dataclasses import dataclass
from functools import lru_cache

import numpy as np

from turngym.envs.household.catalog import LAMPS, OBJECTS, PICK, RECEPTACLES, TOGGLE, ObjectKind


@dataclass(frozen=True)
class Layout:
    """The receptacles of one room, in a fixed order."""

    room: str
    index: int
    receptacles: tuple[tuple[str, str], ...]
    """``(name, kind)`` pairs, e.g. ``("cabinet 3", "cabinet")``."""

    @property
    def layout_id(self) -> str:
        return f"{self.room}-{self.index:03d}"

    def kinds(self) -> set[str]:
        return {k for _, k in self.receptacles}


@dataclass(frozen=True)
class Scene:
    """A layout plus objects. Object ``i`` has name ``obj_names[i]``, kind ``obj_kinds[i]``,
    property bits ``obj_props[i]`` and starts in receptacle ``obj_start[i]`` (an index into
    ``recep_names``)."""

    layout: Layout
    recep_names: tuple[str, ...]
    recep_kinds: tuple[str, ...]
    openable: tuple[bool, ...]
    obj_names: tuple[str, ...]
    obj_kinds: tuple[str, ...]
    obj_props: tuple[int, ...]
    obj_start: tuple[int, ...]


def _seed(*parts: object) -> int:
    return zlib.crc32("/".join(str(p) for p in parts).encode())


@lru_cache(maxsize=1024)
def make_layout(room: str, index: int) -> Layout:
    """The layout ``index`` of ``room``: deterministic, counts drawn in each kind's range."""
    rng = np.random.default_rng(_seed("household", "layout", room, index))
    recs: list[tuple[str, str]] = []
    for kind in RECEPTACLES[room]:
        n = int(rng.integers(kind.lo, kind.hi + 1))
        recs.extend((f"{kind.name} {i}", kind.name) for i in range(1, n + 1))
    return Layout(room, index, tuple(recs))


def _pick_start(rng: np.random.Generator, okind: ObjectKind, layout: Layout,
                avoid: str | None) -> int:
    """Index of a plausible starting receptacle for an object of ``okind``."""
    names = layout.receptacles
    pool = [i for i, (_, k) in enumerate(names) if k in okind.starts and k != avoid]
    if not pool:  # no plausible kind here: any receptacle that is not the goal kind
        pool = [i for i, (_, k) in enumerate(names) if k != avoid]
    return pool[int(rng.integers(len(pool)))]


def place_objects(rng: np.random.Generator, layout: Layout, goal_kind: str, goal_count: int,
                  avoid_recep: str | None, n_distractors: int) -> Scene:
    """Put ``goal_count`` objects of ``goal_kind`` (never in ``avoid_recep`` kinds) and
    ``n_distractors`` other kinds (1-2 each) into ``layout``; add the room's lamp if any."""
    kinds = {o.name: o for o in OBJECTS[layout.room]}
    present = layout.kinds()
    others = [o for o in kinds if o != goal_kind
              and any(s in present for s in kinds[o].starts)]
    order = rng.permutation(len(others))[:n_distractors]
    plan: list[tuple[ObjectKind, int]] = [(kinds[goal_kind], goal_count)]
    plan += [(kinds[others[int(i)]], int(rng.integers(1, 3))) for i in sorted(order)]
    names, okinds, props, starts = [], [], [], []
    for okind, count in plan:
        for j in range(1, count + 1):
            names.append(f"{okind.name} {j}")
            okinds.append(okind.name)
            props.append(okind.props)
            avoid = avoid_recep if okind.name == goal_kind else None
            starts.append(_pick_start(rng, okind, layout, avoid))
    if layout.room in LAMPS:
        lamp, _, hosts = LAMPS[layout.room]
        pool = [i for i, (_, k) in enumerate(layout.receptacles) if k in hosts]
        names.append(f"{lamp} 1")
        okinds.append(lamp)
        props.append(TOGGLE)
        starts.append(pool[int(rng.integers(len(pool)))])
    recep_names = tuple(n for n, _ in layout.receptacles)
    recep_kinds = tuple(k for _, k in layout.receptacles)
    openable = {k.name: k.openable for k in RECEPTACLES[layout.room]}
    return Scene(layout, recep_names, recep_kinds, tuple(openable[k] for k in recep_kinds),
                 tuple(names), tuple(okinds), tuple(props), tuple(starts))


def pickable_kinds(room: str, prop: int = PICK) -> list[ObjectKind]:
    """Object kinds of ``room`` that have every bit of ``prop``."""
    return [o for o in OBJECTS[room] if o.props & prop == prop]
