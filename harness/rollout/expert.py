"""The scripted expert, played one way everywhere (``env.expert_action()``).

* :func:`expert_response`: the response text of an expert turn (what a model would write for
  the agent to parse the action back): the text TCOD expert-prefix turns record and the
  target ``turngym sft`` trains on, so both are the same text.
* :func:`expert_step`: one expert step of an env (``None`` when the expert has no action);
  the rollout engine runs it on its env pool for the TCOD b2f expert prefix
  (:meth:`~turngym.harness.rollout.loop.EpisodeLoop.expert_prefix`).
* :func:`expert_turns`: a whole expert episode on a local env, one :class:`ExpertTurn`
  (action, response text, the agent's prompt) per turn, driven by the engine's own
  :class:`~turngym.harness.rollout.calls.Episode` (``turngym sft``'s expert data).
* :func:`expert_labels`: the expert's action in every state along a replay of recorded
  actions (``teacher.expert_hint``).
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import Any

import gymnasium as gym

from turngym.agents.agent import Agent, Prompt
from turngym.envs.core import unwrapped_turn_env
from turngym.errors import EnvError
from turngym.harness.rollout import calls
from turngym.harness.rollout.calls import Episode, StepOut


def expert_response(action: str, tools: list[dict[str, Any]] | None = None) -> str:
    """The response text of an expert turn: what the model would have to write for the
    agent to parse ``action`` from it.

    Recorded by expert-prefix turns (so the student's memory window shows them) and used
    as the target of ``turngym sft``, so both are the same text.

    * text envs: ``<action>A</action>``;
    * tool envs (``tools`` given): ``<tool_call>{"name": ..., "arguments": {...}}
      </tool_call>``, the format the agent's tool parser reads. A tag action
      ``<tool>text</tool>`` (the Search-R1 format) becomes a call of that tool with
      ``text`` as its only required string parameter; a JSON action (or any other) goes
      in as it is.
    """
    if not tools:
        return f"<action>{action}</action>"
    return f"<tool_call>{_as_tool_call(action, tools)}</tool_call>"


def _as_tool_call(action: str, tools: list[dict[str, Any]]) -> str:
    """``action`` as the JSON ``{"name": ..., "arguments": {...}}`` (see expert_response)."""
    stripped = action.strip()
    m = re.fullmatch(r"<(\w+)>(.*)</\1>", stripped, re.DOTALL)
    if m is None:
        return stripped
    name, text = m.groups()
    for tool in tools:
        fn = tool.get("function", tool)
        params = fn.get("parameters") or {}
        required = params.get("required") or []
        if fn.get("name") == name and len(required) == 1 and \
                (params.get("properties") or {}).get(required[0], {}).get("type") == "string":
            return json.dumps({"name": name, "arguments": {required[0]: text}})
    return stripped


def expert_step(env: gym.Env) -> StepOut | None:
    """Step the env's expert action; None when the expert has no action. A picklable
    env call (it runs wherever the env lives: a pool's thread, process or Ray actor)."""
    action = unwrapped_turn_env(env).expert_action()
    return None if action is None else calls.step_call(env, action)


@dataclass(frozen=True)
class ExpertTurn:
    """One turn of :func:`expert_turns`, yielded before the env steps it."""

    action: str
    """The env's ``expert_action()``."""
    text: str
    """:func:`expert_response` of it (the response a model would write)."""
    prompt: Prompt | None
    """The agent's prompt in this state (:meth:`Episode.prompt`); None without an agent."""


def expert_turns(env: gym.Env, episode: Episode, *, agent: Agent | None = None,
                 tools: list[dict[str, Any]] | None = None) -> Iterator[ExpertTurn]:
    """Play the env's expert on ``episode`` (already started: ``Episode.start``) until it
    ends (terminated, truncated) or the expert has no action.

    Each turn is yielded *before* its step, so a caller that stops iterating (a prompt over
    budget) leaves the env in that state. After the yield, with an ``agent`` the response
    text is parsed as a model's would be and the parsed action is stepped (a response the
    agent cannot parse raises :class:`~turngym.errors.EnvError`: the expert and the parser
    disagree); without one the expert's action is stepped. ``Episode.apply`` keeps the
    memory window and the stop reason as the engine does.
    """
    base = unwrapped_turn_env(env)
    while episode.live:
        action = base.expert_action()
        if action is None:
            return
        text = expert_response(action, tools)
        prompt = episode.prompt(agent, tools) if agent is not None else None
        yield ExpertTurn(action, text, prompt)
        step = action
        if agent is not None:
            parsed = agent.parse(text, admissible=episode.info.get("admissible_actions"),
                                 tools=tools)
            if not parsed.valid:
                raise EnvError(f"the expert's response {text!r} does not parse "
                               f"({parsed.error}); {type(base).__name__}.expert_action() "
                               f"gave {action!r}")
            step = parsed.action
        episode.apply(calls.step_call(env, step), text)


def expert_labels(env: gym.Env, seed: int, task_id: str, actions: Sequence[str]
                  ) -> Iterator[str | None]:
    """The expert's action in the state before each of ``actions`` (None where it has
    none), replaying them from ``reset(seed, task_id)``; an empty action (an unparseable
    turn) steps nothing. Stops after the action that ends the episode; a generator, so a
    replay that fails halfway keeps the labels before it."""
    env.reset(seed=seed, options={"task_id": task_id})
    base = unwrapped_turn_env(env)
    for action in actions:
        yield base.expert_action()
        if action:
            _, _, term, trunc, _ = env.step(action)
            if term or trunc:
                return
