"""BM25 search over the catalogue (bm25s with English stop words and a Snowball stemmer).

Ranking is deterministic: scores from bm25s, ties broken by catalogue order. Products with
score 0 (no query term in common) are never returned.
"""

from __future__ import annotations

import re

import numpy as np

from turngym.envs.webshop.catalog import Catalog, Product

#: WebShop returns at most this many results (5 pages of 10).
MAX_RESULTS = 50


def normalize_query(query: str) -> str:
    """Lower-case, collapse whitespace, keep printable characters only."""
    text = "".join(ch for ch in query if ch.isprintable())
    return re.sub(r"\s+", " ", text).strip().lower()


def product_text(p: Product) -> str:
    """The text a product is indexed by: title, type, attributes, features, description."""
    return " ".join([p.title, p.product_type, " ".join(p.attributes), " ".join(p.features),
                     p.description])


class SearchIndex:
    """A bm25s index over one catalogue."""

    def __init__(self, catalog: Catalog):
        import bm25s
        import Stemmer

        self.catalog = catalog
        self._bm25s = bm25s
        self._stemmer = Stemmer.Stemmer("english")
        corpus = [product_text(p) for p in catalog.products]
        tokens = bm25s.tokenize(corpus, stopwords="en", stemmer=self._stemmer,
                                return_ids=False, show_progress=False)
        self._retriever = bm25s.BM25()
        self._retriever.index(tokens, show_progress=False)

    def search(self, query: str, k: int = MAX_RESULTS) -> list[Product]:
        """The top ``k`` products for ``query`` (possibly fewer, possibly none)."""
        tokens = self._bm25s.tokenize([normalize_query(query)], stopwords="en",
                                      stemmer=self._stemmer, return_ids=False,
                                      show_progress=False)[0]
        if not tokens:
            return []
        scores_N = np.asarray(self._retriever.get_scores(tokens))
        order = np.argsort(-scores_N, kind="stable")[:k]
        return [self.catalog.products[i] for i in order if scores_N[i] > 0]
