"""The architecture as a test: which turngym modules may import which.

Every ``.py`` under the folders that install as ``turngym.*`` is parsed (never imported) and
EVERY import is collected, including those inside functions and under ``TYPE_CHECKING``: an
import deferred into a function is still a dependency, and hiding a cycle that way is what
these tests exist to stop. ``from pkg import name`` counts as an import of ``pkg.name`` when
that is a module. Each rule is its own test and names the offending edges as
``importer -> imported (file:line)``.

The layers, lowest first::

    turngym.errors        the shared error hierarchy: imports no turngym module
    turngym (__init__)    lazy public face: no turngym import at module level
    turngym.algos         pure estimators/losses: stdlib, numpy, torch, pydantic, errors
    turngym.envs          envs and registration: no agents/algos/harness/benchmarks
    turngym.agents        backends, prompts, parsing: of turngym, only envs and errors
    turngym.harness       rollouts, learning, evaluation, CLI (ranked below): no benchmarks
    turngym.benchmarks    performance scripts: anything
"""

from __future__ import annotations

import ast
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from functools import cache
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]

#: Harness layers: a harness module may import harness modules of its own rank or lower.
#: The key is the part after ``turngym.harness.`` up to the next dot; ``""`` is the package
#: ``__init__`` (kept empty), :data:`TOP_FILES_RANK` any other single file in ``harness/``.
HARNESS_RANKS = {
    "": 0,             # harness/__init__.py: imports nothing
    "ui": 0,           # progress bars, quiet logging, plots
    "rollout": 1,      # envs x backends -> trajectories
    "config": 2,       # harness/config.py, or a harness/config/ package
    "learn": 3,        # learner, losses applied, checkpoints
    "eval": 3,         # suites, evaluation, reports
    "distributed": 4,  # Ray / FSDP scale-out of rollout and learn
    "cli": 6,          # the `turngym` command
}
TOP_FILES_RANK = 5     # harness/train.py, sft.py, runs.py, components.py, ...
#: Layers of equal rank that must stay independent of each other.
HARNESS_SIBLINGS = (("learn", "eval"),)

#: Repository folder -> the package it installs as (setup.py ``package_dir``).
PACKAGES = {"turngym": "turngym", "envs": "turngym.envs", "agents": "turngym.agents",
            "algos": "turngym.algos", "harness": "turngym.harness",
            "benchmarks": "turngym.benchmarks"}
#: Not code: task projects the SWE env copies into sandboxes, and shipped data.
SKIPPED = ("envs/swe/projects",)
SKIPPED_NAMES = ("data", "__pycache__")

ALGOS_THIRD_PARTY = frozenset({"numpy", "torch", "pydantic"})


@dataclass(frozen=True)
class Edge:
    """One import statement's dependency of ``source`` on ``target``."""

    source: str
    target: str
    """A turngym module, or the top-level name of an outside one."""
    internal: bool
    path: str
    line: int
    deferred: bool
    """Inside a function: runs on call, not at import."""

    def __str__(self) -> str:
        where = ", in a function" if self.deferred else ""
        return f"{self.source} -> {self.target} ({self.path}:{self.line}{where})"


def _skipped(rel: Path) -> bool:
    text = rel.as_posix()
    return (any(text == s or text.startswith(s + "/") for s in SKIPPED)
            or any(part in SKIPPED_NAMES for part in rel.parts))


def module_name(rel: Path) -> str:
    """``envs/maze/env.py`` -> ``turngym.envs.maze.env``; a package's ``__init__.py`` is the
    package."""
    parts = [PACKAGES[rel.parts[0]], *rel.parts[1:]]
    parts[-1] = parts[-1].removesuffix(".py")
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


@cache
def modules() -> dict[str, Path]:
    """Every turngym module -> its file, relative to the repository root."""
    found = {}
    for folder in PACKAGES:
        for path in sorted((ROOT / folder).rglob("*.py")):
            rel = path.relative_to(ROOT)
            if not _skipped(rel):
                found[module_name(rel)] = rel
    return found


def _known(name: str) -> str | None:
    """``name`` or its longest prefix that is a turngym module (``import a.b.c`` of a
    module ``a.b`` with a name ``c`` resolves to ``a.b``)."""
    parts = name.split(".")
    while parts:
        candidate = ".".join(parts)
        if candidate in modules():
            return candidate
        parts.pop()
    return None


def _absolute(node: ast.ImportFrom, source: str, is_package: bool) -> str:
    """The absolute module a (possibly relative) ``from ... import`` names."""
    if not node.level:
        return node.module or ""
    base = source.split(".")
    if not is_package:
        base.pop()
    base = base[: len(base) - (node.level - 1)]
    return ".".join(base + ([node.module] if node.module else []))


