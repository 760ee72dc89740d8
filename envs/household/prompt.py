"""Prompt template of the household family (``turngym/Household-v0``, ALFWorld-PDDL)."""

PROMPT_TEMPLATE = (
    "You are an expert agent operating in a household. Your task is to: {task}\n"
    "Each turn you see what happened and the list of admissible actions. Commands look "
    "like: go to cabinet 1, open fridge 1, close fridge 1, take apple 1 from countertop 1, "
    "put apple 1 in/on fridge 1, clean apple 1 with sinkbasin 1, heat apple 1 with "
    "microwave 1, cool apple 1 with fridge 1, use desklamp 1, examine apple 1, look, "
    "inventory. You can carry one object at a time.\n"
    "First think step by step inside <think>...</think>, then give exactly one admissible "
    "action inside <action>...</action>."
)


def system_prompt(task: str) -> str:
    """System instructions for a model solving the household ``task`` (its goal text)."""
    return PROMPT_TEMPLATE.format(task=task)
