"""``turngym bench``: discovery, --quick pass-through, the combined JSON, failures."""

from __future__ import annotations

import json
from pathlib import Path

from turngym.harness.cli.cmd_bench import discover, supports_quick
from turngym.harness.cli.main import main as cli

REPO = Path(__file__).resolve().parents[2]

SCRIPT = '''"""A tiny benchmark."""
import argparse
import sys
from pathlib import Path

from turngym.harness.eval.results import write_result


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--quick", action="store_true")
    args = p.parse_args()
    base = sum(range(1000))
    print(f"figure 42 vs baseline {base}")
    write_result("tiny", {"quick": args.quick, "figure": 42, "baseline": base},
                 out_dir=Path(__file__).parent / "results")


if __name__ == "__main__":
    main()
'''

FAILING = '''def main():
    raise SystemExit(3)


if __name__ == "__main__":
    main()
'''


def test_discovers_the_repo_performance_scripts() -> None:
    found = discover(REPO / "benchmarks")
    assert "gigpo_speed" in found and "household_speed" in found
    assert not {"reference_rows", "learning", "_learning_stats"} & set(found)
    assert supports_quick(found["household_speed"])
    assert not supports_quick(found["gigpo_speed"])


def test_bench_runs_scripts_and_writes_one_json(tmp_path: Path) -> None:
    (tmp_path / "tiny.py").write_text(SCRIPT)
    (tmp_path / "broken.py").write_text(FAILING)
    (tmp_path / "_helper.py").write_text("def main():\n    pass\n")
    assert set(discover(tmp_path)) == {"tiny", "broken"}
    out = tmp_path / "all.json"
    # the failing script is recorded and makes the command fail; the other still runs
    assert cli(["bench", "--quick", "--dir", str(tmp_path), "--out", str(out)]) == 1
    doc = json.loads(out.read_text())
    assert {"machine", "commit", "config", "results"} <= set(doc)
    assert doc["machine"]["cores"] >= 1 and doc["config"]["quick"] is True
    runs = {r["name"]: r for r in doc["results"]["runs"]}
    assert runs["broken"]["returncode"] == 3 and runs["broken"]["quick"] is False
    tiny = runs["tiny"]
    assert tiny["returncode"] == 0 and tiny["quick"] is True  # --quick passed through
    assert tiny["results"]["tiny.json"] == {"quick": True, "figure": 42, "baseline": 499500}
    assert "figure 42 vs baseline 499500" in tiny["output_tail"]
    assert cli(["bench", "nope", "--dir", str(tmp_path)]) == 2


def test_result_json_keeps_lists_of_scalars_on_one_line() -> None:
    from turngym.harness.eval.results import to_json

    doc = {"wins": [0.0, 1.0, 1.0], "runs": {"gigpo": [{"seed": 0, "curve": [1, 2]}, []]},
           "empty": {}, "none": None, "tuple": (1, 2), "inf": float("inf"),
           "mixed": [[1, 2], 3]}
    text = to_json(doc)
    assert json.loads(text) == json.loads(json.dumps(doc))  # the same document
    lines = text.splitlines()
    assert '  "wins": [0.0, 1.0, 1.0],' in lines and '        "curve": [1, 2]' in lines
    assert '  "mixed": [' in lines and '    [1, 2],' in lines  # a list of lists is indented
    assert lines[0] == "{" and lines[-1] == "}" and len(lines) == 20
