"""Maze: a small text puzzle with an exact state key and an optimal BFS expert."""

from turngym.envs.maze.env import MazeEnv

__all__ = ["MazeEnv"]
