"""A thin driver around TextWorld's PDDL engine (``textworld.envs.pddl.PddlEnv``).

It loads ALFWorld games (a PDDL problem for ``alfred.pddl`` plus the ``alfred.twl2``
grammar), renames PDDL ids to readable names (``apple_1`` -> ``apple 1``, as ALFWorld's
``AlfredDemangler`` does), and parses the domain and grammar once per process instead of
once per game (the parse takes seconds). textworld and alfworld are imported only here.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from dataclasses import dataclass
from functools import lru_cache
from typing import Any

from turngym.errors import MissingDependencyError

logger = logging.getLogger(__name__)

GOAL_PLACEHOLDER = "UNKNOWN GOAL"
#: Idle engines kept for reuse. Every ``PddlEnv`` loads its own copy of fast-downward's
#: shared library (33 MB on disk, about 2 MB resident), which is never unloaded: without
#: reuse each env that was ever built kept ~2 MB after ``close()``. With the pool the
#: resident copies are bounded by the number of envs open at once (plus this many idle).
POOL_LIMIT = 64
_pool: dict[bool, list[PddlEngine]] = {False: [], True: []}
_pool_lock = threading.Lock()


@lru_cache(maxsize=4)
def _game_logic(domain: str, grammar: str) -> Any:
    from textworld.envs.pddl import logic as pddl_logic

    return pddl_logic.GameLogic(domain=domain, grammar=grammar)


@dataclass
class EngineStep:
    """What the engine reports after ``reset`` or ``step``."""

    feedback: str
    admissible: list[str]
    won: bool
    valid: bool


class PddlEngine:
    """One TextWorld ``PddlEnv`` (one copy of fast-downward's library), reused across games."""

    @classmethod
    def acquire(cls, facts: bool = False) -> PddlEngine:
        """An idle engine from the pool (its library copy reused), else a new one."""
        with _pool_lock:
            if _pool[facts]:
                return _pool[facts].pop()
        return cls(facts)

    def release(self) -> None:
        """Give the engine back to the pool; it drops the loaded game (the caller must not
        use it again). Past :data:`POOL_LIMIT` idle engines it is dropped instead."""
        env = self._env
        env._pddl_state = env._game_data = env._entity_infos = None
        env.prev_state = env.state = None
        self._goal, self._fresh = "", False
        with _pool_lock:
            if len(_pool[self._facts]) < POOL_LIMIT and self not in _pool[self._facts]:
                _pool[self._facts].append(self)

    def __init__(self, facts: bool = False):
        try:
            import textworld
            from textworld.envs.pddl import PddlEnv
        except ImportError as exc:
            raise MissingDependencyError(
                "ALFWorld's PDDL engine needs textworld and alfworld; install them with "
                "`pip install turngym[classic]`") from exc
        infos = textworld.EnvInfos(admissible_commands=True, won=True, facts=facts)
        self._env = PddlEnv(infos)
        self._facts = facts
        self._goal = ""
        self._fresh = False

    def load(self, game: dict, goal_text: str, rename: Callable[[str], str]) -> None:
        """Load ``game`` (``pddl_domain``, ``grammar`` with :data:`GOAL_PLACEHOLDER` left in,
        ``pddl_problem``); ``rename`` maps a PDDL id to the name shown in text."""
        from textworld.envs.pddl import logic as pddl_logic

        env = self._env
        env._game_file, env._game_data, env.walkthrough = None, game, None
        env._logic = _game_logic(game["pddl_domain"], game["grammar"])
        env._pddl_state = pddl_logic.PddlState(env.downward_lib, game["pddl_problem"], env._logic)
        env._entity_infos = env._get_entity_infos()
        for info in env._entity_infos.values():
            info.name = rename(info.id)
        self._goal = goal_text.rstrip(".")
        self._fresh = True

    def reset(self) -> EngineStep:
        """Start the loaded game again (``PddlEnv.reset``, without translating the problem a
        second time right after :meth:`load`)."""
        from textworld.core import GameState
        from textworld.envs.pddl import logic as pddl_logic

        env = self._env
        if not self._fresh:
            env._pddl_state = pddl_logic.PddlState(env.downward_lib,
                                                   env._game_data["pddl_problem"], env._logic)
        self._fresh = False
        env.prev_state, env.state, env._last_action, env._moves = None, GameState(), None, 0
        context = {"state": env._pddl_state, "facts": list(env._pddl_state.facts),
                   "variables": {}, "mapping": {}, "entity_infos": env._entity_infos}
        feedback = env._logic.grammar.derive("#intro#", context)
        env.state.feedback = env.state.raw = feedback
        env._gather_infos()
        return self._report(feedback.replace(GOAL_PLACEHOLDER, self._goal), True)

    def step(self, command: str) -> EngineStep:
        """Apply one engine command; ``valid`` is False when the engine did nothing."""
        before = self._env._moves
        state, _, _ = self._env.step(command)
        return self._report(state.feedback, self._env._moves > before)

    def replan(self) -> list[str]:
        """The engine planner's commands from the current state to the goal."""
        return list(self._env._pddl_state.replan(self._env._entity_infos))

    def facts(self) -> list[str]:
        """The current PDDL facts, as sorted readable strings."""
        return sorted(str(f) for f in self._env.state["facts"])

    def _report(self, feedback: str, valid: bool) -> EngineStep:
        state = self._env.state
        return EngineStep(feedback.strip(), list(state["admissible_commands"]),
                          bool(state["won"]), valid)
