"""The shop server over real HTTP on loopback: pages, pagination, sessions, scoring."""

from __future__ import annotations

import httpx
import pytest

from turngym.envs.webshop.catalog import load_catalog
from turngym.envs.webshop.goals import load_goals
from turngym.envs.webshop.reward import score
from turngym.envs.webshop.search import SearchIndex
from turngym.envs.webshop.state import PageState, from_url, to_path
from turngym.envs.webshop.text_client import TextClient, simplify


def session(url: str, goal: int) -> str:
    resp = httpx.post(f"{url}/api/sessions", json={"goal": goal})
    assert resp.status_code == 200
    return resp.json()["session"]


def test_healthz_reports_the_catalogue(shop) -> None:
    health = httpx.get(f"{shop.url}/healthz").json()
    sessions = health.pop("sessions")
    assert health == {"ok": True, "catalog": load_catalog().fingerprint,
                      "products": len(load_catalog()), "goals": len(load_goals()),
                      "max_sessions": 100_000, "idle_timeout_s": 1800.0}
    assert isinstance(sessions, int) and sessions >= 0
    assert shop.url.startswith("http://127.0.0.1:")


def test_sessions_and_errors(shop) -> None:
    assert httpx.post(f"{shop.url}/api/sessions", json={"goal": -1}).status_code == 422
    assert httpx.post(f"{shop.url}/api/sessions", json={"goal": "x"}).status_code == 422
    assert httpx.get(f"{shop.url}/s/nosuchsession").status_code == 404
    sid = session(shop.url, 3)
    assert httpx.get(f"{shop.url}/s/{sid}/item/B0NOTHERE1").status_code == 404
    start = httpx.get(f"{shop.url}/start?goal=3", follow_redirects=False)
    assert start.status_code == 303 and start.headers["location"].startswith("/s/")


def test_results_pagination_matches_bm25(shop) -> None:
    sid = session(shop.url, 0)
    query = load_goals()[0].query
    hits = SearchIndex(load_catalog()).search(query)
    assert len(hits) == 50
    client = TextClient(shop.url)
    try:
        seen = []
        view = client.search(query, f"/s/{sid}/results")
        for page in range(1, 6):
            assert from_url(view.url)[1] == PageState("results", query, page)
            ids = [c for c in view.clickables if c.startswith("b0")]
            assert len(ids) == 10 and f"Page {page} (Total results: 50)" in view.text
            seen += ids
            assert ("< prev" in view.clickables) == (page > 1)
            assert ("next >" in view.clickables) == (page < 5)
            if page < 5:
                view = client.click(view.clickables.index("next >"))
        assert seen == [p.asin.lower() for p in hits]
    finally:
        client.close()


def test_item_views_and_buy_score(shop) -> None:
    goal = load_goals()[7]
    product = load_catalog().get(goal.asin)
    sid = session(shop.url, goal.index)
    item = PageState("item", goal.query, 1, product.asin)
    html = httpx.get(shop.url + to_path(item, sid)).text
    text, links, reward, has_search = simplify(html)
    labels = [lbl for lbl, _ in links]
    assert labels[:2] == ["back to search", "< prev"] and reward is None and not has_search
    for values in product.options.values():
        assert all(v in labels for v in values)
    assert {"description", "features", "reviews", "buy now"} <= set(labels)
    assert goal.instruction in text and product.title in text
    for view, needle in [("description", product.description), ("features", product.features[0]),
                         ("reviews", "stars:")]:
        page = httpx.get(shop.url + to_path(PageState("item", "", 1, product.asin, (), view), sid))
        assert needle in simplify(page.text)[0]
    wrong = {dim: vals[0] for dim, vals in product.options.items()}
    done = PageState("done", "", 1, product.asin, tuple(sorted(wrong.items())))
    shown = simplify(httpx.get(shop.url + to_path(done, sid)).text)[2]
    assert shown == score(goal, product, wrong).reward
    right = PageState("done", "", 1, product.asin, tuple(sorted(goal.options.items())))
    assert simplify(httpx.get(shop.url + to_path(right, sid)).text)[2] == 1.0


def test_url_round_trip() -> None:
    state = PageState("item", "red cotton t-shirt", 3, "B0ABCDEFGH", (("color", "rose gold"),
                                                                      ("size", "x-large")),
                      "reviews")
    assert from_url("http://h" + to_path(state, "abc")) == ("abc", state)
    assert from_url("http://h/elsewhere") is None
    assert from_url(to_path(PageState(), "s1")) == ("s1", PageState())


@pytest.mark.parametrize("query", ["", "   ", "the and of"])
def test_empty_queries_find_nothing(query: str) -> None:
    assert SearchIndex(load_catalog()).search(query) == []
