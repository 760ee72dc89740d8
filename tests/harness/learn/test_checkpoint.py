"""Checkpoints that are verified and fall back: checksums, corruption, a full disk, one
weights copy, the umask, and resuming with a changed config."""

from __future__ import annotations

import errno
import logging
import os
import shutil
import subprocess
from pathlib import Path

import pytest

from turngym.errors import CheckpointError
from turngym.harness.config import load_config

TINY = ["model.path=tiny"]


@pytest.fixture(scope="module")
def learner():
    from turngym.agents.models import tiny_model_dir
    from turngym.harness.learn.learner import Learner

    return Learner(tiny_model_dir(), load_config(None, TINY))


@pytest.fixture(scope="module")
def saved(tmp_path_factory, learner) -> Path:
    """A run dir with checkpoints of steps 1 and 2 (with the tokenizer, as train saves)."""
    from turngym.agents.models import load_tokenizer, tiny_model_dir
    from turngym.harness.learn.checkpoint import save_checkpoint

    out = tmp_path_factory.mktemp("run")
    tok = load_tokenizer(tiny_model_dir())
    for step in (1, 2):
        save_checkpoint(out, step, learner, {"sampler": {"n": step}}, keep=3, tokenizer=tok)
    return out


@pytest.fixture
def run(tmp_path: Path, saved: Path) -> Path:
    """A fresh copy of :func:`saved` that a test may damage."""
    dst = tmp_path / "run"
    shutil.copytree(saved, dst, symlinks=True)
    return dst


def _ck(run: Path, step: int) -> Path:
    return run / "checkpoints" / f"step-{step:06d}"


def flip_byte(path: Path, offset: int = -100) -> None:
    data = bytearray(path.read_bytes())
    data[offset] ^= 0xFF
    path.write_bytes(bytes(data))


