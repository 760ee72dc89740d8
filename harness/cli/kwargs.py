"""``KEY=VALUE`` command-line pairs (env kwargs), shared by the CLI commands."""

from __future__ import annotations

import json
from typing import Any

from turngym.errors import ConfigError


def parse_kwargs(pairs: list[str]) -> dict[str, Any]:
    """``["size=5", "view=local"]`` -> ``{"size": 5, "view": "local"}`` (values as JSON when
    they parse, else as strings)."""
    out: dict[str, Any] = {}
    for pair in pairs:
        key, sep, value = pair.partition("=")
        if not sep or not key:
            raise ConfigError(f"bad env kwarg {pair!r}: expected KEY=VALUE, e.g. size=5")
        try:
            out[key] = json.loads(value)
        except json.JSONDecodeError:
            out[key] = value
    return out
