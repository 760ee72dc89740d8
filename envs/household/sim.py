"""The household simulator: state, rules, admissible actions and ALFWorld-style text.

The rules mirror ALFRED's PDDL domain (``alfred.pddl`` in the ``alfworld`` wheel):

* ``go to R`` moves to receptacle ``R`` (any other receptacle).
* ``open R`` / ``close R`` at an openable ``R``.
* ``take O from R`` with empty hands, at ``R``, ``R`` open if openable, ``O`` pickable.
* ``put O in/on R`` holding ``O``, at ``R``, ``R`` open if openable.
* ``clean O with R`` (a sinkbasin), ``heat O with R`` (a microwave), ``cool O with R`` (a
  fridge): holding ``O`` at ``R``, ``O`` has the property. Heat clears cool and vice versa.
* ``use L`` toggles a lamp in a receptacle at the current location.
* ``examine R`` (the receptacle here), ``examine O`` (the held object; the engine lists no
  other object), ``look``, ``inventory`` change nothing.
"""

from __future__ import annotations

from turngym.envs.household.catalog import CLEAN, COOL, HEAT, PICK, TOGGLE
from turngym.envs.household.scenes import Scene

#: Dynamic object state bits.
S_CLEAN, S_HOT, S_COOL, S_ON = 1, 2, 4, 8
_APPLIANCE_VERB = {"sinkbasin": ("clean", CLEAN), "microwave": ("heat", HEAT),
                   "fridge": ("cool", COOL)}


def listing(names: list[str]) -> str:
    """TextWorld's list: ``a x``, ``a x, and a y``, ``a x, a y, and a z`` or ``nothing``."""
    if not names:
        return "nothing"
    items = [f"a {n}" for n in names]
    if len(items) == 1:
        return items[0]
    return ", ".join(items[:-1]) + ", and " + items[-1]


