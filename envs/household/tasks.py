"""The six ALFWorld task types, goal text, and the fixed train / valid splits.

A task id is ``"<split>-<index>"`` (``train-00042``). Its task type is
``TASK_TYPES[index % 6]``, so every split covers every type evenly. Everything else (room,
layout, goal, object placement, goal wording) is drawn from an RNG seeded by the task id.

Splits:

* ``train``: :data:`SPLIT_SIZES` tasks on layouts ``0..N_SEEN_LAYOUTS-1`` of each room, with
  goals outside the held-out combinations.
* ``valid_seen``: other tasks on the same (seen) layouts and seen goal combinations.
* ``valid_unseen``: tasks on held-out layouts (``N_SEEN_LAYOUTS..``) whose
  (object kind, receptacle or lamp kind) combination is held out of the other splits.
"""

from __future__ import annotations

import zlib
from dataclasses import dataclass
from functools import lru_cache

import numpy as np

from turngym.envs.household.catalog import (
    APPLIANCE,
    CLEAN,
    COOL,
    HEAT,
    LAMPS,
    NOT_GOALS,
    PICK,
    prep_of,
)
from turngym.envs.household.scenes import Scene, make_layout, pickable_kinds, place_objects

TASK_TYPES: tuple[str, ...] = (
    "pick_and_place", "pick_two_obj_and_place", "look_at_obj_in_light",
    "pick_clean_then_place", "pick_heat_then_place", "pick_cool_then_place",
)
#: Rooms where each task type can be posed.
TYPE_ROOMS: dict[str, tuple[str, ...]] = {
    "pick_and_place": ("kitchen", "bedroom", "bathroom", "livingroom"),
    "pick_two_obj_and_place": ("kitchen", "bedroom", "bathroom", "livingroom"),
    "look_at_obj_in_light": ("bedroom", "livingroom"),
    "pick_clean_then_place": ("kitchen", "bathroom"),
    "pick_heat_then_place": ("kitchen",),
    "pick_cool_then_place": ("kitchen",),
}
#: Object property a task type needs (beyond being pickable).
TYPE_PROP = {"pick_clean_then_place": CLEAN, "pick_heat_then_place": HEAT,
             "pick_cool_then_place": COOL}
SPLIT_SIZES: dict[str, int] = {"train": 3000, "valid_seen": 140, "valid_unseen": 134}
N_SEEN_LAYOUTS = 40
N_UNSEEN_LAYOUTS = 8

_TEMPLATES: dict[str, tuple[str, ...]] = {
    "pick_and_place": ("put a {o} {p} {r}.", "put some {o} {p} {r}."),
    "pick_two_obj_and_place": ("put two {o} {p} {r}.", "find two {o} and put them {p} {r}."),
    "look_at_obj_in_light": ("look at {o} under the {r}.", "examine the {o} with the {r}."),
    "pick_clean_then_place": ("put a clean {o} {p} {r}.", "clean some {o} and put it {p} {r}."),
    "pick_heat_then_place": ("put a hot {o} {p} {r}.", "heat some {o} and put it {p} {r}."),
    "pick_cool_then_place": ("put a cool {o} {p} {r}.", "cool some {o} and put it {p} {r}."),
}


@dataclass(frozen=True)
class Task:
    """One generated task: a scene and a goal."""

    task_id: str
    task_type: str
    scene: Scene
    goal_obj: str
    """Object kind the goal is about, e.g. ``"apple"``."""
    goal_target: str
    """Receptacle kind to put it in, or the lamp kind for ``look_at_obj_in_light``."""
    text: str
    """Natural goal text, e.g. ``"put a clean mug in coffeemachine."``."""

    def __hash__(self) -> int:  # the id determines the task; hashing the scene is slow
        return hash(self.task_id)

    @property
    def count(self) -> int:
        """How many goal objects must end in one receptacle."""
        return 2 if self.task_type == "pick_two_obj_and_place" else 1

    @property
    def combo(self) -> tuple[str, str, str]:
        return (self.task_type, self.goal_obj, self.goal_target)


def check_task_args(split: str, task_types: list[str] | tuple[str, ...] | None
                    ) -> tuple[str, ...]:
    """Validate the ``split`` and ``task_types`` arguments of the household envs; returns the
    task types to draw from (all six when ``None``)."""
    if split not in SPLIT_SIZES:
        raise ValueError(f"split must be one of {sorted(SPLIT_SIZES)}, got {split!r}")
    types = tuple(task_types) if task_types else TASK_TYPES
    bad = [t for t in types if t not in TASK_TYPES]
    if bad:
        raise ValueError(f"task_types {bad} are unknown; choose from {list(TASK_TYPES)}")
    return types


def held_out(obj_kind: str, target_kind: str) -> bool:
    """Whether the (object, receptacle/lamp) combination is reserved for ``valid_unseen``."""
    return zlib.crc32(f"combo/{obj_kind}/{target_kind}".encode()) % 4 == 0


def task_ids(split: str | None = None) -> list[str]:
    """Task ids of ``split`` (all splits when ``None``), in a fixed order."""
    splits = [split] if split else list(SPLIT_SIZES)
    return [f"{s}-{i:05d}" for s in splits for i in range(SPLIT_SIZES[s])]


def candidate_goals(task_type: str, room: str, kinds: set[str]) -> list[tuple[str, str]]:
    """Every (object kind, target kind) goal of ``task_type`` that a layout with receptacle
    ``kinds`` in ``room`` supports."""
    prop = TYPE_PROP.get(task_type, 0)
    if prop and APPLIANCE[prop] not in kinds:
        return []
    objs = pickable_kinds(room, PICK | prop)
    if task_type == "look_at_obj_in_light":
        lamp = LAMPS[room][0]
        return [(o.name, lamp) for o in objs]
    out = []
    for o in objs:
        for r in sorted(kinds - NOT_GOALS):
            if r in o.starts or r in ("countertop", "shelf", "diningtable", "desk", "sidetable"):
                out.append((o.name, r))
    return out


@lru_cache(maxsize=8192)
def make_task(task_id: str) -> Task:
    """Generate the task ``task_id`` (deterministic; cached)."""
    split, _, index_text = task_id.rpartition("-")
    index = int(index_text)
    task_type = TASK_TYPES[index % len(TASK_TYPES)]
    rng = np.random.default_rng(zlib.crc32(f"household/{split}/{index}".encode()))
    unseen = split == "valid_unseen"
    for _ in range(1000):
        room = TYPE_ROOMS[task_type][int(rng.integers(len(TYPE_ROOMS[task_type])))]
        lo = N_SEEN_LAYOUTS if unseen else 0
        hi = N_SEEN_LAYOUTS + N_UNSEEN_LAYOUTS if unseen else N_SEEN_LAYOUTS
        layout = make_layout(room, int(rng.integers(lo, hi)))
        goals = [g for g in candidate_goals(task_type, room, layout.kinds())
                 if held_out(*g) == unseen]
        if goals:
            break
    else:  # pragma: no cover - guarded by a test over every split
        raise RuntimeError(f"no goal for {task_id}")
    obj, target = goals[int(rng.integers(len(goals)))]
    count = 2 + int(rng.integers(2)) if task_type == "pick_two_obj_and_place" else \
        1 + int(rng.integers(2))
    avoid = None if task_type == "look_at_obj_in_light" else target
    scene = place_objects(rng, layout, obj, count, avoid, int(rng.integers(5, 11)))
    templates = _TEMPLATES[task_type]
    text = templates[int(rng.integers(len(templates)))].format(o=obj, p=prep_of(target), r=target)
    return Task(task_id, task_type, scene, obj, target, text)
