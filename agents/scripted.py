"""Scripted policies: an env's expert, a random policy, or a replay of recorded actions.

:class:`ScriptedPolicy` acts on the env directly (``act(env) -> str``); the rollout engine
uses it for ``--policy scripted``. :class:`ScriptedBackend` is the same idea behind the
token-id :class:`~turngym.agents.backend.Backend` interface: it "generates" fixed response texts,
so rollout code paths that need a backend can run without a model.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import numpy as np

from turngym.agents.backend import Backend, Generation, SamplingParams
from turngym.errors import ConfigError

#: Kinds of :class:`ScriptedPolicy`.
KINDS = ("expert", "random", "replay")


class ScriptedPolicy:
    """A policy that needs no model.

    * ``expert``: ``env.expert_action()`` ('' when the env has none, which the env treats
      as an invalid action);
    * ``random``: a uniform choice among ``env.admissible_actions()``; for an env without a
      finite action set, its ``random_action(rng)`` (a random well-formed tool call), or a
      random lowercase string when it has none;
    * ``replay``: the recorded ``actions`` in order, then ''.
    """

    def __init__(self, kind: str = "expert", *, actions: Sequence[str] | None = None,
                 seed: int = 0) -> None:
        if kind not in KINDS:
            raise ConfigError(f"scripted policy kind must be one of {KINDS}, got {kind!r}")
        if kind == "replay" and actions is None:
            raise ConfigError("scripted policy 'replay' needs actions=[...]")
        self.kind = kind
        self.actions = list(actions or [])
        self.seed = seed
        self.rng = np.random.default_rng(seed)
        self._next = 0

    def reset(self) -> None:
        """Rewind a replay and reseed the random policy (call at each episode start)."""
        self._next = 0
        self.rng = np.random.default_rng(self.seed)

    def act(self, env: Any) -> str:
        """The next action for ``env`` (a turngym env, wrapped or not)."""
        if self.kind == "expert":
            return env.expert_action() or ""
        if self.kind == "random":
            admissible = env.admissible_actions()
            if admissible:
                return str(admissible[int(self.rng.integers(len(admissible)))])
            sample = getattr(env, "random_action", None)
            action = sample(self.rng) if callable(sample) else None
            if action is not None:
                return action
            length = int(self.rng.integers(1, 16))
            letters = self.rng.integers(97, 123, size=length)
            return "".join(chr(c) for c in letters)
        if self._next >= len(self.actions):
            return ""
        self._next += 1
        return self.actions[self._next - 1]


def action_response(action: str) -> str:
    """The model text a scripted policy "says" for ``action``."""
    return f"<think>scripted</think><action>{action}</action>"


class ScriptedBackend(Backend):
    """A backend that answers with scripted texts, tokenised with a real tokenizer.

    ``responses`` is a list used in a cycle, or a function ``prompt_text -> response``.
    Log-probs are 0.0 (the scripted policy is deterministic).
    """

    def __init__(self, responses: Sequence[str] | Callable[[str], str] = ("<action>noop</action>",),
                 *, tokenizer: Any = None, model: str | None = "tiny",
                 max_model_len: int = 2048) -> None:
        if tokenizer is None:
            from turngym.agents.models import load_tokenizer, resolve_model_dir

            tokenizer = load_tokenizer(resolve_model_dir(model))
        self.tokenizer = tokenizer
        self.responses = responses
        self.max_model_len = max_model_len
        self._i = 0

    def _next_text(self, prompt_ids: list[int]) -> str:
        if callable(self.responses):
            return self.responses(self.tokenizer.decode(prompt_ids))
        text = self.responses[self._i % len(self.responses)]
        self._i += 1
        return text

    def generate(self, prompts_ids: list[list[int]], sampling: SamplingParams) -> list[Generation]:
        """The next scripted text for each prompt, followed by EOS, cut at ``max_tokens``."""
        out = []
        for p in prompts_ids:
            text = self._next_text(p)
            ids = self.tokenizer(text, add_special_tokens=False)["input_ids"]
            ids = ids + [self.tokenizer.eos_token_id]
            reason = "stop"
            if len(ids) > sampling.max_tokens:
                ids, reason = ids[: sampling.max_tokens], "length"
            out.append(Generation(ids=ids, logprobs=[0.0] * len(ids), finish_reason=reason,
                                  text=self.tokenizer.decode(ids, skip_special_tokens=True)))
        return out

    def score(self, prompts_ids: list[list[int]], responses_ids: list[list[int]], *,
              temperature: float = 1.0) -> list[list[float]]:
        """0.0 for every response token, at any temperature (the policy is deterministic)."""
        return [[0.0] * len(r) for r in responses_ids]
