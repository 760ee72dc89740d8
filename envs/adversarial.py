"""Adversarial actions: the inputs a model or a client produces that break naive parsers.

:mod:`turngym.envs.checker` sends them to every env (``check_adversarial_actions``), so a
third-party env gets the same protection as the built-in ones. Three kinds:

* :func:`generic_attacks`: text no env may accept (:data:`MUST_BE_INVALID`): JSON nested
  10,000 deep (longer than :data:`~turngym.envs.core.MAX_ACTION_CHARS`) and 1,500 deep
  (under it, deep enough for ``RecursionError`` in :func:`json.loads`), lone surrogates,
  NUL bytes, a string just over the length limit, a 1 MiB string and a 1 MiB tool call,
  a tool call with a 400-digit integer argument; and text an env may accept or not
  (:data:`MAY_BE_VALID`, e.g. a string just under the limit).
* :func:`command_attacks`: the same payloads inside the env's own text commands
  (``search[\\ud800]``, ``go to a\\x00b``, a ``search[...]`` exactly at the length limit).
* :func:`tool_call_attacks`: for a tool env (``env.tools`` holds OpenAI schemas), one call
  per tool and argument with a hostile value in that argument (lone surrogate, NUL, ``NaN``,
  ``Infinity``, ``-Infinity``, ``1e999``, 400-digit integers of either sign (beyond a
  float: ``float()`` and ``math.isfinite`` raise ``OverflowError``), lists nested 1,500
  deep, objects nested 600 deep, a wrong type) and benign values in
  the others, in the form :func:`turngym.agents.parsing.parse_tool_call` produces
  (``{"name": ..., "arguments": {...}}``, ``json.dumps`` with its default ASCII escapes) and
  with raw characters; and per tool, ``arguments`` as a JSON string (OpenAI's wire form)
  holding lists nested 1,500 deep. The env may accept such a call (``answer("\\ud800")`` is a wrong
  answer, not a malformed one) but must never raise, and must not change its state when it
  calls the step invalid.
"""

from __future__ import annotations

import json
import re
from typing import Any

from turngym.envs.core import MAX_ACTION_CHARS

#: Nesting deep enough for ``RecursionError`` in ``json.loads`` (CPython's limit is ~1000)
#: while the action stays under :data:`MAX_ACTION_CHARS`.
DEEP = 1500
DEEP_JSON_LONG = '{"a":' * 10_000 + "1" + "}" * 10_000
DEEP_JSON = "[" * DEEP + "]" * DEEP
#: Objects nested as deep as fits in an argument (5 characters a level).
DEEP_OBJECTS = '{"a":' * 600 + "1" + "}" * 600
SURROGATE = "\ud800"
#: An integer no float can hold (``float(HUGE_INT)`` raises ``OverflowError``).
HUGE_INT = "9" * 400
#: 1 MiB: a model that never stops, or a client that sends a file as the action.
ONE_MB = 1 << 20
#: ``json`` emits these tokens for float("nan") / float("inf"); ``1e999`` parses to inf.
_TOKENS = {"__NAN__": "NaN", "__INF__": "Infinity", "__NINF__": "-Infinity",
           "__BIG__": "1e999", "__HUGE__": HUGE_INT, "__NHUGE__": "-" + HUGE_INT,
           "__DEEP__": DEEP_JSON,
           "__DEEPOBJ__": DEEP_OBJECTS}

