"""The scoring rule on hand-computed cases."""

from __future__ import annotations

import pytest

from turngym.envs.webshop.catalog import Product
from turngym.envs.webshop.goals import Goal
from turngym.envs.webshop.reward import best_reward, score, type_match

GOAL = Goal(index=0, asin="B0TARGET01", category="clothing", product_type="t-shirt",
            attributes=("machine washable", "cotton"), options={"size": "large", "color": "red"},
            price_upper=30.0, instruction="i need ...", query="machine washable cotton t-shirt")


def product(**kw) -> Product:
    base = {"asin": "B0TARGET01", "category": "clothing", "product_type": "t-shirt",
            "title": "Acme Plain Tee", "attributes": ("cotton", "machine washable"),
            "options": {"size": ("small", "large"), "color": ("red", "blue")}, "price": 25.0,
            "rating": 4.0}
    return Product(**{**base, **kw})


@pytest.mark.parametrize("prod,chosen,expected", [
    # full match: (2 + 2 + 1) / 5, type 1
    (product(), {"size": "large", "color": "red"}, 1.0),
    # wrong size, no colour: (2 + 0 + 1) / 5
    (product(), {"size": "small"}, 0.6),
    # over the price bound, options right: (2 + 2 + 0) / 5
    (product(price=30.01), {"size": "large", "color": "red"}, 0.8),
    # price exactly at the bound is fine
    (product(price=30.0), {"size": "large", "color": "red"}, 1.0),
    # same category, other type: 0.5 * (1 + 1 + 0) / 5
    (product(product_type="hoodie", attributes=("cotton",), price=35.0), {"size": "large"}, 0.2),
    # other category, goal type word "shirt" in the title: 0.1 * (0 + 0 + 1) / 5
    (product(category="footwear", product_type="sneakers", title="Shirt Style Sneakers",
             attributes=("canvas",), price=20.0), {}, 0.02),
    # other category, no word in common: 0
    (product(category="electronics", product_type="headphones", title="Wireless Headphones",
             attributes=("wireless",), price=20.0), {}, 0.0),
    # attributes found in the title count as matched
    (product(attributes=(), title="Machine Washable Cotton Tee"),
     {"size": "large", "color": "red"}, 1.0),
])
def test_score_hand_computed(prod: Product, chosen: dict, expected: float) -> None:
    assert score(GOAL, prod, chosen).reward == pytest.approx(expected, abs=1e-12)


def test_reward_parts_and_exact_one() -> None:
    parts = score(GOAL, product(), {"size": "small", "color": "red"})
    assert (parts.attributes_matched, parts.attributes_total) == (2, 2)
    assert (parts.options_matched, parts.options_total, parts.price_ok) == (1, 2, True)
    assert parts.reward == pytest.approx(0.8)
    assert score(GOAL, product(), {"size": "large", "color": "red"}).reward == 1.0


def test_type_ladder_and_best_reward() -> None:
    assert type_match("t-shirt", "clothing", product()) == 1.0
    assert type_match("t-shirt", "clothing", product(product_type="jeans")) == 0.5
    # best_reward picks the goal's options when the product offers them
    assert best_reward(GOAL, product()) == 1.0
    assert best_reward(GOAL, product(options={"size": ("small",), "color": ("red",)})) == 0.8
