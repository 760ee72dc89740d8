"""Atomic, verified training checkpoints that resume exactly.

A checkpoint is a directory ``OUT/checkpoints/step-000007/``:

- ``model/``: HF-loadable full weights (safetensors) + config + tokenizer, usable as a
  teacher, an eval model or the start of another run (``model.path=OUT`` names it);
- ``policy.safetensors``: the raw trainable module's weights (LoRA adapters included), which
  is what ``--resume`` loads. When it holds exactly the tensors of ``model/model.safetensors``
  (no LoRA) it is a relative symlink to that file, so the weights are stored once (the FSDP
  learner writes ``dcp/``, one shard file per rank, instead, and its optimizer state there);
- ``trainer_state.pt``: optimizer, LR scheduler, curriculum and task-sampler state, RNG
  states (python, numpy, torch) and the step;
- ``config.yaml``: the resolved config;
- ``manifest.json``, written last: the size and SHA-256 of every file and the target of every
  link.

It is written to a temporary sibling (``.step-000007.tmp``), fsynced and renamed into place,
then ``OUT/checkpoints/latest`` is rewritten (also by rename), so a run killed at any moment
leaves either the previous or the new checkpoint, never half of one. A write that fails
(a full disk) removes the temporary directory and raises :class:`CheckpointError`.

On resume, :func:`resolve_checkpoint` checks the manifest; a corrupted checkpoint (flipped
or missing bytes) is reported by file name and the newest intact one is used instead, with a
warning. Files get the modes the umask allows (safetensors alone would write ``0600``).
"""

from __future__ import annotations

import errno
import hashlib
import json
import logging
import os
import pickle
import random
import shutil
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import torch

from turngym.errors import CheckpointError
from turngym.harness.learn.learner import Learner

if TYPE_CHECKING:
    from transformers import PreTrainedTokenizerBase

logger = logging.getLogger(__name__)

MANIFEST = "manifest.json"
_CHUNK = 1 << 20


def rng_state() -> dict[str, Any]:
    """Python, numpy (global) and torch RNG states."""
    return {"python": random.getstate(), "numpy": np.random.get_state(),
            "torch": torch.get_rng_state()}


def set_rng_state(state: dict[str, Any]) -> None:
    random.setstate(state["python"])
    np.random.set_state(state["numpy"])
    torch.set_rng_state(state["torch"])


# ------------------------------------------------------------------------------- save
def save_checkpoint(out_dir: str | Path, step: int, learner: Learner, extra: dict[str, Any],
                    *, config_yaml: str = "", tokenizer: PreTrainedTokenizerBase | None = None,
                    keep: int = 2) -> Path:
    """Write checkpoint ``step`` under ``out_dir/checkpoints`` atomically; returns its path.

    Checkpoints of later steps (left by a run that was resumed from an earlier one) are
    removed: they belong to a history this run has replaced.

    With the FSDP learner under torchrun (:mod:`turngym.harness.distributed.leader`) the learner
    calls are collective: every rank writes its shards into the temporary directory before
    the rename (the directory must be on a filesystem all ranks share)."""
    root = Path(out_dir) / "checkpoints"
    root.mkdir(parents=True, exist_ok=True)
    final = root / f"step-{step:06d}"
    tmp = root / f".step-{step:06d}.tmp"
    shutil.rmtree(tmp, ignore_errors=True)
    try:
        tmp.mkdir()
        learner.save_model(tmp / "model")
        if tokenizer is not None:
            tokenizer.save_pretrained(str(tmp / "model"))
        states = learner.save_train_state(tmp)
        torch.save({"step": step, **states, "rng": rng_state(), **extra},
                   tmp / "trainer_state.pt")
        (tmp / "config.yaml").write_text(config_yaml)
        _link_identical_weights(tmp)
        _apply_umask(tmp)
        write_manifest(tmp, step)
        _fsync_tree(tmp)
        old = root / f".step-{step:06d}.old"
        if final.exists():  # the same step saved again (a resumed run): swap, then delete
            shutil.rmtree(old, ignore_errors=True)
            os.replace(final, old)
        os.replace(tmp, final)
        shutil.rmtree(old, ignore_errors=True)
        _write_atomic(root / "latest", final.name)
    except BaseException as exc:
        full = isinstance(exc, Exception) and _disk_full(exc, root)
        shutil.rmtree(tmp, ignore_errors=True)
        if full:
            raise CheckpointError(
                f"no space left on device while writing checkpoint {final}: nothing of it was "
                f"kept (the previous checkpoints under {root} are intact); free space, then "
                f"continue with --resume {Path(out_dir)}") from exc
        raise
    _prune(root, keep, step)
    logger.info("checkpoint %s", final)
    return final


