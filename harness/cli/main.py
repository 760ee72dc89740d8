"""The ``turngym`` command.

Each ``harness/cli/cmd_*.py`` module defines ``register(app)`` that adds its commands, so a
new command is a new file. Modules are imported when the CLI starts; they must keep heavy
imports (torch, vllm, playwright) inside the command functions.
"""

from __future__ import annotations

import difflib
import importlib
import logging
import pkgutil
import sys

import typer
from rich.console import Console
from rich.markup import escape

import turngym.harness.cli as pkg
from turngym.errors import TurngymError
from turngym.harness.ui.quiet import quiet_third_party

console = Console(stderr=True)
app = typer.Typer(
    name="turngym",
    help="A gym for training LLM agents on multi-turn tasks.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)


def _register_commands() -> None:
    for mod in sorted(pkgutil.iter_modules(pkg.__path__), key=lambda m: m.name):
        if mod.name.startswith("cmd_"):
            importlib.import_module(f"turngym.harness.cli.{mod.name}").register(app)


@app.callback()
def _root(verbose: bool = typer.Option(False, "--verbose", "-v", help="Debug logging, and "
                                       "the libraries' own progress bars and banners.")
          ) -> None:
    logging.basicConfig(level=logging.DEBUG if verbose else logging.WARNING,
                        format="%(levelname)s %(name)s: %(message)s")
    quiet_third_party(verbose)  # before any command imports transformers, ray, vllm, tqdm


def _click_errors() -> tuple[type[BaseException], ...]:
    """Click's exception base classes: typer before 0.2x raises ``click``'s, later typer
    versions raise those of the click they vendor (``typer._click``). Both are caught."""
    found: list[type[BaseException]] = []
    for mod in ("click.exceptions", "typer._click.exceptions"):
        try:
            found.append(importlib.import_module(mod).ClickException)
        except (ImportError, AttributeError):
            pass
    return tuple(found)


def usage_error(exc: BaseException) -> int:
    """Print a click usage error as one line (with click's "Did you mean" when it has one)
    and a pointer to ``--help``; return its exit code (2)."""
    if type(exc).__name__ == "NoArgsIsHelpError":  # bare ``turngym``: the help text
        exc.show()
        return int(getattr(exc, "exit_code", 2))
    msg = " ".join(exc.format_message().split())
    opt, near = getattr(exc, "option_name", None), list(getattr(exc, "possibilities", None) or [])
    if opt and near:  # typer's vendored click words it "(Possible options: ...)"

        near = difflib.get_close_matches(opt, near, n=3, cutoff=0.0)
        msg = f"No such option: {opt}. Did you mean {' or '.join(near)}?"
    ctx = getattr(exc, "ctx", None)
    where = ctx.command_path if ctx is not None else "turngym"
    hint = f" (see {where} --help)" if type(exc).__name__ != "ClickException" else ""
    console.print(f"[red]error:[/red] {escape(msg)}{escape(hint)}", soft_wrap=True)
    return int(getattr(exc, "exit_code", 2))


def main(argv: list[str] | None = None) -> int:
    """Entry point: user errors print one red line and exit 2, never a traceback."""
    _register_commands()
    try:
        # typer.Exit(n) comes back as n here
        rc = app(args=argv, prog_name="turngym", standalone_mode=False)
    except TurngymError as exc:
        console.print(f"[red]error:[/red] {escape(str(exc))}", soft_wrap=True)
        return 2
    except (typer.Abort, KeyboardInterrupt):
        console.print("[yellow]aborted[/yellow]")
        return 130
    except typer.Exit as exc:
        return exc.exit_code
    except SystemExit as exc:
        return int(exc.code or 0)
    except _click_errors() as exc:  # usage errors: unknown command or option, bad value
        return usage_error(exc)
    return rc if isinstance(rc, int) else 0


if __name__ == "__main__":
    sys.exit(main())
