"""The bug injector: mutate functions of the shipped projects and keep verified mutants.

A mutant is one small textual change at an AST node, made in place so the rest of the file
keeps its formatting. Operators (the task's ``task_type``):

- ``comparison_flip``: ``<`` <-> ``>=``, ``>`` <-> ``<=``, ``==`` <-> ``!=``,
  ``in`` <-> ``not in``, ``is`` <-> ``is not``;
- ``off_by_one``: an integer constant ``n`` -> ``n + 1`` / ``n - 1``; ``<`` <-> ``<=``,
  ``>`` <-> ``>=``;
- ``swapped_args``: the first two positional arguments of a call swap places;
- ``removed_statement``: one statement of a block with more than one is deleted;
- ``wrong_constant``: ``True`` <-> ``False``, ``0`` <-> ``1``, float constants halved;
- ``wrong_operator``: ``+`` <-> ``-``, ``*`` <-> ``/``, ``//`` -> ``/``, ``%`` -> ``//``,
  ``and`` <-> ``or``.

:func:`verify` keeps a mutant only when the original passes every test and the mutant
fails at least one (without a timeout). The failing tests become FAIL_TO_PASS, the others
PASS_TO_PASS, and the reverse edit is the gold patch.
"""

from __future__ import annotations

import ast
import json
import shutil
import subprocess
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path

RUNNER = Path(__file__).resolve().parent / "runner.py"

_CMP_FLIP = {ast.Lt: ">=", ast.GtE: "<", ast.Gt: "<=", ast.LtE: ">", ast.Eq: "!=",
             ast.NotEq: "==", ast.In: "not in", ast.NotIn: "in", ast.Is: "is not",
             ast.IsNot: "is"}
_CMP_EDGE = {ast.Lt: "<=", ast.LtE: "<", ast.Gt: ">=", ast.GtE: ">"}
_BIN_SWAP = {ast.Add: "-", ast.Sub: "+", ast.Mult: "/", ast.Div: "*", ast.FloorDiv: "/",
             ast.Mod: "//"}


@dataclass(frozen=True)
class Mutant:
    """One mutation of one file."""

    path: str
    """File path relative to the project root."""
    operator: str
    """One of the operators in the module docstring."""
    function: str
    """Name of the enclosing function ('' at module level)."""
    source: str
    """The whole mutated file."""


def _offsets(text: str) -> list[int]:
    starts, pos = [], 0
    for line in text.splitlines(keepends=True):
        starts.append(pos)
        pos += len(line)
    starts.append(pos)
    return starts


def _span(starts: list[int], node: ast.AST) -> tuple[int, int]:
    return (starts[node.lineno - 1] + node.col_offset,
            starts[node.end_lineno - 1] + node.end_col_offset)


def _between(text: str, starts: list[int], left: ast.AST, right: ast.AST, token: str
             ) -> tuple[int, int] | None:
    """Span of ``token`` in the gap between two nodes (skips parentheses and spaces)."""
    a, b = _span(starts, left)[1], _span(starts, right)[0]
    gap = text[a:b]
    idx = gap.find(token)
    if idx < 0 or gap.count(token) != 1:
        return None
    return a + idx, a + idx + len(token)


_OP_TEXT = {ast.Lt: "<", ast.LtE: "<=", ast.Gt: ">", ast.GtE: ">=", ast.Eq: "==",
            ast.NotEq: "!=", ast.In: "in", ast.NotIn: "not in", ast.Is: "is", ast.IsNot: "is not",
            ast.Add: "+", ast.Sub: "-", ast.Mult: "*", ast.Div: "/", ast.FloorDiv: "//",
            ast.Mod: "%"}


def _docstring_nodes(tree: ast.AST) -> set[int]:
    skip = set()
    for node in ast.walk(tree):
        if isinstance(node, (ast.Module, ast.FunctionDef, ast.ClassDef)) and node.body:
            first = node.body[0]
            if isinstance(first, ast.Expr) and isinstance(first.value, ast.Constant):
                skip.add(id(first))
                skip.add(id(first.value))
    return skip


def _edits(text: str, tree: ast.AST) -> list[tuple[str, int, int, str, ast.AST]]:
    """Candidate edits ``(operator, start, end, replacement, node)``."""
    starts, skip, out = _offsets(text), _docstring_nodes(tree), []
    for node in ast.walk(tree):
        if id(node) in skip:
            continue
        if isinstance(node, ast.Compare):
            lefts = [node.left, *node.comparators]
            for i, op in enumerate(node.ops):
                span = _between(text, starts, lefts[i], lefts[i + 1], _OP_TEXT[type(op)])
                if span is None:
                    continue
                if type(op) in _CMP_FLIP:
                    out.append(("comparison_flip", *span, _CMP_FLIP[type(op)], node))
                if type(op) in _CMP_EDGE:
                    out.append(("off_by_one", *span, _CMP_EDGE[type(op)], node))
        elif isinstance(node, ast.BinOp) and type(node.op) in _BIN_SWAP:
            span = _between(text, starts, node.left, node.right, _OP_TEXT[type(node.op)])
            if span is not None:
                out.append(("wrong_operator", *span, _BIN_SWAP[type(node.op)], node))
        elif isinstance(node, ast.BoolOp) and len(node.values) == 2:
            token = "and" if isinstance(node.op, ast.And) else "or"
            span = _between(text, starts, node.values[0], node.values[1], token)
            if span is not None:
                out.append(("wrong_operator", *span, "or" if token == "and" else "and", node))
        elif isinstance(node, ast.Constant) and node.lineno == node.end_lineno:
            out.extend(_constant_edits(node, _span(starts, node)))
        elif isinstance(node, ast.Call) and len(node.args) >= 2:
            a, b = node.args[0], node.args[1]
            sa, sb = _span(starts, a), _span(starts, b)
            if ast.dump(a) != ast.dump(b) and not isinstance(a, ast.Starred):
                new = text[sb[0]:sb[1]] + text[sa[1]:sb[0]] + text[sa[0]:sa[1]]
                out.append(("swapped_args", sa[0], sb[1], new, node))
    out.extend(_removal_edits(text, tree, starts, skip))
    return out


