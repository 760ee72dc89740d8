"""Adapter for TextWorld's generated games (``pip install turngym[classic]``)."""

from turngym.envs.textworld_games.env import TextWorldEnv

__all__ = ["TextWorldEnv"]
