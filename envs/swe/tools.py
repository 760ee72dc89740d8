"""The SWE tools: their OpenAI JSON schemas, the action parser, and the file tools.

An action is one tool call as JSON, the form the agents helper produces from an OpenAI tool
call: ``{"name": "bash", "arguments": {"command": "ls"}}``. ``arguments`` may also be a JSON
string (as in the OpenAI wire format), and the call may be wrapped in
``<tool_call>...</tool_call>``. Parse errors come back as :class:`ToolError` text.

``view``/``edit``/``create`` work on the host side of the workspace folder, through
:mod:`turngym.envs.swe.safe_fs`: a path is resolved by name (``..`` may not leave the workspace) and
opened from a descriptor of the workspace without following a link at any component, so a
link, fifo or hard link planted by a ``bash`` command (even one swapped in during the call)
cannot make them read or write anything outside. Such a path is a tool error that says why.

Hostile arguments are parse errors, never exceptions: a string that is not valid UTF-8 (a
lone surrogate), a NUL byte in ``command`` or ``path``, a ``NaN``/``Infinity``/``1e999``
or fractional line number or timeout (an integer too big for a float, ``10**400``, is an
out-of-range line number, or a timeout clamped like any long one), JSON nested deeper than
:data:`turngym.envs.tooljson.MAX_JSON_DEPTH` (measured before decoding, so the interpreter's
recursion limit plays no part). ``edit`` and
``create`` write atomically (encode, write a temporary file beside the target, rename), so
a call that fails leaves the file as it was.
"""

from __future__ import annotations

import json
import math
import re
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from turngym.envs.swe import safe_fs as fs
from turngym.envs.swe import tree
from turngym.envs.tooljson import JsonTooDeep, loads_tool_json

#: Longest tool output shown to the agent; the rest is cut with a visible marker.
MAX_OUTPUT_CHARS = 4000
MAX_VIEW_LINES = 200
#: Largest file ``view``/``edit`` read and ``create`` writes.
MAX_FILE_BYTES = 1 << 20
#: Entries a directory ``view`` shows, and names it reads to pick them.
MAX_LIST_ENTRIES = 500
MAX_LIST_SCAN = 10_000

TOOLS: list[dict[str, Any]] = [
    {"type": "function", "function": {
        "name": "bash",
        "description": "Run a shell command in /workspace (no network; time-limited). "
                       "Returns its exit code and output.",
        "parameters": {"type": "object", "properties": {
            "command": {"type": "string", "description": "The command line, run by bash -c."},
            "timeout": {"type": "number", "description": "Seconds (default 10, at most 60)."}},
            "required": ["command"]}}},
    {"type": "function", "function": {
        "name": "view",
        "description": "Show a file with line numbers, or list a directory.",
        "parameters": {"type": "object", "properties": {
            "path": {"type": "string", "description": "Path relative to /workspace."},
            "start": {"type": "integer", "description": "First line (1-based, default 1)."},
            "end": {"type": "integer", "description": "Last line (inclusive; default end)."}},
            "required": ["path"]}}},
    {"type": "function", "function": {
        "name": "edit",
        "description": "Replace the exact text `old` by `new` in a file. `old` must occur "
                       "exactly once.",
        "parameters": {"type": "object", "properties": {
            "path": {"type": "string"}, "old": {"type": "string"}, "new": {"type": "string"}},
            "required": ["path", "old", "new"]}}},
    {"type": "function", "function": {
        "name": "create",
        "description": "Create or overwrite a file with `content`.",
        "parameters": {"type": "object", "properties": {
            "path": {"type": "string"}, "content": {"type": "string"}},
            "required": ["path", "content"]}}},
    {"type": "function", "function": {
        "name": "submit",
        "description": "Finish: the hidden tests run and the episode ends.",
        "parameters": {"type": "object", "properties": {}, "required": []}}},
]

_REQUIRED = {t["function"]["name"]: t["function"]["parameters"]["required"] for t in TOOLS}
_ALLOWED = {t["function"]["name"]: set(t["function"]["parameters"]["properties"]) for t in TOOLS}
_TAG = re.compile(r"^\s*<tool_call>(.*)</tool_call>\s*$", re.DOTALL)


class ToolError(Exception):
    """A tool call that cannot be parsed or applied; its text goes back to the agent."""


@dataclass(frozen=True)
class ToolCall:
    """A parsed action."""

    name: str
    arguments: dict[str, Any]


def tool_call(name: str, **arguments: Any) -> str:
    """The action string for a tool call (what the expert and the agents helper send)."""
    return json.dumps({"name": name, "arguments": arguments})


