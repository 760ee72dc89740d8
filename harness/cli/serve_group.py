"""The ``turngym serve`` command group, shared by every ``cmd_serve*.py`` module.

A module adds a server with ``@serve_app.command("name")``; only ``cmd_serve.py`` mounts
the group on the root app, and its callback serves the policy model when no subcommand is
given.
"""

from __future__ import annotations

import typer

# No ``no_args_is_help``: a bare ``turngym serve`` runs the policy server (cmd_serve.py).
serve_app = typer.Typer(help="Run turngym's HTTP servers (policy model, retriever, webshop).")
