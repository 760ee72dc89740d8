"""Unified diffs (``git diff`` output) as data, applied on the host side of a workspace.

SWE-bench-style instances carry their gold ``patch`` and hidden ``test_patch`` as unified
diffs. :func:`parse_diff` splits one into per-file hunks; :func:`hunk_edits` turns hunks
into exact ``(old, new)`` text replacements (what the ``edit`` tool does), and
:func:`apply_diff` applies a diff to a folder without needing ``git`` or ``patch`` inside
the sandbox image. It reads and writes through :mod:`turngym.envs.swe.safe_fs`, so a path that
leaves the folder, goes through a link, or names a special or hard-linked file is a
:class:`PatchError`, never a write outside.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path

from turngym.envs.swe import safe_fs as fs
from turngym.errors import TurngymError

_HUNK = re.compile(r"^@@ -(\d+)(?:,(\d+))? \+(\d+)(?:,(\d+))? @@")


class PatchError(TurngymError, ValueError):
    """A diff does not parse or does not apply."""


@dataclass
class FilePatch:
    """The changes to one file."""

    path: str
    """Path after the change (``b/`` stripped); the old path for a deletion."""
    new_file: bool = False
    deleted: bool = False
    hunks: list[tuple[str, str]] = field(default_factory=list)
    """``(old text, new text)`` of each hunk, context lines included."""


def _strip(name: str) -> str:
    name = name.split("\t")[0].strip()
    return name[2:] if name[:2] in ("a/", "b/") else name


def parse_diff(diff: str) -> list[FilePatch]:
    """Parse a unified diff with one or more files."""
    files: list[FilePatch] = []
    lines = diff.splitlines(keepends=True)
    i = 0
    while i < len(lines):
        line = lines[i]
        if line.startswith("--- "):
            old = _strip(line[4:])
            if i + 1 >= len(lines) or not lines[i + 1].startswith("+++ "):
                raise PatchError(f"line {i + 1}: '---' without '+++'")
            new = _strip(lines[i + 1][4:])
            fp = FilePatch(path=old if new == "/dev/null" else new, new_file=old == "/dev/null",
                           deleted=new == "/dev/null")
            files.append(fp)
            i += 2
            continue
        match = _HUNK.match(line)
        if match:
            if not files:
                raise PatchError(f"line {i + 1}: hunk before any file header")
            n_old = int(match.group(2) or 1) if match.group(2) != "0" else 0
            n_new = int(match.group(4) or 1) if match.group(4) != "0" else 0
            old_text, new_text, i = _read_hunk(lines, i + 1, n_old, n_new)
            files[-1].hunks.append((old_text, new_text))
            continue
        i += 1
    if not files:
        raise PatchError("no file headers ('--- a/...', '+++ b/...') in the diff")
    return files


def _read_hunk(lines: list[str], i: int, n_old: int, n_new: int) -> tuple[str, str, int]:
    old, new = [], []
    while (len(old) < n_old or len(new) < n_new) and i < len(lines):
        line = lines[i]
        if line.startswith("\\"):  # "\ No newline at end of file"
            i += 1
            continue
        tag, body = line[:1], line[1:]
        if line in ("\n", ""):
            tag, body = " ", "\n"
        if tag == " ":
            old.append(body)
            new.append(body)
        elif tag == "-":
            old.append(body)
        elif tag == "+":
            new.append(body)
        else:
            raise PatchError(f"line {i + 1}: unexpected {line[:20]!r} inside a hunk")
        i += 1
    while i < len(lines) and lines[i].startswith("\\"):
        i += 1
    return "".join(old), "".join(new), i


def hunk_edits(diff: str) -> list[tuple[str, str, str, str]]:
    """``(kind, path, old, new)`` steps that apply ``diff``: ``edit`` per hunk,
    ``create`` for a new file (``new`` is its content), ``delete`` for a removed file."""
    steps = []
    for fp in parse_diff(diff):
        if fp.deleted:
            steps.append(("delete", fp.path, "", ""))
        elif fp.new_file:
            steps.append(("create", fp.path, "", "".join(n for _, n in fp.hunks)))
        else:
            steps.extend(("edit", fp.path, old, new) for old, new in fp.hunks)
    return steps


#: Largest file a patch reads.
MAX_PATCH_FILE_BYTES = 16 << 20


def apply_diff(root: Path, diff: str) -> list[str]:
    """Apply ``diff`` under ``root``; returns the changed paths. Each hunk's old text must
    occur exactly once in its file (context lines make that the usual case). Raises
    :class:`PatchError` when it does not apply or touches a path the host may not open
    (see :mod:`turngym.envs.swe.safe_fs`); files changed before that stay changed."""
    changed = []
    for kind, path, old, new in hunk_edits(diff):
        try:
            _apply_one(root, kind, path, old, new)
        except fs.UnsafePathError as exc:
            raise PatchError(f"{path}: {exc}") from None
        except OSError as exc:
            raise PatchError(f"{path}: {exc.strerror or exc}") from None
        except UnicodeError:
            raise PatchError(f"{path}: the file or the patch is not valid UTF-8 text") from None
        changed.append(path)
    return changed


def _apply_one(root: Path, kind: str, path: str, old: str, new: str) -> None:
    if kind == "delete":
        fs.remove_file(root, path)
    elif kind == "create":
        fs.write_bytes(root, path, new.encode(), parents=True)
    else:
        try:
            text = fs.read_bytes(root, path, MAX_PATCH_FILE_BYTES).decode()
        except FileNotFoundError:
            text = ""
        if text.count(old) != 1:
            raise PatchError(f"{path}: a hunk's old text occurs {text.count(old)} times")
        fs.write_bytes(root, path, text.replace(old, new, 1).encode())
