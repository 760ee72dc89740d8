"""Prompt template of the Maze family."""


def system_prompt(task: str) -> str:
    """System instructions for a model walking a maze."""
    return (
        "You are in a maze. Walk from A to the goal G. Symbols: # wall, . open cell.\n"
        "Each turn, think briefly inside <think>...</think>, then give exactly one move "
        "inside <action>...</action>: up, down, left or right.\n"
        f"{task}"
    )
