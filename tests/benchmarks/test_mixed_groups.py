"""``benchmarks/mixed_groups.py``: what counts as a mixed group, and the probe end to end on
the tiny model (which never writes an action: no group is mixed, every turn a format
error)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from benchmarks import mixed_groups


def test_only_groups_with_both_outcomes_are_mixed() -> None:
    assert mixed_groups.is_mixed([True, False, False])
    assert not mixed_groups.is_mixed([True, True])
    assert not mixed_groups.is_mixed([False, False, False])
    assert not mixed_groups.is_mixed([])


@pytest.mark.slow
def test_the_probe_writes_one_row_per_setting(tmp_path: Path) -> None:
    mixed_groups.main(["--model", "tiny", "--tasks", "2", "--temperatures", "1.0,1.5",
                       "--groups", "2", "--backend", "hf", "--results-dir", str(tmp_path)])
    doc = json.loads((tmp_path / "mixed_groups.json").read_text())
    rows = doc["results"]["rows"]
    assert [(r["temperature"], r["group"], r["tasks"]) for r in rows] == [(1.0, 2, 2),
                                                                        (1.5, 2, 2)]
    for r in rows:
        assert (r["mixed_frac"], r["success"], r["format_error_rate"]) == (0.0, 0.0, 1.0)
        assert r["mixed_lo"] == 0.0 and r["mixed_hi"] == pytest.approx(0.65761, abs=1e-5)
