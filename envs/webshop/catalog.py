"""The product catalogue: the :class:`Product` record, a seeded generator, and JSON io.

It holds the :class:`Goal` record too (made in :mod:`~turngym.envs.webshop.goals`), so that
:mod:`~turngym.envs.webshop.reward`, which scores a goal against a product, and ``goals``,
which keeps only goals some product scores 1 on, both import down to here.

The shipped catalogue (``data/catalog.json.gz``) is ``generate_catalog(seed=0)``; rebuild
it with ``python -m turngym.envs.webshop.build_data``. A user's own catalogue is a JSON list (or a
gzip of one) of objects with the :class:`Product` fields; ``load_catalog(path)`` validates it
and raises :class:`~turngym.errors.ConfigError` naming the bad product and field.
"""

from __future__ import annotations

import gzip
import hashlib
import json
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path
from typing import Any

import numpy as np
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from turngym.envs.webshop.vocab import CATEGORIES, CategorySpec
from turngym.errors import ConfigError

DATA_DIR = Path(__file__).resolve().parent / "data"
DEFAULT_CATALOG = DATA_DIR / "catalog.json.gz"
DEFAULT_SEED = 0
DEFAULT_SIZE = 2400


class Product(BaseModel):
    """One product. Strings are lower-case except ``title``/``description``/``features``."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    asin: str = Field(pattern=r"^[A-Za-z0-9]{4,16}$")
    """Product id; its lower-case form is the product's clickable on result pages."""
    category: str = Field(min_length=1)
    """Top-level category; the env's ``task_type``."""
    product_type: str = Field(min_length=1)
    """What the product is (``t-shirt``); the reward's type match compares it."""
    title: str = Field(min_length=1)
    description: str = ""
    features: tuple[str, ...] = ()
    """Bullet points shown on the features view."""
    attributes: tuple[str, ...] = ()
    """Lower-case attribute phrases (material, style, use, ...) that goals ask for."""
    options: dict[str, tuple[str, ...]] = {}
    """Option dimension -> its values, each a lower-case clickable on the item page."""
    price: float = Field(gt=0)
    rating: float = Field(ge=0, le=5)

    @field_validator("attributes", "category", "product_type")
    @classmethod
    def _lower(cls, v: Any) -> Any:
        return tuple(a.lower().strip() for a in v) if isinstance(v, tuple) else v.lower().strip()

    @field_validator("options")
    @classmethod
    def _unique_option_values(cls, v: dict[str, tuple[str, ...]]) -> dict[str, tuple[str, ...]]:
        out = {k.lower(): tuple(x.lower().strip() for x in vals) for k, vals in sorted(v.items())}
        flat = [x for vals in out.values() for x in vals]
        if len(flat) != len(set(flat)) or any(not x for x in flat):
            raise ValueError(f"option values must be non-empty and unique, got {out}")
        return out


@dataclass(frozen=True)
class Catalog:
    """Products in a fixed order with an id lookup and a content fingerprint."""

    products: tuple[Product, ...]
    fingerprint: str
    by_asin: dict[str, Product] = field(repr=False, compare=False, default_factory=dict)

    @classmethod
    def from_products(cls, products: list[Product]) -> Catalog:
        by_asin = {p.asin.lower(): p for p in products}
        if len(by_asin) != len(products):
            raise ConfigError("catalogue has duplicate asin values (compared lower-case)")
        blob = json.dumps([p.model_dump(mode="json") for p in products], sort_keys=True)
        return cls(tuple(products), hashlib.sha256(blob.encode()).hexdigest()[:16], by_asin)

    def get(self, asin: str) -> Product | None:
        """The product with id ``asin`` (case-insensitive), or ``None``."""
        return self.by_asin.get(asin.lower())

    def __len__(self) -> int:
        return len(self.products)


class Goal(BaseModel):
    """One shopping task."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    index: int
    """Position in the goal list; decides the split."""
    asin: str
    """The product the goal was generated from (others may satisfy it too)."""
    category: str
    """The target's category: the env's ``task_type``."""
    product_type: str
    attributes: tuple[str, ...]
    options: dict[str, str]
    """Option dimension -> wanted value."""
    price_upper: float
    instruction: str
    query: str
    """The goal's key terms (attributes and type): what the expert searches for."""


