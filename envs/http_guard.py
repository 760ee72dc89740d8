"""Request guards shared by turngym's HTTP servers (shop, retriever, policy server).

FastAPI parses a JSON body with :func:`json.loads`, which accepts ``NaN``, ``Infinity`` and
``1e999`` (as ``inf``) and lone UTF-16 surrogates (``"\\ud800"``); its 422 reply then echoes
the bad input and cannot serialise it, so the client gets a 500. :func:`guard_app` closes
that class of failure and bounds what one request may send:

* **Body size.** A body over ``max_body_bytes`` is a 413 before it is read: from
  ``Content-Length`` when the client sends one, and by counting the streamed chunks
  otherwise (chunked transfer encoding). Memory held for bodies is at most
  ``max_body_bytes x concurrent requests``.
* **Strict JSON.** Bodies are parsed by :func:`strict_json_loads`: ``NaN``/``Infinity``,
  numbers that overflow a float, integers over 4,300 digits, lone surrogates and nesting
  deeper than :data:`MAX_JSON_DEPTH` are a 400 that says which.
* **Validation errors** are a 422 ``{"detail": [{"loc", "msg", "type"}, ...]}`` that never
  echoes the input (no ``input``/``ctx``; strings escaped to ASCII-safe text, cut at 200
  characters), so it always serialises.

Call ``guard_app(app, max_body_bytes)`` on a new FastAPI app before adding its routes.
"""

from __future__ import annotations

import json
import math
from collections.abc import Callable
from typing import Any

from fastapi import HTTPException, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from fastapi.routing import APIRoute

from turngym.envs.tooljson import json_depth

MAX_JSON_DEPTH = 64
"""Deepest nesting of arrays/objects accepted in a request body."""
_TEXT_CAP = 200


def _reject_constant(name: str) -> Any:
    raise ValueError(f"{name} is not valid JSON (numbers must be finite)")


def _finite_float(text: str) -> float:
    value = float(text)
    if not math.isfinite(value):
        raise ValueError(f"number {text[:40]} overflows a float (numbers must be finite)")
    return value


def _check_tree(obj: Any, max_depth: int) -> None:
    """Raise ``ValueError`` for a lone surrogate in any string or key, or deep nesting."""
    stack: list[tuple[Any, int]] = [(obj, 0)]
    while stack:
        node, depth = stack.pop()
        if isinstance(node, str):
            try:
                node.encode("utf-8")
            except UnicodeEncodeError as exc:
                raise ValueError(f"string holds a lone surrogate at character {exc.start} "
                                 "(text must be valid Unicode)") from None
        elif isinstance(node, (list, dict)):
            if depth >= max_depth:
                raise ValueError(f"nesting deeper than {max_depth} levels")
            items = node.items() if isinstance(node, dict) else ((None, v) for v in node)
            for key, value in items:
                if key is not None:
                    stack.append((key, depth + 1))
                stack.append((value, depth + 1))


def strict_json_loads(body: bytes | str, max_depth: int = MAX_JSON_DEPTH) -> Any:
    """``json.loads`` that rejects what a strict JSON parser rejects; ``ValueError`` names
    the problem (``NaN``/``Infinity``, an overflowing number, a lone surrogate, deep
    nesting, invalid UTF-8 or syntax)."""
    if isinstance(body, bytes):
        try:
            body = body.decode("utf-8")
        except UnicodeDecodeError as exc:
            raise ValueError(f"body is not UTF-8 (byte {exc.start})") from None
    if json_depth(body, stop_after=max_depth) > max_depth:  # before json.loads recurses
        raise ValueError(f"nesting deeper than {max_depth} levels")
    try:
        obj = json.loads(body, parse_constant=_reject_constant, parse_float=_finite_float)
    except RecursionError:
        raise ValueError(f"nesting deeper than {max_depth} levels") from None
    except json.JSONDecodeError as exc:
        raise ValueError(f"invalid JSON at character {exc.pos}: {exc.msg}") from None
    _check_tree(obj, max_depth)
    return obj


class _StrictRequest(Request):
    async def json(self) -> Any:
        if not hasattr(self, "_json"):
            try:
                self._json = strict_json_loads(await self.body())
            except ValueError as exc:
                raise HTTPException(400, f"request body: {exc}") from None
        return self._json


class StrictJSONRoute(APIRoute):
    """A route whose JSON body goes through :func:`strict_json_loads` (400 on failure)."""

    def get_route_handler(self) -> Callable:
        handler = super().get_route_handler()

        async def strict_handler(request: Request) -> Any:
            return await handler(_StrictRequest(request.scope, request.receive))

        return strict_handler


def safe_text(value: Any, cap: int = _TEXT_CAP) -> str:
    """``str(value)`` that always encodes as UTF-8 (surrogates escaped), cut at ``cap``."""
    text = str(value).encode("utf-8", "backslashreplace").decode("utf-8")
    return text if len(text) <= cap else text[:cap] + "..."


def validation_detail(exc: RequestValidationError) -> list[dict[str, Any]]:
    """The errors of ``exc`` without their inputs: ``[{"loc", "msg", "type"}]``."""
    out = []
    for err in exc.errors()[:20]:
        loc = [x if isinstance(x, int) else safe_text(x) for x in err.get("loc", ())]
        out.append({"loc": loc, "msg": safe_text(err.get("msg", "")),
                    "type": safe_text(err.get("type", ""))})
    return out


async def _validation_reply(_request: Request, exc: RequestValidationError) -> JSONResponse:
    return JSONResponse({"detail": validation_detail(exc)}, status_code=422)


class BodyLimit:
    """ASGI middleware: a request body over ``max_bytes`` is a 413 (from ``Content-Length``
    before reading, else once the streamed chunks pass the cap)."""

    def __init__(self, app: Any, max_bytes: int):
        self.app, self.max_bytes = app, int(max_bytes)

    async def __call__(self, scope: dict, receive: Callable, send: Callable) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        declared = dict(scope.get("headers") or ()).get(b"content-length")
        if declared is not None and (not declared.isdigit() or int(declared) > self.max_bytes):
            reply = JSONResponse({"detail": f"request body is {safe_text(declared.decode())} "
                                            f"bytes; the limit is {self.max_bytes}"},
                                 status_code=413, headers={"Connection": "close"})
            await reply(scope, receive, send)
            return
        seen = 0

        async def capped_receive() -> dict:
            nonlocal seen
            message = await receive()
            if message["type"] == "http.request":
                seen += len(message.get("body", b""))
                if seen > self.max_bytes:
                    raise HTTPException(413, f"request body exceeds the limit of "
                                             f"{self.max_bytes} bytes")
            return message

        await self.app(scope, capped_receive, send)


def guard_app(app: Any, max_body_bytes: int) -> Any:
    """Add strict JSON parsing, the body-size cap and the input-free validation reply to
    ``app`` (a FastAPI app, before its routes are added: they get :class:`StrictJSONRoute`);
    return ``app``."""
    app.router.route_class = StrictJSONRoute
    app.add_exception_handler(RequestValidationError, _validation_reply)
    app.add_middleware(BodyLimit, max_bytes=max_body_bytes)
    return app


def too_large(field: str, size: int, limit: int, unit: str = "") -> HTTPException:
    """A 413 naming ``field``, its size and the limit."""
    unit = f" {unit}" if unit else ""
    return HTTPException(413, f"{field} is {size}{unit}; the limit is {limit}{unit}")
