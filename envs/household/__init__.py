"""Household: ALFWorld-like tasks in a fast pure-Python world, with an expert planner,
fixed splits and a PDDL export for ALFWorld's own engine (``envs.alfworld_pddl``)."""

from envs.household.env import HouseholdEnv

__all__ = ["HouseholdEnv"]
