"""The ``turngym`` command.

Each ``harness/cli/cmd_*.py`` module defines ``register(app)`` that adds its commands, so a
new command is a new file. Modules are imported when the CLI starts; they must keep heavy
imports (torch, vllm, playwright) inside the command functions.
"""

from __future__ import annotations

import importlib
import logging
import pkgutil
import sys

import typer
from rich.console import Console

from envs.errors import TurngymError

console = Console(stderr=True)
app = typer.Typer(
    name="turngym",
    help="A gym for training LLM agents on multi-turn tasks.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)


def _register_commands() -> None:
    import harness.cli as pkg

    for mod in sorted(pkgutil.iter_modules(pkg.__path__), key=lambda m: m.name):
        if mod.name.startswith("cmd_"):
            importlib.import_module(f"harness.cli.{mod.name}").register(app)


@app.callback()
def _root(verbose: bool = typer.Option(False, "--verbose", "-v", help="Debug logging.")) -> None:
    logging.basicConfig(level=logging.DEBUG if verbose else logging.WARNING,
                        format="%(levelname)s %(name)s: %(message)s")


def main(argv: list[str] | None = None) -> int:
    """Entry point: user errors print one red line and exit 2, never a traceback."""
    _register_commands()
    try:
        rc = app(args=argv, standalone_mode=False)  # typer.Exit(n) comes back as n here
    except TurngymError as exc:
        console.print(f"[red]error:[/red] {exc}")
        return 2
    except (typer.Abort, KeyboardInterrupt):
        console.print("[yellow]aborted[/yellow]")
        return 130
    except typer.Exit as exc:
        return exc.exit_code
    except SystemExit as exc:
        return int(exc.code or 0)
    except Exception as exc:  # click usage errors and the like
        import click

        if isinstance(exc, click.ClickException):
            exc.show()
            return exc.exit_code
        raise
    return rc if isinstance(rc, int) else 0


if __name__ == "__main__":
    sys.exit(main())
