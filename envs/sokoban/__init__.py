"""Sokoban: a small text puzzle with an exact state key and an optimal BFS expert."""

from turngym.envs.sokoban.env import SokobanEnv

__all__ = ["SokobanEnv"]
