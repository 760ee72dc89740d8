"""Action parsing: table tests of well-formed and malformed model outputs."""

from __future__ import annotations

import json

import pytest

from turngym.agents.parsing import normalize, parse_action, parse_tool_call

MOVES = ["up", "down", "left", "right"]

# (text, admissible, expected action or None for invalid)
STRICT = [
    ("<think>go</think><action>up</action>", None, "up"),
    ("  <think>a\nb</think>\n<action> left </action>\n", None, "left"),
    ("<think>x</think><action>up</action><|im_end|>", None, "up"),
    ("<think>x</think><action>UP</action>", MOVES, "up"),
    ("<action>up</action>", None, None),  # no think
    ("<think>x</think>", None, None),  # no action
    ("<think>x</think><action>up</action> trailing", None, None),
    ("<think>x</think><action>up</action><action>down</action>", None, None),
    ("<think>x</think><action>   </action>", None, None),
    ("<think>x<action>up", None, None),
    ("", None, None),
]

LENIENT = [
    ("<think>go</think><action>up</action>", None, "up"),
    ("<action>down</action>", None, "down"),  # missing think
    ("<think>a</think><action>up</action> then <action>left</action>", None, "left"),  # last
    ("<ACTION>Right</ACTION>", MOVES, "right"),  # tag case + admissible spelling
    ("<think>hmm</think><action>go to  Fridge 1.", ["go to fridge 1"], "go to fridge 1"),
    ("<think>I will move</think>\nUp", MOVES, "up"),  # bare admissible line
    ("Let me think.\nleft", MOVES, "left"),  # last line matches
    ("north", None, "north"),  # bare single line, no admissible list
    ("north", MOVES, None),  # bare line not admissible
    ("I think I should go\nup or maybe down\nbut who knows", None, None),
    ("<think>never closed", None, None),
    ("<think>x</think><action></action>", None, None),
    ("   \n\t", None, None),
    ("<|im_end|>", None, None),
    ("x" * (300), None, None),  # long bare text
    ("<think>x</think><action>take apple 1 from countertop 1</action>", None,
     "take apple 1 from countertop 1"),
]


@pytest.mark.parametrize("text,admissible,expected", STRICT)
def test_strict_mode(text, admissible, expected):
    got = parse_action(text, mode="strict", admissible=admissible)
    assert got.valid == (expected is not None)
    assert got.action == (expected or "")
    assert (got.error is None) == got.valid


@pytest.mark.parametrize("text,admissible,expected", LENIENT)
def test_lenient_mode(text, admissible, expected):
    got = parse_action(text, mode="lenient", admissible=admissible)
    assert got.valid == (expected is not None), got
    assert got.action == (expected or "")
    if not got.valid:
        assert got.error and "action" in got.error.lower()


@pytest.mark.parametrize("junk", [None, 42, b"<action>up</action>", ["up"], {"a": 1}])
def test_non_text_never_raises(junk):
    for mode in ("strict", "lenient"):
        got = parse_action(junk, mode=mode)
        assert not got.valid and got.action == "" and "text" in got.error
    assert not parse_tool_call(junk, []).valid


@pytest.mark.parametrize("text,expected", [
    ("  Go To   Fridge 1. ", "go to fridge 1"),
    ("'up'", "up"),
    ("UP", "up"),
])
def test_normalize(text, expected):
    assert normalize(text) == expected


TOOLS = [
    {"type": "function", "function": {"name": "search", "parameters": {
        "type": "object", "properties": {"query": {"type": "string"}}}}},
    {"name": "answer", "parameters": {"type": "object",
                                      "properties": {"text": {"type": "string"}}}},
]

TOOL_CASES = [
    ('<tool_call>{"name": "search", "arguments": {"query": "capital of France"}}</tool_call>',
     {"name": "search", "arguments": {"query": "capital of France"}}),
    ('<think>look it up</think>\n<tool_call>\n{"name": "search", "arguments": {"query": "x"}}\n'
     '</tool_call><|im_end|>', {"name": "search", "arguments": {"query": "x"}}),
    ('{"name": "answer", "arguments": {"text": "Paris"}}',
     {"name": "answer", "arguments": {"text": "Paris"}}),  # bare JSON
    ('Sure!\n```json\n{"name": "answer", "parameters": {"text": "Paris"}}\n```',
     {"name": "answer", "arguments": {"text": "Paris"}}),  # fenced, "parameters"
    ('<action>{"name": "search", "arguments": "{\\"query\\": \\"y\\"}"}</action>',
     {"name": "search", "arguments": {"query": "y"}}),  # arguments as a JSON string
    ('{"type": "function", "function": {"name": "answer", "arguments": {"text": "z"}}}',
     {"name": "answer", "arguments": {"text": "z"}}),
    ('<tool_call>{"name": "search"}</tool_call>', {"name": "search", "arguments": {}}),
    ('<tool_call>{"name": "search", "arguments": {"query": "a"}}</tool_call>'
     '<tool_call>{"name": "answer", "arguments": {"text": "b"}}</tool_call>',
     {"name": "search", "arguments": {"query": "a"}}),  # first call wins
    ('<tool_call>{"name": "search", "arguments": {"query": "cut off"}}',
     {"name": "search", "arguments": {"query": "cut off"}}),  # unclosed tag
]

TOOL_BAD = [
    ("<tool_call>{not json}</tool_call>", "No tool call"),
    ('<tool_call>{"name": "delete_all", "arguments": {}}</tool_call>', "Unknown tool"),
    ('<tool_call>{"arguments": {"q": 1}}</tool_call>', '"name"'),
    ('<tool_call>{"name": "search", "arguments": [1, 2]}</tool_call>', "JSON object"),
    ('<tool_call>{"name": "search", "arguments": "{oops"}</tool_call>', "not valid JSON"),
    ("I don't know.", "No tool call"),
    ("", "No tool call"),
    ("<action>up</action>", "No tool call"),
]


@pytest.mark.parametrize("text,expected", TOOL_CASES)
def test_tool_calls(text, expected):
    got = parse_tool_call(text, TOOLS)
    assert got.valid, got.error
    assert json.loads(got.action) == expected


@pytest.mark.parametrize("text,error_part", TOOL_BAD)
def test_malformed_tool_calls(text, error_part):
    got = parse_tool_call(text, TOOLS)
    assert not got.valid and got.action == ""
    assert error_part in got.error
