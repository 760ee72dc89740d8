"""Generate the shipped Search data: ``python -m turngym.envs.search.generate --seed 0``.

Writes, deterministically from the seed (``gzip`` with ``mtime=0``, so the bytes repeat):

* ``corpus.jsonl.gz``: about 20.5k passages about fictional entities (see
  :mod:`turngym.envs.search.world`);
* ``qa_{train,dev,test}.jsonl.gz``: questions of the four types in equal shares, each with
  its gold answer, aliases and gold chain. A question is kept only when every hop's query
  puts its gold passage at rank 1 of the BM25 index, so the expert always succeeds.
"""

from __future__ import annotations

import argparse
import gzip
import json
import logging
import random
from pathlib import Path

from turngym.envs.search.index import BM25Index
from turngym.envs.search.questions import MAKERS, QUESTION_TYPES
from turngym.envs.search.world import build_world, world_passages

logger = logging.getLogger(__name__)

SPLIT_SIZES = {"train": 4000, "dev": 400, "test": 400}


def write_jsonl_gz(path: Path, rows: list[dict]) -> None:
    """Byte-reproducible gzip JSONL (no timestamp in the header)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "wb") as raw, gzip.GzipFile(fileobj=raw, mode="wb", mtime=0,
                                                filename="") as fh:
        for row in rows:
            fh.write((json.dumps(row, ensure_ascii=False, sort_keys=True) + "\n").encode())


def _draw(qtype: str, n: int, w, where, rng: random.Random, seen: set[str]) -> list[dict]:
    out: list[dict] = []
    while len(out) < n:
        q = MAKERS[qtype](w, where, rng)
        if q is None or q["q"] in seen:
            continue
        seen.add(q["q"])
        out.append(q)
    return out


def _retrievable(index: BM25Index, qs: list[dict], k: int) -> list[bool]:
    queries = [h["query"] for q in qs for h in q["chain"]]
    hits = index.search(queries, k)
    ok, i = [], 0
    for q in qs:
        good = True
        for h in q["chain"]:
            good &= h["passage"] in {x.id for x in hits[i]}
            i += 1
        ok.append(good)
    return ok


def generate(seed: int = 0, scale: float = 1.0, sizes: dict[str, int] | None = None,
             rank: int = 1) -> tuple[list[dict], dict[str, list[dict]]]:
    """The corpus and the question splits for ``seed`` (in memory)."""
    sizes = sizes or SPLIT_SIZES
    w = build_world(seed, scale)
    passages, where = world_passages(w)
    index = BM25Index.build(passages)
    rng = random.Random(seed + 1)
    seen: set[str] = set()
    splits: dict[str, list[dict]] = {s: [] for s in sizes}
    for split, size in sizes.items():
        for qtype in QUESTION_TYPES:
            want = size // len(QUESTION_TYPES)
            kept: list[dict] = []
            while len(kept) < want:
                batch = _draw(qtype, 2 * (want - len(kept)), w, where, rng, seen)
                kept += [q for q, ok in zip(batch, _retrievable(index, batch, rank)) if ok]
            for q in kept[:want]:
                splits[split].append({"question": q["q"], "answers": [q["a"], *q["al"]],
                                      "type": qtype, "chain": q["chain"]})
        rng.shuffle(splits[split])
        for i, row in enumerate(splits[split]):
            row["id"] = f"{split}-{i:05d}"
    return passages, splits


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--scale", type=float, default=1.0)
    parser.add_argument("--out", type=Path, default=Path(__file__).resolve().parent / "data")
    args = parser.parse_args(argv)
    passages, splits = generate(args.seed, args.scale)
    write_jsonl_gz(args.out / "corpus.jsonl.gz", passages)
    for split, rows in splits.items():
        write_jsonl_gz(args.out / f"qa_{split}.jsonl.gz", rows)
    print(f"wrote {len(passages)} passages and "
          f"{', '.join(f'{len(r)} {s}' for s, r in splits.items())} questions to {args.out}")


if __name__ == "__main__":
    main()
