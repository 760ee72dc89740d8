"""Rebuild the shipped catalogue and goals: ``python -m turngym.envs.webshop.build_data``.

The output is byte-for-byte determined by the seeds (``catalog.DEFAULT_SEED``,
``goals.GOAL_SEED``); ``tests/envs/webshop/test_data.py`` checks that the shipped files
match what this produces.
"""

from __future__ import annotations

import gzip
import json
from pathlib import Path

from turngym.envs.webshop.catalog import (
    DEFAULT_CATALOG,
    DEFAULT_SEED,
    DEFAULT_SIZE,
    Catalog,
    generate_catalog,
    save_products,
)
from turngym.envs.webshop.goals import DEFAULT_GOALS, GOAL_SEED, generate_goals


def goals_blob(catalog: Catalog) -> bytes:
    """The gzip bytes of the goals file for ``catalog``."""
    goals = generate_goals(catalog, seed=GOAL_SEED)
    doc = {"catalog": catalog.fingerprint, "seed": GOAL_SEED,
           "goals": [g.model_dump(mode="json") for g in goals]}
    raw = json.dumps(doc, sort_keys=True, separators=(",", ":")).encode()
    return gzip.compress(raw, compresslevel=9, mtime=0)


def build(catalog_path: Path = DEFAULT_CATALOG, goals_path: Path = DEFAULT_GOALS) -> Catalog:
    """Write the catalogue and goals files; return the catalogue."""
    products = generate_catalog(DEFAULT_SEED, DEFAULT_SIZE)
    save_products(products, catalog_path)
    catalog = Catalog.from_products(products)
    goals_path.write_bytes(goals_blob(catalog))
    return catalog


if __name__ == "__main__":
    cat = build()
    print(f"{len(cat)} products -> {DEFAULT_CATALOG} ({DEFAULT_CATALOG.stat().st_size} bytes)")
    print(f"goals -> {DEFAULT_GOALS} ({DEFAULT_GOALS.stat().st_size} bytes)")
