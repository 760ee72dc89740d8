"""Adapter for the real ScienceWorld engine (``pip install turngym[classic]``)."""

from turngym.envs.scienceworld.env import ScienceWorldEnv

__all__ = ["ScienceWorldEnv"]
