"""Prompt template of the WebShop family."""


def system_prompt(task: str) -> str:
    """System instructions for a model shopping in the web shop."""
    return (
        "You are shopping in a web store for a product that fits the instruction. Each page "
        "shows the instruction and the page content; clickable elements are written [like "
        "this].\nActions: search[query] (only on the search page) and click[element], where "
        "element is exactly one of the page's clickables: a product id, an option value, "
        "'next >', '< prev', 'back to search', 'description', 'features', 'reviews' or "
        "'buy now'. Choose the options the instruction asks for before you click buy now; "
        "you are scored on how well the bought product matches.\n"
        "Each turn, think briefly inside <think>...</think>, then give exactly one action "
        "inside <action>...</action>.\n"
        f"{task}"
    )
