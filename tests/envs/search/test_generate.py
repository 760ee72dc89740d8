"""The data generator: deterministic, consistent facts, and the shipped files."""

from __future__ import annotations

import gzip
import hashlib
import json
import re

import pytest

from turngym.envs.search.corpus import DATA_DIR, SHIPPED_CORPUS
from turngym.envs.search.generate import generate, main
from turngym.envs.search.index import read_jsonl
from turngym.envs.search.world import build_world, world_passages


def test_world_facts_match_their_passages() -> None:
    w = build_world(seed=3, scale=0.05)
    passages, where = world_passages(w)
    by_id = {p["id"]: p for p in passages}
    for i, p in enumerate(w.people):
        born = by_id[where[("person", i, "born")]]["text"]
        assert born == f"{p['name']} was born in {p['year']} in " \
                       f"{w.cities[p['birthplace']]['name']}."
    for i, x in enumerate(w.works):
        creator = w.people[x["creator"]]
        assert x["kind"] == creator["kind"] and x["year"] > creator["year"]
        assert creator["name"] in by_id[where[("work", i, "creator")]]["text"]
    for c in w.countries:
        assert c["capital"] is None or w.cities[c["capital"]]["country"] == w.countries.index(c)
    names = [e["name"] for e in w.people + w.cities + w.orgs + w.works + w.countries]
    assert len(set(names)) == len(names)


def test_generation_is_deterministic_and_seeded() -> None:
    sizes = {"train": 40, "dev": 8}
    a = generate(seed=5, scale=0.05, sizes=sizes)
    b = generate(seed=5, scale=0.05, sizes=sizes)
    c = generate(seed=6, scale=0.05, sizes=sizes)
    assert a == b and a[0] != c[0]
    _passages, splits = a
    assert [len(splits[s]) for s in sizes] == [40, 8]
    assert len({q["question"] for s in splits.values() for q in s}) == 48


def test_shipped_files_are_compact_and_big_enough() -> None:
    total = sum(p.stat().st_size for p in DATA_DIR.glob("*.jsonl.gz"))
    assert total < 15 * 2**20
    passages = list(read_jsonl(SHIPPED_CORPUS))
    assert len(passages) >= 20_000
    assert all(re.fullmatch(r"p\d{7}", p["id"]) and p["title"] and p["text"] for p in passages)
    with gzip.open(DATA_DIR / "qa_test.jsonl.gz", "rt") as fh:
        first = json.loads(fh.readline())
    assert set(first) == {"id", "question", "answers", "type", "chain"}


@pytest.mark.slow
def test_regenerating_gives_the_shipped_bytes(tmp_path) -> None:
    main(["--seed", "0", "--out", str(tmp_path)])
    for name in ("corpus.jsonl.gz", "qa_train.jsonl.gz", "qa_dev.jsonl.gz", "qa_test.jsonl.gz"):
        ours = hashlib.sha256((tmp_path / name).read_bytes()).hexdigest()
        shipped = hashlib.sha256((DATA_DIR / name).read_bytes()).hexdigest()
        assert ours == shipped, f"{name} differs from the regenerated file"
