"""Sokoban's legend explains every glyph its renderer can draw (the renderer's table,
:data:`turngym.envs.sokoban.env.GLYPHS`, is the one source of both)."""

from __future__ import annotations

import numpy as np

from turngym import envs
from turngym.envs.sokoban import env as sokoban
from turngym.envs.sokoban.env import GLYPHS, LEGEND
from turngym.envs.sokoban.prompt import system_prompt


def _grid(env, boxes, player) -> str:
    """The board drawn for ``(boxes, player)`` on the env's current level."""
    level = env.unwrapped.level
    env.unwrapped._set_state((level, frozenset(boxes), player))
    return "\n".join(env.unwrapped._grid())


def test_legend_text_is_exact() -> None:
    assert LEGEND == ("Symbols: # wall, _ floor, O target, X box, √ box on target, P you, "
                      "S you on a target.")


def test_every_glyph_the_renderer_draws_is_in_the_legend() -> None:
    env = envs.make("turngym/Sokoban-v0", num_boxes=2, height=8, width=8)
    env.reset(seed=0, options={"task_id": "train-00000"})
    level = env.unwrapped.level
    t1, t2 = sorted(level.targets)
    free = sorted(p for p in np.ndindex(8, 8)
                  if not level.walls[p[0]][p[1]] and p not in level.targets)
    boards = [
        _grid(env, level.boxes, level.player),  # the level as dealt
        _grid(env, {t1, free[0]}, t2),           # a box on a target, the player on one
        _grid(env, {free[0], free[1]}, free[2]),  # both targets empty
    ]
    drawn = {ch for board in boards for ch in board if ch != "\n"}
    assert drawn == set(GLYPHS.values())  # these boards show the whole table
    for glyph, what in ((g, w) for w, g in GLYPHS.items()):
        assert f"{glyph} {what}" in LEGEND
    env.close()


def test_random_play_draws_only_legend_glyphs() -> None:
    rng = np.random.default_rng(0)
    drawn: set[str] = set()
    for task in range(20):
        env = envs.make("turngym/Sokoban-v0", num_boxes=2)
        _, info = env.reset(seed=task, options={"task_id": f"train-{task:05d}"})
        for _ in range(15):
            drawn.update(info["state_key"].replace("/", ""))
            _, _, term, trunc, info = env.step(str(rng.choice(["up", "down", "left", "right"])))
            if term or trunc:
                break
        env.close()
    assert drawn <= set(GLYPHS.values())
    assert {GLYPHS["wall"], GLYPHS["floor"], GLYPHS["you"], GLYPHS["box"]} <= drawn


def test_the_renderer_draws_from_the_table(monkeypatch) -> None:
    env = envs.make("turngym/Sokoban-v0")
    env.reset(seed=0, options={"task_id": "train-00000"})
    monkeypatch.setitem(sokoban.GLYPHS, "box", "B")
    board = _grid(env, env.unwrapped.level.boxes, env.unwrapped.level.player)
    assert "B" in board and "X" not in board
    env.close()


def test_first_observation_and_prompt_carry_the_legend() -> None:
    env = envs.make("turngym/Sokoban-v0")
    obs, _ = env.reset(seed=0, options={"task_id": "train-00000"})
    assert obs.splitlines()[:2] == ["Push every box (X) onto a target (O).", LEGEND]
    assert system_prompt(obs).startswith(
        "You are playing Sokoban. Push every box (X) onto a target (O). Symbols: # wall, "
        "_ floor, O target, X box, √ box on target, P you, S you on a target. You can push "
        "a box but never pull it.\n")
    assert system_prompt(obs).endswith("\nPush every box (X) onto a target (O).")
    env.close()
