"""Moves shared by the grid puzzles (Sokoban, Maze)."""

from __future__ import annotations

import re

#: Action word -> (row delta, column delta).
MOVES: dict[str, tuple[int, int]] = {"up": (-1, 0), "down": (1, 0), "left": (0, -1),
                                     "right": (0, 1)}

_MOVE_RE = re.compile(r"^\s*(?:move\s+|go\s+)?(up|down|left|right)\s*[.!]?\s*$", re.IGNORECASE)


def parse_move(action: str) -> str | None:
    """``"up"``, ``"Move left"``, ``" DOWN "`` -> the move word; anything else -> ``None``."""
    m = _MOVE_RE.match(action)
    return m.group(1).lower() if m else None


def invalid_move_text(action: str) -> str:
    shown = action if len(action) <= 40 else action[:40] + "..."
    return (f"Invalid action {shown!r}: expected one of up, down, left, right.")
