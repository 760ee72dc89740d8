"""The LLM backend interface every policy, teacher and reference model implements.

Token-in / token-out: prompts go in as token ids, responses come out as token ids with
their log-probs under the sampling distribution. The rollout harness trains on exactly
these ids.

Implementations live next to this file (``hf.py``, ``vllm_backend.py``,
``openai_backend.py``, ``scripted.py``) and are looked up by name in
:data:`agents.BACKENDS` through :func:`agents.make_backend`.
"""

from __future__ import annotations

import abc
from dataclasses import dataclass
from typing import Any, Mapping


@dataclass(frozen=True)
class SamplingParams:
    """How to sample one response."""

    temperature: float = 1.0
    top_p: float = 1.0
    top_k: int = -1
    """-1 disables top-k."""
    max_tokens: int = 256
    """Maximum number of generated tokens."""
    stop: tuple[str, ...] = ()
    """Stop strings; the stop string is included in the response when it is produced."""
    seed: int | None = None
    """Per-request seed; the same seed and prompt give the same response."""


@dataclass(frozen=True)
class Generation:
    """One generated response."""

    ids: list[int]
    """Generated token ids (no prompt ids, no padding)."""
    logprobs: list[float]
    """Log-prob of each id under the sampling policy; ``len(logprobs) == len(ids)``.
    Empty when the backend cannot return log-probs (some OpenAI-compatible servers)."""
    text: str
    """Decoded ``ids``."""
    finish_reason: str
    """``"stop"`` (EOS or stop string) or ``"length"`` (hit ``max_tokens``)."""


class Backend(abc.ABC):
    """A language model behind token ids."""

    #: The HF tokenizer whose ids this backend consumes and produces.
    tokenizer: Any
    #: Maximum prompt + response length in tokens.
    max_model_len: int = 2048

    @abc.abstractmethod
    def generate(
        self, prompts_ids: list[list[int]], sampling: SamplingParams
    ) -> list[Generation]:
        """Generate one response per prompt, batched."""

    @abc.abstractmethod
    def score(
        self, prompts_ids: list[list[int]], responses_ids: list[list[int]]
    ) -> list[list[float]]:
        """Per-token log-probs of each response given its prompt (teacher / reference)."""

    def load_weights(self, state_dict: Mapping[str, Any]) -> None:
        """Replace the model's weights (weight sync after an update)."""
        raise NotImplementedError(f"{type(self).__name__} cannot load weights")

    def close(self) -> None:
        """Release the model and any server or engine. Safe to call twice."""
