"""The ``openai`` backend: any OpenAI-compatible server (vLLM, ``turngym serve``, ...) by URL.

Requests go to ``/v1/completions`` with the prompt as a list of token ids, so the ids the
server sees are the ids the agent built. Token ids of the response come from the server's
``token_ids`` field (vLLM with ``return_token_ids``; ``turngym serve``) and otherwise from
re-tokenising the text with the local tokenizer (said once in the log, because then the
ids are not guaranteed to be the generated ones). Log-probs come from the legacy
``logprobs`` field when the server returns it, else the :class:`Generation` has none.

``score`` reads the prompt log-probs of ``echo=True``: the raw model's (vLLM's server and
``turngym serve`` both ignore the request temperature for them, and the OpenAI API has no
way to ask otherwise), so ``score(..., temperature=T)`` raises ``BackendError`` for
``T != 1`` (``T <= 1e-6`` means 1).

Robustness: each request is retried with exponential backoff (``backoff_s * 2**k``) on
connection errors, timeouts, 429 and 5xx; at most ``max_concurrency`` requests are in
flight (a thread pool of that size). After the retries a :class:`BackendError` is raised.
"""

from __future__ import annotations

import logging
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

from turngym.agents.backend import Backend, Generation, SamplingParams, score_temperature
from turngym.errors import BackendError, ConfigError

logger = logging.getLogger(__name__)


