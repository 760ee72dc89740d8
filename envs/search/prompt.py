"""Prompt template of the Search family."""


def system_prompt(task: str) -> str:
    """System instructions for a model answering a question with a search tool."""
    return (
        "You answer questions by searching a collection of encyclopedia passages.\n"
        "Each turn, think briefly inside <think>...</think>, then call exactly one tool:\n"
        "- <search>query</search> returns the top passages (id, title, text). Search for "
        "one entity at a time, e.g. a full name, plus what you want to know.\n"
        "- <answer>text</answer> gives your final answer and ends the episode. Answer with "
        "the short name, year or phrase only.\n"
        "Questions may need several searches: find the entity the question describes "
        "first, then search for it.\n"
        f"{task}"
    )
