"""``turngym.harness.eval.report`` without a browser: contents, embedded data, errors, the CLI."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from turngym.errors import ConfigError
from turngym.harness.cli.main import main as cli
from turngym.harness.eval.evaluate import EvalSettings, evaluate
from turngym.harness.eval.report import build_report
from turngym.harness.eval.suite import Suite
from turngym.harness.learn.metrics_log import MetricsLogger


@pytest.fixture(scope="module")
def runs(tmp_path_factory) -> tuple[Path, Path]:
    root = tmp_path_factory.mktemp("runs")
    suite = Suite(name="mini", entries=[
        {"name": "maze", "env_id": "turngym/Maze-v0", "split": "test", "num_tasks": 2},
        {"name": "search", "env_id": "turngym/Search-v0", "split": "test", "num_tasks": 3,
         "group_by": "question_type"}])
    evaluate(suite, EvalSettings(model="expert", samples=2)).write(root / "eval")
    log = MetricsLogger(root / "train", tensorboard=False)
    for step in range(4):
        log.log(step, {"env/success": 0.25 * step, "algo/loss": 2.0 - step})
    log.close()
    return root / "eval", root / "train"


def _episodes(page: str) -> list[dict]:
    m = re.search(r'<script type="application/json" id="episodes-data">(.*?)</script>', page,
                  re.DOTALL)
    assert m is not None
    return json.loads(m.group(1))


def test_report_has_tables_plots_and_viewer_data(runs: tuple[Path, Path]) -> None:
    eval_dir, train_dir = runs
    page = build_report([eval_dir, train_dir], title="T <1>")
    assert "<title>T &lt;1&gt;</title>" in page
    assert page.count('src="data:image/png;base64,') == 3  # types, turn hist, curves
    assert "search / 3hop" in page and "maze / all" in page  # per-type rows
    assert "@2 1.00" in page  # pass@2 of the expert
    assert "Training: train" in page and "env/success" in page
    eps = _episodes(page)
    assert len(eps) == 10  # (2 + 3 tasks) x 2 samples
    trajs = [json.loads(line) for line in (eval_dir / "trajectories.jsonl").open()]
    assert [len(e["turns"]) for e in eps] == [len(t["turns"]) for t in trajs]
    turn = eps[0]["turns"][0]
    assert set(turn) == {"prompt", "response", "action", "reward", "valid", "done",
                         "state_key", "observation"}
    assert turn["state_key"] == trajs[0]["turns"][0]["state_key"]
    assert "http://" not in page and "https://" not in page  # self-contained


def test_embedded_text_cannot_close_the_script(tmp_path: Path, runs: tuple[Path, Path]) -> None:
    eval_dir, _ = runs
    bad = tmp_path / "eval"
    bad.mkdir()
    (bad / "results.json").write_text((eval_dir / "results.json").read_text())
    lines = (eval_dir / "trajectories.jsonl").read_text().splitlines()
    doc = json.loads(lines[0])
    doc["turns"][0]["observation"] = "</script><script>alert(1)</script>"
    (bad / "trajectories.jsonl").write_text(json.dumps(doc) + "\n")
    page = build_report([bad], max_episodes=5)
    assert "</script><script>alert(1)" not in page
    assert _episodes(page)[0]["turns"][0]["observation"].startswith("</script>")


def test_report_errors_name_the_dir(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="does not exist"):
        build_report([tmp_path / "missing"])
    with pytest.raises(ConfigError, match="neither results.json"):
        build_report([tmp_path])
    with pytest.raises(ConfigError, match="at least one"):
        build_report([])


def test_report_cli(tmp_path: Path, runs: tuple[Path, Path]) -> None:
    out = tmp_path / "r" / "report.html"
    assert cli(["report", str(runs[0]), "--out", str(out), "--max-episodes", "1"]) == 0
    assert len(_episodes(out.read_text())) == 1
    assert cli(["report", str(tmp_path / "nope"), "--out", str(out)]) == 2
