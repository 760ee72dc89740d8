"""Parsing action text into a command of the household simulator.

:func:`parse` turns text into ``(canonical, verb, obj, rec)`` or an error message. The
canonical string is the form listed in ``admissible_actions``; aliases map onto it
(``put X in Y``, ``put X on Y``, ``move X to Y`` -> ``put X in/on Y``).
"""

from __future__ import annotations

import re

from envs.household.scenes import Scene

_SPACES = re.compile(r"\s+")
_ARTICLES = re.compile(r"\b(?:the|a|an|some)\s+")
_PATTERNS: tuple[tuple[re.Pattern[str], str], ...] = (
    (re.compile(r"^(?:go to|goto|go) (.+)$"), "go"),
    (re.compile(r"^open (.+)$"), "open"),
    (re.compile(r"^close (.+)$"), "close"),
    (re.compile(r"^(?:take|pick up|get) (.+?) from (.+)$"), "take"),
    (re.compile(r"^(?:put|place) (.+?) (?:in/on|in|on|into|onto|inside) (.+)$"), "put"),
    (re.compile(r"^move (.+?) to (.+)$"), "put"),
    (re.compile(r"^clean (.+?) (?:with|using|in) (.+)$"), "clean"),
    (re.compile(r"^heat (.+?) (?:with|using|in) (.+)$"), "heat"),
    (re.compile(r"^cool (.+?) (?:with|using|in) (.+)$"), "cool"),
    (re.compile(r"^(?:use|toggle|turn on|turn off) (.+)$"), "use"),
    (re.compile(r"^(?:examine|x|inspect) (.+)$"), "examine"),
)
HELP = ("Commands: look, inventory, go to [receptacle], open [receptacle], close [receptacle], "
        "take [object] from [receptacle], put [object] in/on [receptacle], "
        "clean/heat/cool [object] with [receptacle], use [lamp], examine [something].")

Parsed = tuple[str, str, int, int]
"""``(canonical, verb, obj, rec)``; ``obj``/``rec`` are indices or -1."""


def normalize(text: str) -> str:
    """Lower-case, single spaces, no trailing period, articles and underscores removed."""
    s = _SPACES.sub(" ", text.replace("_", " ")).strip().lower().rstrip(".!").strip()
    return _ARTICLES.sub("", s) if " " in s else s


class CommandParser:
    """Parses commands against the names of one :class:`Scene`."""

    def __init__(self, scene: Scene):
        self.scene = scene
        self.recs = {n: i for i, n in enumerate(scene.recep_names)}
        self.objs = {n: i for i, n in enumerate(scene.obj_names)}
        self._memo: dict[str, Parsed | str] = {}

    def parse(self, text: str) -> Parsed | str:
        """The parsed command, or an error message when it is not well-formed."""
        hit = self._memo.get(text)
        if hit is None:
            if len(self._memo) > 10_000:
                self._memo.clear()
            hit = self._memo[text] = self._parse(text)
        return hit

    def _parse(self, text: str) -> Parsed | str:
        s = normalize(text)
        if s in ("look", "l", "look around"):
            return ("look", "look", -1, -1)
        if s in ("inventory", "i", "inv"):
            return ("inventory", "inventory", -1, -1)
        for pattern, verb in _PATTERNS:
            m = pattern.match(s)
            if m:
                return self._resolve(verb, m.groups())
        shown = text.strip()[:60].encode("ascii", "replace").decode()
        return f"I don't understand {shown!r}. {HELP}"

    def _resolve(self, verb: str, args: tuple[str, ...]) -> Parsed | str:
        if verb in ("go", "open", "close"):
            r = self.recs.get(args[0])
            if r is None:
                return self._unknown(args[0], "receptacle")
            text = f"go to {args[0]}" if verb == "go" else f"{verb} {args[0]}"
            return (text, verb, -1, r)
        if verb in ("use", "examine"):
            if verb == "examine" and args[0] in self.recs:
                return (f"examine {args[0]}", verb, -1, self.recs[args[0]])
            o = self.objs.get(args[0])
            if o is None:
                return self._unknown(args[0], "object" if verb == "use" else "thing")
            return (f"{verb} {args[0]}", verb, o, -1)
        o, r = self.objs.get(args[0]), self.recs.get(args[1])
        if o is None:
            return self._unknown(args[0], "object")
        if r is None:
            return self._unknown(args[1], "receptacle")
        sep = {"take": "from", "put": "in/on"}.get(verb, "with")
        return (f"{verb} {args[0]} {sep} {args[1]}", verb, o, r)

    def _unknown(self, name: str, what: str) -> str:
        shown = name[:40].encode("ascii", "replace").decode()
        return (f"There is no {what} called {shown!r} here. Names look like "
                f"'{self.scene.recep_names[0]}' or '{self.scene.obj_names[0]}'.")
