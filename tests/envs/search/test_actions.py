"""The two action formats of the Search env."""

from __future__ import annotations

import json

import pytest

from turngym.envs.search.actions import TOOLS, parse_action


@pytest.mark.parametrize("action, name, args", [
    ("<search>Mult Trerein</search>", "search", {"query": "Mult Trerein", "k": None}),
    ("<think>first the work</think>\n<search>The Distant Stihiv</search>", "search",
     {"query": "The Distant Stihiv", "k": None}),
    ("<think>maybe <answer>x</answer>?</think><answer>Vukix</answer>", "answer",
     {"text": "Vukix"}),
    ("<ANSWER>1767</ANSWER>", "answer", {"text": "1767"}),
    ("<search>a</search><answer>b</answer>", "search", {"query": "a", "k": None}),
    ('{"name": "search", "arguments": {"query": "Vukix", "k": 5}}', "search",
     {"query": "Vukix", "k": 5}),
    ('{"name": "search", "arguments": "{\\"query\\": \\"Vukix\\"}"}', "search",
     {"query": "Vukix", "k": None}),
    ('{"name": "answer", "arguments": {"text": "Vukix"}}', "answer", {"text": "Vukix"}),
])
def test_valid_actions(action: str, name: str, args: dict) -> None:
    call = parse_action(action)
    assert call.error is None
    assert (call.name, call.args) == (name, args)


@pytest.mark.parametrize("action, needle", [
    ("Vukix", "no tool call"),
    ("<action></action>", "no tool call"),
    ("<search>unclosed", "no tool call"),
    ('{"name": ', "not valid JSON"),
    ('{"name": "browse", "arguments": {}}', "unknown tool"),
    ('{"name": "search", "arguments": {"q": "x"}}', "unknown argument"),
    ('{"name": "search", "arguments": {}}', "'query'"),
    ('{"name": "search", "arguments": {"query": "x", "k": "3"}}', "integer"),
    ('{"name": "search", "arguments": {"query": "x", "k": true}}', "integer"),
    ('{"name": "search", "arguments": "not json"}', "arguments string"),
    ('{"name": "search", "arguments": [1]}', "JSON object"),
    ('{"name": "answer", "arguments": {"text": 3}}', "'text'"),
    ("[1, 2]", "no tool call"),
])
def test_invalid_actions_explain(action: str, needle: str) -> None:
    call = parse_action(action)
    assert call.name is None and needle in call.error


def test_tool_schemas_are_openai_functions() -> None:
    names = [t["function"]["name"] for t in TOOLS]
    assert names == ["search", "answer"]
    for t in TOOLS:
        assert t["type"] == "function"
        json.dumps(t)  # serialisable
        assert t["function"]["parameters"]["required"]
