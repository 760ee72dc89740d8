"""textkit: small text utilities."""

from textkit.strings import (
                             capitalize_words,
                             count_words,
                             is_palindrome,
                             slugify,
                             truncate,
                             wrap_text,
)

__all__ = ["capitalize_words", "count_words", "is_palindrome", "slugify", "truncate", "wrap_text"]