def _targets(node: ast.Import | ast.ImportFrom, source: str, is_package: bool) -> Iterator[str]:
    """The module names one import statement depends on, submodules resolved."""
    if isinstance(node, ast.Import):
        yield from (alias.name for alias in node.names)
        return
    base = _absolute(node, source, is_package)
    for alias in node.names:
        sub = f"{base}.{alias.name}"
        yield sub if sub in modules() else base


def _imports(tree: ast.AST) -> Iterator[tuple[ast.Import | ast.ImportFrom, bool]]:
    """Every import node with whether it sits inside a function (deferred)."""
    stack: list[tuple[ast.AST, bool]] = [(tree, False)]
    while stack:
        node, deferred = stack.pop()
        if isinstance(node, (ast.Import, ast.ImportFrom)):
            yield node, deferred
        inner = deferred or isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.Lambda))
        stack.extend((child, inner) for child in ast.iter_child_nodes(node))


def _edges_of(source: str, rel: Path) -> Iterator[Edge]:
    tree = ast.parse((ROOT / rel).read_text(encoding="utf-8"), filename=str(rel))
    is_package = rel.name == "__init__.py"
    for node, deferred in _imports(tree):
        for name in _targets(node, source, is_package):
            known = _known(name) if name.split(".")[0] == "turngym" else None
            target = known or name.split(".")[0]
            if target != source:
                yield Edge(source, target, known is not None, rel.as_posix(), node.lineno,
                           deferred)


@cache
def edges() -> tuple[Edge, ...]:
    """Every import edge of every turngym module, in file order (``from m import a, b``
    is one edge)."""
    found = {e for src, rel in modules().items() for e in _edges_of(src, rel)}
    return tuple(sorted(found, key=lambda e: (e.path, e.line, e.target)))


def _in(module: str, package: str) -> bool:
    return module == package or module.startswith(package + ".")


def _report(title: str, bad: list[Edge]) -> str:
    return f"{title} ({len(bad)}):\n" + "\n".join(f"  {e}" for e in bad)


def cycles() -> list[list[str]]:
    """Strongly connected components of more than one module (Tarjan, iterative)."""
    graph: dict[str, set[str]] = {m: set() for m in modules()}
    for e in edges():
        if e.internal:
            graph[e.source].add(e.target)
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    on_stack: set[str] = set()
    stack: list[str] = []
    found = []
    for start in sorted(graph):
        if start in index:
            continue
        work = [(start, iter(sorted(graph[start])))]
        index[start] = low[start] = len(index)
        stack.append(start)
        on_stack.add(start)
        while work:
            node, children = work[-1]
            child = next(children, None)
            if child is not None:
                if child not in index:
                    index[child] = low[child] = len(index)
                    stack.append(child)
                    on_stack.add(child)
                    work.append((child, iter(sorted(graph[child]))))
                elif child in on_stack:
                    low[node] = min(low[node], index[child])
                continue
            work.pop()
            if work:
                low[work[-1][0]] = min(low[work[-1][0]], low[node])
            if low[node] == index[node]:
                component = []
                while True:
                    member = stack.pop()
                    on_stack.discard(member)
                    component.append(member)
                    if member == node:
                        break
                if len(component) > 1:
                    found.append(sorted(component))
    return sorted(found)


# -- the parser itself ------------------------------------------------------------------


def test_the_graph_sees_deferred_and_submodule_imports():
    """Guards the rules below against passing vacuously: the parser must find files, map
    them to module names, resolve ``from pkg import submodule`` and see imports that sit
    inside functions."""
    assert module_name(Path("envs/maze/env.py")) == "turngym.envs.maze.env"
    assert module_name(Path("envs/maze/__init__.py")) == "turngym.envs.maze"
    assert modules()["turngym.errors"] == Path("turngym/errors.py")
    assert not any(_in(m, "turngym.envs.swe.projects") for m in modules())
    found = {(e.source, e.target) for e in edges()}
    assert ("turngym.envs.swe.sandbox", "turngym.envs.swe.cgroups") in found  # from pkg import sub
    assert any(e.deferred for e in edges())
    assert any(not e.internal for e in edges())


# -- the rules ----------------------------------------------------------------------------


