"""ALFWorld's PDDL domain and text grammar, read from the installed ``alfworld`` wheel.

``alfworld-download`` is never needed: both files ship inside the wheel
(``alfworld/data/alfred.pddl`` and ``alfworld/data/alfred.twl2``).
"""

from __future__ import annotations

from functools import lru_cache
from importlib import resources

from turngym.envs.household.pddl import export_problem
from turngym.envs.household.sim import HouseState
from turngym.envs.household.tasks import Task
from turngym.errors import MissingDependencyError


def _read(name: str) -> str:
    try:
        return resources.files("alfworld").joinpath("data", name).read_text()
    except ModuleNotFoundError as exc:
        raise MissingDependencyError(
            "ALFWorld's PDDL engine needs textworld and alfworld; install them with "
            "`pip install turngym[classic]`") from exc


@lru_cache(maxsize=1)
def alfred_domain() -> str:
    """The text of ``alfred.pddl`` (ALFRED's PDDL domain)."""
    return _read("alfred.pddl")


@lru_cache(maxsize=1)
def alfred_grammar() -> str:
    """The text of ``alfred.twl2`` (ALFWorld's TextWorld grammar; goal is ``UNKNOWN GOAL``)."""
    return _read("alfred.twl2")


def with_goal(grammar: str, goal_text: str) -> str:
    """The grammar with the intro's goal filled in, as ALFWorld's ``add_task_to_grammar``."""
    return grammar.replace("UNKNOWN GOAL", goal_text.rstrip("."))


def tw_pddl_game(task: Task, state: HouseState | None = None) -> dict:
    """A TextWorld ``.tw-pddl`` game (domain, grammar with the goal text, problem) for
    ``task`` in ``state`` (default: its start)."""
    return {"pddl_domain": alfred_domain(), "grammar": with_goal(alfred_grammar(), task.text),
            "pddl_problem": export_problem(task, state), "solvable": True}
