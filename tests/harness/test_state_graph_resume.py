"""The state graph (``algo.state_graph``) survives kill-and-resume bit-exactly.

A run of the SFT'd tiny model on two Maze tasks (so states recur across steps and the graph
scores rows from step 2 on) is SIGKILLed after step 2, whose checkpoint was never written,
and resumed from step 1's. Its batches (``batches.jsonl`` ``digest``: prompts, responses and
advantages) and the graph saved in every checkpoint equal those of an uninterrupted run.
A small ``max_states`` makes eviction part of what has to match.
"""

from __future__ import annotations

import json
import signal
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

from tests.harness.test_resume import ARGS
from tests.harness.test_resume_kill import KILL_AT_2, _env

#: From the SFT'd tiny model at temperature 1.5 (it wins some mazes, so returns differ), on
#: 2 train tasks; GiGPO + the graph in value mode (every row whose state was seen before
#: gets a term), at most 6 states (Maze size 2 reaches more: eviction runs).
GRAPH = ["rollout.temperature=1.5", "rollout.tasks_per_step=4", "rollout.group_size=4",
         "rollout.max_turns=4", "rollout.history_length=0", "rollout.max_tokens=8",
         "env.num_train_tasks=2", ("algo.state_graph={enabled: true, mode: value, "
                                   "min_count: 1, decay: 0.9, max_states: 6}")]


def _graph(run: Path, step: int) -> dict:
    ck = run / "checkpoints" / f"step-{step:06d}" / "trainer_state.pt"
    return torch.load(ck, weights_only=False)["state_graph"]


def _batches(run: Path) -> list[tuple[int, str]]:
    rows = [json.loads(line) for line in (run / "batches.jsonl").read_text().splitlines()]
    return [(r["step"], r["digest"]) for r in rows]


#: One whole run, or a resume of one (``--resume DIR`` first): as KILL_AT_2 does, in a fresh
#: process, so the three runs share every process-wide torch setting (thread count, kernels
#: an earlier test in the pytest process may have switched) and compare bit for bit.
RUN = """
import sys
from turngym.harness.config import load_config
from turngym.harness.train import train

args = sys.argv[1:]
resume = args.pop(1) if args[0] == "--resume" else None
train(load_config(None, args[1:] if resume else args), resume=resume)
"""


def _run(script: str, args: list[str]) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-c", script, *args], env=_env(), check=False,
                          capture_output=True, text=True, timeout=600,
                          cwd=Path(__file__).resolve().parents[2])


def _train_rows(run: Path) -> list[dict]:
    rows = [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]
    return [r for r in rows if "train/skipped" in r]


@pytest.mark.slow
def test_state_graph_survives_kill_and_resume(tmp_path: Path, sft_run: dict) -> None:
    args = [*ARGS, *GRAPH, f"model.path={sft_run['model_dir']}"]
    full_dir, out = tmp_path / "a", tmp_path / "b"
    done = _run(RUN, [*args, f"out_dir={full_dir}"])
    assert done.returncode == 0, done.stderr[-2000:]
    m = _train_rows(full_dir)
    assert [r["step"] for r in m] == [1, 2, 3]
    assert m[0]["algo/graph_hit_frac"] == 0.0  # the first batch has nothing to read
    assert all(x["algo/graph_hit_frac"] > 0 for x in m[1:]), m  # the graph scores rows
    assert any(x["algo/graph_adv_abs_mean"] > 0 for x in m[1:]), m
    assert any(x["algo/graph_evicted"] > 0 for x in m), m

    killed = _run(KILL_AT_2, [*args, f"out_dir={out}"])
    assert killed.returncode == -signal.SIGKILL, killed.stderr[-2000:]
    assert (out / "checkpoints" / "latest").read_text() == "step-000001"
    resumed = _run(RUN, ["--resume", str(out), *args, f"out_dir={out}"])
    assert resumed.returncode == 0, resumed.stderr[-2000:]
    got = _train_rows(out)
    assert [r["step"] for r in got] == [1, 2, 3]  # the killed run's step 2 row was dropped

    assert _batches(out) == _batches(full_dir)  # steps 1, 2, 3: same digests
    for want, row in zip(m, got):  # the same loss and graph metrics, bit for bit
        assert row["algo/loss"] == want["algo/loss"]
        assert {k: v for k, v in row.items() if "graph" in k} == {
            k: v for k, v in want.items() if "graph" in k}
    for step in (1, 2, 3):
        a, b = _graph(full_dir, step), _graph(out, step)
        assert a.keys() == b.keys() and a["step"] == b["step"] == step - 1
        for key, value in a.items():
            if isinstance(value, np.ndarray):
                assert value.dtype == b[key].dtype and value.tobytes() == b[key].tobytes(), key
            else:
                assert value == b[key], key
    assert len(_graph(out, 3)["key_ids"]) == 6