class HouseState:
    """Mutable state of one household episode over a static :class:`Scene`."""

    __slots__ = ("_go", "_key", "_order", "flags", "held", "loc", "obj_loc", "opened", "scene")

    def __init__(self, scene: Scene):
        self.scene = scene
        self.loc = -1  # -1: the middle of the room
        self.held = -1
        # opened / flags are ASCII digit bytes ("0"/"1", "0"+bits) so the key is one decode
        self.opened = bytearray(b"0" * len(scene.recep_names))
        self.obj_loc = list(scene.obj_start)  # receptacle index, -1 when held
        self.flags = bytearray(b"0" * len(scene.obj_names))
        self._key: str | None = None
        self._go = [f"go to {n}" for n in scene.recep_names]
        self._order = sorted(range(len(scene.obj_names)), key=scene.obj_names.__getitem__)

    # ------------------------------------------------------------------ state copy
    def dump(self) -> tuple:
        """The complete mutable state as plain tuples."""
        return (self.loc, self.held, bytes(self.opened), tuple(self.obj_loc), bytes(self.flags))

    def load(self, data: tuple) -> None:
        loc, held, opened, obj_loc, flags = data
        self.loc, self.held = loc, held
        self.opened, self.flags = bytearray(opened), bytearray(flags)
        self.obj_loc = list(obj_loc)
        self._key = None

    def key(self) -> str:
        """Canonical fingerprint: location, held object, open receptacles, placements,
        object states. Cached until the state changes."""
        if self._key is None:
            self._key = "L%d|H%d|O%s|P%s|S%s" % (
                self.loc, self.held, self.opened.decode(), ",".join(map(str, self.obj_loc)),
                self.flags.decode())
        return self._key

    # ------------------------------------------------------------------ queries
    def flag(self, i: int) -> int:
        """State bits (:data:`S_CLEAN` | :data:`S_HOT` | :data:`S_COOL` | :data:`S_ON`) of
        object ``i``."""
        return self.flags[i] - 48

    def is_open(self, r: int) -> bool:
        return self.opened[r] == 49

    def accessible(self, r: int) -> bool:
        return not self.scene.openable[r] or self.opened[r] == 49

    def contents(self, r: int) -> list[int]:
        """Objects in receptacle ``r``, in name order (as the PDDL engine lists them)."""
        where = self.obj_loc
        return [i for i in self._order if where[i] == r]

    def admissible(self) -> list[str]:
        """The exact list of commands that change or reveal something now."""
        sc, loc, held = self.scene, self.loc, self.held
        out = self._go[:loc] + self._go[loc + 1:] if loc >= 0 else list(self._go)
        if loc >= 0:
            here = sc.recep_names[loc]
            if sc.openable[loc]:
                out.append(("close " if self.opened[loc] == 49 else "open ") + here)
            inside = self.contents(loc)
            if self.accessible(loc):
                for i in inside:
                    if held < 0 and sc.obj_props[i] & PICK:
                        out.append(f"take {sc.obj_names[i]} from {here}")
                if held >= 0:
                    out.append(f"put {sc.obj_names[held]} in/on {here}")
            for i in inside:
                if sc.obj_props[i] & TOGGLE:
                    out.append(f"use {sc.obj_names[i]}")
            verb = _APPLIANCE_VERB.get(sc.recep_kinds[loc])
            if held >= 0 and verb and sc.obj_props[held] & verb[1]:
                out.append(f"{verb[0]} {sc.obj_names[held]} with {here}")
            out.append(f"examine {here}")
        if held >= 0:  # the engine lists examine for the held object only
            out.append(f"examine {sc.obj_names[held]}")
        out.append("inventory")
        out.append("look")
        return out

    # ------------------------------------------------------------------ text
    def describe(self, r: int) -> str:
        """ALFWorld's receptacle feedback (examineReceptacle)."""
        sc = self.scene
        name = sc.recep_names[r]
        items = [sc.obj_names[i] for i in self.contents(r)]
        if sc.openable[r]:
            if self.opened[r] == 49:
                return f"The {name} is open. In it, you see {listing(items)}."
            return f"The {name} is closed."
        return f"On the {name}, you see {listing(items)}."

    def look(self) -> str:
        if self.loc < 0:
            return ("You are in the middle of a room. Looking quickly around you, you see "
                    f"{listing(list(self.scene.recep_names))}.")
        here = self.scene.recep_names[self.loc]
        return f"You are facing the {here}. Next to it, you see nothing."

    def examine_object(self, i: int) -> str:
        """ALFWorld's examineObject feedback for a held object."""
        f, name = self.flags[i] - 48, self.scene.obj_names[i]
        clean = " and clean" if f & S_CLEAN else ""
        if f & S_HOT:
            return f"This is a hot{clean} {name}."
        if f & S_COOL:
            return f"This is a cool{clean} {name}." if clean else f"This is a cold {name}."
        if clean:
            return f"This is a clean {name}."
        return f"There's nothing special about {name}."

    def inventory(self) -> str:
        if self.held < 0:
            return "You are not carrying anything."
        return f"You are carrying: a {self.scene.obj_names[self.held]}."

    # ------------------------------------------------------------------ effects
    def apply(self, verb: str, obj: int, rec: int) -> str:
        """Apply an admissible command (already checked); return the feedback text."""
        sc = self.scene
        if verb in ("look", "inventory", "examine"):
            if verb == "look":
                return self.look()
            if verb == "inventory":
                return self.inventory()
            return self.describe(rec) if obj < 0 else self.examine_object(obj)
        self._key = None
        if verb == "go":
            self.loc = rec
            return f"You arrive at {sc.recep_names[rec]}. {self.describe(rec)}"
        if verb == "open":
            self.opened[rec] = 49
            return f"You open the {sc.recep_names[rec]}. {self.describe(rec)}"
        if verb == "close":
            self.opened[rec] = 48
            return f"You close the {sc.recep_names[rec]}."
        if verb == "take":
            self.obj_loc[obj], self.held = -1, obj
            return f"You pick up the {sc.obj_names[obj]} from the {sc.recep_names[rec]}."
        if verb == "put":
            self.obj_loc[obj], self.held = rec, -1
            return f"You move the {sc.obj_names[obj]} to the {sc.recep_names[rec]}."
        f = self.flags[obj] - 48
        if verb == "use":
            self.flags[obj] = 48 + (f ^ S_ON)
            state = "on" if f & S_ON == 0 else "off"
            return f"You turn {state} the {sc.obj_names[obj]}."
        if verb == "clean":
            self.flags[obj] = 48 + (f | S_CLEAN)
        elif verb == "heat":
            self.flags[obj] = 48 + ((f | S_HOT) & ~S_COOL)
        elif verb == "cool":
            self.flags[obj] = 48 + ((f | S_COOL) & ~S_HOT)
        else:  # pragma: no cover - parse() only yields the verbs above
            raise AssertionError(verb)
        return f"You {verb} the {sc.obj_names[obj]} using the {sc.recep_names[rec]}."
