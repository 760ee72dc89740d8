"""The ``hf`` backend: transformers ``generate`` and forward passes, on CPU or GPU.

Which distribution the log-probs are under:

* ``generate`` with ``temperature > 0``: the *sampling* distribution, i.e.
  ``log_softmax(top_p(top_k(logits / temperature)))`` with filtered tokens at ``-inf`` —
  exactly the distribution the token was drawn from (vLLM's ``processed_logprobs``).
  With ``temperature=1, top_p=1, top_k=-1`` this is the model's own distribution.
* ``generate`` with ``temperature == 0`` (greedy): the model's raw distribution
  ``log_softmax(logits)``; the token is its argmax.
* ``score(..., temperature=T)``: ``log_softmax(logits / T)`` (raw logits for the default
  ``T=1`` and for ``T <= 1e-6``), so a teacher or reference can be scored at the rollout
  temperature.

No hidden processors: the temperature, top-k and top-p warpers are the backend's own
(:meth:`HFBackend._processors`), followed by the log-prob recorder, and ``generate`` adds
none of its own. Each call passes the neutral ``temperature=1, top_k=0, top_p=1``
(transformers 5.19 fills unset values with ``top_k=50``), and the checkpoint's
``generation_config.json`` is reduced to its token ids and cache settings at load, so its
sampling, penalty, beam or suppression settings switch nothing on (they are logged once).

Batches are left-padded for generation and right-padded for scoring; ``score`` applies the
LM head only at response positions, so memory stays ``O(tokens x hidden)``.
"""

from __future__ import annotations

import contextlib
import dataclasses
import logging
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from turngym.agents.backend import (
    GREEDY_TEMPERATURE,
    Backend,
    Generation,
    SamplingParams,
    score_temperature,
)
from turngym.errors import BackendError

logger = logging.getLogger(__name__)

#: ``generation_config`` fields kept from the checkpoint at load: token ids and cache
#: settings. Every other field (sampling, penalties, beams, suppressed tokens, ...) would make
#: ``generate`` build logits processors that the backend neither asked for nor records.
KEPT_GENERATION_FIELDS = ("bos_token_id", "eos_token_id", "pad_token_id",
                          "decoder_start_token_id", "use_cache", "cache_implementation")

#: Sampling values under which transformers builds no warper of its own
#: (``GenerationMixin._get_logits_processor``: temperature != 1, top_k != 0, top_p < 1 do).
NEUTRAL_WARPERS = {"temperature": 1.0, "top_k": 0, "top_p": 1.0}


def _pick_dtype(dtype: str, device: str) -> Any:
    import torch

    if dtype == "auto":
        return torch.bfloat16 if device.startswith("cuda") else torch.float32
    try:
        return {"float32": torch.float32, "bfloat16": torch.bfloat16,
                "float16": torch.float16}[dtype]
    except KeyError:
        from turngym.errors import ConfigError
        raise ConfigError(f"dtype must be auto, float32, bfloat16 or float16; got {dtype!r}")


class _LogprobRecorder:
    """Last logits processor: records log-probs of each sampled token under the
    distribution the sampler sees. The token of step t is read at step t+1 (from
    ``input_ids``); the last one by :meth:`finish`."""

    def __init__(self) -> None:
        self.prev = None  # [B, V] log-probs of the previous step
        self.out: list[Any] = []  # T-1 tensors [B]

    def __call__(self, input_ids: Any, scores: Any) -> Any:
        import torch

        if self.prev is not None:
            self.out.append(self.prev.gather(1, input_ids[:, -1:]).squeeze(1))
        self.prev = torch.log_softmax(scores.float(), dim=-1)
        return scores

    def finish(self, last_ids: Any) -> Any:
        import torch

        if self.prev is not None:
            self.out.append(self.prev.gather(1, last_ids[:, None]).squeeze(1))
        return torch.stack(self.out, dim=1) if self.out else None  # [B, T]


def batch_seed(seed: int, batch: int) -> int:
    """A seed for batch ``batch`` of one call, mixed from ``(seed, batch)`` so it collides
    neither with other batches nor with the next call's ``seed + 1``."""
    import numpy as np

    return int(np.random.SeedSequence([seed % (1 << 63), batch]).generate_state(1)[0])


def plain_generation_config(model: Any) -> dict[str, Any]:
    """Replace ``model.generation_config`` by one holding only :data:`KEPT_GENERATION_FIELDS`;
    returns the dropped non-default settings (``{}`` for the default and tiny models)."""
    from transformers import GenerationConfig

    old = model.generation_config
    kept = {k: getattr(old, k) for k in KEPT_GENERATION_FIELDS
            if getattr(old, k, None) is not None}
    dropped = {k: v for k, v in old.to_diff_dict().items() if k not in kept
               and v not in (None, False) and not k.startswith("_")
               and k != "transformers_version"}
    model.generation_config = GenerationConfig(**kept)
    return dropped


