"""Parsing action text into a command of the household simulator.

:func:`parse` turns text into ``(canonical, verb, obj, rec)`` or an error message. The
canonical string is the form listed in ``admissible_actions``; aliases map onto it
(``put X in Y``, ``put X on Y``, ``move X to Y`` -> ``put X in/on Y``).
"""

from __future__ import annotations

import itertools
import re

from turngym.envs.household.scenes import Scene

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

#: Parser memo bounds (see :meth:`CommandParser.parse`). Every valid command is far
#: shorter than ``MEMO_MAX_CHARS``; the limit only keeps odd spellings of them out.
MEMO_LIMIT, MEMO_MAX_CHARS = 16_384, 160

Parsed = tuple[str, str, int, int]
"""``(canonical, verb, obj, rec)``; ``obj``/``rec`` are indices or -1."""

#: The memo of every parser in the process, ``(parser serial, text) -> parsed``: one bound
#: for the process however many parsers (tasks) and envs there are.
_memo: dict[tuple[int, str], Parsed] = {}
_serials = itertools.count()


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
        self._serial = next(_serials)

    def parse(self, text: str) -> Parsed | str:
        """The parsed command, or an error message when it is not well-formed.

        Only texts that parse and are at most :data:`MEMO_MAX_CHARS` long are memoised, in
        one process-wide memo of at most :data:`MEMO_LIMIT` entries (then it starts over):
        a model's garbage and long actions are parsed each time instead of kept, so the
        memo stays under about 7 MB (16,384 entries of at most 160 characters) whatever
        the input and however many envs and tasks there are.
        """
        key = (self._serial, text)
        hit = _memo.get(key)
        if hit is not None:
            return hit
        parsed = self._parse(text)
        if not isinstance(parsed, str) and len(text) <= MEMO_MAX_CHARS:
            if len(_memo) >= MEMO_LIMIT:
                _memo.clear()
            _memo[key] = parsed
        return parsed

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