def test_no_import_cycles():
    """A cycle makes import order matter and keeps modules from being understood (or
    tested) one at a time; deferring one side into a function only hides it."""
    found = cycles()
    internal = [e for e in edges() if e.internal]
    lines = []
    for component in found:
        members = set(component)
        lines.append("cycle: " + ", ".join(component))
        lines += [f"    {e}" for e in internal if e.source in members and e.target in members]
    assert not found, f"import cycles ({len(found)}):\n" + "\n".join(lines)


def test_envs_import_no_higher_layer():
    """Envs are usable alone (``turngym.make``) and by any trainer: they must not pull in
    agents, algorithms, the harness or benchmarks."""
    higher = ("turngym.agents", "turngym.algos", "turngym.harness", "turngym.benchmarks")
    bad = [e for e in edges() if _in(e.source, "turngym.envs")
           and any(_in(e.target, h) for h in higher)]
    assert not bad, _report("turngym.envs imports a higher layer", bad)


def _algos_may_import(edge: Edge) -> bool:
    if edge.internal:
        return _in(edge.target, "turngym.algos") or edge.target == "turngym.errors"
    return edge.target in sys.stdlib_module_names or edge.target in ALGOS_THIRD_PARTY


def test_algos_are_pure():
    """Estimators and losses stay testable with tensors alone: stdlib, numpy, torch,
    pydantic and the shared errors, nothing from the rest of turngym or other libraries."""
    bad = [e for e in edges() if _in(e.source, "turngym.algos") and not _algos_may_import(e)]
    assert not bad, _report("turngym.algos imports outside stdlib/numpy/torch/pydantic/errors",
                            bad)


def test_agents_depend_only_on_envs():
    """Agents (backends, prompts, parsing) sit on envs; the harness drives them, never the
    other way round."""
    allowed = ("turngym.agents", "turngym.envs", "turngym.errors")
    bad = [e for e in edges() if e.internal and _in(e.source, "turngym.agents")
           and not any(_in(e.target, a) for a in allowed)]
    assert not bad, _report("turngym.agents imports turngym beyond envs/errors", bad)


def test_harness_never_imports_benchmarks():
    """Benchmarks measure the harness; a harness that needs them would ship scripts as
    library code."""
    bad = [e for e in edges() if _in(e.source, "turngym.harness")
           and _in(e.target, "turngym.benchmarks")]
    assert not bad, _report("turngym.harness imports turngym.benchmarks", bad)


def test_errors_and_package_root_register_nothing():
    """``import turngym`` and ``turngym.errors`` are what every layer loads first: they must
    not register envs or load torch, so errors imports no turngym module and the package
    ``__init__`` imports turngym modules only lazily (inside a function)."""
    bad = [e for e in edges() if e.internal and (
        e.source == "turngym.errors"
        or (e.source == "turngym" and not e.deferred))]
    assert not bad, _report("turngym.errors / turngym/__init__.py import turngym eagerly", bad)


def harness_layer(module: str) -> str:
    """The :data:`HARNESS_RANKS` key of a harness module (``"top"`` for a single file)."""
    rest = module.removeprefix("turngym.harness").removeprefix(".")
    head = rest.split(".")[0]
    if head in HARNESS_RANKS:
        return head
    return "top" if "." not in rest else f"unranked:{head}"


def harness_rank(module: str) -> int | None:
    layer = harness_layer(module)
    return TOP_FILES_RANK if layer == "top" else HARNESS_RANKS.get(layer)


def test_every_harness_module_has_a_rank():
    """A new harness subpackage must be placed in :data:`HARNESS_RANKS`, or the layering
    test would say nothing about it."""
    unranked = sorted(m for m in modules() if _in(m, "turngym.harness")
                      and harness_rank(m) is None)
    assert not unranked, "harness modules with no rank in HARNESS_RANKS: " + ", ".join(unranked)


def _layer_violation(edge: Edge) -> bool:
    src, dst = harness_rank(edge.source), harness_rank(edge.target)
    if src is None or dst is None:
        return False
    pair = {harness_layer(edge.source), harness_layer(edge.target)}
    return dst > src or any(pair == set(siblings) for siblings in HARNESS_SIBLINGS)


def test_harness_layers():
    """Each harness layer builds only on lower ones (see :data:`HARNESS_RANKS`), and learn
    and eval stay independent, so a layer can be read, tested and replaced alone."""
    bad = [e for e in edges() if e.internal and _in(e.source, "turngym.harness")
           and _in(e.target, "turngym.harness") and _layer_violation(e)]
    lines = [f"  [{harness_layer(e.source)}={harness_rank(e.source)} -> "
             f"{harness_layer(e.target)}={harness_rank(e.target)}] {e}" for e in bad]
    assert not bad, f"harness layering violations ({len(bad)}):\n" + "\n".join(lines)
