"""The in-process BM25 index (bm25s, English stopwords, Snowball stemming via PyStemmer).

:func:`open_index` returns a cached :class:`BM25Index` for a corpus file: it loads the
index saved beside the corpus (``<corpus dir>/<corpus name>.bm25s/``) or builds and saves
it once. A read-only corpus folder falls back to ``~/.cache/turngym/search/``. Many envs in
one process share one loaded index.
"""

from __future__ import annotations

import gzip
import hashlib
import json
import logging
import os
import re
import shutil
import tempfile
import threading
import time
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

import numpy as np

from turngym.envs.search.corpus import load_corpus, read_jsonl

logger = logging.getLogger(__name__)

INDEX_FORMAT = 1
_CACHE: dict[str, BM25Index] = {}
_LOCK = threading.Lock()


@dataclass(frozen=True)
class Hit:
    """One retrieved passage."""

    id: str
    """Passage id from the corpus."""
    title: str
    text: str
    score: float
    """BM25 score (> 0)."""


_TOKEN = re.compile(r"(?u)\b\w\w+\b")  # bm25s's default token pattern


@lru_cache(maxsize=1)
def _stopwords() -> frozenset[str]:
    from bm25s.tokenization import _infer_stopwords

    return frozenset(_infer_stopwords("en"))


def _stemmer():
    import Stemmer

    return Stemmer.Stemmer("english")


_LOCAL = threading.local()


def query_terms(query: str) -> list[str]:
    """The stemmed, stopword-free terms of ``query`` exactly as ``bm25s.tokenize`` with
    ``stopwords="en"`` and the English stemmer makes them (may be empty). Written out
    because ``bm25s.tokenize`` costs about 0.6 ms of progress-bar set-up per call."""
    stem = getattr(_LOCAL, "stemmer", None)
    if stem is None:
        stem = _LOCAL.stemmer = _stemmer()  # PyStemmer objects are not thread-safe
    stop = _stopwords()
    return stem.stemWords([t for t in _TOKEN.findall(query.lower()) if t not in stop])


class BM25Index:
    """BM25 over ``{"id", "title", "text"}`` passages; title and text are both indexed."""

    def __init__(self, retriever, passages: list[dict]):
        self.retriever = retriever
        self.passages = passages

    @classmethod
    def build(cls, passages: list[dict]) -> BM25Index:
        """Tokenise (stopwords ``en``, stemmed) and index ``passages``."""
        import bm25s

        texts = [f"{p['title']}. {p['text']}" for p in passages]
        tokens = bm25s.tokenize(texts, stopwords="en", stemmer=_stemmer(), show_progress=False)
        retriever = bm25s.BM25()
        retriever.index(tokens, show_progress=False)
        return cls(retriever, passages)

    def save(self, directory: Path, meta: dict | None = None) -> None:
        """Write the index and passages to ``directory`` (atomically: temp dir + rename)."""
        directory = Path(directory)
        directory.parent.mkdir(parents=True, exist_ok=True)
        tmp = Path(tempfile.mkdtemp(prefix=".tmp-", dir=directory.parent))
        tmp.chmod(0o755)  # mkdtemp makes it private; the index is shared
        try:
            self.retriever.save(str(tmp), show_progress=False)
            with gzip.GzipFile(tmp / "passages.jsonl.gz", "wb", mtime=0) as fh:
                for p in self.passages:
                    fh.write((json.dumps(p, ensure_ascii=False) + "\n").encode())
            info = {"format": INDEX_FORMAT, "passages": len(self.passages), **(meta or {})}
            (tmp / "turngym_index.json").write_text(json.dumps(info, indent=1))
            if directory.exists():
                shutil.rmtree(directory, ignore_errors=True)
            try:
                os.replace(tmp, directory)
            except OSError:  # another process saved the same index first
                if not (directory / "turngym_index.json").is_file():
                    raise
        finally:
            shutil.rmtree(tmp, ignore_errors=True)

    @classmethod
    def load(cls, directory: Path) -> BM25Index:
        """Load an index saved by :meth:`save`."""
        import bm25s

        directory = Path(directory)
        retriever = bm25s.BM25.load(str(directory), show_progress=False)
        passages = list(read_jsonl(directory / "passages.jsonl.gz"))
        return cls(retriever, passages)

    def __len__(self) -> int:
        return len(self.passages)

    def query_terms(self, query: str) -> list[str]:
        """The stemmed, stopword-free terms of ``query`` (may be empty)."""
        return query_terms(query)

    def search(self, queries: list[str], k: int) -> list[list[Hit]]:
        """Top-``k`` hits for each query, best first; ties go to the lower passage index.

        Fewer than ``k`` when fewer passages share a term with the query; none when no term
        of the query is in the index.
        """
        k = max(1, int(k))
        return [[self._hit(d, s) for d, s in self.top_k(q, k)] for q in queries]

    def top_k(self, query: str, k: int) -> list[tuple[int, float]]:
        """``(passage index, BM25 score)`` pairs of the best ``k`` passages for ``query``.

        Scores only the passages that contain a query term, straight from bm25s's
        precomputed per-term score columns (CSC arrays), instead of ``BM25.retrieve``'s
        dense score vector over the whole corpus: same scores, about 6x faster here.
        """
        sc = self.retriever.scores
        vocab = self.retriever.vocab_dict
        ids = [vocab[t] for t in query_terms(query) if t in vocab]
        if not ids:
            return []
        indptr = sc["indptr"]
        docs_M = np.concatenate([sc["indices"][indptr[t]:indptr[t + 1]] for t in ids])
        weights_M = np.concatenate([sc["data"][indptr[t]:indptr[t + 1]] for t in ids])
        cand_C, inverse_M = np.unique(docs_M, return_inverse=True)
        scores_C = np.bincount(inverse_M, weights=weights_M).astype(np.float32)
        if len(cand_C) > k:  # keep every tie with the k-th score, then break ties by index
            kth = np.partition(scores_C, len(cand_C) - k)[len(cand_C) - k]
            keep = scores_C >= kth
            cand_C, scores_C = cand_C[keep], scores_C[keep]
        order = np.lexsort((cand_C, -scores_C))[:k]
        return [(int(cand_C[o]), float(scores_C[o])) for o in order if scores_C[o] > 0]

    def _hit(self, doc: int, score: float) -> Hit:
        p = self.passages[doc]
        return Hit(p["id"], p["title"], p["text"], round(score, 4))


