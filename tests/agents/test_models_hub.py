"""A Hugging Face hub id names the model's snapshot in the local Hugging Face cache, as
``from_pretrained(..., local_files_only=True)`` finds it; an id not in the cache fails when
training starts, before any work, naming the key, and nothing is downloaded. The cache here
is built in ``tmp_path`` from the tiny model's files, in the hub cache's layout."""

from __future__ import annotations

import hashlib
from pathlib import Path

import pytest

from turngym.agents import models
from turngym.errors import ConfigError
from turngym.harness.config import load_config

REPO = "turngym-test/tiny-llama"
REV = "0123456789abcdef0123456789abcdef01234567"


@pytest.fixture
def hub_cache(tmp_path: Path, monkeypatch) -> Path:
    """An empty hub cache under ``tmp_path`` (``HF_HOME``, ``HF_HUB_CACHE``; huggingface_hub
    reads them at import, so its constant is pointed there too)."""
    from huggingface_hub import constants

    cache = tmp_path / "hf" / "hub"
    cache.mkdir(parents=True)
    monkeypatch.setenv("HF_HOME", str(tmp_path / "hf"))
    monkeypatch.setenv("HF_HUB_CACHE", str(cache))
    monkeypatch.setattr(constants, "HF_HUB_CACHE", str(cache))
    return cache


def cache_model(cache: Path, repo: str, model_dir: Path) -> Path:
    """Put ``model_dir``'s files into ``cache`` as a download leaves them:
    ``models--ORG--NAME/blobs/SHA256``, ``snapshots/REV/FILE`` links to the blobs,
    ``refs/main`` holding REV. Returns the snapshot folder."""
    root = cache / f"models--{repo.replace('/', '--')}"
    snapshot = root / "snapshots" / REV
    (root / "blobs").mkdir(parents=True)
    snapshot.mkdir(parents=True)
    for f in sorted(model_dir.iterdir()):
        data = f.read_bytes()
        blob = root / "blobs" / hashlib.sha256(data).hexdigest()
        blob.write_bytes(data)
        (snapshot / f.name).symlink_to(Path("..", "..", "blobs", blob.name))
    (root / "refs").mkdir()
    (root / "refs" / "main").write_text(REV)  # no newline, as huggingface_hub writes it
    return snapshot


def test_a_cached_hub_id_resolves_and_loads(hub_cache: Path, tiny_model_dir: Path) -> None:
    import torch

    from turngym.harness.learn.learner import load_model

    snapshot = cache_model(hub_cache, REPO, tiny_model_dir)
    assert models.resolve_model_dir(REPO) == snapshot
    cfg = load_config(None, [f"model.path={REPO}", f"teacher.path={REPO}"])
    assert (cfg.model.path, cfg.teacher.path) == (REPO, REPO)  # the config keeps the id
    assert models.resolve_model_dir(cfg.model.path, "model.path") == snapshot

    loaded = load_model(models.resolve_model_dir(cfg.model.path)).state_dict()
    tiny = load_model(tiny_model_dir).state_dict()
    assert sorted(loaded) == sorted(tiny)
    assert all(torch.equal(loaded[k], tiny[k]) for k in tiny)
    tok = models.load_tokenizer(snapshot)
    assert tok("<action>up</action>")["input_ids"] == models.load_tokenizer(
        tiny_model_dir)("<action>up</action>")["input_ids"]


@pytest.mark.parametrize("key, extra", [("model.path", []),
                                        ("teacher.path", ["algo.name=opd"])])
def test_an_uncached_hub_id_fails_before_training_naming_the_key(
        hub_cache: Path, tmp_path: Path, key: str, extra: list[str]) -> None:
    from turngym.harness.train import train

    cfg = load_config(None, [f"{key}=turngym-test/not-cached", *extra,
                             f"out_dir={tmp_path / 'run'}"])
    with pytest.raises(ConfigError) as err:
        train(cfg)
    assert str(err.value) == (
        f"{key}=turngym-test/not-cached: no such local directory, and this hub id is not in "
        f"the local Hugging Face cache ({hub_cache}); nothing is downloaded. Fetch it once "
        "where there is network (hf download turngym-test/not-cached), point HF_HOME or "
        "HF_HUB_CACHE at the cache that holds it, or pass a model directory")
    assert list(hub_cache.iterdir()) == []  # nothing was fetched or created
    assert not (tmp_path / "run").exists()  # refused before any work


def test_a_local_folder_wins_over_a_hub_id(hub_cache: Path, tiny_model_dir: Path,
                                           tmp_path: Path, monkeypatch) -> None:
    cache_model(hub_cache, REPO, tiny_model_dir)
    local = tmp_path / REPO
    local.mkdir(parents=True)
    (local / "config.json").write_text("{}")
    monkeypatch.chdir(tmp_path)
    assert models.resolve_model_dir(REPO) == Path(REPO)


@pytest.mark.parametrize("text, expected", [
    ("HuggingFaceTB/SmolLM2-135M-Instruct", True),
    ("org/name.v2_final", True),
    ("tiny", False),  # no org
    ("/abs/model", False),
    ("./org/name", False),
    ("~/org/name", False),
    ("org/sub/name", False),
    ("org/na..me", False),  # huggingface_hub's rules: no "..", no "--"
    ("org--x/name", False),
])
def test_is_hub_id(text: str, expected: bool, tmp_path: Path, monkeypatch) -> None:
    monkeypatch.chdir(tmp_path)  # none of these exists here
    assert models.is_hub_id(text) is expected


def test_a_snapshot_without_config_json_is_refused(hub_cache: Path, tmp_path: Path) -> None:
    (tmp_path / "notamodel").mkdir()
    (tmp_path / "notamodel" / "README.md").write_text("data\n")
    snapshot = cache_model(hub_cache, "turngym-test/data", tmp_path / "notamodel")
    with pytest.raises(ConfigError) as err:
        models.resolve_model_dir("turngym-test/data", "model.path")
    assert str(err.value) == (f"model.path=turngym-test/data: its cached snapshot {snapshot} "
                              "has no config.json (not a transformers model)")