class OpenAIBackend(Backend):
    """A policy served by an OpenAI-compatible server.

    ``model``: the served model name (default: the first of ``/v1/models``).
    ``tokenizer``: a local HF dir (or ``default``/``tiny``) with the served model's
    tokenizer; default: ``model`` when that is a local dir, else the default model.
    """

    def __init__(self, base_url: str, *, model: str | None = None,
                 tokenizer: str | Path | None = None, api_key: str = "EMPTY",
                 max_concurrency: int = 8, max_retries: int = 4, backoff_s: float = 0.5,
                 timeout_s: float = 120.0, max_model_len: int = 2048) -> None:
        import openai

        from turngym.agents.models import load_tokenizer, resolve_model_dir

        if max_concurrency < 1 or max_retries < 0 or backoff_s < 0:
            raise ConfigError("max_concurrency must be >= 1, max_retries and backoff_s >= 0; got "
                              f"{max_concurrency}, {max_retries}, {backoff_s}")
        self._openai = openai
        self.client = openai.OpenAI(base_url=base_url.rstrip("/"), api_key=api_key,
                                    timeout=timeout_s, max_retries=0)
        if tokenizer is None and model is not None and (
                model in ("default", "tiny") or (Path(model) / "config.json").is_file()):
            tokenizer = model  # the served name is a local model dir: its tokenizer
        self.tokenizer = load_tokenizer(resolve_model_dir(tokenizer))
        self.max_retries, self.backoff_s = max_retries, backoff_s
        self.max_model_len = max_model_len
        self.pool = ThreadPoolExecutor(max_workers=max_concurrency,
                                       thread_name_prefix="turngym-openai")
        self.model = model or self._call(lambda: self.client.models.list()).data[0].id
        self._warned_retokenise = False

    # ------------------------------------------------------------------ plumbing
    def _call(self, fn: Any) -> Any:
        """``fn()`` with retries and exponential backoff on transient errors."""
        o = self._openai
        transient = (o.APIConnectionError, o.APITimeoutError, o.RateLimitError,
                     o.InternalServerError)
        for attempt in range(self.max_retries + 1):
            try:
                return fn()
            except transient as exc:
                if attempt == self.max_retries:
                    raise BackendError(f"OpenAI-compatible server failed after "
                                       f"{attempt + 1} attempts: {exc}") from exc
                delay = self.backoff_s * 2 ** attempt
                logger.warning("server error (%s); retry %d in %.1f s", type(exc).__name__,
                               attempt + 1, delay)
                time.sleep(delay)
            except o.APIStatusError as exc:  # 4xx: a bad request, not worth retrying
                raise BackendError(f"server rejected the request ({exc.status_code}): "
                                   f"{exc.message}") from exc
        raise AssertionError("unreachable")

    def _complete(self, prompt: list[int], sampling: SamplingParams, **kw: Any) -> Any:
        # Every sampling knob is sent, at its neutral value when unused: vLLM's server fills
        # unset ones from the model's generation_config.json (a top_k or repetition_penalty
        # there would change the sampling distribution behind the recorded log-probs).
        extra = {"return_token_ids": True, "include_stop_str_in_output": True,
                 "skip_special_tokens": False, "top_k": max(0, sampling.top_k),
                 "min_p": 0.0, "repetition_penalty": 1.0}
        extra.update(kw.pop("extra_body", {}))
        return self._call(lambda: self.client.completions.create(
            model=self.model, prompt=prompt, temperature=sampling.temperature,
            top_p=sampling.top_p, presence_penalty=0.0, frequency_penalty=0.0,
            stop=list(sampling.stop) or None, seed=sampling.seed, extra_body=extra, **kw))

    @staticmethod
    def _field(obj: Any, name: str) -> Any:
        value = getattr(obj, name, None)
        if value is None and getattr(obj, "model_extra", None):
            value = obj.model_extra.get(name)
        return value

    # ------------------------------------------------------------------ API
    def _one(self, prompt: list[int], sampling: SamplingParams) -> Generation:
        room = self.max_model_len - len(prompt)
        if room <= 0:
            raise BackendError(f"prompt of {len(prompt)} tokens leaves no room to generate "
                               f"within max_model_len={self.max_model_len}")
        resp = self._complete(prompt, sampling, max_tokens=min(sampling.max_tokens, room),
                              logprobs=0)
        choice = resp.choices[0]
        text = choice.text or ""
        ids = self._field(choice, "token_ids")
        if ids is None:
            if not self._warned_retokenise:
                logger.warning("server returns no token_ids; re-tokenising response text")
                self._warned_retokenise = True
            ids = self.tokenizer(text, add_special_tokens=False)["input_ids"]
        lp = choice.logprobs.token_logprobs if choice.logprobs is not None else None
        logprobs = [float(x) for x in lp] if lp and len(lp) == len(ids) else []
        return Generation(ids=list(ids), logprobs=logprobs,
                          text=self.tokenizer.decode(list(ids), skip_special_tokens=True),
                          finish_reason="length" if choice.finish_reason == "length" else "stop")

    def generate(self, prompts_ids: list[list[int]], sampling: SamplingParams) -> list[Generation]:
        """One request per prompt (seed ``seed + i`` for the i-th), at most
        ``max_concurrency`` in flight."""
        from turngym.agents.vllm_backend import row_seed  # no vllm import: a plain helper

        return list(self.pool.map(lambda ip: self._one(list(ip[1]), row_seed(sampling, ip[0])),
                                  enumerate(prompts_ids)))

    def _score_one(self, prompt: list[int], response: list[int]) -> list[float]:
        if not response:
            return []
        resp = self._complete(list(prompt) + list(response), SamplingParams(temperature=1.0),
                              max_tokens=1, logprobs=0, echo=True)
        choice = resp.choices[0]
        lp = choice.logprobs.token_logprobs if choice.logprobs is not None else None
        n_prompt = len(prompt) + len(response)
        if not lp or len(lp) < n_prompt:
            raise BackendError("the server returned no prompt log-probs for echo=True; "
                               "score needs a server that supports echo with logprobs (vLLM)")
        return [float(x) for x in lp[len(prompt):n_prompt]]

    def score(self, prompts_ids: list[list[int]], responses_ids: list[list[int]], *,
              temperature: float = 1.0) -> list[list[float]]:
        """Response log-probs from ``echo=True`` prompt log-probs; temperature 1 only (see
        the module docstring)."""
        if len(prompts_ids) != len(responses_ids):
            raise BackendError(f"score got {len(prompts_ids)} prompts and "
                               f"{len(responses_ids)} responses")
        if score_temperature(temperature) != 1.0:
            raise BackendError(
                f"the openai backend scores only at temperature 1 (echo prompt log-probs are "
                f"the raw model's), got temperature={temperature}; score with the hf backend")
        return list(self.pool.map(lambda pr: self._score_one(*pr),
                                  zip(prompts_ids, responses_ids)))

    def close(self) -> None:
        """Close the HTTP client and the thread pool. Safe to call twice."""
        self.pool.shutdown(wait=True)
        self.client.close()
