"""Household: ALFWorld-like tasks in a fast pure-Python world, with an expert planner,
fixed splits and a PDDL export for ALFWorld's own engine (``turngym.envs.alfworld_pddl``)."""

from turngym.envs.household.env import HouseholdEnv

__all__ = ["HouseholdEnv"]