MUST_BE_INVALID: tuple[str, ...] = (
    DEEP_JSON_LONG,
    DEEP_JSON,
    '{"name": "x", "arguments": ' + DEEP_JSON + "}",
    SURROGATE,
    "\udfff\ud800 up",
    "\x00",
    "up\x00",
    "\x00" * 100,
    "x" * (MAX_ACTION_CHARS + 1),
    "\ud800" * (MAX_ACTION_CHARS + 1),
    '{"name": NaN, "arguments": Infinity}',
    '{"name": "\\ud800", "arguments": {"a": "\\ud800", "b": "\\u0000"}}',
    '{"name": "x", "arguments": {"n": ' + HUGE_INT + ', "m": -' + HUGE_INT + '}}',
    "x" * ONE_MB,
    '{"name": "x", "arguments": {"a": "' + "y" * ONE_MB + '"}}',
)
MAY_BE_VALID: tuple[str, ...] = (
    "x" * MAX_ACTION_CHARS,
    "x " * (MAX_ACTION_CHARS // 2 - 1),
)


def generic_attacks() -> list[tuple[str, bool]]:
    """``(action, must_be_invalid)`` for every env."""
    return [(a, True) for a in MUST_BE_INVALID] + [(a, False) for a in MAY_BE_VALID]


#: Payloads put into a text command (``search[...]``, ``go to ...``).
PAYLOADS: tuple[str, ...] = (SURROGATE, "a\x00b", DEEP_JSON[:2000], "NaN", "1e999", HUGE_INT)
_BRACKETED = re.compile(r"^\s*(\w+)\s*\[.*\]\s*$", re.DOTALL)


def command_attacks(env: Any, admissible: list[str] | None) -> list[str]:
    """Hostile payloads inside the env's own command forms: for up to three admissible (or
    expert) actions with different first words, ``verb[payload]`` for a bracketed form
    (``search[<query>]``), else ``action payload``; plus a bracketed payload that makes the
    action exactly :data:`MAX_ACTION_CHARS` long. The env may accept them."""
    try:
        expert = env.unwrapped.expert_action()
    except Exception:  # noqa: BLE001 -- any error: the checker reports raising experts elsewhere
        expert = None
    seen: dict[str, str] = {}
    for action in [*(admissible or []), *([expert] if expert else [])]:
        verb = action.split("[", 1)[0].split(" ", 1)[0].lower()
        if verb and verb not in seen and not action.lstrip().startswith("{"):
            seen[verb] = action
    out: list[str] = []
    for action in list(seen.values())[:3]:
        match = _BRACKETED.match(action)
        if match:
            verb = match.group(1)
            out += [f"{verb}[{p}]" for p in PAYLOADS]
            out.append(f"{verb}[{'y' * (MAX_ACTION_CHARS - len(verb) - 2)}]")
        else:
            out += [f"{action} {p}" for p in PAYLOADS]
    return out


def _schema(tool: dict[str, Any]) -> tuple[str, dict[str, Any]]:
    fn = tool.get("function", tool)
    params = fn.get("parameters") or {}
    return str(fn.get("name", "")), dict(params.get("properties") or {})


def _benign(kind: str) -> Any:
    return {"integer": 1, "number": 1, "boolean": True, "array": [], "object": {}}.get(kind, "a")


def _hostile(kind: str) -> list[Any]:
    """Hostile values for a parameter of JSON type ``kind`` (placeholders become tokens)."""
    common = ["__NAN__", "__INF__", "__BIG__", "__HUGE__", "__DEEP__", "__DEEPOBJ__"]
    if kind in ("integer", "number"):
        return [*common, "__NINF__", "__NHUGE__", SURROGATE, "1\x00"]
    return [SURROGATE, "ok " + SURROGATE + " ok", "a\x00b", *common]


def _render(name: str, args: dict[str, Any], ascii_escapes: bool) -> str:
    text = json.dumps({"name": name, "arguments": args}, ensure_ascii=ascii_escapes)
    for placeholder, token in _TOKENS.items():
        text = text.replace(f'"{placeholder}"', token)
    return text


def benign_args(env: Any, name: str, props: dict[str, Any]) -> dict[str, Any]:
    """Arguments for tool ``name``: the expert's, when its next action calls that tool (so
    a hostile value reaches the deep end of the tool: an ``edit`` of a real file), else a
    plain value of each parameter's type."""
    expert = None
    try:
        expert = json.loads(env.unwrapped.expert_action() or "null")
    except (ValueError, RecursionError):
        pass
    if isinstance(expert, dict) and expert.get("name") == name and \
            isinstance(expert.get("arguments"), dict):
        return dict(expert["arguments"])
    return {p: _benign(str(s.get("type", "string"))) for p, s in props.items()}


def tool_call_attacks(env: Any) -> list[str]:
    """Hostile tool calls for every tool and argument of ``env`` (empty without tools)."""
    out: list[str] = []
    for tool in getattr(env.unwrapped, "tools", None) or []:
        name, props = _schema(tool)
        if not name:
            continue
        base = benign_args(env, name, props)
        out.append(json.dumps({"name": name, "arguments": DEEP_JSON[:3000]}))
        # OpenAI's wire form: the arguments as a JSON string, here a well-formed deep one
        out.append(json.dumps({"name": name, "arguments": DEEP_JSON}))
        for param, schema in props.items():
            for value in _hostile(str(schema.get("type", "string"))):
                forms = [True, False] if SURROGATE in value else [True]  # "\\ud800" and raw
                for ascii_escapes in forms:
                    action = _render(name, {**base, param: value}, ascii_escapes)
                    if len(action) <= MAX_ACTION_CHARS:
                        out.append(action)
            room = MAX_ACTION_CHARS - len(_render(name, {**base, param: ""}, True))
            if room > 0:  # a string argument that makes the call exactly the longest allowed
                out.append(_render(name, {**base, param: "y" * room}, True))
    return out
