"""Metric computation on hand-made trajectories, and the JSONL / TensorBoard / PNG sinks."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from turngym.harness.learn.metrics_log import MetricsLogger
from turngym.harness.rollout.summary import summarize as rollout_metrics
from turngym.harness.rollout.trajectory import StopReason, Trajectory, Turn
from turngym.harness.ui.plots import plot_curves, read_metrics


def traj(won: bool, valid: list[bool], reward: float, kind: str,
         stop: StopReason = StopReason.TERMINATED) -> Trajectory:
    turns = tuple(Turn("g", "t", "x", i, [1, 2, 3], [4] * (i + 1), [-1.0] * (i + 1),
                       reward if i == len(valid) - 1 else 0.0, "s", v, False, won)
                  for i, v in enumerate(valid))
    return Trajectory("g", "t", "x", 0, "e", turns, stop, won, task_type=kind)


def test_rollout_metrics_hand_computed() -> None:
    trajs = [traj(True, [True, False], 1.0, "a"), traj(False, [False], 0.0, "b",
                                                        StopReason.TRUNCATED)]
    m = rollout_metrics(trajs)
    assert m["env/success"] == 0.5 and m["env/return"] == 0.5
    assert (m["env/success/a"], m["env/success/b"]) == (1.0, 0.0)
    assert m["rollout/turns"] == 1.5
    assert m["rollout/invalid_rate"] == pytest.approx(2 / 3)
    assert m["rollout/format_error_rate"] == 0.0  # every response parsed: invalid = env said no
    assert m["rollout/response_tokens"] == pytest.approx((1 + 2 + 1) / 3)
    assert (m["rollout/stop/terminated"], m["rollout/stop/truncated"]) == (0.5, 0.5)
    ev = rollout_metrics(trajs, prefix="eval/")
    assert ev["eval/success"] == 0.5 and ev["eval/turns"] == 1.5
    assert rollout_metrics([]) == {}


def test_logger_writes_jsonl_tensorboard_and_png(tmp_path: Path) -> None:
    log = MetricsLogger(tmp_path, tensorboard=True)
    log.log(1, {"env/success": 0.25, "algo/loss": 1.5, "bad": float("nan"), "text": "x"})
    log.log(2, {"env/success": 0.5, "algo/loss": 1.0})
    log.close()
    rows = read_metrics(tmp_path / "metrics.jsonl")
    assert rows[0] == {"step": 1, "env/success": 0.25, "algo/loss": 1.5, "bad": None}
    assert rows[1]["env/success"] == 0.5
    assert list((tmp_path / "tb").glob("events.out.tfevents.*"))
    png = plot_curves(tmp_path / "metrics.jsonl", tmp_path / "curves.png")
    assert png is not None and png.read_bytes()[:4] == b"\x89PNG"
    assert json.loads((tmp_path / "metrics.jsonl").read_text().splitlines()[1])["step"] == 2