def truncate(path: Path) -> None:
    with path.open("r+b") as f:
        f.truncate(path.stat().st_size // 2)


def test_checkpoint_has_manifest_of_every_file(run: Path) -> None:
    import json

    from turngym.harness.learn.checkpoint import resolve_checkpoint, verify_checkpoint

    ck = _ck(run, 2)
    doc = json.loads((ck / "manifest.json").read_text())
    assert doc["step"] == 2
    assert {"trainer_state.pt", "config.yaml", "model/model.safetensors",
            "model/config.json"} <= set(doc["files"])
    assert all(len(f["sha256"]) == 64 for f in doc["files"].values())
    verify_checkpoint(ck)  # intact: no error
    assert resolve_checkpoint(run) == ck
    assert sorted(p.name for p in (run / "checkpoints").iterdir()) == [
        "latest", "step-000001", "step-000002"]  # no temp dirs


def test_one_weights_copy_when_identical(run: Path, learner) -> None:
    """The tiny model has no LoRA: policy.safetensors links to the HF model's weights."""
    import torch

    from turngym.agents.models import tiny_model_dir
    from turngym.harness.learn.checkpoint import load_checkpoint
    from turngym.harness.learn.learner import Learner

    policy = _ck(run, 2) / "policy.safetensors"
    assert policy.is_symlink() and os.readlink(policy) == "model/model.safetensors"
    fresh = Learner(tiny_model_dir(), load_config(None, TINY))
    with torch.no_grad():
        next(fresh.model.parameters()).add_(1.0)
    state = load_checkpoint(run, fresh)  # loads through the link
    assert state["step"] == 2 and state["sampler"] == {"n": 2}
    for a, b in zip(learner.model.state_dict().values(), fresh.model.state_dict().values()):
        assert torch.equal(a, b)


def test_files_follow_the_umask(tmp_path: Path, learner) -> None:
    """safetensors writes 0600 on its own; a checkpoint's files get 0666 & ~umask."""
    from turngym.harness.learn.checkpoint import save_checkpoint

    old = os.umask(0o002)
    try:
        ck = save_checkpoint(tmp_path, 1, learner, {})
    finally:
        os.umask(old)
    for p in [ck, *ck.rglob("*")]:
        if not p.is_symlink():
            mode = p.stat().st_mode & 0o777
            assert mode == (0o775 if p.is_dir() else 0o664), (p, oct(mode))


@pytest.mark.parametrize("damage", [flip_byte, truncate], ids=["flipped", "truncated"])
@pytest.mark.parametrize("name", ["trainer_state.pt", "model/model.safetensors"])
def test_corrupt_latest_is_named_and_resume_falls_back(run: Path, damage, name: str,
                                                       caplog) -> None:
    from turngym.harness.learn.checkpoint import resolve_checkpoint, verify_checkpoint

    bad = _ck(run, 2) / name
    damage(bad)
    with pytest.raises(CheckpointError, match="corrupt") as err:
        verify_checkpoint(_ck(run, 2))
    assert str(bad) in str(err.value)
    with caplog.at_level(logging.WARNING, logger="turngym.harness.learn.checkpoint"):
        assert resolve_checkpoint(run) == _ck(run, 1)
    assert str(bad) in caplog.text
    assert f"falling back to {_ck(run, 1)}" in caplog.text


def test_explicit_corrupt_step_dir_raises(run: Path) -> None:
    from turngym.harness.learn.checkpoint import resolve_checkpoint

    flip_byte(_ck(run, 1) / "trainer_state.pt")
    with pytest.raises(CheckpointError, match="trainer_state.pt"):
        resolve_checkpoint(_ck(run, 1))


def test_no_intact_checkpoint_lists_every_failure(run: Path) -> None:
    from turngym.harness.learn.checkpoint import resolve_checkpoint

    truncate(_ck(run, 1) / "trainer_state.pt")
    (_ck(run, 2) / "config.yaml").unlink()
    with pytest.raises(CheckpointError, match="no intact checkpoint") as err:
        resolve_checkpoint(run)
    assert "step-000002/config.yaml is missing" in str(err.value)
    assert "step-000001/trainer_state.pt has" in str(err.value)


def test_latest_naming_a_missing_dir_falls_back(run: Path) -> None:
    from turngym.harness.learn.checkpoint import resolve_checkpoint

    shutil.rmtree(_ck(run, 2))
    assert resolve_checkpoint(run) == _ck(run, 1)


def test_disk_full_leaves_no_partial_folder(run: Path, learner, monkeypatch) -> None:
    """ENOSPC in the middle of a write: no temp or step dir is left, the error says so and
    the next resume finds the previous checkpoint."""
    import torch

    from turngym.harness.learn import checkpoint

    def full(*args, **kwargs):
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(checkpoint.torch, "save", full)
    with pytest.raises(CheckpointError, match="no space left on device"):
        checkpoint.save_checkpoint(run, 3, learner, {})
    monkeypatch.setattr(checkpoint.torch, "save", torch.save)
    assert sorted(p.name for p in (run / "checkpoints").iterdir()) == [
        "latest", "step-000001", "step-000002"]
    assert checkpoint.resolve_checkpoint(run) == _ck(run, 2)


def _mount_tmpfs(path: Path, size: str) -> bool:
    if os.geteuid() != 0 or shutil.which("mount") is None:
        return False
    path.mkdir()
    res = subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={size}", "tmpfs", str(path)],
                         check=False, capture_output=True)
    return res.returncode == 0


def test_real_full_filesystem(tmp_path: Path, learner) -> None:
    """A 70 MB tmpfs holds one tiny model's weights (51 MB) but not a second copy: the
    safetensors write fails with ENOSPC, nothing is left behind and the space is free."""
    from turngym.harness.learn.checkpoint import save_checkpoint

    mnt = tmp_path / "small"
    if not _mount_tmpfs(mnt, "70m"):
        pytest.skip("needs root and a tmpfs mount")
    try:
        with pytest.raises(CheckpointError, match="no space left on device"):
            save_checkpoint(mnt / "run", 1, learner, {})
        assert list((mnt / "run" / "checkpoints").iterdir()) == []
        assert shutil.disk_usage(mnt).used < 1 << 20  # the partial files were removed
    finally:
        subprocess.run(["umount", str(mnt)], check=True)


# ------------------------------------------------------------------ changed config
GIGPO = [*TINY, "algo.name=gigpo", "optim.lr=1e-3", "rollout.group_size=2",
         "env.id=turngym/Maze-v0"]


