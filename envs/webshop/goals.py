"""Shopping instructions generated from target products, and the train / test split.

A goal takes 1-3 of a target product's attributes, one value of some of its option
dimensions, a price bound above its price, and its product type, and phrases them as
"i need a machine washable cotton t-shirt in size large and in red color, and price lower
than 30.00 dollars". A goal is kept only when some product that fully satisfies it is in the
top 50 results for its key terms (``Goal.query``), so the expert always finds one.

Goal index ``i < n_test`` is the test split, the rest is train (``split_of``).
"""

from __future__ import annotations

import math
from functools import lru_cache
from pathlib import Path

import numpy as np

from turngym.envs.webshop.catalog import (
    DATA_DIR,
    DEFAULT_CATALOG,
    Catalog,
    Goal,
    Product,
    load_catalog,
    read_json,
)
from turngym.envs.webshop.reward import best_reward
from turngym.envs.webshop.search import MAX_RESULTS, SearchIndex
from turngym.envs.webshop.vocab import INSTRUCTION_TEMPLATES, OPTION_PHRASES
from turngym.errors import ConfigError

DEFAULT_GOALS = DATA_DIR / "goals.json.gz"
GOAL_SEED = 1
MAX_TEST = 300


def n_test(n_goals: int) -> int:
    """How many goals (the first ones) form the test split."""
    return min(MAX_TEST, max(1, n_goals // 10))


def split_of(index: int, n_goals: int) -> str:
    """``"test"`` for the first :func:`n_test` goal indices, else ``"train"``."""
    return "test" if index < n_test(n_goals) else "train"


def _option_phrase(dim: str, value: str) -> str:
    if dim == "size" and not value.startswith("size"):
        return f"in size {value}"
    return OPTION_PHRASES.get(dim, "with {v} " + dim).format(v=value)


def _make_goal(rng: np.random.Generator, product: Product, index: int) -> Goal:
    k = int(rng.integers(1, min(3, len(product.attributes)) + 1))
    idx = sorted(rng.choice(len(product.attributes), size=k, replace=False).tolist(), reverse=True)
    attrs = tuple(product.attributes[i] for i in idx)  # features first, material last
    dims = [d for d in product.options if rng.random() < 0.8] or list(product.options)[:1]
    options = {d: product.options[d][int(rng.integers(len(product.options[d])))] for d in dims}
    bound = math.ceil(product.price * float(rng.uniform(1.1, 1.6)) / 10.0) * 10.0
    query = " ".join([*attrs, product.product_type])
    plural = product.product_type.endswith("s") and not product.product_type.endswith("ss")
    article = "" if plural else \
        ("an " if query[0] in "aeiou" else "a ")
    phrases = [_option_phrase(d, v) for d, v in options.items()]
    what = " ".join([f"{article}{query}", " and ".join(phrases)]).strip()
    template = INSTRUCTION_TEMPLATES[int(rng.integers(len(INSTRUCTION_TEMPLATES)))]
    return Goal(index=index, asin=product.asin, category=product.category,
                product_type=product.product_type, attributes=attrs, options=options,
                price_upper=bound, instruction=template.format(what=what, price=f"{bound:.2f}"),
                query=query)


def findable(goal: Goal, index: SearchIndex) -> bool:
    """Whether a fully-satisfying product is in the top results for ``goal.query``."""
    return any(best_reward(goal, p) == 1.0 for p in index.search(goal.query, MAX_RESULTS))


def generate_goals(catalog: Catalog, seed: int = GOAL_SEED,
                   index: SearchIndex | None = None) -> list[Goal]:
    """One candidate goal per product (shuffled order); keeps the findable ones."""
    rng = np.random.default_rng(seed)
    index = index or SearchIndex(catalog)
    goals: list[Goal] = []
    for i in rng.permutation(len(catalog)).tolist():
        goal = _make_goal(rng, catalog.products[i], len(goals))
        if findable(goal, index):
            goals.append(goal)
    if not goals:
        raise ConfigError("no findable goal could be generated from this catalogue")
    return goals


@lru_cache(maxsize=8)
def load_goals(catalog_path: str | None = None) -> tuple[Goal, ...]:
    """Goals for a catalogue: the shipped file for the default one, generated otherwise."""
    catalog = load_catalog(catalog_path)
    if catalog_path is None or Path(catalog_path).resolve() == DEFAULT_CATALOG:
        doc = read_json(DEFAULT_GOALS)
        if doc.get("catalog") != catalog.fingerprint:
            raise ConfigError(f"{DEFAULT_GOALS} was built for another catalogue; rebuild it "
                              "with `python -m turngym.envs.webshop.build_data`")
        return tuple(Goal.model_validate(g) for g in doc["goals"])
    return tuple(generate_goals(catalog))
