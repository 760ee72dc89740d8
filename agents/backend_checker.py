"""Backend conformance checks: the behaviour every :class:`~turngym.agents.backend.Backend`
must have.

The backend tests run them on ``hf``, ``vllm`` and ``openai``; a new backend can run them
too. Each check raises ``AssertionError`` with the numbers when the backend misbehaves.
Log-probs must agree with ``score`` within ``atol`` (the backends compute both from the
same model, so only float rounding separates them).
"""

from __future__ import annotations

import math

import numpy as np

from turngym.agents.backend import Backend, SamplingParams


def prompts(tokenizer) -> list[list[int]]:
    """Three chat prompts of different lengths (so batches are padded)."""
    texts = ["Hi", "What is the capital of France? Answer in one word.",
             "List three fruits, then stop."]
    return [tokenizer.apply_chat_template([{"role": "user", "content": t}], tokenize=False,
                                          add_generation_prompt=True) for t in texts]


def prompt_ids(tokenizer) -> list[list[int]]:
    return [tokenizer(t, add_special_tokens=False)["input_ids"] for t in prompts(tokenizer)]


def check_generate_logprobs(backend: Backend, max_tokens: int = 12) -> list:
    """Sampling at T=1 gives ids + finite negative log-probs that ``score`` reproduces."""
    ids = prompt_ids(backend.tokenizer)
    gens = backend.generate(ids, SamplingParams(temperature=1.0, max_tokens=max_tokens, seed=7))
    assert len(gens) == len(ids)
    for g in gens:
        assert 1 <= len(g.ids) <= max_tokens
        assert len(g.logprobs) == len(g.ids)
        assert all(math.isfinite(x) and x <= 1e-6 for x in g.logprobs)
        assert g.finish_reason in ("stop", "length")
        assert g.finish_reason == "length" or g.ids[-1] == backend.tokenizer.eos_token_id
        assert g.text == backend.tokenizer.decode(g.ids, skip_special_tokens=True)
    scores = backend.score(ids, [g.ids for g in gens])
    for g, s in zip(gens, scores):
        np.testing.assert_allclose(g.logprobs, s, atol=2e-3)
    return gens


def check_seed_determinism(backend: Backend) -> None:
    ids = prompt_ids(backend.tokenizer)
    sp = SamplingParams(temperature=1.0, max_tokens=8, seed=123)
    first = backend.generate(ids, sp)
    again = backend.generate(ids, sp)
    assert [g.ids for g in first] == [g.ids for g in again]
    group = backend.generate([ids[0]] * 4, sp)  # a GRPO group: same prompt, one call
    assert len({tuple(g.ids) for g in group}) > 1, "identical samples within a group"


def check_greedy_is_argmax(backend: Backend) -> None:
    """Greedy tokens have log-prob = the max over the vocabulary: every step is the mode."""
    ids = prompt_ids(backend.tokenizer)[:1]
    g = backend.generate(ids, SamplingParams(temperature=0.0, max_tokens=6))[0]
    again = backend.generate(ids, SamplingParams(temperature=0.0, max_tokens=6))[0]
    assert g.ids == again.ids
    np.testing.assert_allclose(backend.score(ids, [g.ids])[0], g.logprobs, atol=2e-3)


def check_temperature_logprobs(backend: Backend) -> None:
    """At T=0.5 the log-probs are under the tempered distribution: they differ from the raw
    model's ``score`` and are higher on average (a sharper distribution at its samples)."""
    ids = prompt_ids(backend.tokenizer)
    gens = backend.generate(ids, SamplingParams(temperature=0.5, max_tokens=8, seed=3))
    raw = backend.score(ids, [g.ids for g in gens])
    tempered = np.concatenate([g.logprobs for g in gens])
    raw = np.concatenate(raw)
    assert tempered.mean() > raw.mean()
    assert np.abs(tempered - raw).max() > 0.05


def check_tempered_score(backend: Backend, temperature: float = 0.5) -> None:
    """``score(..., temperature=T)`` reproduces the log-probs ``generate`` records at ``T``
    (no top-k/top-p): scoring and sampling use the same tempered distribution. Only for
    backends that temper scores (``hf``; ``vllm`` and ``openai`` score at T=1 only)."""
    ids = prompt_ids(backend.tokenizer)
    gens = backend.generate(ids, SamplingParams(temperature=temperature, max_tokens=8, seed=5))
    scores = backend.score(ids, [g.ids for g in gens], temperature=temperature)
    for g, s in zip(gens, scores):
        np.testing.assert_allclose(g.logprobs, s, atol=2e-3)


def check_stop_string(backend: Backend) -> None:
    """Generation ends at a stop string, which is kept in the text."""
    ids = prompt_ids(backend.tokenizer)
    free = backend.generate(ids, SamplingParams(temperature=0.0, max_tokens=16))
    # stop at the first character of the second token of each free response (if any)
    for p, g in zip(ids, free):
        if len(g.ids) < 3:
            continue
        stop = backend.tokenizer.decode(g.ids[1:2]).strip()[:1]
        if not stop or stop in backend.tokenizer.decode(g.ids[:1]):
            continue
        cut = backend.generate([p], SamplingParams(temperature=0.0, max_tokens=16,
                                                   stop=(stop,)))[0]
        assert cut.finish_reason == "stop"
        assert stop in cut.text
        assert len(cut.ids) <= 2, (stop, cut, g)
        assert cut.ids == g.ids[:len(cut.ids)]
        return
    raise AssertionError("no response long enough to test stop strings")


def lm_head(model_dir) -> dict:
    """The LM head of a model dir, read from its safetensors file."""
    from safetensors.torch import load_file

    return {"lm_head.weight": load_file(str(model_dir / "model.safetensors"))["lm_head.weight"]}


def check_load_weights(backend: Backend, model_dir) -> None:
    """A zero LM head makes every next token uniform: log-prob = -log(V) exactly. Loading
    the original head back restores the original outputs."""
    import torch

    ids = prompt_ids(backend.tokenizer)
    sp = SamplingParams(temperature=1.0, max_tokens=6, seed=11)
    before = backend.generate(ids, sp)
    head = lm_head(model_dir)
    vocab = head["lm_head.weight"].shape[0]
    backend.load_weights({"lm_head.weight": torch.zeros_like(head["lm_head.weight"])})
    try:
        after = backend.generate(ids, sp)
        for g in after:
            np.testing.assert_allclose(g.logprobs, -math.log(vocab), atol=1e-4)
        for s in backend.score(ids, [g.ids for g in before]):
            np.testing.assert_allclose(s, -math.log(vocab), atol=1e-4)
    finally:
        backend.load_weights(head)
    restored = backend.generate(ids, sp)
    assert [g.ids for g in restored] == [g.ids for g in before]
    for a, b in zip(restored, before):
        np.testing.assert_allclose(a.logprobs, b.logprobs, atol=1e-4)
