"""Loading corpora and question sets: the shipped data and a user's own files.

* Corpus: ``.jsonl``/``.jsonl.gz`` with ``{"id", "title", "text"}`` per line (read
  directly), or ``.parquet``/``.json``/``.csv`` through ``datasets`` offline. Search-R1's
  ``{"id", "contents": "\\"Title\\"\\ntext"}`` rows are accepted too.
* Questions (:func:`load_qa`), through ``datasets`` offline, in any of:
  turngym's own rows (``id, question, answers, type, chain``), NQ-open
  (``question, answer[s]``), HotpotQA (``_id, question, answer, type,
  supporting_facts``) and Search-R1/FlashRAG (``id, question, golden_answers`` or
  ``reward_model.ground_truth.target``, ``data_source``).
"""

from __future__ import annotations

import gzip
import json
import os
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from turngym.errors import ConfigError

DATA_DIR = Path(__file__).resolve().parent / "data"
SHIPPED_CORPUS = DATA_DIR / "corpus.jsonl.gz"
SPLITS = ("train", "dev", "test")


@dataclass(frozen=True)
class QAItem:
    """One question with its gold answers and (when known) its gold evidence chain."""

    id: str
    question: str
    answers: tuple[str, ...]
    """The gold answer first, then its aliases."""
    type: str = "unknown"
    """``1hop``, ``2hop``, ``comparison``, ``3hop`` for the shipped set; the source's type
    (HotpotQA ``bridge``/``comparison``, Search-R1 ``data_source``) otherwise."""
    chain: tuple[tuple[str, str | None], ...] = field(default=())
    """Hops ``(query, passage id or None)`` that retrieve the evidence, in order."""


def read_jsonl(path: Path) -> Iterable[dict]:
    """Rows of a ``.jsonl`` or ``.jsonl.gz`` file.

    It lives here, below :mod:`~turngym.envs.search.index` (which reads its saved passages
    with it and builds from :func:`load_corpus`), so the two modules import one way."""
    opener = gzip.open if str(path).endswith(".gz") else open
    with opener(path, "rt", encoding="utf-8") as fh:
        for line in fh:
            if line.strip():
                yield json.loads(line)


def _dataset_rows(path: Path) -> list[dict]:
    """Rows of a json/jsonl/parquet/csv file through ``datasets`` with no network."""
    os.environ.setdefault("HF_DATASETS_OFFLINE", "1")
    import datasets

    name = path.name.lower()
    kind = ("parquet" if name.endswith(".parquet") else "csv" if name.endswith(".csv")
            else "json")
    datasets.disable_progress_bars()
    try:
        ds = datasets.load_dataset(kind, data_files=str(path), split="train")
    except Exception as exc:  # datasets raises many types for a malformed file
        raise ConfigError(f"could not read {path} as {kind}: {exc}") from exc
    return ds.to_list()


def _corpus_row(row: dict, where: str) -> dict:
    if "contents" in row and "text" not in row:  # Search-R1 / FlashRAG wiki dump
        head, _, body = str(row["contents"]).partition("\n")
        row = {"id": row.get("id"), "title": head.strip().strip('"'), "text": body.strip()}
    missing = [k for k in ("id", "text") if row.get(k) in (None, "")]
    if missing:
        raise ConfigError(f"corpus {where} lacks {missing}; each row needs id, title, text")
    return {"id": str(row["id"]), "title": str(row.get("title") or ""), "text": str(row["text"])}


def load_corpus(path: Path) -> list[dict]:
    """Passages ``{"id", "title", "text"}`` of a corpus file; bad rows name their line."""
    path = Path(path)
    if not path.is_file():
        raise ConfigError(f"corpus file {path} does not exist")
    if path.name.endswith((".jsonl", ".jsonl.gz")):
        try:
            rows = list(read_jsonl(path))
        except ValueError as exc:
            raise ConfigError(f"corpus {path} is not valid JSONL: {exc}") from exc
    else:
        rows = _dataset_rows(path)
    out = [_corpus_row(r, f"{path} row {i + 1}") for i, r in enumerate(rows)]
    if not out:
        raise ConfigError(f"corpus {path} has no passages")
    ids = {p["id"] for p in out}
    if len(ids) != len(out):
        raise ConfigError(f"corpus {path} has duplicate passage ids")
    return out


def _as_list(value: Any) -> list[str]:
    if value is None:
        return []
    if isinstance(value, (list, tuple)):
        return [str(v) for v in value if v is not None and str(v) != ""]
    return [str(value)]


def qa_item(row: dict, fallback_id: str) -> QAItem:
    """One row of any supported QA format as a :class:`QAItem`."""
    question = str(row.get("question") or "").strip()
    if not question:
        raise ConfigError(f"QA row {fallback_id} has no 'question'")
    answers = (_as_list(row.get("answers")) or _as_list(row.get("golden_answers"))
               or _as_list(row.get("answer")))
    if not answers:
        target = ((row.get("reward_model") or {}).get("ground_truth") or {}).get("target")
        answers = _as_list(target)
    if not answers:
        raise ConfigError(f"QA row {fallback_id} has no answer "
                          "(expected answers, answer, golden_answers or reward_model)")
    qid = str(row.get("id") or row.get("_id") or fallback_id)
    qtype = str(row.get("type") or row.get("data_source") or "unknown")
    if row.get("chain"):
        chain = tuple((str(h["query"]), h.get("passage")) for h in row["chain"])
    elif row.get("supporting_facts"):  # HotpotQA: [[title, sentence], ...] or dict form
        facts = row["supporting_facts"]
        titles = facts.get("title", []) if isinstance(facts, dict) else [f[0] for f in facts]
        chain = tuple((str(t), None) for t in dict.fromkeys(titles))
    else:
        chain = ((question, None),)
    return QAItem(qid, question, tuple(answers), qtype, chain)


def load_qa(path: Path) -> list[QAItem]:
    """Questions of a user QA file (jsonl, json or parquet), read through ``datasets``."""
    path = Path(path)
    if not path.is_file():
        raise ConfigError(f"QA file {path} does not exist")
    stem = path.name.split(".")[0]
    items = [qa_item(r, f"{stem}-{i:05d}") for i, r in enumerate(_dataset_rows(path))]
    if len({it.id for it in items}) != len(items):
        raise ConfigError(f"QA file {path} has duplicate question ids")
    return items


def load_shipped_qa(split: str) -> list[QAItem]:
    """The shipped generated questions of ``split`` (``train``, ``dev`` or ``test``)."""
    if split not in SPLITS:
        raise ConfigError(f"split must be one of {SPLITS}, got {split!r}")
    path = DATA_DIR / f"qa_{split}.jsonl.gz"
    return [qa_item(r, f"{split}-{i:05d}") for i, r in enumerate(read_jsonl(path))]