@pytest.mark.parametrize(("change", "want"), [
    (["algo.advantage.gamma=0.5", "algo.loss.clip_high=0.2"],
     ["algo.advantage.gamma: 0.95 -> 0.5", "algo.loss.clip_high: 0.28 -> 0.2"]),
    (["optim.lr=2e-3", "rollout.group_size=4"],
     ["optim.lr: 0.001 -> 0.002", "rollout.group_size: 2 -> 4"]),
    (["env.id=turngym/Sokoban-v0"], ["env.id: 'turngym/Maze-v0' -> 'turngym/Sokoban-v0'"]),
    # another estimator: one line for it, not one per field of GiGPO's and GRPO's configs
    (["algo.name=grpo", "algo.loss.clip_high=0.2"],
     ["algo.advantage.name: 'gigpo' -> 'grpo' (with its own algo.advantage.* settings)",
      "algo.loss.clip_high: 0.28 -> 0.2", "algo.name: 'gigpo' -> 'grpo'"]),
    (["steps=50", "logging.tensorboard=false", "eval.every=5", "out_dir=elsewhere"], []),
])
def test_changed_config_is_refused_with_the_differences(tmp_path: Path, change, want) -> None:
    from turngym.harness.config import dump_config
    from turngym.harness.runs import check_resume_config

    dump_config(load_config(None, GIGPO), tmp_path / "config.yaml")
    cfg = load_config(None, [*GIGPO, *change])
    if want:
        with pytest.raises(CheckpointError) as err:
            check_resume_config(tmp_path, cfg)
        assert f"config.yaml): {'; '.join(want)}." in str(err.value)
        assert "--resume-changed" in str(err.value)
        allowed = load_config(None, [*GIGPO, *change, "checkpoint.resume_allow_changes=true"])
        assert check_resume_config(tmp_path, allowed) == want
    else:
        assert check_resume_config(tmp_path, cfg) == []


def test_truncate_steps_drops_later_rows_and_torn_lines(tmp_path: Path) -> None:
    from turngym.harness.learn.metrics_log import truncate_steps

    p = tmp_path / "m.jsonl"
    p.write_text('{"step": 0}\n{"step": 1}\n{"step": 2}\n{"step": 3}\n{"st')
    assert truncate_steps(p, 1) == 3
    assert p.read_text() == '{"step": 0}\n{"step": 1}\n'


# ------------------------------------------------------- model.path=RUN_DIR, --model RUN_DIR
def test_run_dir_names_its_newest_intact_model(run: Path) -> None:
    from turngym.agents.models import tiny_model_dir
    from turngym.harness.runs import resolve_run_paths, run_model_dir

    model = str(_ck(run, 2) / "model")
    assert run_model_dir(str(run)) == model
    assert run_model_dir(str(run / "checkpoints")) == model
    assert run_model_dir(str(_ck(run, 1))) == str(_ck(run, 1) / "model")
    for same in ("tiny", "default", str(tiny_model_dir()), model, str(run / "nothing")):
        assert run_model_dir(same) == same  # model dirs and other names pass through
    cfg = load_config(None, [f"model.path={run}", f"teacher.path={run}"])
    assert cfg.model.path == str(run)  # loading keeps what the user wrote
    resolve_run_paths(cfg)  # train / run_sft resolve it first, before any work
    assert cfg.model.path == model and cfg.teacher.path == model
    flip_byte(_ck(run, 2) / "model" / "model.safetensors")
    assert run_model_dir(str(run)) == str(_ck(run, 1) / "model")  # falls back


def test_eval_model_run_dir_through_the_cli(run: Path, tmp_path: Path) -> None:
    """``turngym eval --model RUN_DIR`` evaluates the run's newest checkpoint model."""
    import json
    import sys

    turngym = str(Path(sys.executable).parent / "turngym")
    res = subprocess.run(
        [turngym, "eval", "quick", "--policy", "hf", "--model", str(run), "--limit", "1",
         "--max-turns", "1", "--max-tokens", "4", "--no-progress", "--out", str(tmp_path / "e")],
        check=False, capture_output=True, text=True, timeout=600,
        env={**os.environ, "COLUMNS": "200", "OMP_NUM_THREADS": "1"})
    assert res.returncode == 0, res.stdout[-2000:] + res.stderr[-2000:]
    doc = json.loads((tmp_path / "e" / "results.json").read_text())
    assert str(_ck(run, 2) / "model") in json.dumps(doc)
