"""Answer normalisation, exact match and token F1 on hand-computed cases."""

from __future__ import annotations

import pytest

from turngym.envs.search.grading import exact_match, f1_score, normalize_answer, token_f1


@pytest.mark.parametrize("raw, norm", [
    ("The Eiffel Tower", "eiffel tower"),
    ("  the   CAT, sat!  ", "cat sat"),
    ("An apple a day", "apple day"),
    ("Theodore", "theodore"),            # 'the' only as a whole word
    ("Eiffel-Tower", "eiffeltower"),      # punctuation removed, not replaced by a space
    ("“Quoted” — text…", "quoted text"),
    ("1,767", "1767"),
    ("ＡＢＣ", "abc"),                    # NFKC folds full-width letters
    ("", ""),
])
def test_normalize_answer(raw: str, norm: str) -> None:
    assert normalize_answer(raw) == norm


@pytest.mark.parametrize("pred, golds, em", [
    ("the vukix", ["Vukix"], 1.0),
    ("Vukix.", ["Vukix"], 1.0),
    ("Vukix city", ["Vukix"], 0.0),
    ("Trerein", ["Mult Trerein", "Trerein", "M. Trerein"], 1.0),
    ("m trerein", ["Mult Trerein", "Trerein", "M. Trerein"], 1.0),
    ("", ["Vukix"], 0.0),
    ("anything", [], 0.0),
])
def test_exact_match(pred: str, golds: list[str], em: float) -> None:
    assert exact_match(pred, golds) == em


def test_token_f1_hand_computed() -> None:
    # pred tokens [mult, trerein, poet], gold [mult, trerein]: P=2/3, R=1, F1=0.8
    assert token_f1("Mult Trerein the poet", "Mult Trerein") == pytest.approx(0.8)
    # pred [brycheith], gold [brycheith, studios]: P=1, R=1/2, F1=2/3
    assert token_f1("Brycheith", "The Brycheith Studios") == pytest.approx(2 / 3)
    assert token_f1("x y", "z") == 0.0
    assert token_f1("the", "a") == 1.0  # both normalise to nothing
    assert f1_score("Brycheith", ["Nope", "Brycheith Studios"]) == pytest.approx(2 / 3)
    assert f1_score("x", []) == 0.0