def _disk_full(exc: BaseException, where: Path) -> bool:
    """Whether ``exc`` (or its cause) is a full disk. Libraries word it their own way
    (safetensors: ``os error 28``; torch: ``unexpected pos``), so the free space decides
    when the error itself does not say."""
    e: BaseException | None = exc
    while e is not None:
        if isinstance(e, OSError) and e.errno in (errno.ENOSPC, errno.EDQUOT):
            return True
        if "No space left" in str(e) or "os error 28" in str(e):
            return True
        e = e.__cause__ or e.__context__
    try:
        return shutil.disk_usage(where).free < _CHUNK
    except OSError:
        return False


def _prune(root: Path, keep: int, step: int) -> None:
    steps = sorted(p for p in root.glob("step-*") if p.is_dir())
    for p in steps:
        if _step_of(p) > step:
            shutil.rmtree(p, ignore_errors=True)
    steps = [p for p in steps if _step_of(p) <= step]
    for old in steps[:-keep]:
        shutil.rmtree(old, ignore_errors=True)


def _step_of(ck: Path) -> int:
    try:
        return int(ck.name.removeprefix("step-"))
    except ValueError:
        return -1


def _write_atomic(path: Path, text: str) -> None:
    tmp = path.with_name(f".{path.name}.tmp")
    with tmp.open("w") as f:
        f.write(text)
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, path)
    _fsync_dir(path.parent)


