"""``turngym serve webshop``: run the WebShop server in the foreground on 127.0.0.1.

Envs use it with ``envs.make("turngym/WebShop-v0", server_url=URL)``; without
``server_url`` each process starts its own shop in a background thread.
"""

from __future__ import annotations

import socket

import typer
from rich.console import Console

from turngym.harness.cli.serve_group import http_url, print_banner, serve_app


@serve_app.command("webshop")
def serve_webshop(
    port: int = typer.Option(0, help="Port to bind; 0 picks a free one (printed)."),
    host: str = typer.Option("127.0.0.1", help="Address to bind."),
    catalog: str | None = typer.Option(None, help="Product JSON (default: the shipped one)."),
    max_sessions: int = typer.Option(100_000, min=1, help="Live sessions at most; past it new "
                                     "sessions get 503 (live ones are never evicted)."),
    session_idle_s: float = typer.Option(1800.0, min=0.001, help="A session untouched this "
                                         "long expires (its pages then answer 404)."),
) -> None:
    """Serve the web shop; open /start?goal=N in a browser to shop for goal N."""
    import uvicorn

    from turngym.envs.webshop.server import LIMIT_CONCURRENCY, create_app

    app = create_app(catalog, max_sessions=max_sessions, idle_timeout_s=session_idle_s)
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind((host, port))
    sock.listen(2048)  # requests queue from now on, until the server accepts them
    shop = app.state.shop
    url = http_url(host, sock.getsockname()[1])
    Console(stderr=True).print(f"WebShop: {len(shop.catalog)} products, {len(shop.goals)} goals, "
                               f"catalogue {shop.catalog.fingerprint}")
    typer.echo(url, err=False)  # first stdout line: the URL, for scripts
    print_banner(f"the WebShop ({len(shop.catalog)} products)", url)
    server = uvicorn.Server(uvicorn.Config(app, log_level="warning", lifespan="off",
                                           limit_concurrency=LIMIT_CONCURRENCY))
    server.run(sockets=[sock])


def register(app: typer.Typer) -> None:
    """Nothing to add to the root app: ``cmd_serve.py`` mounts the ``serve`` group, and the
    ``webshop`` command is on that group from import time."""
    del app
