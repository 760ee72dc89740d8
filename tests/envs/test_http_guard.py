"""Strict JSON parsing and input-free error text shared by the HTTP servers."""

from __future__ import annotations

import pytest

from turngym.envs.http_guard import MAX_JSON_DEPTH, safe_text, strict_json_loads


@pytest.mark.parametrize("body, value", [
    (b'{"a": [1, 2.5, -3e10, "\\u2603", null, true]}',
     {"a": [1, 2.5, -3e10, "\u2603", None, True]}),
    ('"\\ud83d\\ude00"', "\U0001F600"),  # a surrogate *pair* is one valid character
    (b"[" * MAX_JSON_DEPTH + b"]" * MAX_JSON_DEPTH, None),
])
def test_accepts_plain_json(body, value) -> None:
    out = strict_json_loads(body)
    if value is not None:
        assert out == value


@pytest.mark.parametrize("body, needle", [
    (b"NaN", "NaN"),
    (b"[Infinity]", "Infinity"),
    (b"[-Infinity]", "Infinity"),
    (b"[1e999]", "overflows"),
    (b"[-1e400]", "overflows"),
    (b'["\\ud800"]', "surrogate"),
    (b'{"\\udfff": 1}', "surrogate"),
    (b"[" * (MAX_JSON_DEPTH + 1) + b"]" * (MAX_JSON_DEPTH + 1), "nesting"),
    (b"[" * 100_000 + b"]" * 100_000, "nesting"),
    (b"[" + b"9" * 5000 + b"]", "digits"),
    (b'["\xff"]', "UTF-8"),
    (b"{", "invalid JSON"),
])
def test_rejects_what_fastapi_cannot_answer(body: bytes, needle: str) -> None:
    with pytest.raises(ValueError, match=needle):
        strict_json_loads(body)


def test_safe_text_always_encodes() -> None:
    text = safe_text("a\ud800b" + "x" * 300)
    text.encode("utf-8")
    assert text.startswith("a\\ud800b") and text.endswith("...") and len(text) == 203
