"""HTML of the shop's pages. Every clickable is ``<a class="click" href=...>label</a>``;
the search box is a GET form (``#search-input``, ``#search-button``); the done page shows
the score in ``<span id="reward">``. Both clients rely on exactly these hooks.
"""

from __future__ import annotations

import zlib
from dataclasses import replace
from html import escape

import numpy as np

from turngym.envs.webshop.catalog import Product
from turngym.envs.webshop.goals import Goal
from turngym.envs.webshop.reward import RewardParts
from turngym.envs.webshop.state import PAGE_SIZE, PageState, to_path
from turngym.envs.webshop.vocab import REVIEW_TEXTS

_STYLE = """body{font-family:sans-serif;max-width:56em;margin:1em auto;color:#222}
#instruction{background:#f4f1e8;padding:.6em;border-radius:6px;margin-bottom:1em}
a.click{display:inline-block;border:1px solid #888;border-radius:4px;padding:.15em .5em;
margin:.15em;text-decoration:none;color:#124;background:#eef}
a.click.selected{background:#3a6;color:#fff}\
.product{margin:.6em 0;padding:.4em;border-bottom:1px solid #ddd}
.price{color:#a40;font-weight:bold}"""


def _link(label: str, href: str, selected: bool = False) -> str:
    cls = "click selected" if selected else "click"
    return f'<a class="{cls}" href="{escape(href)}">{escape(label)}</a>'


def _page(title: str, goal: Goal, body: str) -> str:
    return (f"<!doctype html><html><head><meta charset='utf-8'><title>{escape(title)}</title>"
            f"<style>{_STYLE}</style></head><body>"
            f"<div id='instruction'>Instruction: {escape(goal.instruction)}</div>"
            f"<main>{body}</main></body></html>")


def search_page(goal: Goal, sid: str) -> str:
    """The start page: the instruction and a search box."""
    body = (f"<form id='search-form' action='{escape(to_path(PageState('results'), sid))}'"
            " method='get'><input id='search-input' name='q' aria-label='search box'>"
            "<input type='hidden' name='page' value='1'>"
            "<button id='search-button' type='submit'>Search</button></form>")
    return _page("WebShop", goal, body)


def results_page(goal: Goal, sid: str, state: PageState, hits: list[Product]) -> str:
    """Results page ``state.page`` of ``hits`` (all results of the query)."""
    start = (state.page - 1) * PAGE_SIZE
    shown = hits[start:start + PAGE_SIZE]
    nav = [_link("Back to Search", to_path(PageState(), sid))]
    if state.page > 1:
        nav.append(_link("< Prev", to_path(replace(state, page=state.page - 1), sid)))
    if start + PAGE_SIZE < len(hits):
        nav.append(_link("Next >", to_path(replace(state, page=state.page + 1), sid)))
    rows = []
    for p in shown:
        item = PageState("item", state.query, state.page, p.asin)
        rows.append(f"<div class='product'>{_link(p.asin, to_path(item, sid))}"
                    f"<div class='title'>{escape(p.title)}</div>"
                    f"<div class='price'>${p.price:.2f}</div></div>")
    if not shown:
        rows.append("<p>No products match your search.</p>")
    body = (f"<nav>{''.join(nav)}</nav><p>Page {state.page} (Total results: {len(hits)})</p>"
            + "".join(rows))
    return _page("Results", goal, body)


def reviews(product: Product) -> list[tuple[int, str]]:
    """Three reviews, determined by the product id and rating."""
    rng = np.random.default_rng(zlib.crc32(product.asin.encode()))
    out = []
    for _ in range(3):
        stars = int(np.clip(round(product.rating + rng.normal(0, 0.8)), 1, 5))
        texts = REVIEW_TEXTS[stars]
        out.append((stars, texts[int(rng.integers(len(texts)))]))
    return out


def _item_main(sid: str, state: PageState, product: Product) -> str:
    chosen = dict(state.options)
    rows = []
    for dim, values in product.options.items():
        links = "".join(_link(v, to_path(state.with_option(dim, v), sid), chosen.get(dim) == v)
                        for v in values)
        rows.append(f"<div class='option'>{escape(dim)}: {links}</div>")
    views = "".join(_link(v.capitalize(), to_path(replace(state, view=v), sid))
                    for v in ("description", "features", "reviews"))
    buy = to_path(replace(state, kind="done", view="main"), sid)
    picked = ", ".join(f"{d}: {v}" for d, v in state.options) or "none"
    return ("".join(rows) + f"<h2>{escape(product.title)}</h2>"
            f"<p class='price'>Price: ${product.price:.2f}</p>"
            f"<p>Rating: {product.rating:.1f} out of 5</p><div>{views}{_link('Buy Now', buy)}</div>"
            f"<p>Selected options: {escape(picked)}</p>")


def item_page(goal: Goal, sid: str, state: PageState, product: Product) -> str:
    """An item page: main view (options, buy) or a description / features / reviews view."""
    back = replace(state, kind="results", asin="", options=(), view="main")
    if state.view != "main":
        back = replace(state, view="main")
    nav = _link("Back to Search", to_path(PageState(), sid)) + _link("< Prev", to_path(back, sid))
    if state.view == "description":
        content = f"<p>{escape(product.description)}</p>"
    elif state.view == "features":
        content = "<ul>" + "".join(f"<li>{escape(f)}</li>" for f in product.features) + "</ul>"
    elif state.view == "reviews":
        content = "<ul>" + "".join(f"<li>{s} stars: {escape(t)}</li>"
                                   for s, t in reviews(product)) + "</ul>"
    else:
        content = _item_main(sid, state, product)
    return _page(product.title, goal, f"<nav>{nav}</nav>{content}")


def done_page(goal: Goal, state: PageState, product: Product, parts: RewardParts) -> str:
    """After ``Buy Now``: what was bought and the score."""
    opts = ", ".join(f"{d}: {v}" for d, v in state.options) or "none"
    body = (f"<h1>Thank you for shopping with us!</h1><p>You bought {escape(product.asin)}: "
            f"{escape(product.title)} (options: {escape(opts)}).</p>"
            f"<p>Your score (min 0.0, max 1.0): <span id='reward'>{parts.reward}</span></p>")
    return _page("Done", goal, body)


def error_page(message: str) -> str:
    """A 404 page for an unknown session or product."""
    return (f"<!doctype html><html><body><p id='error'>{escape(message)}</p>"
            "</body></html>")
