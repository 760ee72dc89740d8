"""Prompt template of the Maze family."""


def system_prompt(task: str) -> str:
    """System instructions for a model walking a maze."""
    return (
        "You are in a maze. Walk from A to the goal G. Symbols: # wall, . open cell.\n"
        "Each turn, think briefly inside <think>...</think>, then give exactly one move "
        "inside <action>...</action>: up, down, left or right.\n"
        # Only the instruction line of the task: the first observation's grid would go
        # stale after one move, and the current grid is in the user message every turn.
        f"{task.splitlines()[0] if task else ''}"
    )
