"""The agent: observation -> prompt ids, model text -> env action.

The prompt is a chat rendered with the model's own chat template:

* ``system``: the env family's ``system_prompt(task)`` (see :mod:`turngym.agents.prompts`), plus the
  tools as text when the template takes no ``tools=`` argument;
* for each of the last ``history_length`` turns: ``user`` = that turn's observation,
  ``assistant`` = the model's response text (memory window; 0 keeps no history);
* ``user``: the current observation and the admissible actions;
* the generation prompt (``add_generation_prompt=True``).

Context overflow degrades in this order, and is recorded in :class:`Prompt`: drop the
oldest history turns first, then cut the observation's middle (its head and tail stay, with
a visible marker). If even an empty observation does not fit (a huge system prompt or
admissible list), the prompt comes back longer than ``max_prompt_tokens`` with
``truncated=True``; the rollout ends such an episode with ``max_tokens``.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from typing import Any

from turngym.agents import prompts
from turngym.agents.parsing import ParsedAction, parse_action, parse_tool_call

logger = logging.getLogger(__name__)

#: Marker put where an observation's middle was cut; ``{n}`` is the number of characters cut.
CUT_MARKER = "\n[... {n} characters cut to fit the context ...]\n"


@dataclass(frozen=True)
class Prompt:
    """A rendered prompt."""

    ids: list[int]
    """Token ids the model sees (what is generated from and trained on)."""
    text: str
    """The rendered chat text (for viewers and logs)."""
    truncated: bool
    """Whether history was dropped or the observation was cut to fit ``max_prompt_tokens``."""
    dropped_history: int
    """How many history turns (inside the memory window) were dropped to fit."""


@dataclass
class Agent:
    """Builds prompts and parses actions for one env family and one tokenizer."""

    tokenizer: Any
    """HF tokenizer with a chat template (the backend's tokenizer)."""
    family: str
    """Env family (``env.family``); picks ``envs.<family>.prompt.system_prompt``."""
    history_length: int = 2
    """Memory window: how many earlier (observation, response) turns the prompt keeps."""
    max_prompt_tokens: int = 1536
    """Prompt budget in tokens; overflow drops history, then cuts the observation."""
    parse_mode: str = "lenient"
    """``"strict"`` or ``"lenient"`` (see :mod:`turngym.agents.parsing`)."""
    tools: list[dict[str, Any]] | None = None
    """Tool schemas of a tool env; :meth:`parse` then reads tool calls."""
    system_prompt: str | None = None
    """Override of the family's system prompt (``{task}`` is filled in)."""
    _tools_in_template: bool = field(default=False, init=False, repr=False)

    def __post_init__(self) -> None:
        from turngym.errors import ConfigError

        if self.history_length < 0:
            raise ConfigError(f"history_length must be >= 0, got {self.history_length}")
        if self.max_prompt_tokens < 16:
            raise ConfigError(f"max_prompt_tokens must be >= 16, got {self.max_prompt_tokens}")
        if self.parse_mode not in ("strict", "lenient"):
            raise ConfigError(f"parse_mode must be 'strict' or 'lenient', got {self.parse_mode!r}")
        self._tools_in_template = prompts.template_supports_tools(self.tokenizer)

    @classmethod
    def for_env(cls, env: Any, tokenizer: Any, **kwargs: Any) -> Agent:
        """An agent for ``env``: its ``family`` and ``tools`` are read from the env."""
        return cls(tokenizer=tokenizer, family=getattr(env, "family", "generic"),
                   tools=getattr(env, "tools", None), **kwargs)

    # ------------------------------------------------------------------ prompting
    def messages(self, *, task: str, history: list[tuple[str, str]], observation: str,
                 admissible: list[str] | None,
                 tools: list[dict] | None = None) -> list[dict[str, str]]:
        """The chat messages of a prompt (history is used as given, not windowed)."""
        if self.system_prompt is not None:
            system = self.system_prompt.replace("{task}", task)
        else:
            system = prompts.system_prompt(self.family, task, tools=bool(tools))
        if tools and not self._tools_in_template:
            system = system + "\n\n" + prompts.render_tools_text(tools)
        msgs = [{"role": "system", "content": system}]
        for obs, response in history:
            msgs += [{"role": "user", "content": obs}, {"role": "assistant", "content": response}]
        msgs.append({"role": "user",
                     "content": observation + prompts.render_admissible(admissible)})
        return msgs

    def render(self, messages: list[dict[str, str]], tools: list[dict] | None = None,
               add_generation_prompt: bool = True) -> tuple[str, list[int]]:
        """Chat-template ``messages``; returns ``(text, ids)``."""
        kw: dict[str, Any] = {}
        if tools and self._tools_in_template:
            kw["tools"] = tools
        text = self.tokenizer.apply_chat_template(
            messages, tokenize=False, add_generation_prompt=add_generation_prompt, **kw)
        ids = self.tokenizer(text, add_special_tokens=False)["input_ids"]
        return text, list(ids)

    def build_prompt(self, *, task: str, history: list[tuple[str, str]], observation: str,
                     admissible: list[str] | None, tools: list[dict] | None = None) -> Prompt:
        """The prompt for the current turn; see the module docstring for overflow."""
        tools = tools if tools is not None else self.tools
        kept = list(history[-self.history_length:]) if self.history_length > 0 else []
        args = dict(task=task, observation=observation, admissible=admissible, tools=tools)
        text, ids = self.render(self.messages(history=kept, **args), tools)
        dropped = 0
        while len(ids) > self.max_prompt_tokens and kept:
            kept.pop(0)
            dropped += 1
            text, ids = self.render(self.messages(history=kept, **args), tools)
        if len(ids) <= self.max_prompt_tokens:
            return Prompt(ids=ids, text=text, truncated=dropped > 0, dropped_history=dropped)
        text, ids = self._cut_observation(kept, args, tools)
        logger.debug("prompt over budget: dropped %d history turns, cut the observation", dropped)
        return Prompt(ids=ids, text=text, truncated=True, dropped_history=dropped)

    def _cut_observation(self, kept: list[tuple[str, str]], args: dict[str, Any],
                         tools: list[dict] | None) -> tuple[str, list[int]]:
        """Cut the middle of the observation until the prompt fits (head and tail stay)."""
        observation = args["observation"]
        base = dict(args, observation="")
        _, empty_ids = self.render(self.messages(history=kept, **base), tools)
        obs_ids = self.tokenizer(observation, add_special_tokens=False)["input_ids"]
        marker_len = len(self.tokenizer(CUT_MARKER.format(n=len(observation)),
                                         add_special_tokens=False)["input_ids"])
        budget = self.max_prompt_tokens - len(empty_ids) - marker_len
        text, ids = "", empty_ids
        for _ in range(8):  # token boundaries can shift by a few tokens after a cut
            keep = max(budget, 0)
            head_ids, tail_ids = obs_ids[: (keep + 1) // 2], obs_ids[len(obs_ids) - keep // 2:]
            head = self.tokenizer.decode(head_ids) if head_ids else ""
            tail = self.tokenizer.decode(tail_ids) if keep // 2 else ""
            cut = CUT_MARKER.format(n=max(len(observation) - len(head) - len(tail), 0))
            text, ids = self.render(self.messages(history=kept, **dict(args, observation=(
                head + cut + tail))), tools)
            if len(ids) <= self.max_prompt_tokens or keep == 0:
                break
            budget = keep - (len(ids) - self.max_prompt_tokens) - 2
        return text, ids

    # ------------------------------------------------------------------ parsing
    def parse(self, response_text: str, *, admissible: list[str] | None = None,
              tools: list[dict] | None = None) -> ParsedAction:
        """The env action in ``response_text``. Never raises.

        Tool envs (``tools`` given here or on the agent) read a tool call; other envs read
        ``<action>…</action>`` in :attr:`parse_mode`. An output that contains a
        ``<tool_call>`` is read as a tool call even when no tools are known.
        """
        tools = tools if tools is not None else self.tools
        if tools:
            return parse_tool_call(response_text, tools)
        if isinstance(response_text, str) and "<tool_call>" in response_text.lower():
            return parse_tool_call(response_text, [])
        return parse_action(response_text, mode=self.parse_mode, admissible=admissible)
