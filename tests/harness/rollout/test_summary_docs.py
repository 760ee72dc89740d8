"""The rollout summariser's metric names are the docs' (``docs/training.md``'s "Logged
metrics" table, ``docs/rollout.md``'s Metrics section): one naming, checked both ways."""

from __future__ import annotations

import re
from pathlib import Path

from turngym.harness.rollout import summary
from turngym.harness.rollout.trajectory import StopReason, Trajectory, Turn

DOCS = Path(__file__).resolve().parents[3] / "docs"


def _keys(rows) -> list[str]:
    return [k for keys, _ in rows for k in keys]


def _pattern(key: str) -> re.Pattern[str]:
    """``env/success/<task_type>`` -> a regex matching its concrete keys."""
    return re.compile("^" + re.sub(r"<[a-z_]+>", "[^/]+", re.escape(key)) + "$")


def _table_rows(text: str) -> list[str]:
    section = text.split("## Logged metrics", 1)[1].split("\n## ", 1)[0]
    return [line for line in section.splitlines() if line.startswith("| `")]


def test_training_doc_table_has_every_summariser_row_verbatim() -> None:
    rows = _table_rows((DOCS / "training.md").read_text())
    missing = [summary.doc_row(k, m) for k, m in summary.METRICS
               if summary.doc_row(k, m) not in rows]
    assert not missing, "docs/training.md's metric table lacks (or words differently):\n" + \
        "\n".join(missing)


def test_training_doc_env_and_eval_keys_are_the_summarisers() -> None:
    rows = _table_rows((DOCS / "training.md").read_text())
    doc_keys = [k for row in rows for k in re.findall(r"`((?:env|eval)/[^`]+)`",
                                                      row.split("|")[1])]
    assert any(k.startswith("eval/") for k in doc_keys)
    ours = _keys(summary.METRICS)
    as_eval = {"eval/" + k.split("/", 1)[1] for k in ours}
    stray = [k for k in doc_keys if k not in (as_eval if k.startswith("eval/") else ours)]
    assert not stray, f"documented keys the summariser does not write: {stray}"


def test_rollout_doc_lists_every_summariser_key() -> None:
    text = (DOCS / "rollout.md").read_text()
    section = text.split("## Metrics", 1)[1].split("\n## ", 1)[0]
    missing = [k for k in _keys(summary.METRICS + summary.DETAIL_METRICS)
               if f"`{k}`" not in section]
    assert not missing, f"docs/rollout.md's Metrics section lacks {missing}"


def _turn(i: int, valid: bool, fmt: bool, trainable: bool = True) -> Turn:
    return Turn("g", "t", "x", i, [1, 2], [3], [0.0], 1.0, "k", valid, False, False,
                trainable=trainable, format_valid=fmt)


def test_summariser_writes_only_the_listed_keys() -> None:
    turns = (_turn(0, True, True, trainable=False), _turn(1, False, False))
    trajs = [Trajectory("g", "a", "x", 0, "e", turns, StopReason.TERMINATED, True,
                        task_type="pick"),
             Trajectory("g", "b", "x", 0, "e", (_turn(0, True, True),),
                        StopReason.ENV_ERROR, False, task_type="heat",
                        metrics={"env_s": 1.0})]
    listed = [_pattern(k) for k in _keys(summary.METRICS + summary.DETAIL_METRICS)]
    got = summary.summarize(trajs, detail=True)
    assert not [k for k in got if not any(p.match(k) for p in listed)]
    # and every listed key is written for such a batch
    assert all(any(p.match(k) for k in got) for p in listed)
    ev = summary.summarize(trajs, "eval/")
    as_eval = [_pattern("eval/" + k.split("/", 1)[1]) for k in _keys(summary.METRICS)]
    assert sorted(ev) == sorted(k for k in ev if any(p.match(k) for p in as_eval))
