"""WebShop's scoring rule, re-derived from the paper (Yao et al. 2022, arXiv:2207.01206, §3.1).

For a goal with attribute set ``U_att``, option set ``U_opt`` and price bound ``u_price``, and
a bought product ``Y`` with chosen options ``Y_opt``::

    r = r_type * (|U_att ∩ Y_att| + |U_opt ∩ Y_opt| + 1[y_price <= u_price])
               / (|U_att| + |U_opt| + 1)

* An attribute matches when it is one of the product's attributes, or appears as a phrase in
  its title or features (the paper matches attributes against the product text too).
* An option matches when the goal's value was selected for that dimension.
* ``r_type`` is the product-type match: 1 for the same product type, 0.5 for another type of
  the same category, 0.1 when the goal's type shares a word with the product's title, else 0.
  (WebShop grades type match from query/category/title overlap; this is that ladder on our
  structured catalogue.)

``r`` is in [0, 1], and it is 1 only when every attribute, option and the price match and
the type is the same, because every factor must then be at its maximum.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from turngym.envs.webshop.catalog import Goal, Product


@dataclass(frozen=True)
class RewardParts:
    """The parts of one score, for tests and for the done page."""

    reward: float
    """The final score in [0, 1]."""
    r_type: float
    attributes_matched: int
    attributes_total: int
    options_matched: int
    options_total: int
    price_ok: bool


def _words(text: str) -> set[str]:
    return set(re.findall(r"[a-z0-9]+", text.lower()))


def type_match(goal_type: str, goal_category: str, product: Product) -> float:
    """The ``r_type`` ladder: 1 same type, 0.5 same category, 0.1 title word overlap, 0."""
    if product.product_type == goal_type:
        return 1.0
    if product.category == goal_category:
        return 0.5
    if _words(goal_type) & _words(product.title):
        return 0.1
    return 0.0


def attribute_matches(attributes: tuple[str, ...], product: Product) -> int:
    """How many goal attributes the product has (as an attribute or in its text)."""
    text = " ".join([product.title, *product.features]).lower()
    own = set(product.attributes)
    return sum(1 for a in attributes if a in own or re.search(rf"\b{re.escape(a)}\b", text))


def score(goal: Goal, product: Product, chosen: dict[str, str]) -> RewardParts:
    """Score buying ``product`` with ``chosen`` options (dimension -> value) for ``goal``."""
    r_type = type_match(goal.product_type, goal.category, product)
    n_att = attribute_matches(goal.attributes, product)
    n_opt = sum(1 for dim, value in goal.options.items() if chosen.get(dim) == value)
    price_ok = product.price <= goal.price_upper
    total = len(goal.attributes) + len(goal.options) + 1
    matched = n_att + n_opt + int(price_ok)
    reward = 1.0 if (matched == total and r_type == 1.0) else r_type * matched / total
    return RewardParts(float(reward), r_type, n_att, len(goal.attributes), n_opt,
                       len(goal.options), price_ok)


def best_reward(goal: Goal, product: Product) -> float:
    """The highest score buying ``product`` can give (choosing the goal's options if offered)."""
    chosen = {dim: v for dim, v in goal.options.items() if v in product.options.get(dim, ())}
    return score(goal, product, chosen).reward
