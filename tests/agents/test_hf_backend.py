"""The ``hf`` backend on the tiny random model (real transformers generate and forward)."""

from __future__ import annotations

import pytest
import torch

from turngym.agents import backend_checker as checks
from turngym.agents.backend import SamplingParams
from turngym.errors import BackendError


def test_generate_logprobs_match_score(hf_backend):
    checks.check_generate_logprobs(hf_backend)


def test_seed_determinism(hf_backend):
    checks.check_seed_determinism(hf_backend)


def test_greedy(hf_backend):
    checks.check_greedy_is_argmax(hf_backend)


def test_logprobs_are_under_the_tempered_distribution(hf_backend):
    checks.check_temperature_logprobs(hf_backend)


def test_tempered_score_matches_generate(hf_backend):
    checks.check_tempered_score(hf_backend)


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


@pytest.mark.parametrize("temperature, divisor", [(1.0, 1.0), (0.7, 0.7), (1.5, 1.5),
                                                   (0.0, 1.0), (1e-7, 1.0)])
def test_score_hand_computed(hf_backend, temperature, divisor):
    """score equals log_softmax(z / T) of a plain forward pass at the response positions
    (raw z for T <= 1e-6)."""
    p, r = [1, 2, 3, 4], [5, 6]
    with torch.no_grad():
        logits = hf_backend.model(torch.tensor([p + r])).logits[0].float()
    lp = torch.log_softmax(logits / divisor, -1)
    expected = [lp[3, 5].item(), lp[4, 6].item()]
    got = hf_backend.score([p], [r], temperature=temperature)[0]
    assert got == pytest.approx(expected, abs=1e-5)
    assert hf_backend.score([p, p], [[], r], temperature=temperature) == [
        [], pytest.approx(expected, abs=1e-5)]
    if temperature == 1.0:
        assert hf_backend.score([p], [r]) == [got]  # the default is T=1


def test_errors_are_clear(hf_backend):
    with pytest.raises(BackendError, match="max_model_len"):
        hf_backend.generate([[1] * hf_backend.max_model_len], SamplingParams(max_tokens=4))
    with pytest.raises(BackendError, match="unknown parameter"):
        hf_backend.load_weights({"not.a.weight": torch.zeros(1)})
    with pytest.raises(BackendError, match="shape"):
        hf_backend.load_weights({"lm_head.weight": torch.zeros(3, 3)})
    with pytest.raises(BackendError, match="2 prompts and 1"):
        hf_backend.score([[1], [2]], [[3]])
    with pytest.raises(BackendError, match="temperature must be >= 0"):
        hf_backend.score([[1]], [[3]], temperature=-0.5)


def test_batches_of_one_call_draw_independent_samples(tiny_model_dir):
    # 12 identical prompts in batches of 4 with one seed: batches must not repeat each
    # other's draws (they did when every batch was re-seeded with the same seed)
    from turngym.agents.hf import HFBackend, batch_seed

    backend = HFBackend(str(tiny_model_dir), device="cpu", dtype="float32", batch_size=4)
    params = SamplingParams(temperature=1.0, max_tokens=8, seed=123)
    gens = backend.generate([[1, 17, 300, 4000]] * 12, params)
    ids = [tuple(g.ids) for g in gens]
    assert ids[0:4] != ids[4:8] and ids[4:8] != ids[8:12]
    assert len(set(ids)) >= 10  # 8 random tokens from a 49k vocab: repeats are rare
    # batch 0 keeps the call's own seed (single-batch calls are unchanged), the call is
    # reproducible, and batch seeds do not collide with the next call's seed
    assert [tuple(g.ids) for g in backend.generate([[1, 17, 300, 4000]] * 12, params)] == ids
    first = backend.generate([[1, 17, 300, 4000]] * 4, params)
    assert [tuple(g.ids) for g in first] == ids[:4]
    assert batch_seed(123, 1) not in (123, 124) and batch_seed(123, 1) != batch_seed(124, 1)
