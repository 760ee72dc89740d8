"""turngym environments: the contract, the registry, and the built-in envs.

``turngym.make("turngym/Sokoban-v0")`` builds an env; ``gymnasium.make`` works too.
Built-in envs are registered here by entry-point string, so importing ``turngym.envs`` imports no
env module (and no optional dependency).
"""

from turngym.envs.core import INFO_KEYS, TurnEnv, TurnLimit, unwrapped_turn_env
from turngym.envs.registration import EnvSpec, list_ids, make, register, registry, spec
from turngym.errors import (
    ConfigError,
    DuplicateEnvError,
    MissingDependencyError,
    TurngymError,
    UnknownEnvError,
    UnknownTaskError,
)

__all__ = [
    "INFO_KEYS", "TurnEnv", "TurnLimit", "unwrapped_turn_env", "ConfigError",
    "DuplicateEnvError", "MissingDependencyError", "TurngymError", "UnknownEnvError",
    "UnknownTaskError", "EnvSpec", "list_ids", "make", "register", "registry", "spec",
]

# Built-in envs: (id, entry point, max_turns, default kwargs, requires, extra).
# One line per env id; add yours here.
_BUILTIN = [
    ("turngym/Sokoban-v0", "turngym.envs.sokoban:SokobanEnv", 30, {}, (), None),
    ("turngym/Maze-v0", "turngym.envs.maze:MazeEnv", 40, {}, (), None),
    ("turngym/Household-v0", "turngym.envs.household:HouseholdEnv", 50, {}, (), None),
    ("turngym/ALFWorld-PDDL-v0", "turngym.envs.alfworld_pddl:AlfworldPddlEnv", 50, {},
     ("textworld", "alfworld"), "classic"),
    ("turngym/SWE-v0", "turngym.envs.swe:SWEEnv", 30, {}, (), None),
    ("turngym/WebShop-v0", "turngym.envs.webshop:WebShopEnv", 15, {"mode": "text"}, (), None),
    ("turngym/WebShopBrowser-v0", "turngym.envs.webshop:WebShopEnv", 15, {"mode": "browser"},
     ("playwright",), "web"),
    ("turngym/Search-v0", "turngym.envs.search:SearchEnv", 4, {}, (), None),
    ("turngym/ScienceWorld-v0", "turngym.envs.scienceworld:ScienceWorldEnv", 100, {},
     ("scienceworld",), "classic"),
    ("turngym/TextWorld-v0", "turngym.envs.textworld_games:TextWorldEnv", 50, {},
     ("textworld",), "classic"),
]

for _id, _entry, _turns, _kwargs, _requires, _extra in _BUILTIN:
    if _id not in registry:
        register(_id, _entry, max_turns=_turns, kwargs=_kwargs, requires=_requires, extra=_extra)
