"""Offline generation and on-disk caching of TextWorld games, by family, level and seed."""

from __future__ import annotations

import fcntl
import logging
import os
import threading
from pathlib import Path

logger = logging.getLogger(__name__)

KINDS = ("custom", "coin_collector", "treasure_hunter")
LEVELS = (1, 2, 3)
#: Seed ranges (start, stop) of each split; the same for every family and level.
SPLIT_SEEDS = {"train": (0, 100), "test": (10_000, 10_020)}
#: Our difficulty level -> the challenge's own level setting.
CHALLENGE_LEVELS = {"coin_collector": {1: 1, 2: 5, 3: 10}, "treasure_hunter": {1: 1, 2: 10, 3: 20}}
#: TextWorld's generator keeps global state: one generation at a time per process (threads);
#: the file lock in :func:`game_file` serialises processes.
_generate_lock = threading.Lock()
#: Starting a game parses its logic and grammar with tatsu, whose parser state is shared
#: between threads ("pop from empty list", "expecting '->'" when two resets overlap): one
#: start + reset at a time per process. Steps do not parse and run concurrently.
load_lock = threading.Lock()
#: Some seeds admit no quest of the asked length; then seeds ``seed + k * SEED_STRIDE`` are
#: tried in order, so a task id always maps to the same game.
SEED_STRIDE, SEED_TRIES = 1_000_003, 8


def cache_dir() -> Path:
    root = Path(os.environ.get("TURNGYM_CACHE", Path.home() / ".cache" / "turngym"))
    path = root / "textworld"
    path.mkdir(parents=True, exist_ok=True)
    return path


def parse_task_id(task_id: str) -> tuple[str, int, int]:
    """``"custom-L2-17"`` -> ``("custom", 2, 17)``."""
    kind, rest = task_id.rsplit("-L", 1)
    level, seed = rest.split("-", 1)
    return kind, int(level), int(seed)


def _make_game(kind: str, level: int, seed: int, path: Path):
    import textworld
    import textworld.challenges

    options = textworld.GameOptions()
    options.seeds = seed
    options.path = str(path)
    options.force_recompile = True
    if kind == "custom":  # what `tw-make custom --world-size --nb-objects --quest-length` does
        options.nb_rooms, options.nb_objects, options.quest_length = 1 + level, 2 + 2 * level, level
        return textworld.generator.make_game(options), options
    make = textworld.challenges.CHALLENGES[f"tw-{kind}"][1]
    return make({"level": CHALLENGE_LEVELS[kind][level]}, options), options


def _generate(kind: str, level: int, seed: int, path: Path):
    """:func:`_make_game` with the deterministic fallback seeds of :data:`SEED_STRIDE`."""
    from textworld.generator import QuestGenerationError

    for k in range(SEED_TRIES):
        try:
            return _make_game(kind, level, seed + k * SEED_STRIDE, path)
        except QuestGenerationError as exc:
            logger.info("no %s level %d quest for seed %d (%s); next seed", kind, level,
                        seed + k * SEED_STRIDE, exc)
    raise RuntimeError(f"TextWorld found no {kind} level {level} quest for seed {seed} "
                       f"in {SEED_TRIES} tries")


def game_file(task_id: str) -> Path:
    """The compiled game of ``task_id``, generating it once (safe across processes)."""
    import textworld

    kind, level, seed = parse_task_id(task_id)
    path = cache_dir() / f"{task_id}.z8"
    if path.exists():
        return path
    with _generate_lock, open(cache_dir() / f".{task_id}.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)  # another process may be compiling the same game
        if not path.exists():
            tmp = path.with_name(f".tmp-{os.getpid()}-{path.name}")
            game, options = _generate(kind, level, seed, tmp)
            textworld.generator.compile_game(game, options)
            for suffix in (".json", ".ni"):  # side files the engine reads next to the game
                side = tmp.with_suffix(suffix)
                if side.exists():
                    side.rename(path.with_suffix(suffix))
            tmp.rename(path)
    return path