def _asin(rng: np.random.Generator, taken: set[str]) -> str:
    alphabet = "0123456789ABCDEFGHJKLMNPQRSTUVWXYZ"
    while True:
        asin = "B0" + "".join(alphabet[i] for i in rng.integers(len(alphabet), size=8))
        if asin not in taken:
            taken.add(asin)
            return asin


def _pick(rng: np.random.Generator, items: tuple[str, ...], lo: int, hi: int) -> list[str]:
    k = int(rng.integers(lo, hi + 1))
    idx = sorted(rng.choice(len(items), size=min(k, len(items)), replace=False).tolist())
    return [items[i] for i in idx]


def _make_product(rng: np.random.Generator, spec: CategorySpec, asin: str) -> Product:
    types = list(spec.types)
    ptype = types[int(rng.integers(len(types)))]
    material = spec.materials[int(rng.integers(len(spec.materials)))]
    feats = _pick(rng, spec.attributes, 2, 4)
    brand = spec.brands[int(rng.integers(len(spec.brands)))]
    audience = spec.audiences[int(rng.integers(len(spec.audiences)))]
    options = {dim: tuple(_pick(rng, vals, 2, min(5, len(vals))))
               for dim, vals in spec.options.items()}
    lo, hi = spec.types[ptype]
    price = round(float(rng.uniform(lo, hi)), 2)
    rating = round(float(rng.uniform(2.5, 5.0)), 1)
    shown = feats[: int(rng.integers(1, len(feats) + 1))]
    title = f"{brand} {' '.join(w.title() for w in shown)} {material.title()} {ptype.title()} " \
            f"for {audience.title()}"
    description = (
        f"This {ptype} from {brand} is made with {material} and designed for {audience}. "
        f"It is {', '.join(feats[:-1])} and {feats[-1]}."
        if len(feats) > 1 else f"It is {feats[0]}."
    )
    features = (*[f"{f.capitalize()} design you can rely on" for f in feats],
                f"Made with {material}", f"Available in {len(options)} option groups")
    return Product(asin=asin, category=spec.name, product_type=ptype, title=title,
                   description=description, features=features,
                   attributes=(material, *feats), options=options, price=price,
                   rating=rating)


def generate_catalog(seed: int = DEFAULT_SEED, n: int = DEFAULT_SIZE) -> list[Product]:
    """``n`` products spread evenly over :data:`~turngym.envs.webshop.vocab.CATEGORIES`."""
    rng = np.random.default_rng(seed)
    taken: set[str] = set()
    return [_make_product(rng, CATEGORIES[i % len(CATEGORIES)], _asin(rng, taken))
            for i in range(n)]


def save_products(products: list[Product], path: Path) -> None:
    """Write products as JSON (gzip when the name ends in ``.gz``), byte-for-byte stable."""
    blob = json.dumps([p.model_dump(mode="json") for p in products], sort_keys=True,
                      separators=(",", ":")).encode()
    if str(path).endswith(".gz"):
        blob = gzip.compress(blob, compresslevel=9, mtime=0)
    Path(path).write_bytes(blob)


def read_json(path: Path) -> Any:
    """JSON from ``path``, gunzipped when it ends in ``.gz``; errors name the file."""
    try:
        raw = Path(path).read_bytes()
        if str(path).endswith(".gz"):
            raw = gzip.decompress(raw)
        return json.loads(raw)
    except (OSError, ValueError) as exc:
        raise ConfigError(f"cannot read {path}: {exc}") from exc


@lru_cache(maxsize=8)
def load_catalog(path: str | None = None) -> Catalog:
    """Load and validate a catalogue (default: the shipped one). Cached per path."""
    items = read_json(Path(path) if path else DEFAULT_CATALOG)
    if not isinstance(items, list) or not items:
        raise ConfigError(f"catalog {path}: expected a non-empty JSON list of products")
    products = []
    for i, item in enumerate(items):
        try:
            products.append(Product.model_validate(item))
        except ValidationError as exc:
            err = exc.errors()[0]
            loc = ".".join(str(x) for x in err["loc"])
            raise ConfigError(f"catalog {path or DEFAULT_CATALOG}: product {i} field "
                              f"{loc!r}: {err['msg']}") from exc
    return Catalog.from_products(products)
