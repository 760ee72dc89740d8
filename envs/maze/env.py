"""``turngym/Maze-v0``: walk from the start to the goal of a generated maze."""

from __future__ import annotations

import zlib
from collections import deque
from functools import lru_cache
from typing import Any

import numpy as np

from turngym.envs.core import TurnEnv
from turngym.envs.grid import MOVES, invalid_move_text, parse_move

Pos = tuple[int, int]
SPLITS = {"train": 2000, "test": 200}


@lru_cache(maxsize=4096)
def make_maze(split: str, index: int, size: int) -> tuple[tuple[bool, ...], ...]:
    """A perfect maze (depth-first carving) of ``(2*size+1)`` cells a side; True = wall."""
    rng = np.random.default_rng(zlib.crc32(f"maze/{split}/{index}/{size}".encode()))
    n = 2 * size + 1
    walls = np.ones((n, n), dtype=bool)
    stack = [(0, 0)]
    seen = {(0, 0)}
    walls[1, 1] = False
    while stack:
        r, c = stack[-1]
        nbrs = [(r + dr, c + dc) for dr, dc in MOVES.values()
                if 0 <= r + dr < size and 0 <= c + dc < size and (r + dr, c + dc) not in seen]
        if not nbrs:
            stack.pop()
            continue
        nr, nc = nbrs[int(rng.integers(len(nbrs)))]
        walls[2 * nr + 1, 2 * nc + 1] = False
        walls[r + nr + 1, c + nc + 1] = False  # the wall cell between the two
        seen.add((nr, nc))
        stack.append((nr, nc))
    return tuple(map(tuple, walls.tolist()))


def shortest_path(walls: tuple[tuple[bool, ...], ...], start: Pos, goal: Pos) -> list[str]:
    """BFS moves from ``start`` to ``goal`` (a perfect maze always connects them)."""
    parent: dict[Pos, tuple[Pos, str] | None] = {start: None}
    queue = deque([start])
    while queue:
        p = queue.popleft()
        if p == goal:
            break
        for move, (dr, dc) in MOVES.items():
            q = (p[0] + dr, p[1] + dc)
            if not walls[q[0]][q[1]] and q not in parent:
                parent[q] = (p, move)
                queue.append(q)
    path, p = [], goal
    while parent[p] is not None:
        p, move = parent[p]
        path.append(move)
    return path[::-1]


class MazeEnv(TurnEnv):
    """A generated maze in a text grid.

    **Description.** The agent (``A``) walks through a perfect maze (exactly one path
    between any two cells) to the goal (``G``). With ``view="local"`` it sees only the 3x3
    cells around it, which makes memory matter.

    **Actions.** ``up``, ``down``, ``left``, ``right`` (case-insensitive; ``move up``
    works). A move into a wall is well-formed but impossible: ``"Nothing happens."`` and
    ``action_valid=False``. Anything else is invalid.

    **Observations.** The grid (``#`` wall, ``.`` open, ``A`` agent, ``G`` goal), whole or
    local, and the agent's position.

    **Tools.** None.

    **Rewards.** ``win_reward`` (default 1) on reaching the goal, else 0.

    **Episode end.** ``terminated`` at the goal; the turn budget (40) truncates.

    **Info keys.** ``state_key`` (``maze-id@row,col``), ``action_valid``, ``won``,
    ``task_id``, ``admissible_actions`` (moves not into a wall), ``distance`` (shortest
    path length to the goal, int).

    **Arguments.** ``size`` (cells a side, 2..12, default 4), ``view`` (``full`` or
    ``local``), ``split`` (``train``: 2000 tasks, ``test``: 200), ``win_reward``.

    **Version history.** v0: first version.
    """

    family = "maze"
    splits = tuple(SPLITS)
    extra_info_keys = ("distance",)

    def __init__(self, size: int = 4, view: str = "full", split: str = "train",
                 win_reward: float = 1.0, render_mode: str | None = None):
        super().__init__(render_mode)
        if not 2 <= size <= 12:
            raise ValueError(f"size must be in 2..12, got {size}")
        if view not in ("full", "local"):
            raise ValueError(f"view must be 'full' or 'local', got {view!r}")
        if split not in SPLITS:
            raise ValueError(f"split must be one of {sorted(SPLITS)}, got {split!r}")
        self.size, self.view, self.split, self.win_reward = size, view, split, float(win_reward)
        self.walls: tuple[tuple[bool, ...], ...] = ()
        self.pos: Pos = (1, 1)
        self.goal: Pos = (1, 1)

    def task_ids(self, split: str | None = None) -> list[str]:
        split = split or self.split
        return [f"{split}-{i:05d}" for i in range(SPLITS[split])]

    def _reset(self, task_id: str) -> str:
        split, index = task_id.rsplit("-", 1)
        self.walls = make_maze(split, int(index), self.size)
        n = 2 * self.size + 1
        self.pos, self.goal = (1, 1), (n - 2, n - 2)
        return self._render("Reach the goal G.")

    def _step(self, action: str) -> tuple[str, float, bool, bool, bool]:
        move = parse_move(action)
        if move is None:
            return invalid_move_text(action) + "\n" + self._render(), 0.0, False, False, False
        dr, dc = MOVES[move]
        nxt = (self.pos[0] + dr, self.pos[1] + dc)
        if self.walls[nxt[0]][nxt[1]]:
            return "Nothing happens.\n" + self._render(), 0.0, False, False, False
        self.pos = nxt
        won = self.won()
        return self._render(f"You moved {move}."), self.win_reward if won else 0.0, won, True, won

    def won(self) -> bool:
        return bool(self.walls) and self.pos == self.goal

    def state_key(self) -> str:
        return f"{self.task_id}@{self.pos[0]},{self.pos[1]}"

    def admissible_actions(self) -> list[str]:
        return [m for m, (dr, dc) in MOVES.items()
                if not self.walls[self.pos[0] + dr][self.pos[1] + dc]]

    def extra_info(self) -> dict[str, Any]:
        return {"distance": len(shortest_path(self.walls, self.pos, self.goal))}

    def expert_action(self) -> str | None:
        path = shortest_path(self.walls, self.pos, self.goal)
        return path[0] if path else None

    def _state(self) -> Any:
        return (self.walls, self.pos, self.goal)

    def _set_state(self, state: Any) -> None:
        self.walls, self.pos, self.goal = state

    def _render(self, header: str = "") -> str:
        r0, r1, c0, c1 = 0, len(self.walls), 0, len(self.walls)
        if self.view == "local":
            r0, r1 = self.pos[0] - 1, self.pos[0] + 2
            c0, c1 = self.pos[1] - 1, self.pos[1] + 2
        rows = []
        for r in range(r0, r1):
            row = ""
            for c in range(c0, c1):
                row += ("A" if (r, c) == self.pos else "G" if (r, c) == self.goal
                        else "#" if self.walls[r][c] else ".")
            rows.append(row)
        lines = [header] if header else []
        return "\n".join(lines + rows + [f"You are at row {self.pos[0]}, column {self.pos[1]}."])
