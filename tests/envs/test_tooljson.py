"""The depth scan that guards tool-call decoding."""

from __future__ import annotations

import sys

import pytest

from turngym.envs.tooljson import JsonTooDeep, json_depth, loads_tool_json


@pytest.mark.parametrize("text, depth", [
    ("1", 0),
    ('{"a": [1, {"b": 2}]}', 3),
    ('{"a": "[[[[{{{{"}', 1),  # brackets inside a string are text
    ('{"a": "\\"[[[["}', 1),  # an escaped quote does not end the string
    ('["\\\\", [[]]]', 3),  # an escaped backslash does
    ("[" * 5000, 5000),
])
def test_json_depth(text: str, depth: int) -> None:
    assert json_depth(text) == depth


def test_deep_json_is_refused_whatever_the_recursion_limit() -> None:
    old = sys.getrecursionlimit()
    sys.setrecursionlimit(100_000)
    try:
        with pytest.raises(JsonTooDeep, match="deeper than 64"):
            loads_tool_json("[" * 2000 + "]" * 2000)
    finally:
        sys.setrecursionlimit(old)
    assert loads_tool_json("[" * 64 + "]" * 64) is not None
    with pytest.raises(ValueError):
        loads_tool_json("[" * 65 + "]" * 65)