def corpus_digest(path: Path) -> str:
    """SHA-1 of the corpus file's bytes (the index is rebuilt when it changes)."""
    h = hashlib.sha1()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def default_index_dir(corpus: Path) -> Path:
    """``<corpus>.bm25s`` beside the corpus, or the user cache when that folder is read-only."""
    corpus = Path(corpus).resolve()
    if os.access(corpus.parent, os.W_OK):
        return corpus.parent / (corpus.name.split(".")[0] + ".bm25s")
    base = Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache"))
    return base / "turngym" / "search" / (corpus_digest(corpus)[:16] + ".bm25s")


def _index_current(directory: Path, digest: str) -> bool:
    try:
        meta = json.loads((directory / "turngym_index.json").read_text())
    except (OSError, ValueError):
        return False
    return meta.get("format") == INDEX_FORMAT and meta.get("corpus_sha1") == digest


def open_index(corpus: Path, index_dir: Path | None = None) -> BM25Index:
    """The index of ``corpus`` (JSONL or JSONL.gz of ``{"id","title","text"}``), cached.

    Loads ``index_dir`` (default :func:`default_index_dir`) when it matches the corpus
    bytes; otherwise builds the index and saves it there.
    """
    corpus = Path(corpus).resolve()
    directory = Path(index_dir or default_index_dir(corpus)).resolve()
    stat = corpus.stat()
    key = f"{corpus}|{stat.st_mtime_ns}|{stat.st_size}|{directory}"  # a changed file reloads
    with _LOCK:
        if key in _CACHE:
            return _CACHE[key]
        digest = corpus_digest(corpus)
        if _index_current(directory, digest):
            index = BM25Index.load(directory)
        else:
            start = time.perf_counter()
            index = BM25Index.build(load_corpus(corpus))
            index.save(directory, {"corpus": str(corpus), "corpus_sha1": digest})
            logger.info("built BM25 index of %d passages in %.1fs at %s", len(index),
                        time.perf_counter() - start, directory)
        _CACHE[key] = index
        return index


def open_index_dir(directory: Path) -> BM25Index:
    """A saved index folder (as ``turngym serve retriever --index DIR`` takes), cached."""
    directory = Path(directory).resolve()
    key = f"dir|{directory}"
    with _LOCK:
        if key not in _CACHE:
            _CACHE[key] = BM25Index.load(directory)
        return _CACHE[key]