def parse_action(action: str) -> ToolCall:
    """Parse one action string; raises :class:`ToolError` with a readable message."""
    match = _TAG.match(action)
    text = match.group(1) if match else action
    try:
        obj = loads_tool_json(text)
    except JsonTooDeep as exc:
        raise ToolError(f"Invalid action: the tool call's {exc}.") from None
    except ValueError:
        raise ToolError('Invalid action: expected one JSON tool call like {"name": "bash", '
                        '"arguments": {"command": "ls"}}.') from None
    if not isinstance(obj, dict) or not isinstance(obj.get("name"), str):
        raise ToolError('Invalid action: the JSON must be an object with a "name" string.')
    name, args = obj["name"], obj.get("arguments", {})
    if isinstance(args, str):
        try:
            args = loads_tool_json(args) if args.strip() else {}
        except JsonTooDeep as exc:
            raise ToolError(f"Invalid action: the arguments of {name!r}: {exc}.") from None
        except ValueError:
            raise ToolError(f"Invalid action: the arguments of {name!r} are not JSON.") from None
    if not isinstance(args, dict):
        raise ToolError(f"Invalid action: the arguments of {name!r} must be an object.")
    if name not in _REQUIRED:
        raise ToolError(f"Invalid action: unknown tool {name!r}; tools: {', '.join(_REQUIRED)}.")
    missing = [k for k in _REQUIRED[name] if k not in args]
    if missing:
        raise ToolError(f"Invalid action: {name} needs argument(s) {', '.join(missing)}.")
    extra = sorted(set(args) - _ALLOWED[name])
    if extra:
        raise ToolError(f"Invalid action: {name} has no argument(s) {', '.join(extra)}.")
    for key in ("command", "path", "old", "new", "content"):
        if key in args:
            _check_text(name, key, args[key])
    for key in ("start", "end", "timeout"):
        if key in args:
            args[key] = _check_number(name, key, args[key])
    return ToolCall(name, args)


def _check_text(tool: str, key: str, value: Any) -> None:
    if not isinstance(value, str):
        raise ToolError(f"Invalid action: argument {key!r} of {tool} must be a string.")
    try:
        value.encode("utf-8")
    except UnicodeEncodeError as exc:
        raise ToolError(f"Invalid action: argument {key!r} of {tool} is not valid UTF-8 text "
                        f"(a lone surrogate {value[exc.start]!r} at index {exc.start}).") from None
    if key in ("command", "path") and "\x00" in value:
        raise ToolError(f"Invalid action: argument {key!r} of {tool} contains a NUL byte "
                        f"at index {value.index(chr(0))}.")


def _check_number(tool: str, key: str, value: Any) -> int | float | None:
    """A finite number; an integer for the line bounds ``start``/``end``."""
    if value is None and key != "timeout":
        return None
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise ToolError(f"Invalid action: argument {key!r} of {tool} must be a number.")
    if isinstance(value, float) and not math.isfinite(value):  # an int is always finite
        kind = "positive number of seconds" if key == "timeout" else "line number"
        raise ToolError(f"Invalid action: argument {key!r} of {tool} must be a finite {kind}, "
                        f"got {value!r}.")
    if key == "timeout":  # an int beyond a float (10**400) is clamped, not an OverflowError
        return float(max(-sys.float_info.max, min(value, sys.float_info.max)))
    if value != int(value):
        raise ToolError(f"Invalid action: argument {key!r} of {tool} must be a whole line "
                        f"number, got {value!r}.")
    return int(value)


def truncate(text: str, limit: int = MAX_OUTPUT_CHARS) -> str:
    """Keep the head and tail of ``text`` with a visible marker in between."""
    if len(text) <= limit:
        return text
    head, tail = limit * 2 // 3, limit // 3
    cut = len(text) - head - tail
    return f"{text[:head]}\n[... {cut} characters truncated ...]\n{text[-tail:]}"


def resolve(rel: str) -> str:
    """``rel`` as a path relative to the workspace (``/workspace/...`` accepted), with
    ``.`` and ``..`` resolved by name; raises :class:`ToolError` if it leaves the workspace.
    Links are not resolved here: the file operations refuse them when they open the path."""
    rel = rel.strip()
    if rel == "/workspace" or rel.startswith("/workspace/"):
        rel = rel[len("/workspace"):].lstrip("/") or "."
    elif rel.startswith("/"):
        raise ToolError(f"Path {rel!r} is outside /workspace.")
    if not rel or "\x00" in rel:
        raise ToolError(f"Invalid path {rel!r}.")
    try:
        return "/".join(fs.split(rel)) or "."
    except fs.UnsafePathError:
        raise ToolError(f"Path {rel!r} is outside /workspace.") from None


