"""The Search env's tools and the parser of its two action formats.

Tag format (Search-R1): ``<search>query</search>`` or ``<answer>text</answer>``; text
around the tag (a ``<think>`` block) is ignored, and the first tag counts.
JSON tool call (what the agent side makes of an OpenAI tool call):
``{"name": "search", "arguments": {"query": "...", "k": 3}}`` or
``{"name": "answer", "arguments": {"text": "..."}}``; ``arguments`` may also be a JSON
string, as OpenAI sends it.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from typing import Any

from turngym.envs.tooljson import JsonTooDeep, loads_tool_json

TOOLS: list[dict[str, Any]] = [
    {"type": "function", "function": {
        "name": "search",
        "description": "Search the corpus; returns the top-k passages with ids and titles.",
        "parameters": {"type": "object", "properties": {
            "query": {"type": "string", "description": "What to look for, e.g. a name."},
            "k": {"type": "integer", "minimum": 1, "maximum": 10,
                  "description": "How many passages to return (default 3)."}},
            "required": ["query"]}}},
    {"type": "function", "function": {
        "name": "answer",
        "description": "Give the final answer; this ends the episode.",
        "parameters": {"type": "object", "properties": {
            "text": {"type": "string", "description": "The short answer, e.g. a name."}},
            "required": ["text"]}}},
]

_TAG = re.compile(r"<(search|answer)>(.*?)</\1>", re.DOTALL | re.IGNORECASE)
_THINK = re.compile(r"<think>.*?</think>", re.DOTALL | re.IGNORECASE)


@dataclass(frozen=True)
class ToolCall:
    """A parsed action: a tool name and its arguments, or an error explaining the input."""

    name: str | None
    args: dict[str, Any] = field(default_factory=dict)
    error: str | None = None


def _bad(msg: str) -> ToolCall:
    return ToolCall(None, {}, msg)


def _parse_json(action: str) -> ToolCall:
    try:
        call = loads_tool_json(action)
    except json.JSONDecodeError as exc:
        return _bad(f"the tool call is not valid JSON ({exc.msg} at char {exc.pos}).")
    except ValueError as exc:  # JsonTooDeep
        return _bad(f"the tool call is not usable: {exc}.")
    if not isinstance(call, dict) or not isinstance(call.get("name"), str):
        return _bad('a JSON tool call needs {"name": ..., "arguments": {...}}.')
    args = call.get("arguments", {})
    if isinstance(args, str):
        try:
            args = loads_tool_json(args) if args.strip() else {}
        except JsonTooDeep as exc:
            return _bad(f"the tool call's arguments string is not usable: {exc}.")
        except ValueError:
            return _bad("the tool call's arguments string is not valid JSON.")
    if not isinstance(args, dict):
        return _bad("the tool call's arguments must be a JSON object.")
    name = call["name"]
    if name == "search":
        unknown = sorted(set(args) - {"query", "k"})
        if unknown:
            return _bad(f"search got unknown argument(s) {unknown}; it takes query and k.")
        if not isinstance(args.get("query"), str):
            return _bad("search needs a string argument 'query'.")
        k = args.get("k")
        if k is not None and (isinstance(k, bool) or not isinstance(k, int)):
            return _bad(f"search's k must be an integer, got {k!r}.")
        return ToolCall("search", {"query": args["query"], "k": k})
    if name == "answer":
        text = args.get("text", args.get("answer"))
        if not isinstance(text, str):
            return _bad("answer needs a string argument 'text'.")
        return ToolCall("answer", {"text": text})
    return _bad(f"unknown tool {name[:40]!r}; the tools are search and answer.")


def _not_text(value: str) -> str | None:
    """Why ``value`` is no usable text (a lone surrogate, a NUL byte), else None."""
    try:
        value.encode("utf-8")
    except UnicodeEncodeError as exc:
        return f"a lone surrogate {value[exc.start]!r} at index {exc.start}"
    if "\x00" in value:
        return f"a NUL byte at index {value.index(chr(0))}"
    return None


def parse_action(action: str) -> ToolCall:
    """Parse either format; never raises. Argument values are checked by the env, except
    that text holding a lone surrogate or a NUL byte (from a JSON ``\\ud800``/``\\u0000``
    escape) is invalid here."""
    call = _parse(action)
    for key, value in call.args.items():
        why = _not_text(value) if isinstance(value, str) else None
        if why:
            return _bad(f"{call.name}'s {key} holds {why}; send plain text.")
    return call


def _parse(action: str) -> ToolCall:
    stripped = action.strip()
    if stripped.startswith("{"):
        return _parse_json(stripped)
    match = _TAG.search(_THINK.sub(" ", action))
    if match is None:
        return _bad("no tool call found. Use <search>query</search> or <answer>text</answer>, "
                    'or a JSON call {"name": "search", "arguments": {"query": "..."}}.')
    name, body = match.group(1).lower(), match.group(2)
    if name == "search":
        return ToolCall("search", {"query": body, "k": None})
    return ToolCall("answer", {"text": body})
