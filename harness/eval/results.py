"""Shared plumbing for performance scripts: machine info and the committed result JSON.

Every benchmark prints its figure next to its baseline, both measured in the same run, and
calls :func:`write_result` so the latest numbers are committed under
``benchmarks/results/NAME.json`` with the machine, commit, seeds and config.
"""

from __future__ import annotations

import importlib.util
import json
import os
import platform
import subprocess
import time
from pathlib import Path
from typing import Any


def benchmarks_dir() -> Path:
    """The performance scripts' folder (``turngym.benchmarks``), located without importing it
    (``harness`` never imports ``benchmarks``)."""
    spec = importlib.util.find_spec("turngym.benchmarks")
    if spec is None or not spec.submodule_search_locations:
        raise ModuleNotFoundError("turngym.benchmarks is not installed")
    return Path(next(iter(spec.submodule_search_locations))).resolve()


#: Where the committed result JSONs live (``benchmarks/results``).
RESULTS_DIR = benchmarks_dir() / "results"


def machine_info() -> dict[str, Any]:
    """CPU, cores, memory, Python and torch versions of this machine."""
    cpu = platform.processor() or ""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    mem_gib = None
    try:
        pages = os.sysconf("SC_PHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")
        mem_gib = round(pages / 2**30, 1)
    except (ValueError, OSError):
        pass
    info: dict[str, Any] = {"cpu": cpu, "cores": os.cpu_count(), "mem_gib": mem_gib,
                            "python": platform.python_version(), "platform": platform.platform()}
    try:
        import torch

        info["torch"] = torch.__version__
        info["cuda"] = torch.cuda.get_device_name(0) if torch.cuda.is_available() else None
    except ImportError:
        pass
    return info


def git_commit() -> str | None:
    try:
        out = subprocess.run(["git", "rev-parse", "HEAD"], capture_output=True, text=True,
                             cwd=Path(__file__).parent, timeout=5)
        return out.stdout.strip() or None
    except (OSError, subprocess.SubprocessError):
        return None


def git_dirty() -> list[str] | None:
    """Tracked files with uncommitted changes (the code measured is not exactly ``commit``),
    ignoring ``benchmarks/results``; None outside a checkout."""
    try:
        out = subprocess.run(["git", "status", "--porcelain", "--untracked-files=no"],
                             capture_output=True, text=True, cwd=Path(__file__).parent,
                             timeout=5)
    except (OSError, subprocess.SubprocessError):
        return None
    if out.returncode != 0:
        return None
    files = [line[3:] for line in out.stdout.splitlines() if line.strip()]
    return [f for f in files if not f.startswith("benchmarks/results/")]


def load_avg() -> float | None:
    """The 1-minute load average (other work sharing the cores skews timings)."""
    try:
        return round(os.getloadavg()[0], 2)
    except OSError:
        return None


def write_result(name: str, results: Any, *, config: dict[str, Any] | None = None,
                 seeds: list[int] | None = None, out_dir: Path | None = None) -> Path:
    """Write ``results`` with machine info, commit, seeds and config to ``NAME.json``."""
    out_dir = out_dir or RESULTS_DIR
    out_dir.mkdir(parents=True, exist_ok=True)
    doc = {"benchmark": name, "time": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
           "machine": machine_info(), "commit": git_commit(), "dirty": git_dirty(),
           "load_avg_1m": load_avg(), "seeds": seeds or [],
           "config": config or {}, "results": results}
    path = out_dir / f"{name}.json"
    path.write_text(to_json(doc) + "\n")
    return path


def to_json(data: Any, indent: int = 2, _level: int = 0) -> str:
    """``json.dumps(data, indent=indent, default=str)``, except that a list of scalars stays
    on one line: a learning benchmark's per-task outcomes are thousands of 0s and 1s, one
    line each otherwise."""
    pad, inner = " " * (indent * _level), " " * (indent * (_level + 1))
    if isinstance(data, dict) and data:
        items = [f"{inner}{json.dumps(str(k))}: {to_json(v, indent, _level + 1)}"
                 for k, v in data.items()]
        return "{\n" + ",\n".join(items) + "\n" + pad + "}"
    if isinstance(data, (list, tuple)) and any(isinstance(v, (dict, list, tuple)) for v in data):
        items = [inner + to_json(v, indent, _level + 1) for v in data]
        return "[\n" + ",\n".join(items) + "\n" + pad + "]"
    return json.dumps(data, default=str)
