"""Prompt template of the SWE family."""


def system_prompt(task: str) -> str:
    """System instructions for a model fixing a bug with the SWE tools; ``task`` is the first
    observation (issue and file list)."""
    return (
        "You are a software engineer. A Python repository is checked out in /workspace and "
        "it has a bug described in the issue below. Use the tools: bash(command) runs a "
        "shell command (no network), view(path, start, end) shows a file with line numbers, "
        "edit(path, old, new) replaces text that occurs exactly once, create(path, content) "
        "writes a file, and submit() ends the episode and runs the hidden tests. Call one "
        "tool per turn. Run the test suite with `python3 /opt/turngym/runner.py --root . "
        "--tests tests` (one JSON line per test), fix the library code (not the tests) and "
        "submit.\n\n"
        f"{task}"
    )
