"""The ``hf`` backend samples from exactly the distribution it records.

A probe wraps ``GenerationMixin._get_logits_processor``: it keeps the processor list that
``generate`` builds and appends a last processor that captures the scores the sampler
draws from (``softmax`` then ``multinomial`` in ``GenerationMixin._sample``).
"""

from __future__ import annotations

import shutil

import pytest
import torch
from transformers.generation import logits_process
from transformers.generation.utils import GenerationMixin

from turngym.agents import backend_checker as checks
from turngym.agents.backend import SamplingParams
from turngym.agents.hf import HFBackend


class _Capture:
    """Last processor: keeps each step's final scores ``[B, V]`` (what is sampled from)."""

    def __init__(self) -> None:
        self.scores_S: list[torch.Tensor] = []

    def __call__(self, input_ids, scores):
        self.scores_S.append(scores.detach().clone())
        return scores


@pytest.fixture
def probe(monkeypatch):
    """``probe.built``: the processor list of each ``generate`` call; ``probe.capture``: the
    last call's sampled-from scores; ``probe.top_k``: ``top_k`` of every TopKLogitsWarper
    constructed."""
    state = type("Probe", (), {})()
    state.built, state.capture, state.top_k = [], None, []
    original = GenerationMixin._get_logits_processor
    init = logits_process.TopKLogitsWarper.__init__

    def wrapped(self, *args, **kwargs):
        procs = original(self, *args, **kwargs)
        state.built.append(list(procs))
        state.capture = _Capture()
        procs.append(state.capture)
        return procs

    def counting_init(self, top_k, *args, **kwargs):
        state.top_k.append(top_k)
        init(self, top_k, *args, **kwargs)

    monkeypatch.setattr(GenerationMixin, "_get_logits_processor", wrapped)
    monkeypatch.setattr(logits_process.TopKLogitsWarper, "__init__", counting_init)
    return state


def _types(procs) -> list[str]:
    return [type(p).__name__ for p in procs]


@pytest.mark.parametrize("temperature, top_k, top_p, own", [
    (1.0, -1, 1.0, []),
    (0.7, -1, 1.0, ["TemperatureLogitsWarper"]),
    (1.0, 5, 1.0, ["TopKLogitsWarper"]),
    (0.7, 5, 0.9, ["TemperatureLogitsWarper", "TopKLogitsWarper", "TopPLogitsWarper"]),
    (0.0, 5, 0.9, []),  # greedy: no warper at all
])
def test_only_the_backends_own_processors(hf_backend, probe, temperature, top_k, top_p, own):
    """transformers adds no processor of its own (no hidden top-k=50 when ``top_k=-1``)."""
    sp = SamplingParams(temperature=temperature, top_k=top_k, top_p=top_p, max_tokens=3, seed=1)
    hf_backend.generate(checks.prompt_ids(hf_backend.tokenizer)[:2], sp)
    [built] = probe.built
    assert _types(built) == own + ["_LogprobRecorder"]
    assert probe.top_k == ([top_k] if "TopKLogitsWarper" in own else [])


def test_checkpoint_generation_settings_are_ignored(tiny_model_dir, tmp_path, probe, caplog):
    """A ``generation_config.json`` with sampling/penalty settings switches nothing on (and
    the backend says which settings it ignores)."""
    model_dir = tmp_path / "model"
    shutil.copytree(tiny_model_dir, model_dir)
    (model_dir / "generation_config.json").write_text(
        '{"bos_token_id": 1, "eos_token_id": 2, "pad_token_id": 2, "do_sample": true, '
        '"temperature": 0.3, "top_k": 20, "top_p": 0.8, "min_p": 0.05, "typical_p": 0.9, '
        '"repetition_penalty": 1.3, "no_repeat_ngram_size": 2, "min_new_tokens": 2, '
        '"suppress_tokens": [5, 6], "num_beams": 2}')
    with caplog.at_level("INFO", logger="turngym.agents.hf"):
        backend = HFBackend(model_dir, dtype="float32", max_model_len=256)
    assert "'repetition_penalty': 1.3" in caplog.text and "'num_beams': 2" in caplog.text
    try:
        ids = checks.prompt_ids(backend.tokenizer)[:2]
        backend.generate(ids, SamplingParams(temperature=1.0, max_tokens=3, seed=1))
        backend.generate(ids, SamplingParams(temperature=0.0, max_tokens=3))
        assert [_types(b) for b in probe.built] == [["_LogprobRecorder"]] * 2
        assert probe.top_k == []
    finally:
        backend.close()


@pytest.mark.parametrize("temperature, top_k", [(0.7, -1), (0.7, 5), (1.0, -1), (0.0, -1)])
def test_recorded_logprobs_are_the_sampled_distribution(hf_backend, probe, temperature, top_k):
    """The sampler draws from ``log_softmax(top_k(z / T))`` of a separate forward pass, and
    the recorded log-probs are that distribution at the drawn tokens (raw ``z`` if greedy)."""
    prompt = checks.prompt_ids(hf_backend.tokenizer)[1]
    gen = hf_backend.generate([prompt], SamplingParams(temperature=temperature, top_k=top_k,
                                                       max_tokens=8, seed=5))[0]
    with torch.no_grad():
        z_LV = hf_backend.model(torch.tensor([prompt + gen.ids])).logits[0].float()
    z_TV = z_LV[len(prompt) - 1: len(prompt) + len(gen.ids) - 1]  # predicts gen.ids
    if temperature > 0:
        z_TV = z_TV / temperature
    if top_k > 0:
        kth = z_TV.topk(top_k, dim=-1).values[:, -1:]
        z_TV = z_TV.masked_fill(z_TV < kth, float("-inf"))
    expected_TV = torch.log_softmax(z_TV, dim=-1)
    expected_T = expected_TV.gather(1, torch.tensor(gen.ids)[:, None]).squeeze(1)
    assert gen.logprobs == pytest.approx(expected_T.tolist(), abs=1e-5)
    sampled_TV = torch.log_softmax(torch.cat(probe.capture.scores_S)[:len(gen.ids)], dim=-1)
    if temperature > 0:  # greedy takes the argmax of the raw logits
        finite = torch.isfinite(expected_TV)
        assert torch.equal(torch.isfinite(sampled_TV), finite)
        torch.testing.assert_close(sampled_TV[finite], expected_TV[finite], atol=1e-5, rtol=0)
        assert int(finite.sum(-1).max()) == (top_k if top_k > 0 else z_TV.shape[-1])
    else:
        assert gen.ids == z_TV.argmax(-1).tolist()

