"""The installed shape: one ``turngym`` package in the wheel, usable without the repository.

The repository keeps ``envs/``, ``agents/``, ... at its top and ``setup.py`` maps them under
``turngym.*``; a mistake there (a folder shipped at the top of site-packages, data left out)
passes every other test, because those import the editable install, which maps the folders
from the checkout. So the wheel is built from a copy of the sources, opened, and run from an
empty folder with only the unzipped wheel on ``PYTHONPATH`` (which comes before the editable
install's finder, appended after the normal path finder).
"""

from __future__ import annotations

import fnmatch
import json
import os
import shutil
import subprocess
import sys
import tomllib
import zipfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
#: What the build reads: the setup files and the folders that install as ``turngym.*``.
SOURCES = ("setup.py", "pyproject.toml", "README.md",
           "turngym", "envs", "agents", "algos", "harness", "benchmarks")
#: Local leftovers that are no part of a release (caches, a built search index, old builds).
LEFTOVERS = shutil.ignore_patterns("__pycache__", "*.pyc", "*.bm25s", ".tmp-*",
                                   "*.egg-info", "build")
VERSION = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["version"]


def _run(code: str, cwd: Path, pythonpath: Path | None = None) -> subprocess.CompletedProcess:
    """``python -c code`` in ``cwd`` (not the repository, so it cannot be imported from the
    current folder), with ``PYTHONPATH`` set to ``pythonpath`` alone."""
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    if pythonpath is not None:
        env["PYTHONPATH"] = str(pythonpath)
    return subprocess.run([sys.executable, "-c", code], cwd=cwd, env=env, capture_output=True,
                          text=True, timeout=300, check=False)


@pytest.fixture(scope="module")
def wheel(tmp_path_factory) -> Path:
    """The wheel, built offline from a copy of the sources: building in the checkout would
    write ``build/`` there, and a stale ``build/lib`` ships files the tree no longer has."""
    src = tmp_path_factory.mktemp("src")
    for name in SOURCES:
        path = ROOT / name
        if path.is_dir():
            shutil.copytree(path, src / name, ignore=LEFTOVERS)
        else:
            shutil.copy2(path, src / name)
    out = tmp_path_factory.mktemp("wheel")
    proc = subprocess.run(
        [sys.executable, "-m", "pip", "wheel", str(src), "--no-deps", "--no-build-isolation",
         "--no-index", "-q", "-w", str(out)],
        capture_output=True, text=True, timeout=600, check=False)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    (built,) = out.glob("turngym-*.whl")
    return built


@pytest.fixture(scope="module")
def unzipped(wheel, tmp_path_factory) -> Path:
    """The wheel's contents, as site-packages would hold them."""
    where = tmp_path_factory.mktemp("site")
    with zipfile.ZipFile(wheel) as zf:
        zf.extractall(where)
    return where


def _names(wheel: Path) -> list[str]:
    with zipfile.ZipFile(wheel) as zf:
        return zf.namelist()


@pytest.mark.slow
def test_wheel_holds_one_top_level_package(wheel):
    """The folders must install under ``turngym``: a top-level ``envs`` or ``harness`` in
    site-packages would clash with any other project's."""
    top = {name.split("/")[0] for name in _names(wheel)}
    assert top == {"turngym", f"turngym-{VERSION}.dist-info"}


@pytest.mark.slow
@pytest.mark.parametrize("pattern", [
    "turngym/__init__.py",
    "turngym/errors.py",
    "turngym/envs/maze/__init__.py",
    "turngym/harness/eval/suites/maze.yaml",
    "turngym/harness/eval/report_template.html",
    "turngym/envs/swe/data/*.jsonl",
    "turngym/envs/webshop/data/catalog.json.gz",
    "turngym/envs/search/data/corpus.jsonl.gz",
])
def test_wheel_ships_code_and_data(wheel, pattern):
    """Code and the data the envs and suites read at run time (package data is easy to drop
    when folders move)."""
    found = fnmatch.filter(_names(wheel), pattern)
    assert found, f"no {pattern} in {wheel.name} (package data in pyproject.toml / setup.py)"


@pytest.mark.slow
def test_wheel_leaves_out_local_leftovers(wheel):
    """A built search index or bytecode in the checkout must not end up in a release."""
    bad = [n for n in _names(wheel) if ".bm25s/" in n or "__pycache__" in n]
    assert not bad, bad[:10]


WHEEL_PROBE = """
import json, turngym
env = turngym.make('turngym/Maze-v0')
env.reset(seed=0)
import turngym.envs
try:
    import envs
    bare = 'imported ' + str(getattr(envs, '__file__', None))
except ModuleNotFoundError:
    bare = 'ModuleNotFoundError'
print(json.dumps({'envs_file': turngym.envs.__file__, 'bare_envs': bare}))
"""


@pytest.mark.slow
def test_unzipped_wheel_makes_an_env_without_the_repository(unzipped, tmp_path):
    """From an empty folder, with the wheel first on the path: ``turngym.make`` works, the
    code comes from the wheel (not the checkout through the editable install), and no
    top-level ``envs`` exists."""
    proc = _run(WHEEL_PROBE, cwd=tmp_path, pythonpath=unzipped)
    assert proc.returncode == 0, proc.stderr
    got = json.loads(proc.stdout.strip().splitlines()[-1])
    assert got["bare_envs"] == "ModuleNotFoundError"
    assert Path(got["envs_file"]).resolve().is_relative_to(unzipped.resolve()), got


IMPORT_PROBE = """
import json, sys
import turngym, turngym.errors
gym = sys.modules.get('gymnasium')
ids = [i for i in gym.registry if i.startswith('turngym/')] if gym else []
print(json.dumps({'torch': 'torch' in sys.modules, 'gym_ids': ids,
                  'envs': sorted(m for m in sys.modules if m.startswith('turngym.envs'))}))
"""


def test_import_turngym_is_lazy(tmp_path):
    """``import turngym`` (and ``turngym.errors``) is what every tool pays for first: it must
    not load torch nor register envs (which imports gymnasium and the env registry)."""
    proc = _run(IMPORT_PROBE, cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    got = json.loads(proc.stdout.strip().splitlines()[-1])
    assert got == {"torch": False, "gym_ids": [], "envs": []}