def _fsync_dir(path: Path) -> None:
    try:
        fd = os.open(path, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:  # some filesystems refuse fsync on a directory
        pass
    finally:
        os.close(fd)


def _fsync_tree(root: Path) -> None:
    for p in root.rglob("*"):
        if p.is_file() and not p.is_symlink():
            with p.open("rb") as f:
                os.fsync(f.fileno())
    for d in [*(p for p in root.rglob("*") if p.is_dir()), root, root.parent]:
        _fsync_dir(d)


def _umask() -> int:
    """The process umask, read without changing it (``os.umask`` sets it, which races with
    threads that create files meanwhile)."""
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("Umask:"):
                return int(line.split()[1], 8)
    except (OSError, ValueError):
        pass
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


def _apply_umask(root: Path) -> None:
    """Give every file ``0666 & ~umask`` and every directory ``0777 & ~umask``, as ``open``
    would have (safetensors writes ``0600`` whatever the umask), so a team can read runs."""
    mask = _umask()
    for p in [root, *root.rglob("*")]:
        if not p.is_symlink():
            p.chmod((0o777 if p.is_dir() else 0o666) & ~mask)


def _safetensors_layout(path: Path) -> tuple[dict[str, Any], int]:
    """A safetensors file's tensor table (without ``__metadata__``) and data offset."""
    with path.open("rb") as f:
        n = int.from_bytes(f.read(8), "little")
        header = json.loads(f.read(n))
    header.pop("__metadata__", None)
    return header, 8 + n


def _same_data(a: Path, off_a: int, b: Path, off_b: int) -> bool:
    with a.open("rb") as fa, b.open("rb") as fb:
        fa.seek(off_a)
        fb.seek(off_b)
        while True:
            ca, cb = fa.read(_CHUNK), fb.read(_CHUNK)
            if ca != cb:
                return False
            if not ca:
                return True


def _link_identical_weights(ck: Path) -> None:
    """Replace ``policy.safetensors`` by a link to ``model/model.safetensors`` when both hold
    the same tensors (same names, dtypes, shapes and bytes; only the metadata differs)."""
    policy, model = ck / "policy.safetensors", ck / "model" / "model.safetensors"
    if not (policy.is_file() and model.is_file()):
        return
    (head_p, off_p), (head_m, off_m) = _safetensors_layout(policy), _safetensors_layout(model)
    if head_p != head_m or not _same_data(policy, off_p, model, off_m):
        return
    policy.unlink()
    policy.symlink_to(Path("model") / "model.safetensors")


# --------------------------------------------------------------------------- manifest
def _sha256(path: Path) -> str:
    h = hashlib.sha256()
    with path.open("rb") as f:
        while chunk := f.read(_CHUNK):
            h.update(chunk)
    return h.hexdigest()


def write_manifest(ck: Path, step: int) -> None:
    """Write ``ck/manifest.json`` (size and SHA-256 of each file, each link's target) by
    rename, after every other file of the checkpoint."""
    files: dict[str, dict[str, Any]] = {}
    links: dict[str, str] = {}
    for p in sorted(ck.rglob("*")):
        rel = p.relative_to(ck).as_posix()
        if rel == MANIFEST or p.name.startswith(f".{MANIFEST}"):
            continue
        if p.is_symlink():
            links[rel] = os.readlink(p)
        elif p.is_file():
            files[rel] = {"size": p.stat().st_size, "sha256": _sha256(p)}
    doc = {"format": 1, "step": step, "files": files, "links": links}
    _write_atomic(ck / MANIFEST, json.dumps(doc, indent=1) + "\n")


def verify_checkpoint(ck: str | Path) -> None:
    """Check every file of checkpoint ``ck`` against its manifest; raise
    :class:`CheckpointError` naming the first file that is missing, truncated or changed.

    A checkpoint written before manifests existed passes with a warning."""
    ck = Path(ck)
    m = ck / MANIFEST
    if not m.is_file():
        if (ck / "trainer_state.pt").is_file():
            logger.warning("checkpoint %s has no %s (written by an older turngym): its files "
                           "cannot be verified", ck, MANIFEST)
            return
        raise CheckpointError(f"checkpoint {ck} is incomplete: no {MANIFEST} and no "
                              "trainer_state.pt")
    try:
        doc = json.loads(m.read_text())
        files, links = dict(doc["files"]), dict(doc.get("links", {}))
    except (ValueError, KeyError, TypeError, OSError) as exc:
        raise CheckpointError(f"checkpoint {ck} is corrupt: {m} is unreadable ({exc})") from None
    for rel, want in files.items():
        p = ck / rel
        if not p.is_file():
            raise CheckpointError(f"checkpoint {ck} is corrupt: {p} is missing")
        size = p.stat().st_size
        if size != want["size"]:
            raise CheckpointError(f"checkpoint {ck} is corrupt: {p} has {size} bytes, the "
                                  f"manifest says {want['size']} (truncated?)")
        if _sha256(p) != want["sha256"]:
            raise CheckpointError(f"checkpoint {ck} is corrupt: {p} does not match its "
                                  "SHA-256 in the manifest (bytes changed after writing)")
    for rel, target in links.items():
        p = ck / rel
        if not p.is_symlink() or os.readlink(p) != target:
            raise CheckpointError(f"checkpoint {ck} is corrupt: {p} should link to {target}")


# ---------------------------------------------------------------------------- resolve
def _checkpoints_root(p: Path) -> Path | None:
    for cand in (p / "checkpoints", p):
        if (cand / "latest").is_file() or any(cand.glob("step-*")):
            return cand
    return None


def find_checkpoint(path: str | Path) -> Path:
    """Resolve a run dir, a ``checkpoints`` dir or a ``step-N`` dir to one checkpoint, by
    the ``latest`` pointer, without verifying it (see :func:`resolve_checkpoint`)."""
    p = Path(path)
    for cand in (p, p / "checkpoints"):
        if (cand / "trainer_state.pt").is_file() or (cand / MANIFEST).is_file():
            return cand
        latest = cand / "latest"
        if latest.is_file():
            ck = cand / latest.read_text().strip()
            if (ck / "trainer_state.pt").is_file():
                return ck
    raise CheckpointError(f"no checkpoint under {str(p)!r}: expected a run dir with "
                          "checkpoints/latest or a step-N dir with trainer_state.pt")


def resolve_checkpoint(path: str | Path) -> Path:
    """The checkpoint to resume from ``path``, verified against its manifest.

    A ``step-N`` dir is used as it is (a corrupt one raises). For a run dir or a
    ``checkpoints`` dir: the one ``latest`` names, then the others newest first; a corrupt
    one is reported (a warning naming the file) and the next intact one is used."""
    p = Path(path)
    if (p / "trainer_state.pt").is_file() or (p / MANIFEST).is_file():
        verify_checkpoint(p)
        return p
    root = _checkpoints_root(p)
    if root is None:
        return find_checkpoint(p)  # raises "no checkpoint under ..."
    latest = root / "latest"
    named = [root / latest.read_text().strip()] if latest.is_file() else []
    others = sorted((d for d in root.glob("step-*") if d.is_dir()), key=_step_of, reverse=True)
    failures: list[str] = []
    for ck in dict.fromkeys([*named, *others]):
        try:
            if not ck.is_dir():
                raise CheckpointError(f"{latest} names {ck.name}, which does not exist")
            verify_checkpoint(ck)
        except CheckpointError as exc:
            failures.append(str(exc))
            logger.warning("%s", exc)
            continue
        if failures:
            logger.warning("falling back to %s, the newest intact checkpoint", ck)
        return ck
    if not failures:
        return find_checkpoint(p)
    raise CheckpointError(f"no intact checkpoint under {str(p)!r}: " + "; ".join(failures))


def checkpoint_step(ck: str | Path) -> int:
    """The step of checkpoint dir ``ck`` (from its manifest, else its trainer state)."""
    ck = Path(ck)
    try:
        return int(json.loads((ck / MANIFEST).read_text())["step"])
    except (OSError, ValueError, KeyError):
        return int(_load_state(ck)["step"])


def _load_state(ck: Path) -> dict[str, Any]:
    try:
        return torch.load(ck / "trainer_state.pt", weights_only=False)
    except (RuntimeError, EOFError, OSError, ValueError, pickle.UnpicklingError) as exc:
        # a pre-manifest checkpoint that is damaged (a verified one cannot be)
        raise CheckpointError(f"checkpoint {ck} is corrupt: {ck / 'trainer_state.pt'} does "
                              f"not load ({type(exc).__name__}: {exc})") from None


def load_checkpoint(path: str | Path, learner: Learner, *, verified: bool = False
                    ) -> dict[str, Any]:
    """Load weights, optimizer and scheduler into ``learner``, restore RNGs; return the state
    dict (``step``, curriculum/sampler states, ...). ``path`` goes through
    :func:`resolve_checkpoint` (verified, falling back to the newest intact checkpoint)
    unless ``verified`` says it is a checkpoint dir that did already; the state's
    ``checkpoint`` key is the directory used."""
    ck = Path(path) if verified else resolve_checkpoint(path)
    state = _load_state(ck)
    learner.load_train_state(ck, state)
    set_rng_state(state["rng"])
    logger.info("resumed from %s (step %d)", ck, state["step"])
    return {**state, "checkpoint": str(ck)}
