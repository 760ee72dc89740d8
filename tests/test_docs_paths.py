"""Every module and file the docs name must exist.

Scans ``README.md`` and ``docs/*.md`` (prose, inline code and code blocks) for

* dotted names that start with ``turngym.`` (``turngym.harness.rollout.loop``,
  ``turngym.envs.checker.check_env``): ``turngym.X.Y`` maps onto the repository's folders the
  way ``setup.py`` installs them (``turngym.envs`` -> ``envs/``, ``turngym.errors`` ->
  ``turngym/errors.py``). The longest prefix that is a module (``X/Y.py`` or
  ``X/Y/__init__.py``) must leave at most two trailing parts, read as attributes, and the
  first of those must occur as a word in that module's source (a ``def``, a class, a lazy
  ``__getattr__`` table);
* paths that start with one of the repository's folders (``harness/rollout/engine.py``,
  ``harness/eval/suites/maze.yaml``, ``docs/training.md``): the file or folder must exist.
  Paths with placeholders or globs (``envs/<name>/``, ``configs/*.yaml``, ``{a,b}``,
  ``benchmarks/results/NAME.json``), env ids (``turngym/Maze-v0``) and the few paths that
  name files inside an SWE task's sandbox (``NOT_REPO_PATHS``) are skipped.

Names of user code (``acme.envs``, ``my_envs/counter.py``) are never checked: only names under
``turngym.`` and paths under the repository's own folders are.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PAGES = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]

# The folders setup.py installs as turngym.<folder>; anything else under turngym. is turngym/.
NAMESPACE_FOLDERS = ("envs", "agents", "algos", "harness", "benchmarks")
PATH_FOLDERS = (*NAMESPACE_FOLDERS, "turngym", "tests", "scripts", "configs", "docs")

# Paths the docs name that live in an SWE task's workspace, not in this repository.
NOT_REPO_PATHS = {"tests/x.py", "tests/test_hidden.py"}
ENV_ID = re.compile(r"turngym/[\w-]+-v\d+")
PLACEHOLDER = re.compile(r"(?:^|/)[A-Z][A-Z_]*(?:[./]|$)")

DOTTED = re.compile(r"(?<![\w./-])turngym(?:\.[A-Za-z_]\w*)+")
PATH = re.compile(
    r"(?<![\w./~-])(?:" + "|".join(PATH_FOLDERS) + r")/[\w./{}*<>,-]*[\w}*>]")


def _module_file(parts: list[str]) -> Path | None:
    """The source file of module ``turngym.<parts>``, or None when there is none."""
    if not parts:
        return ROOT / "turngym" / "__init__.py"
    if parts[0] in NAMESPACE_FOLDERS:
        base = ROOT / parts[0]
        rest = parts[1:]
    else:
        base = ROOT / "turngym"
        rest = parts
    target = base.joinpath(*rest)
    if rest and target.with_suffix(".py").is_file():
        return target.with_suffix(".py")
    if (target / "__init__.py").is_file():
        return target / "__init__.py"
    return None


def resolve_dotted(name: str) -> str | None:
    """None when ``name`` resolves, else why not."""
    parts = name.split(".")[1:]
    for attrs in range(3):
        if attrs > len(parts):
            break
        module = _module_file(parts[: len(parts) - attrs])
        if module is None:
            continue
        if attrs == 0:
            return None
        attr = parts[len(parts) - attrs]
        if re.search(rf"\b{re.escape(attr)}\b", module.read_text(encoding="utf-8")):
            return None
        return f"{attr!r} does not occur in {module.relative_to(ROOT)}"
    return "no such module"


def resolve_path(path: str) -> str | None:
    if (any(ch in path for ch in "{}*<>") or path in NOT_REPO_PATHS
            or ENV_ID.fullmatch(path) or PLACEHOLDER.search(path)):
        return None
    return None if (ROOT / path).exists() else "no such file or folder"


def _mentions() -> list[tuple[str, int, str, str | None]]:
    found = []
    for page in PAGES:
        for lineno, line in enumerate(page.read_text(encoding="utf-8").splitlines(), 1):
            where = f"{page.relative_to(ROOT)}:{lineno}"
            for m in DOTTED.finditer(line):
                found.append((where, m.start(), m.group(0), resolve_dotted(m.group(0))))
            for m in PATH.finditer(line):
                path = m.group(0).rstrip(".,")
                found.append((where, m.start(), path, resolve_path(path)))
    return found


def test_the_scanner_sees_both_kinds() -> None:
    names = {name for _, _, name, _ in _mentions()}
    assert any(n.startswith("turngym.") for n in names)
    assert any("/" in n for n in names)


def test_resolver_examples() -> None:
    assert resolve_dotted("turngym.harness.rollout.loop") is None
    assert resolve_dotted("turngym.errors") is None
    assert resolve_dotted("turngym.make") is None
    assert resolve_dotted("turngym.envs.checker.check_env") is None
    assert resolve_dotted("turngym.harness.rollout_loop") is not None
    assert resolve_dotted("turngym.harness.rollout.no_such_name") is not None
    assert resolve_path("harness/rollout/engine.py") is None
    assert resolve_path("harness/rollout.py") is not None
    assert resolve_path("envs/<name>/env.py") is None
    assert resolve_path("turngym/Maze-v0") is None
    assert resolve_path("benchmarks/results/NAME.json") is None


@pytest.mark.parametrize("page", PAGES, ids=lambda p: str(p.relative_to(ROOT)))
def test_docs_names_resolve(page: Path) -> None:
    rel = str(page.relative_to(ROOT))
    broken = [f"{where}: {name} ({why})" for where, _, name, why in _mentions()
              if why is not None and where.rsplit(":", 1)[0] == rel]
    assert not broken, "\n".join(broken)
