"""Training writes its rollouts (``logging.rollouts``) and ``turngym report`` shows them,
with the last value of every logged key. The killed-and-resumed run of
``test_resume_kill.py`` checks that a resume leaves no duplicate step in ``rollouts.jsonl``."""

from __future__ import annotations

import json
from pathlib import Path
from types import SimpleNamespace

import pytest

from tests.harness.test_train import TINY
from turngym.harness.config import load_config
from turngym.harness.eval.report import build_report, last_values, load_run
from turngym.harness.learn.metrics_log import sample_rollouts, truncate_steps
from turngym.harness.rollout.trajectory import Trajectory, read_jsonl
from turngym.harness.train import train


def _groups(sizes: list[int]) -> list[SimpleNamespace]:
    return [SimpleNamespace(trajectories=tuple(f"g{g}t{t}" for t in range(n)))
            for g, n in enumerate(sizes)]


@pytest.mark.parametrize("keep, expected", [
    ("all", ["g0t0", "g0t1", "g0t2", "g1t0", "g2t0", "g2t1"]),
    (0, []),
    (2, ["g0t0", "g1t0"]),  # one per group first: two tasks, not two of one task
    (4, ["g0t0", "g1t0", "g2t0", "g0t1"]),
    (99, ["g0t0", "g1t0", "g2t0", "g0t1", "g2t1", "g0t2"]),
])
def test_sample_rollouts_takes_one_per_group_in_turn(keep, expected: list[str]) -> None:
    assert sample_rollouts(_groups([3, 1, 2]), keep) == expected


def _train(out: Path, *overrides: str) -> dict:
    return train(load_config(None, [*TINY, f"out_dir={out}", "logging.tensorboard=false",
                                    *overrides]))


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory) -> Path:
    """2 steps of 2 groups x 2 trajectories, 3 logged per step."""
    out = tmp_path_factory.mktemp("rollouts") / "run"
    _train(out, "logging.rollouts=3")
    return out


def test_a_tiny_run_writes_its_rollouts_in_the_eval_format(run_dir: Path) -> None:
    rows = [json.loads(line) for line in (run_dir / "rollouts.jsonl").read_text().splitlines()]
    assert [r["step"] for r in rows] == [1, 1, 1, 2, 2, 2]
    trajs = list(read_jsonl(run_dir / "rollouts.jsonl"))  # turngym eval's reader
    assert len(trajs) == 6 and all(isinstance(t, Trajectory) and t.turns for t in trajs)
    for row, traj in zip(rows, trajs):
        # eval's line (its writer: trajectory.write_jsonl) plus "step"
        assert row == {"step": row["step"], **json.loads(json.dumps(traj.to_dict()))}
    first = {t.group_id for t in trajs[:3]}
    assert len(first) == 2  # both groups of step 1 are shown before a group's second


@pytest.mark.parametrize("keep, per_step", [("all", 4), ("0", 0)])
def test_rollouts_all_or_none(tmp_path: Path, keep: str, per_step: int) -> None:
    _train(tmp_path / "run", "steps=1", f"logging.rollouts={keep}")
    path = tmp_path / "run" / "rollouts.jsonl"
    assert path.exists() == bool(per_step)
    if per_step:
        assert [json.loads(x)["step"] for x in path.read_text().splitlines()] == [1] * per_step


def test_resume_cuts_rollouts_like_metrics(tmp_path: Path, run_dir: Path) -> None:
    path = tmp_path / "rollouts.jsonl"
    path.write_text((run_dir / "rollouts.jsonl").read_text() + '{"step": 3, "gro')  # torn
    assert truncate_steps(path, 1) == 4
    assert [json.loads(x)["step"] for x in path.read_text().splitlines()] == [1, 1, 1]


def test_report_shows_rollouts_and_every_keys_last_value(run_dir: Path) -> None:
    run = load_run(run_dir)
    last_line = run["metrics"][-1]
    assert "train/skipped" not in last_line  # the final eval's row holds eval keys only
    last = last_values(run["metrics"])
    assert last["train/skipped"][1] == 2 and "eval/success" in last
    assert set(last) == {k for r in run["metrics"] for k, v in r.items()
                         if k != "step" and v is not None}
    page = build_report([run_dir])
    for key in ("train/skipped", "rollout/turns", "eval/success", "at step"):
        assert f">{key}<" in page, key
    data = json.loads(page.split('id="episodes-data">', 1)[1].split("</script>", 1)[0])
    labels = [e["label"] for e in data]
    assert sum("· step 1 ·" in x for x in labels) == 3
    assert sum("· step 2 ·" in x for x in labels) == 3
    assert all(e["turns"] for e in data)