@contextmanager
def _host_fs(tool: str, rel: str) -> Iterator[None]:
    """Turn a refused or failed workspace file operation into a :class:`ToolError`."""
    try:
        yield
    except fs.UnsafePathError as exc:
        raise ToolError(f"{tool}: {exc}.") from None
    except FileNotFoundError:
        raise ToolError(f"No such file: {rel}") from None
    except tree.OverLimit:
        raise ToolError(f"{tool}: {rel} holds too many entries to list.") from None
    except OSError as exc:
        raise ToolError(f"{tool}: {rel}: {exc.strerror or exc}") from None


def _read(work: Path, path: str, rel: str, tool: str) -> str:
    with _host_fs(tool, rel):
        if fs.kind(work, path) == "dir":
            raise ToolError(f"No such file: {rel} is a folder (view lists it).")
        data = fs.read_bytes(work, path, MAX_FILE_BYTES)
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise ToolError(f"Cannot read {rel}: not UTF-8 text ({exc.reason} at byte "
                        f"{exc.start}).") from None


def _listing(work: Path, path: str) -> str:
    """Up to :data:`MAX_LIST_ENTRIES` entries beneath the folder ``path``, sorted."""
    lines, cut = [], False
    try:
        for e in tree.walk(work, path, max_entries=MAX_LIST_SCAN,
                           skip=lambda name: name == "__pycache__"):
            if len(lines) == MAX_LIST_ENTRIES:
                cut = True
                break
            suffix = {"dir": "/", "file": "", "link": f" -> {e.target}"}.get(e.kind,
                                                                            f" [{e.kind}]")
            lines.append(e.rel + suffix)
    except tree.OverLimit:
        cut = True
    if cut:
        lines.append(f"[... listing cut at {len(lines)} entries ...]")
    return "\n".join(lines) or "(empty directory)"


def view(work: Path, rel: str, start: int | None = None, end: int | None = None) -> str:
    """Numbered lines ``start..end`` of a file, or a sorted listing of a directory."""
    start = _check_number("view", "start", start)
    end = _check_number("view", "end", end)
    path = resolve(rel)
    with _host_fs("view", rel):
        if fs.kind(work, path) == "dir":
            return _listing(work, path)
    lines = _read(work, path, rel, "view").splitlines()
    first = max(1, int(start or 1))
    last = len(lines) if end is None else min(len(lines), int(end))
    if lines and first > len(lines):
        raise ToolError(f"start={first} is past the end of {rel} ({len(lines)} lines).")
    if end is not None and end < first:
        raise ToolError(f"view: end={end} is before start={first}.")
    last = min(last, first + MAX_VIEW_LINES - 1)
    body = "\n".join(f"{n:4d}  {lines[n - 1]}" for n in range(first, last + 1))
    return f"{rel} (lines {first}-{last} of {len(lines)})\n{body}"


def edit(work: Path, rel: str, old: str, new: str) -> str:
    """Replace the one occurrence of ``old`` by ``new``."""
    path = resolve(rel)
    text = _read(work, path, rel, "edit")
    if not old:
        raise ToolError("edit: `old` must not be empty.")
    count = text.count(old)
    if count == 0:
        raise ToolError(f"edit: `old` was not found in {rel}; view the file and copy the "
                        "text exactly (whitespace included).")
    if count > 1:
        raise ToolError(f"edit: `old` occurs {count} times in {rel}; include more "
                        "surrounding lines so it is unique.")
    data = _encode(text.replace(old, new, 1), "edit")
    if len(data) > MAX_FILE_BYTES:
        raise ToolError(f"edit: the result is larger than {MAX_FILE_BYTES} bytes.")
    with _host_fs("edit", rel):
        fs.write_bytes(work, path, data)
    line = text[:text.index(old)].count("\n") + 1
    return f"Edited {rel}: replaced {len(old.splitlines()) or 1} line(s) at line {line}."


def create(work: Path, rel: str, content: str) -> str:
    """Write ``content`` to a (new or existing) file, making missing folders."""
    path = resolve(rel)
    data = _encode(content, "create")
    if len(data) > MAX_FILE_BYTES:
        raise ToolError(f"create: content is larger than {MAX_FILE_BYTES} bytes.")
    with _host_fs("create", rel):
        existed = fs.write_bytes(work, path, data, parents=True)
    return f"{'Overwrote' if existed else 'Created'} {rel} ({len(content.splitlines())} lines)."


def _encode(text: str, tool: str) -> bytes:
    try:
        return text.encode("utf-8")
    except UnicodeEncodeError as exc:
        raise ToolError(f"{tool}: the text is not valid UTF-8 (a lone surrogate at index "
                        f"{exc.start}); nothing was written.") from None
