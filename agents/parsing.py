"""Turning model text into an env action. Never raises: bad output is an invalid action.

Two output formats:

* text-action envs: ``<think>…</think><action>…</action>``;
* tool envs: an OpenAI-style tool call, either ``<tool_call>{"name": …, "arguments": {…}}
  </tool_call>`` (Hermes/Qwen style), a bare JSON object, a fenced ```json block, or the JSON
  inside ``<action>…</action>``. It becomes the action string
  ``{"name": "...", "arguments": {...}}`` that the tool envs parse.

Modes for text actions:

* ``strict``: exactly ``<think>…</think>`` then one ``<action>…</action>``, nothing else but
  whitespace (an end-of-turn token is ignored).
* ``lenient`` (default): the think block may be missing; the *last* complete action tag
  wins; an unclosed ``<action>`` at the end counts; tag names are case-insensitive; with no
  tags, a bare line that matches an admissible action (case and whitespace normalised) is
  accepted, and with no admissible list a single short bare line is. An action that matches
  an admissible action up to case/whitespace is returned in its admissible spelling.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from typing import Any

#: Parsing modes accepted by :func:`parse_action`.
MODES = ("strict", "lenient")
#: Longest bare (untagged) line the lenient mode accepts when no admissible list is known.
MAX_BARE_CHARS = 200

_SPECIAL = re.compile(r"<\|[^|>]{1,40}\|>|</s>|<eos>|<end_of_turn>")
_STRICT = re.compile(r"^\s*<think>(.*?)</think>\s*<action>(.*?)</action>\s*$", re.DOTALL)
_ACTION = re.compile(r"<action>(.*?)</action>", re.DOTALL | re.IGNORECASE)
_OPEN_ACTION = re.compile(r"<action>(?!.*<action>)(.*)$", re.DOTALL | re.IGNORECASE)
_THINK = re.compile(r"<think>.*?(</think>|$)", re.DOTALL | re.IGNORECASE)
_TOOL_CALL = re.compile(r"<tool_call>(.*?)(?:</tool_call>|$)", re.DOTALL | re.IGNORECASE)
_FENCE = re.compile(r"```(?:json)?\s*(.*?)```", re.DOTALL | re.IGNORECASE)


@dataclass(frozen=True)
class ParsedAction:
    """The env action parsed from one model response."""

    action: str
    """The action string to send to the env ('' when parsing failed)."""
    valid: bool
    """Whether a well-formed action was found."""
    error: str | None = None
    """Why parsing failed (shown to the model as the observation of an invalid step)."""


def normalize(text: str) -> str:
    """Lowercase, collapse whitespace, strip surrounding whitespace, quotes and a final '.'."""
    text = " ".join(text.split()).lower()
    return text.strip().strip("\"'`").rstrip(".").strip()


def _invalid(error: str) -> ParsedAction:
    return ParsedAction(action="", valid=False, error=error)


def _match_admissible(action: str, admissible: list[str] | None) -> str | None:
    if not admissible:
        return None
    want = normalize(action)
    for cand in admissible:
        if normalize(cand) == want:
            return cand
    return None


def _finish(action: str, admissible: list[str] | None) -> ParsedAction:
    action = action.strip()
    if not action:
        return _invalid("The action inside <action>...</action> is empty.")
    return ParsedAction(action=_match_admissible(action, admissible) or action, valid=True)


def _parse_strict(text: str, admissible: list[str] | None) -> ParsedAction:
    m = _STRICT.match(_SPECIAL.sub("", text))
    if m is None:
        return _invalid("Expected exactly <think>...</think><action>...</action>.")
    if "<action>" in m.group(2).lower() or "</action>" in m.group(2).lower():
        return _invalid("Expected exactly one <action>...</action>.")
    return _finish(m.group(2), admissible)


def _parse_lenient(text: str, admissible: list[str] | None) -> ParsedAction:
    text = _SPECIAL.sub("", text)
    tagged = _ACTION.findall(text)
    if tagged:
        return _finish(tagged[-1], admissible)
    rest = _THINK.sub("", text)
    m = _OPEN_ACTION.search(rest)
    if m is not None:  # an <action> cut off by max_tokens or a stop string
        return _finish(m.group(1), admissible)
    lines = [ln.strip() for ln in rest.strip().splitlines() if ln.strip()]
    if not lines:
        return _invalid("No action found: answer with <think>...</think><action>...</action>.")
    for line in (rest.strip(), lines[-1], lines[0]):
        hit = _match_admissible(line, admissible)
        if hit is not None:
            return ParsedAction(action=hit, valid=True)
    if admissible is None and len(lines) == 1 and len(lines[0]) <= MAX_BARE_CHARS:
        return ParsedAction(action=lines[0], valid=True)
    return _invalid("No <action>...</action> found: put exactly one action inside the tags.")


def parse_action(text: Any, *, mode: str = "lenient",
                 admissible: list[str] | None = None) -> ParsedAction:
    """Parse a text action from ``text``. Never raises."""
    try:
        if not isinstance(text, str):
            return _invalid(f"Model output must be text, got {type(text).__name__}.")
        if mode == "strict":
            return _parse_strict(text, admissible)
        return _parse_lenient(text, admissible)
    except Exception as exc:  # noqa: BLE001  (defensive: parsing must never crash a rollout)
        return _invalid(f"Could not parse the output: {type(exc).__name__}.")


# ---------------------------------------------------------------------------- tool calls
def tool_names(tools: list[dict[str, Any]]) -> list[str]:
    """Names of OpenAI-style tool schemas (``{"type": "function", "function": {...}}`` or flat)."""
    names = []
    for t in tools:
        fn = t.get("function", t) if isinstance(t, dict) else {}
        if isinstance(fn, dict) and isinstance(fn.get("name"), str):
            names.append(fn["name"])
    return names


def _json_objects(text: str) -> list[Any]:
    """Every top-level JSON value that starts with '{' in ``text``, in order."""
    dec, out, i = json.JSONDecoder(), [], 0
    while True:
        i = text.find("{", i)
        if i < 0:
            return out
        try:
            obj, end = dec.raw_decode(text, i)
        except json.JSONDecodeError:
            i += 1
            continue
        out.append(obj)
        i = end


def _as_call(obj: Any) -> tuple[str, dict] | str:
    """``(name, arguments)`` from a call object, or an error string."""
    if not isinstance(obj, dict):
        return "A tool call must be a JSON object."
    if isinstance(obj.get("function"), dict):  # {"type": "function", "function": {...}}
        obj = obj["function"]
    name = obj.get("name")
    if not isinstance(name, str) or not name:
        return 'A tool call needs a "name" string.'
    args = obj.get("arguments", obj.get("parameters", {}))
    if isinstance(args, str):  # OpenAI sends arguments as a JSON string
        try:
            args = json.loads(args) if args.strip() else {}
        except json.JSONDecodeError:
            return f'The "arguments" of {name} are not valid JSON.'
    if args is None:
        args = {}
    if not isinstance(args, dict):
        return f'The "arguments" of {name} must be a JSON object.'
    return name, args


def _candidates(text: str) -> list[str]:
    for pattern in (_TOOL_CALL, _ACTION, _FENCE):
        found = [m for m in pattern.findall(text) if m.strip()]
        if found:
            return found
    return [text]


def parse_tool_call(text: Any, tools: list[dict[str, Any]]) -> ParsedAction:
    """Parse the first tool call in ``text`` into ``{"name": ..., "arguments": {...}}``.

    Never raises. An unknown tool name, missing name or non-object arguments is invalid.
    """
    try:
        if not isinstance(text, str):
            return _invalid(f"Model output must be text, got {type(text).__name__}.")
        text = _THINK.sub("", _SPECIAL.sub("", text))
        names = tool_names(tools)
        error = ('No tool call found: reply with <tool_call>{"name": "<tool>", '
                 '"arguments": {...}}</tool_call>.')
        for chunk in _candidates(text):
            for obj in _json_objects(chunk):
                call = _as_call(obj)
                if isinstance(call, str):
                    error = call
                    continue
                name, args = call
                if names and name not in names:
                    error = f"Unknown tool {name!r}; the tools are: {', '.join(names)}."
                    continue
                return ParsedAction(action=json.dumps({"name": name, "arguments": args}),
                                    valid=True)
        return _invalid(error)
    except Exception as exc:  # noqa: BLE001
        return _invalid(f"Could not parse the tool call: {type(exc).__name__}.")
