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
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

#: Temperatures at or below this mean greedy when sampling and raw logits when scoring.
GREEDY_TEMPERATURE = 1e-6


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


def score_temperature(temperature: float) -> float:
    """The temperature :meth:`Backend.score` divides the logits by: ``temperature``, or 1.0
    (raw logits) when it is ``<= 1e-6`` (greedy). Negative or NaN raises ``BackendError``."""
    from turngym.errors import BackendError

    if not temperature >= 0.0:
        raise BackendError(f"score temperature must be >= 0, got {temperature!r}")
    return 1.0 if temperature <= GREEDY_TEMPERATURE else float(temperature)


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
        self, prompts_ids: list[list[int]], responses_ids: list[list[int]], *,
        temperature: float = 1.0,
    ) -> list[list[float]]:
        """Per-token log-probs of each response given its prompt (teacher / reference).

        ``log p_T(y_t) = log_softmax(z_t / T)[y_t]`` with ``z_t`` the model's logits at
        response position ``t``: the distribution a rollout at temperature ``T`` samples from
        (without top-k/top-p). ``T = 1`` (the default) or ``T <= 1e-6`` (greedy rollouts)
        give the raw model. A backend that cannot temper its log-probs raises
        ``BackendError`` for ``T != 1``. Empty responses give ``[]``.
        """

    def load_weights(self, state_dict: Mapping[str, Any]) -> None:
        """Replace the model's weights (weight sync after an update)."""
        raise NotImplementedError(f"{type(self).__name__} cannot load weights")

    def close(self) -> None:
        """Release the model and any server or engine. Safe to call twice."""