def _constant_edits(node: ast.Constant, span: tuple[int, int]) -> list:
    value, out = node.value, []
    if isinstance(value, bool):
        out.append(("wrong_constant", *span, repr(not value), node))
    elif isinstance(value, int):
        if value in (0, 1):
            out.append(("wrong_constant", *span, repr(1 - value), node))
        out.append(("off_by_one", *span, repr(value + 1), node))
        if value > 1:
            out.append(("off_by_one", *span, repr(value - 1), node))
    elif isinstance(value, float):
        out.append(("wrong_constant", *span, repr(value / 2), node))
    return out


def _removal_edits(text: str, tree: ast.AST, starts: list[int], skip: set[int]) -> list:
    out = []
    for node in ast.walk(tree):
        if not isinstance(node, (ast.FunctionDef, ast.For, ast.While, ast.If, ast.Try)):
            continue
        for body in (node.body, getattr(node, "orelse", [])):
            stmts = [s for s in body if id(s) not in skip]
            if len(stmts) < 2:
                continue
            for stmt in stmts:
                if isinstance(stmt, (ast.Return, ast.FunctionDef, ast.ClassDef)):
                    continue
                a = starts[stmt.lineno - 1]
                b = starts[stmt.end_lineno]
                if text[a:starts[stmt.lineno - 1] + stmt.col_offset].strip():
                    continue  # something else shares the line
                out.append(("removed_statement", a, b, "", stmt))
    return out


def _enclosing_functions(tree: ast.AST) -> list[tuple[int, int, str]]:
    return [(f.lineno, f.end_lineno, f.name) for f in ast.walk(tree)
            if isinstance(f, ast.FunctionDef)]


def mutate_file(project_root: Path, rel_path: str) -> list[Mutant]:
    """Every syntactically valid, distinct mutant of one file, in source order."""
    text = (project_root / rel_path).read_text()
    tree = ast.parse(text)
    funcs = _enclosing_functions(tree)
    seen, mutants = {text}, []
    for operator, a, b, new, node in sorted(_edits(text, tree), key=lambda e: (e[1], e[2], e[0])):
        source = text[:a] + new + text[b:]
        if source in seen:
            continue
        try:
            ast.parse(source)
        except SyntaxError:
            continue
        seen.add(source)
        inner = [f for f in funcs if f[0] <= node.lineno <= f[1]]
        name = max(inner, key=lambda f: f[0])[2] if inner else ""
        mutants.append(Mutant(rel_path, operator, name, source))
    return mutants


def run_tests(project_root: Path, timeout: float = 60.0) -> dict[str, dict]:
    """Run the project's tests with :mod:`turngym.envs.swe.runner` in a subprocess (no sandbox:
    only the shipped, trusted projects and their mutants are run this way)."""
    proc = subprocess.run(
        [sys.executable, "-B", str(RUNNER), "--root", str(project_root), "--tests",
         str(project_root / "tests")], capture_output=True, text=True, timeout=timeout)
    results = [json.loads(line) for line in proc.stdout.splitlines() if line.startswith("{")]
    return {r["id"]: r for r in results}


def verify(project_root: Path, mutant: Mutant) -> dict[str, dict] | None:
    """Test results of ``mutant``, or ``None`` when it is not a usable task (no failing test,
    a timeout, or a crash of the whole run)."""
    with tempfile.TemporaryDirectory(prefix="turngym-mutant-") as tmp:
        work = Path(tmp) / "p"
        shutil.copytree(project_root, work, ignore=shutil.ignore_patterns("__pycache__"))
        (work / mutant.path).write_text(mutant.source)
        try:
            results = run_tests(work)
        except subprocess.TimeoutExpired:
            return None
    if not results or any("Timeout" in r["message"] for r in results.values()):
        return None
    if all(r["outcome"] == "passed" for r in results.values()):
        return None
    return results


def gold_edit(original: str, mutated: str) -> tuple[str, str]:
    """``(old, new)``: the smallest line-aligned snippet of ``mutated`` around the change
    that occurs once in ``mutated``, and the matching snippet of ``original`` (which also
    occurs once there). Replacing old by new in the buggy file restores the original."""
    a, b = original.splitlines(keepends=True), mutated.splitlines(keepends=True)
    i = 0
    while i < min(len(a), len(b)) and a[i] == b[i]:
        i += 1
    ja, jb = len(a), len(b)
    while ja > i and jb > i and a[ja - 1] == b[jb - 1]:
        ja, jb = ja - 1, jb - 1
    for ctx in range(0, max(len(a), len(b)) + 1):
        lo = max(0, i - ctx)
        old = "".join(b[lo:min(len(b), jb + ctx)])
        new = "".join(a[lo:min(len(a), ja + ctx)])
        if old.strip() and mutated.count(old) == 1 and original.count(new) == 1:
            return old, new
    raise ValueError("no unique snippet around the change")
