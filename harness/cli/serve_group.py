"""The ``turngym serve`` command group, shared by every ``cmd_serve*.py`` module.

A module adds a server with ``@serve_app.command("name")``; only ``cmd_serve.py`` mounts
the group on the root app, and its callback serves the policy model when no subcommand is
given.
"""

from __future__ import annotations

import typer

# No ``no_args_is_help``: a bare ``turngym serve`` runs the policy server (cmd_serve.py).
serve_app = typer.Typer(help="Run turngym's HTTP servers (policy model, retriever, webshop).")


def http_url(host: str, port: int) -> str:
    """``http://HOST:PORT`` (an IPv6 host in brackets)."""
    return f"http://[{host}]:{port}" if ":" in host else f"http://{host}:{port}"


def print_banner(what: str, url: str) -> None:
    """The line every ``turngym serve`` command prints once its socket listens, before it
    blocks: ``serving WHAT on URL  (Ctrl-C to stop)``. It goes to stderr, so a command whose
    first stdout line is for scripts (the retriever's, the shop's URL) keeps it."""
    typer.echo(f"serving {what} on {url}  (Ctrl-C to stop)", err=True)
