"""The ``hf`` backend on the tiny random model (real transformers generate and forward)."""

from __future__ import annotations

import pytest
import torch

from agents import backend_checker as checks
from agents.backend import SamplingParams
from envs.errors import BackendError


def test_generate_logprobs_match_score(hf_backend):
    checks.check_generate_logprobs(hf_backend)


def test_seed_determinism(hf_backend):
    checks.check_seed_determinism(hf_backend)


def test_greedy(hf_backend):
    checks.check_greedy_is_argmax(hf_backend)


def test_logprobs_are_under_the_tempered_distribution(hf_backend):
    checks.check_temperature_logprobs(hf_backend)


def test_stop_string(hf_backend):
    checks.check_stop_string(hf_backend)


def test_load_weights_changes_outputs(hf_backend, tiny_model_dir):
    checks.check_load_weights(hf_backend, tiny_model_dir)


def test_batching_does_not_change_results(hf_backend):
    """Left padding is invisible: a prompt alone and in a padded batch give the same ids."""
    ids = checks.prompt_ids(hf_backend.tokenizer)
    sp = SamplingParams(temperature=0.0, max_tokens=6)
    batched = hf_backend.generate(ids, sp)
    alone = [hf_backend.generate([p], sp)[0] for p in ids]
    assert [g.ids for g in batched] == [g.ids for g in alone]
    for a, b in zip(batched, alone):
        assert a.logprobs == pytest.approx(b.logprobs, abs=1e-4)


def test_score_hand_computed(hf_backend):
    """score equals log_softmax of a plain forward pass at the response positions."""
    p, r = [1, 2, 3, 4], [5, 6]
    with torch.no_grad():
        logits = hf_backend.model(torch.tensor([p + r])).logits[0].float()
    lp = torch.log_softmax(logits, -1)
    expected = [lp[3, 5].item(), lp[4, 6].item()]
    assert hf_backend.score([p], [r])[0] == pytest.approx(expected, abs=1e-5)
    assert hf_backend.score([p, p], [[], r]) == [[], pytest.approx(expected, abs=1e-5)]


def test_errors_are_clear(hf_backend):
    with pytest.raises(BackendError, match="max_model_len"):
        hf_backend.generate([[1] * hf_backend.max_model_len], SamplingParams(max_tokens=4))
    with pytest.raises(BackendError, match="unknown parameter"):
        hf_backend.load_weights({"not.a.weight": torch.zeros(1)})
    with pytest.raises(BackendError, match="shape"):
        hf_backend.load_weights({"lm_head.weight": torch.zeros(3, 3)})
    with pytest.raises(BackendError, match="2 prompts and 1"):
        hf_backend.score([[1], [2]], [[3]])
