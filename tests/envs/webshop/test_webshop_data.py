"""The shipped catalogue and goals: size, content, determinism, user catalogues, splits."""

from __future__ import annotations

import gzip
import json
from collections import Counter

import pytest

from turngym.envs.webshop.build_data import goals_blob
from turngym.envs.webshop.catalog import (
    DEFAULT_CATALOG,
    Catalog,
    generate_catalog,
    load_catalog,
    save_products,
)
from turngym.envs.webshop.goals import DEFAULT_GOALS, generate_goals, load_goals, n_test, split_of
from turngym.envs.webshop.reward import best_reward
from turngym.errors import ConfigError


def test_shipped_catalogue_size_and_fields() -> None:
    cat = load_catalog()
    assert len(cat) >= 2000
    counts = Counter(p.category for p in cat.products)
    assert len(counts) >= 5 and min(counts.values()) >= 300
    for p in cat.products[:200]:
        assert p.title and p.description and len(p.features) >= 3
        assert len(p.attributes) >= 3 and len(p.options) >= 2
        assert all(len(v) >= 2 for v in p.options.values())
        assert p.price > 0 and 0 <= p.rating <= 5
    assert DEFAULT_CATALOG.stat().st_size < 400_000  # compact


def test_shipped_catalogue_is_the_generator_output(tmp_path) -> None:
    path = tmp_path / "c.json.gz"
    save_products(generate_catalog(), path)
    assert path.read_bytes() == DEFAULT_CATALOG.read_bytes()


@pytest.mark.slow
def test_shipped_goals_are_the_generator_output() -> None:
    assert goals_blob(load_catalog()) == DEFAULT_GOALS.read_bytes()


def test_goals_content_and_splits() -> None:
    goals = load_goals()
    cat = load_catalog()
    assert len(goals) >= 2000 and [g.index for g in goals] == list(range(len(goals)))
    g = goals[0]
    assert g.instruction.startswith(("i need", "i am looking", "find me", "i want"))
    assert f"{g.price_upper:.2f} dollars" in g.instruction
    for dim, value in g.options.items():
        assert value in g.instruction and value in cat.get(g.asin).options[dim]
    assert all(a in g.instruction for a in g.attributes) and g.product_type in g.instruction
    # every goal's own target satisfies it fully
    assert all(best_reward(x, cat.get(x.asin)) == 1.0 for x in goals)
    assert n_test(len(goals)) == 240
    assert [split_of(i, len(goals)) for i in (0, 239, 240)] == ["test", "test", "train"]


def test_user_catalogue_loads_and_gets_goals(tmp_path) -> None:
    products = generate_catalog(seed=5, n=60)
    path = tmp_path / "mine.json"
    path.write_text(json.dumps([p.model_dump(mode="json") for p in products]))
    cat = load_catalog(str(path))
    assert len(cat) == 60 and cat.products[0].asin == products[0].asin
    goals = load_goals(str(path))
    assert 1 <= len(goals) <= 60
    assert goals == tuple(generate_goals(Catalog.from_products(products)))


@pytest.mark.parametrize("patch,field", [
    ({"price": -1}, "price"),
    ({"asin": "bad id!"}, "asin"),
    ({"options": {"size": ["s", "s"]}}, "options"),
    ({"colour": "red"}, "colour"),
])
def test_bad_user_catalogue_names_the_field(tmp_path, patch: dict, field: str) -> None:
    item = {**generate_catalog(seed=1, n=1)[0].model_dump(mode="json"), **patch}
    path = tmp_path / "bad.json.gz"
    path.write_bytes(gzip.compress(json.dumps([item]).encode()))
    with pytest.raises(ConfigError, match=field):
        load_catalog(str(path))


def test_unreadable_catalogue_is_a_config_error(tmp_path) -> None:
    with pytest.raises(ConfigError, match="cannot read"):
        load_catalog(str(tmp_path / "missing.json"))
    (tmp_path / "empty.json").write_text("[]")
    with pytest.raises(ConfigError, match="non-empty"):
        load_catalog(str(tmp_path / "empty.json"))
