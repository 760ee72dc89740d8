"""``benchmarks/env_memory.py`` on tiny settings: one subprocess per family, the JSON."""

from __future__ import annotations

import json
import subprocess
import sys
import time
from pathlib import Path

import pytest

from turngym.benchmarks import env_memory


def test_rss_counts_the_children() -> None:
    alone = env_memory.rss_mb()
    child = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(30)"])
    try:
        time.sleep(0.5)
        assert env_memory.rss_mb() > alone + 1  # a Python child is several MB
    finally:
        child.kill()
        child.wait()


def test_runs_families_and_writes_the_json(tmp_path: Path, capsys) -> None:
    results = env_memory.main(["--families", "household,maze", "--scale", "0.004",
                               "--samples", "2", "--out-dir", str(tmp_path)])
    out = capsys.readouterr().out
    assert "household" in out and "growth MB/1k ep" in out and "baseline" in out
    doc = json.loads((tmp_path / "env_memory.json").read_text())
    assert doc["benchmark"] == "env_memory" and doc["config"]["families"] == ["household", "maze"]
    for family in ("household", "maze"):
        r = doc["results"][family]
        assert r == results[family] and r["episodes"] == 20
        assert r["rss_baseline_mb"] > 0 and isinstance(r["growth_mb_per_1000_episodes"], float)
        assert [s["episode"] for s in r["series"]][::len(r["series"]) - 1] == [4, 20]


def test_unknown_family_is_an_error(tmp_path: Path) -> None:
    with pytest.raises(SystemExit):
        env_memory.main(["--families", "nope", "--out-dir", str(tmp_path)])
