"""Decoding a JSON tool call from an action without trusting its shape.

``json.loads`` recurses once per nesting level, so whether ``[[[...]]]`` 1,500 deep raises
``RecursionError``, parses, or (with a raised limit on a small stack) crashes the process
depends on the interpreter's recursion limit, which libraries and tests change. Tool envs
decode with :func:`loads_tool_json` instead: it measures the nesting first, outside the
strings, and refuses anything deeper than :data:`MAX_JSON_DEPTH` with a ``ValueError``
that says so, before the decoder ever recurses. No tool argument nests that deep.
"""

from __future__ import annotations

import json
from typing import Any

#: Deepest nesting of ``[``/``{`` a tool call may have (a call with an object argument
#: holding a list of objects is 4 deep).
MAX_JSON_DEPTH = 64


class JsonTooDeep(ValueError):
    """The JSON nests deeper than allowed; ``depth`` is how deep it got before the scan stopped."""

    def __init__(self, depth: int, limit: int):
        super().__init__(f"JSON nested deeper than {limit} levels (at least {depth}); "
                         f"tool arguments are flat values")
        self.depth, self.limit = depth, limit


def json_depth(text: str, stop_after: int | None = None) -> int:
    """The deepest ``[``/``{`` nesting in ``text``, brackets inside JSON strings not
    counted; stops counting once it passes ``stop_after``. A linear scan, no recursion."""
    depth = deepest = 0
    in_string = escaped = False
    for ch in text:
        if in_string:
            if escaped:
                escaped = False
            elif ch == "\\":
                escaped = True
            elif ch == '"':
                in_string = False
        elif ch == '"':
            in_string = True
        elif ch in "[{":
            depth += 1
            if depth > deepest:
                deepest = depth
                if stop_after is not None and deepest > stop_after:
                    return deepest
        elif ch in "]}":
            depth -= 1
    return deepest


def loads_tool_json(text: str, max_depth: int = MAX_JSON_DEPTH) -> Any:
    """``json.loads(text)`` for text nested at most ``max_depth`` deep; deeper raises
    :class:`JsonTooDeep` (a ``ValueError``), as does any other malformed JSON."""
    depth = json_depth(text, stop_after=max_depth)
    if depth > max_depth:
        raise JsonTooDeep(depth, max_depth)
    try:
        return json.loads(text)
    except RecursionError:  # unreachable at the default limit; kept for a huge max_depth
        raise JsonTooDeep(max_depth, max_depth) from None
