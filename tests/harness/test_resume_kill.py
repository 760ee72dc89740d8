"""A real tiny-model run killed (SIGKILL) after step 2, whose last checkpoint is step 1,
resumed with ``turngym train --resume``: no step is logged twice, the new rows continue the
old ones, and a changed config or a second run into the same folder is refused."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from tests.harness.test_resume import ARGS

TURNGYM = str(Path(sys.executable).parent / "turngym")
QUIET = ["logging.tensorboard=true", "eval.at_start=true"]

KILL_AT_2 = """
import os, signal, sys
from turngym.harness.config import load_config
from turngym.harness.train import train

def die(step, metrics):
    if step == 2:  # logged step 2; its checkpoint was never written
        os.kill(os.getpid(), signal.SIGKILL)

train(load_config(None, sys.argv[1:]), progress_cb=die)
"""


def _env() -> dict[str, str]:
    return {**os.environ, "COLUMNS": "200", "TERM": "dumb", "OMP_NUM_THREADS": "1"}


def _steps(path: Path, *, train_rows: bool = False) -> list[int]:
    rows = [json.loads(line) for line in path.read_text().splitlines()]
    if train_rows:  # metrics.jsonl: a training step's row has env/ keys; evals have eval/
        rows = [r for r in rows if "train/skipped" in r]
    return [r["step"] for r in rows]


@pytest.fixture(scope="module")
def killed(tmp_path_factory) -> tuple[Path, list[str]]:
    out = tmp_path_factory.mktemp("killed") / "run"
    args = [*ARGS, *QUIET, f"out_dir={out}"]
    proc = subprocess.run([sys.executable, "-c", KILL_AT_2, *args], env=_env(),
                          check=False, capture_output=True, text=True, timeout=600)
    assert proc.returncode == -signal.SIGKILL, proc.stderr[-2000:]
    assert (out / "checkpoints" / "latest").read_text() == "step-000001"
    assert _steps(out / "batches.jsonl") == [1, 2]  # step 2 was logged before the kill
    assert _steps(out / "rollouts.jsonl") == [1] * 4 + [2] * 4  # logging.rollouts: 4
    return out, args


@pytest.mark.slow
def test_killed_run_resumes_without_duplicate_steps(killed) -> None:
    out, args = killed
    before = _steps(out / "metrics.jsonl", train_rows=True)
    assert before == [1, 2]
    res = subprocess.run([TURNGYM, "train", *args, "--resume", str(out)], env=_env(),
                         check=False, capture_output=True, text=True, timeout=600)
    assert res.returncode == 0, res.stdout[-2000:] + res.stderr[-2000:]
    assert _steps(out / "batches.jsonl") == [1, 2, 3]
    assert _steps(out / "rollouts.jsonl") == [1] * 4 + [2] * 4 + [3] * 4  # step 2 once
    assert _steps(out / "metrics.jsonl", train_rows=True) == [1, 2, 3]
    rows = [json.loads(line) for line in (out / "metrics.jsonl").read_text().splitlines()]
    assert rows[0]["step"] == 0 and "eval/success" in rows[0]  # the first run's baseline
    assert (out / "checkpoints" / "latest").read_text() == "step-000003"


@pytest.mark.slow
def test_second_run_and_changed_resume_are_refused(killed) -> None:
    out, args = killed
    again = subprocess.run([TURNGYM, "train", *args], env=_env(), check=False, capture_output=True,
                           text=True, timeout=300)
    assert again.returncode == 2
    assert f"out_dir {str(out)!r} exists" in again.stderr
    assert f"pass --resume {out}" in again.stderr
    assert "Traceback" not in again.stderr
    changed = subprocess.run([TURNGYM, "train", *args, "optim.lr=5e-3", "--resume", str(out)],
                             env=_env(), check=False, capture_output=True, text=True, timeout=300)
    assert changed.returncode == 2
    assert "optim.lr: 0.001 -> 0.005" in changed.stderr.replace("\n", "")
    assert "Traceback" not in changed.stderr
