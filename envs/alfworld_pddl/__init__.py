"""ALFWorld's real PDDL engine beside the household simulator.

``AlfworldPddlEnv`` (``turngym/ALFWorld-PDDL-v0``) plays generated household tasks through
TextWorld's PDDL engine with ALFWorld's domain and grammar; ``AlfworldOfficialEnv`` loads
the official ALFWorld game files when a user has them on disk. Importing this package
imports neither textworld nor alfworld; they load on first use.
"""

from turngym.envs.alfworld_pddl.env import AlfworldPddlEnv
from turngym.envs.alfworld_pddl.official import AlfworldOfficialEnv

__all__ = ["AlfworldOfficialEnv", "AlfworldPddlEnv"]