class HFBackend(Backend):
    """A transformers causal LM behind token ids."""

    def __init__(self, model: str | Path | None = None, *, device: str | None = None,
                 dtype: str = "auto", max_model_len: int = 2048, batch_size: int = 32) -> None:
        import torch
        from transformers import AutoModelForCausalLM

        from turngym.agents.models import load_tokenizer, resolve_model_dir

        self.model_dir = resolve_model_dir(model)
        self.device = device or ("cuda" if torch.cuda.is_available() else "cpu")
        self.tokenizer = load_tokenizer(self.model_dir)
        self.model = AutoModelForCausalLM.from_pretrained(
            str(self.model_dir), dtype=_pick_dtype(dtype, self.device), local_files_only=True,
        ).to(self.device).eval()
        self.max_model_len = int(max_model_len)
        self.batch_size = int(batch_size)
        eos = self.model.generation_config.eos_token_id
        eos = eos if isinstance(eos, list) else [eos]
        self.eos_ids = sorted({i for i in [*eos, self.tokenizer.eos_token_id] if i is not None})
        self.pad_id = self.tokenizer.pad_token_id
        dropped = plain_generation_config(self.model)
        if dropped:
            logger.info("hf backend ignores %s's generation settings %s: it samples with "
                        "SamplingParams only", self.model_dir.name, dropped)

    # ------------------------------------------------------------------ generate
    def generate(self, prompts_ids: list[list[int]], sampling: SamplingParams) -> list[Generation]:
        """Generate one response per prompt, ``batch_size`` prompts at a time.

        With ``sampling.seed`` set, batch ``b > 0`` is seeded with :func:`batch_seed`: seeding
        every batch with the same seed would give prompt ``i`` and ``i + batch_size`` the
        same random draws (correlated episodes, identical same-task group members)."""
        out: list[Generation] = []
        for b, i in enumerate(range(0, len(prompts_ids), self.batch_size)):
            params = sampling
            if sampling.seed is not None and b > 0:
                params = dataclasses.replace(sampling, seed=batch_seed(sampling.seed, b))
            out += self._generate_batch(prompts_ids[i:i + self.batch_size], params)
        return out

    def _processors(self, sampling: SamplingParams, greedy: bool) -> list[Any]:
        from transformers.generation.logits_process import (
            TemperatureLogitsWarper,
            TopKLogitsWarper,
            TopPLogitsWarper,
        )

        procs: list[Any] = []
        if not greedy:
            if sampling.temperature != 1.0:
                procs.append(TemperatureLogitsWarper(sampling.temperature))
            if sampling.top_k > 0:
                procs.append(TopKLogitsWarper(sampling.top_k))
            if sampling.top_p < 1.0:
                procs.append(TopPLogitsWarper(sampling.top_p))
        return procs

    def _generate_batch(self, prompts: list[list[int]], sampling: SamplingParams
                        ) -> list[Generation]:
        import torch
        from transformers import GenerationConfig, LogitsProcessorList

        longest = max(len(p) for p in prompts)
        max_new = min(sampling.max_tokens, self.max_model_len - longest)
        if max_new <= 0 or any(len(p) == 0 for p in prompts):
            raise BackendError(f"prompt of {longest} tokens leaves no room to generate within "
                               f"max_model_len={self.max_model_len} (or a prompt is empty)")
        ids = torch.full((len(prompts), longest), self.pad_id, dtype=torch.long)
        mask = torch.zeros_like(ids)
        for row, p in enumerate(prompts):  # left padding
            ids[row, longest - len(p):] = torch.tensor(p)
            mask[row, longest - len(p):] = 1
        greedy = sampling.temperature <= GREEDY_TEMPERATURE
        recorder = _LogprobRecorder()
        cfg = GenerationConfig(  # the warpers are ours (_processors); transformers adds none
            do_sample=not greedy, num_beams=1, max_new_tokens=max_new,
            pad_token_id=self.pad_id, eos_token_id=self.eos_ids, bos_token_id=None,
            stop_strings=list(sampling.stop) or None, return_dict_in_generate=True,
            **({} if greedy else NEUTRAL_WARPERS))
        seed_ctx = contextlib.nullcontext()
        if sampling.seed is not None:
            seed_ctx = torch.random.fork_rng(devices=[self.device] if self.device != "cpu" else [])
        with seed_ctx, torch.no_grad():
            if sampling.seed is not None:
                torch.manual_seed(sampling.seed)
            res = self.model.generate(
                input_ids=ids.to(self.device), attention_mask=mask.to(self.device),
                generation_config=cfg, tokenizer=self.tokenizer,
                logits_processor=LogitsProcessorList(
                    self._processors(sampling, greedy) + [recorder]))
        new_ids = res.sequences[:, longest:].cpu()  # [B, T]
        logprobs = recorder.finish(res.sequences[:, -1]).cpu()  # [B, T]
        return [self._cut(new_ids[row].tolist(), logprobs[row].tolist(), sampling.stop)
                for row in range(len(prompts))]

    def _cut(self, ids: list[int], logprobs: list[float], stop: tuple[str, ...]) -> Generation:
        """Cut a padded row after its first EOS or completed stop string."""
        end, reason = len(ids), "length"
        for i, tok in enumerate(ids):
            if tok in self.eos_ids:
                end, reason = i + 1, "stop"
                break
        if stop and any(s in self.tokenizer.decode(ids[:end]) for s in stop):
            for i in range(1, end + 1):
                if any(s in self.tokenizer.decode(ids[:i]) for s in stop):
                    end, reason = i, "stop"
                    break
        ids = ids[:end]
        return Generation(ids=ids, logprobs=[float(x) for x in logprobs[:end]],
                          text=self.tokenizer.decode(ids, skip_special_tokens=True),
                          finish_reason=reason)

    # ------------------------------------------------------------------ score
    def score(self, prompts_ids: list[list[int]], responses_ids: list[list[int]], *,
              temperature: float = 1.0) -> list[list[float]]:
        """Log-probs ``log_softmax(logits / temperature)`` of each response token given its
        prompt and earlier tokens (raw logits at ``temperature`` 1 or ``<= 1e-6``)."""
        if len(prompts_ids) != len(responses_ids):
            raise BackendError(f"score got {len(prompts_ids)} prompts and "
                               f"{len(responses_ids)} responses")
        temp = score_temperature(temperature)
        out: list[list[float]] = []
        for i in range(0, len(prompts_ids), self.batch_size):
            out += self._score_batch(prompts_ids[i:i + self.batch_size],
                                     responses_ids[i:i + self.batch_size], temp)
        return out

    def _score_batch(self, prompts: list[list[int]], responses: list[list[int]],
                     temperature: float) -> list[list[float]]:
        import torch

        seqs = [list(p) + list(r) for p, r in zip(prompts, responses)]
        longest = max(len(s) for s in seqs)
        ids = torch.full((len(seqs), longest), self.pad_id, dtype=torch.long)
        mask = torch.zeros_like(ids)
        for row, s in enumerate(seqs):  # right padding: positions are 0..len-1
            ids[row, :len(s)] = torch.tensor(s)
            mask[row, :len(s)] = 1
        with torch.no_grad():
            hidden = self.model.get_decoder()(
                input_ids=ids.to(self.device), attention_mask=mask.to(self.device)
            ).last_hidden_state  # [B, L, H]
            head = self.model.get_output_embeddings()
            out = []
            for row, (p, r) in enumerate(zip(prompts, responses)):
                if not r:
                    out.append([])
                    continue
                h = hidden[row, len(p) - 1: len(p) + len(r) - 1]  # [R, H] predicts r
                z = head(h).float()  # [R, V]
                lp = torch.log_softmax(z / temperature if temperature != 1.0 else z, dim=-1)
                tgt = torch.tensor(r, device=lp.device)[:, None]
                out.append(lp.gather(1, tgt).squeeze(1).cpu().tolist())
        return out

    # ------------------------------------------------------------------ weights
    def load_weights(self, state_dict: Mapping[str, Any]) -> None:
        """Copy ``state_dict`` (HF parameter names; a subset is fine) into the model."""
        import torch

        own = self.model.state_dict()
        unknown = [k for k in state_dict if k not in own]
        if unknown:
            raise BackendError(f"load_weights: unknown parameter names {unknown[:5]} "
                               f"(expected HF names like {next(iter(own))!r})")
        with torch.no_grad():
            for name, value in state_dict.items():
                if tuple(own[name].shape) != tuple(value.shape):
                    raise BackendError(f"load_weights: {name} has shape {tuple(value.shape)}, "
                                       f"the model has {tuple(own[name].shape)}")
                own[name].copy_(value.to(device=own[name].device, dtype=own[name].dtype))

    def close(self) -> None:
        """Drop the model. Safe to call twice."""
        self.model = None
