"""Prompt template of the Sokoban family."""

from turngym.envs.sokoban.env import LEGEND


def system_prompt(task: str) -> str:
    """System instructions for a model playing Sokoban."""
    return (
        f"You are playing Sokoban. Push every box (X) onto a target (O). {LEGEND} You can "
        "push a box but never pull it.\n"
        "Each turn, think briefly inside <think>...</think>, then give exactly one move "
        "inside <action>...</action>: up, down, left or right.\n"
        # Only the instruction line of the task: the first observation's grid would go
        # stale after one move, and the current grid is in the user message every turn.
        f"{task.splitlines()[0] if task else ''}"
    )
