"""``turngym bench [NAMES...]``: run the performance scripts under ``benchmarks/``.

Every ``benchmarks/<name>.py`` that defines ``main()`` is a performance script, except the
modules listed in :data:`NOT_BENCHMARKS`. Each runs in its own process
(``python benchmarks/<name>.py [--quick]``), so one crash does not stop the others; its
exit code, wall time, output tail and the result JSON it wrote (``benchmarks/results/``)
are collected into one JSON with the machine info and commit
(``benchmarks/results/bench.json`` by default).
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import typer
from rich.console import Console

from turngym.errors import ConfigError
from turngym.harness.cli.output import emit_table, json_option, messages
from turngym.harness.eval.results import RESULTS_DIR, write_result

console = Console(soft_wrap=True)  # a long path stays one line in a pipe

#: Modules under benchmarks/ with a ``main`` that are not performance scripts (``learning`` is a
#: multi-seed training run of about an hour: run it on its own).
NOT_BENCHMARKS = frozenset({"reference_rows", "learning"})
#: The repository root: scripts run from here (their relative paths, a source checkout).
REPO_ROOT = Path(__file__).resolve().parents[2]
_MAIN = re.compile(r"^def main\(", re.MULTILINE)


def discover(bench_dir: Path) -> dict[str, Path]:
    """``name -> path`` of the performance scripts in ``bench_dir`` (sorted by name)."""
    found = {}
    for path in sorted(bench_dir.glob("*.py")):
        name = path.stem
        if name.startswith("_") or name in NOT_BENCHMARKS:
            continue
        if _MAIN.search(path.read_text(encoding="utf-8")):
            found[name] = path
    return found


def supports_quick(path: Path) -> bool:
    """Whether the script declares a ``--quick`` flag."""
    return '"--quick"' in path.read_text(encoding="utf-8")


def run_script(name: str, path: Path, *, quick: bool, timeout_s: float,
               results_dir: Path) -> dict[str, Any]:
    """Run one script in a subprocess and collect what it reported."""
    args = [sys.executable, str(path)] + (["--quick"] if quick and supports_quick(path) else [])
    pythonpath = os.pathsep.join(p for p in (str(REPO_ROOT), os.environ.get("PYTHONPATH"))
                                 if p)
    before = {p: p.stat().st_mtime for p in results_dir.glob("*.json")}
    t0 = time.perf_counter()
    try:
        proc = subprocess.run(args, capture_output=True, text=True, timeout=timeout_s,
                              check=False, cwd=REPO_ROOT,
                              env={**os.environ, "PYTHONPATH": pythonpath})
        rc, out = proc.returncode, (proc.stdout or "") + (proc.stderr or "")
    except subprocess.TimeoutExpired as exc:
        rc = -1
        out = f"timed out after {timeout_s}s\n" + (exc.stdout or b"").decode(errors="replace")
    wall = time.perf_counter() - t0
    written = sorted(p for p in results_dir.glob("*.json")
                     if before.get(p) != p.stat().st_mtime and p.stem != "bench")
    results = {}
    for p in written:
        try:
            results[p.name] = json.loads(p.read_text()).get("results")
        except (OSError, ValueError):
            results[p.name] = None
    return {"name": name, "command": " ".join(Path(a).name if a == sys.executable else a
                                              for a in args),
            "quick": "--quick" in args, "returncode": rc, "wall_s": wall,
            "results_files": [p.name for p in written], "results": results,
            "output_tail": out[-2000:]}


def bench_cmd(
    names: list[str] | None = typer.Argument(None, help="Scripts to run (default: all)."),
    quick: bool = typer.Option(False, "--quick", help="Pass --quick to scripts that take it."),
    list_: bool = typer.Option(False, "--list", help="List the scripts and exit."),
    out: str | None = typer.Option(None, "--out", help="Combined JSON (default "
                                      "benchmarks/results/bench.json)."),
    bench_dir: str | None = typer.Option(None, "--dir", help="Scripts folder (default: "
                                            "the repo's benchmarks/)."),
    timeout: float = typer.Option(3600.0, help="Per script timeout (s)."),
    json_out: bool = json_option(),
) -> None:
    """Run performance scripts and write one JSON with machine info and commit."""
    folder = Path(bench_dir) if bench_dir else RESULTS_DIR.parent
    scripts = discover(folder)
    if list_:
        emit_table(["script", "quick"], [[name, supports_quick(path)]
                                         for name, path in scripts.items()],
                   title="performance scripts", json_out=json_out, console=console,
                   formats={"quick": lambda q: "--quick" if q else "-"})
        return
    unknown = sorted(set(names or []) - set(scripts))
    if unknown:
        raise ConfigError(f"unknown benchmark(s) {unknown}; available: {', '.join(scripts)}")
    chosen = {n: scripts[n] for n in (names or scripts)}
    results_dir = folder / "results"
    results_dir.mkdir(parents=True, exist_ok=True)
    say = messages(console, json_out)
    runs = []
    for name, path in chosen.items():
        say.print(f"[bold]bench[/bold] {name} ...")
        runs.append(run_script(name, path, quick=quick, timeout_s=timeout,
                               results_dir=results_dir))
    out_path = Path(out) if out else results_dir / "bench.json"
    written = write_result(out_path.stem, {"runs": runs}, config={"quick": quick,
                           "names": list(chosen)}, out_dir=out_path.parent)
    emit_table(["script", "rc", "wall_s", "results"],
               [[r["name"], r["returncode"], r["wall_s"], r["results_files"]] for r in runs],
               title="turngym bench", json_out=json_out, console=console,
               right=["rc", "wall_s"],
               formats={"wall_s": "{:.1f}", "results": lambda names: ", ".join(names) or "-"})
    say.print(f"wrote {written}")
    if any(r["returncode"] != 0 for r in runs):
        raise typer.Exit(1)


def register(app: typer.Typer) -> None:
    app.command("bench")(bench_cmd)
