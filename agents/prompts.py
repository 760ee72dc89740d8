"""Prompt text: per-family system prompts, the generic default, tools and admissible actions.

Per-env templates live with the env family: ``envs/<family>/prompt.py`` defines
``system_prompt(task: str) -> str``. :func:`system_prompt` uses it when it exists and falls
back to :func:`generic_system_prompt` (or :func:`generic_tool_prompt` for tool envs).
"""

from __future__ import annotations

import importlib
import json
import logging
from collections.abc import Callable
from typing import Any

logger = logging.getLogger(__name__)

_CACHE: dict[str, Callable[[str], str] | None] = {}


def generic_system_prompt(task: str) -> str:
    """The default instructions for a text-action env."""
    return (
        "You are an agent acting in a text environment. Each turn you see an observation. "
        "Think briefly inside <think>...</think>, then give exactly one action inside "
        "<action>...</action>.\n"
        f"Task: {task}"
    )


def generic_tool_prompt(task: str) -> str:
    """The default instructions for a tool env."""
    return (
        "You are an agent that solves tasks with tools. Each turn, think briefly inside "
        "<think>...</think>, then call exactly one tool as "
        '<tool_call>{"name": "<tool name>", "arguments": {...}}</tool_call>.\n'
        f"Task: {task}"
    )


def family_prompt_fn(family: str) -> Callable[[str], str] | None:
    """``turngym.envs.<family>.prompt.system_prompt`` when that module exists, else ``None``."""
    if family not in _CACHE:
        fn = None
        if family and family.isidentifier():
            try:
                mod = importlib.import_module(f"turngym.envs.{family}.prompt")
                fn = getattr(mod, "system_prompt", None)
            except ModuleNotFoundError as exc:
                if exc.name not in (f"turngym.envs.{family}", f"turngym.envs.{family}.prompt"):
                    raise  # the module exists but one of its imports is missing: say so
        _CACHE[family] = fn if callable(fn) else None
    return _CACHE[family]


def system_prompt(family: str, task: str, *, tools: bool = False) -> str:
    """The system prompt for ``family`` (its own template, else the generic one)."""
    fn = family_prompt_fn(family)
    if fn is not None:
        return fn(task)
    return generic_tool_prompt(task) if tools else generic_system_prompt(task)


def render_tools_text(tools: list[dict[str, Any]]) -> str:
    """Tools as text, for chat templates that take no ``tools=`` argument."""
    lines = ["You can call these tools (JSON schemas):", "<tools>"]
    lines += [json.dumps(t, ensure_ascii=False) for t in tools]
    lines += ["</tools>",
              'Call one tool per turn: <tool_call>{"name": ..., "arguments": {...}}</tool_call>']
    return "\n".join(lines)


def render_admissible(admissible: list[str] | None) -> str:
    """The admissible actions as one line ('' when there is no list)."""
    if not admissible:
        return ""
    return "\nAdmissible actions: " + ", ".join(admissible)


def template_supports_tools(tokenizer: Any) -> bool:
    """Whether the tokenizer's chat template renders a ``tools=`` argument."""
    template = getattr(tokenizer, "chat_template", None)
    if isinstance(template, dict):
        template = " ".join(str(v) for v in template.values())
    return isinstance(template, str) and "tools" in template
