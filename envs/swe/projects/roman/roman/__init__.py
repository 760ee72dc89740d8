"""roman: Roman numerals and positional number bases."""

from roman.bases import from_base, to_base
from roman.numerals import from_roman, to_roman

__all__ = ["from_base", "from_roman", "to_base", "to_roman"]
