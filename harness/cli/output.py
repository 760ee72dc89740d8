"""How the CLI prints tables: whole values on a terminal, plain rows in a pipe, JSON on ask.

Every command that prints a table calls :func:`emit_table`, which picks one of three forms:

* ``--json``: one JSON document on stdout, a list of ``{column: value}`` rows holding the
  raw values (numbers stay numbers); the command's other messages go to stderr, so
  ``turngym envs list --json | jq`` works;
* stdout not a terminal (a pipe, a file, a test runner): the title as a ``# title`` line,
  then the header and the rows, tab-separated, full values, no box drawing;
* a terminal: a rich table. Its key columns (ids, names; the first column unless told)
  never wrap or get cut: on a narrow terminal the table grows wider than the window
  instead, and the other columns wrap. Cells are plain text, never rich markup, so
  ``turngym[web]`` keeps its brackets.

Commands whose natural output is a document rather than one table (``eval``'s
``results.json``, ``swe tasks``' counts) print it with :func:`emit_json` under ``--json``.
Renamed flags stay as hidden aliases that print :func:`deprecated`'s one-line note.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Collection, Iterable, Mapping, Sequence
from typing import Any, TypeVar

import typer
from rich.cells import cell_len
from rich.console import Console
from rich.table import Table
from rich.text import Text

from turngym.errors import ConfigError

T = TypeVar("T")
#: The console for messages that must not mix with ``--json`` output on stdout.
err_console = Console(stderr=True, soft_wrap=True)


def json_option() -> Any:
    """The ``--json`` option every table-printing command takes."""
    return typer.Option(False, "--json", help="Print JSON on stdout (messages go to stderr).")


def messages(console: Console, json_out: bool) -> Console:
    """Where a command's other messages go: stderr under ``--json``, else ``console``."""
    return err_console if json_out else console


def deprecated(old: str, new: str) -> None:
    """One line on stderr saying that flag ``old`` is now spelled ``new``."""
    err_console.print(f"note: {old} is deprecated, use {new}", markup=False, highlight=False,
                      soft_wrap=True)


def renamed(new: str, value: T | None, old: str, old_value: T | None, default: T, *,
            use: str | None = None) -> T:
    """The value of an option renamed from ``old`` to ``new``. Both default to None; the
    old one still works, with :func:`deprecated`'s note (``use``: the spelling it names,
    default ``new``); both given with different values is a ``ConfigError``."""
    if old_value is None:
        return default if value is None else value
    deprecated(old, use or new)
    if value is not None and value != old_value:
        raise ConfigError(f"{old} (deprecated) and {new} disagree ({old_value!r} vs "
                          f"{value!r}): pass {new} alone")
    return old_value


#: How a column's raw values show as text: a format string (``"{:.2f}s"``) or a function.
Format = str | Callable[[Any], str]


def _text(value: Any, fmt: Format | None) -> str:
    if value is None:
        return "-"
    if fmt is None:
        return str(value)
    return fmt.format(value) if isinstance(fmt, str) else fmt(value)


def plain_lines(columns: Sequence[str], rows: Sequence[Sequence[str]], title: str) -> list[str]:
    """The pipe form of a table: ``# title``, the header, then one line per row, with tabs
    between cells (tabs and newlines inside a cell become spaces)."""
    def line(cells: Sequence[str]) -> str:
        return "\t".join(" ".join(c.replace("\t", " ").splitlines()) for c in cells)

    return ([f"# {title}"] if title else []) + [line(columns)] + [line(r) for r in rows]


def rich_table(columns: Sequence[str], rows: Sequence[Sequence[str]], title: str, *,
               console: Console, keys: Collection[str], right: Collection[str],
               styles: Mapping[str, Mapping[str, str]]) -> Table:
    """A rich table that cuts nothing: a ``keys`` column is as wide as its longest cell, any
    other column as wide as its longest word (header included). On a window narrower than
    that the table grows wider than the window (print it with ``crop=False``)."""
    table = Table(title=title or None)
    for i, col in enumerate(columns):
        cells = [col, *(r[i] for r in rows)]
        if col in keys:
            least = max(cell_len(c) for c in cells)
        else:
            least = max((cell_len(w) for c in cells for w in c.split()), default=1)
        table.add_column(col, no_wrap=col in keys, overflow="fold", min_width=least,
                         justify="right" if col in right else "left")
    for cells in rows:
        table.add_row(*(Text(c, style=styles.get(col, {}).get(c, ""))
                        for col, c in zip(columns, cells)))
    need = table.__rich_measure__(console, console.options.update_width(10**6)).minimum
    if need > console.width:  # rich would squeeze columns below their min_width
        table.width = need
    return table


def emit_table(columns: Sequence[str], rows: Iterable[Sequence[Any]], *, title: str = "",
               json_out: bool = False, console: Console | None = None,
               keys: Collection[str] | None = None, right: Collection[str] = (),
               formats: Mapping[str, Format] | None = None,
               styles: Mapping[str, Mapping[str, str]] | None = None) -> None:
    """Print a table in the form that fits where stdout goes (see the module docstring).

    Args:
        columns: the header; also the keys of the JSON rows.
        rows: one sequence of raw values per row (str, numbers, None, lists).
        title: shown above the table (``# title`` in plain form; not in JSON).
        json_out: print the rows as JSON instead.
        console: where to print (default: a fresh stdout console).
        keys: columns that never wrap or get cut (default: the first column).
        right: right-justified columns (terminal form).
        formats: ``{column: "{:.2f}s" or a function}`` for the text forms (JSON keeps raw
            values); None cells show as ``-``.
        styles: ``{column: {cell text: rich style}}`` colours for the terminal form.
    """
    console = console or Console()
    rows = [list(r) for r in rows]
    if json_out:
        emit_json([dict(zip(columns, r)) for r in rows], console)
        return
    formats = formats or {}
    text_rows = [[_text(v, formats.get(col)) for col, v in zip(columns, r)] for r in rows]
    if not console.is_terminal:
        for line in plain_lines(columns, text_rows, title):
            console.file.write(line + "\n")
        console.file.flush()
        return
    keys = columns[:1] if keys is None else keys
    console.print(rich_table(columns, text_rows, title, console=console, keys=keys,
                             right=right, styles=styles or {}), crop=False)


def _plain(value: Any) -> Any:
    """JSON for what ``json`` does not know: numpy scalars and arrays, paths, sets."""
    if hasattr(value, "tolist"):
        return value.tolist()
    if isinstance(value, (set, frozenset)):
        return sorted(value)
    return str(value)


def emit_json(doc: Any, console: Console | None = None) -> None:
    """``doc`` as one JSON document on ``console``'s file (no colour, no wrapping)."""
    console = console or Console()
    console.file.write(json.dumps(doc, indent=2, ensure_ascii=False, default=_plain) + "\n")
    console.file.flush()
