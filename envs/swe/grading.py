"""Host side of SWE grading: stage the grader's files, run it, read its verdict.

The grade comes from :mod:`turngym.envs.swe.runner`'s grader process, over a Unix socket that this
module listens on in the sandbox's hidden folder for the length of the grading command,
and that it accepts exactly one connection on: the grader's, made before any project code
runs. The command's output (which the code under test can write to) is never parsed for the
grade. See the runner's docstring for the argument, and ``docs/swe.md`` (Grading).

The SWE-bench-style env runs the instance's own test command instead (pytest in the
tested process, so its outcome lines are only as trustworthy as the process that prints
them); :func:`restore_plan` and :func:`clean_command` give it pristine test files and a
workspace without planted ``conftest.py``/byte code/``.pth``/customize modules.
"""

from __future__ import annotations

import logging
import os
import shlex
import shutil
import socket
import tarfile
import threading
from dataclasses import dataclass
from pathlib import Path, PurePosixPath

from turngym.envs.swe.diffs import PatchError, hunk_edits
from turngym.envs.swe.sandbox import Sandbox

logger = logging.getLogger(__name__)

RUNNER = Path(__file__).resolve().parent / "runner.py"
#: Name of the verdict socket in the hidden folder (``/hidden`` inside).
SOCKET_NAME = "verdict.sock"
#: Most bytes of verdict read from the grader.
MAX_VERDICT_BYTES = 4 << 20
#: Interpreter flags of every grading command: isolated (no ``PYTHON*`` variables, no user
#: site, no script folder on the path), no ``site`` (no ``.pth``, no customize modules), no
#: byte code written.
PYTHON = "python3 -I -S -B"
#: Files that steer a pytest run rather than the library: restored from the original tree
#: before the SWE-bench-style env grades (with every ``conftest.py``).
PYTEST_CONFIG = ("pytest.ini", "tox.ini", "setup.cfg", "pyproject.toml")
#: Environment of the graded test command in the SWE-bench-style env (a fresh ``HOME``, no
#: user site, no byte code, no pytest cache).
CLEAN_ENV = ('export HOME="$(mktemp -d)" PYTHONNOUSERSITE=1 PYTHONDONTWRITEBYTECODE=1 '
             'PYTEST_ADDOPTS="-p no:cacheprovider" && ')


@dataclass(frozen=True)
class Grade:
    """What a grading command gave."""

    results: dict[str, tuple[str, str]]
    """``test id -> (outcome, message)`` from the grader's verdict (empty without one)."""
    verdict: bool
    """Whether a complete verdict arrived on the socket."""
    timed_out: bool
    """The command ran out of time."""


class VerdictListener:
    """A Unix socket in ``folder`` that accepts one connection and reads it to the end
    (at most :data:`MAX_VERDICT_BYTES`), on a thread, while the grading command runs."""

    def __init__(self, folder: Path):
        self.path = folder / SOCKET_NAME
        self.path.unlink(missing_ok=True)
        self._server = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        dfd = os.open(folder, os.O_RDONLY | os.O_DIRECTORY)
        try:  # through the folder's descriptor: a long host path still fits sun_path
            self._server.bind(f"/proc/self/fd/{dfd}/{SOCKET_NAME}")
        finally:
            os.close(dfd)
        os.chmod(self.path, 0o666)  # the sandbox user must be able to connect
        self._server.listen(1)
        self._server.settimeout(0.1)
        self._stop = threading.Event()
        self._data = bytearray()
        self._thread = threading.Thread(target=self._serve, name="swe-verdict", daemon=True)
        self._thread.start()

    def _serve(self) -> None:
        conn = None
        try:
            while conn is None and not self._stop.is_set():
                try:
                    conn, _ = self._server.accept()
                except TimeoutError:
                    continue
        except OSError as exc:
            logger.debug("verdict socket: %s", exc)
        finally:  # one connection only: later ones are refused
            self._server.close()
            self.path.unlink(missing_ok=True)
        if conn is None:
            return
        with conn:
            conn.settimeout(0.1)
            while len(self._data) <= MAX_VERDICT_BYTES:
                try:
                    chunk = conn.recv(1 << 16)
                except TimeoutError:
                    if self._stop.is_set():
                        break
                    continue
                except OSError:
                    break
                if not chunk:
                    break
                self._data += chunk

    def finish(self, wait: float = 5.0) -> bytes:
        """Stop accepting, give the grader ``wait`` seconds to close, and return what it
        sent."""
        self._thread.join(timeout=wait if self._data or not self._stop.is_set() else 0)
        self._stop.set()
        self._thread.join()
        return bytes(self._data[:MAX_VERDICT_BYTES])


def parse_verdict(data: bytes) -> dict[str, tuple[str, str]] | None:
    """``test id -> (outcome, message)`` from the grader's lines, or ``None`` unless the
    verdict is complete (its last line ``{"done": N}`` counts the N result lines)."""
    out: dict[str, tuple[str, str]] = {}
    lines = data.decode("utf-8", errors="replace").splitlines()
    if not lines:
        return None
    try:
        import json

        rows = [json.loads(line) for line in lines]
        done = rows[-1]["done"]
        for row in rows[:-1]:
            out[str(row["id"])] = (str(row["outcome"]), str(row.get("message", "")))
    except (ValueError, KeyError, TypeError):
        return None
    if done != len(rows) - 1 or len(out) != done:
        return None
    return out


def project_modules(files: dict[str, str] | list[str]) -> list[str]:
    """Top-level modules of a project, from its file list (what the hidden tests may import
    from the project; every other import of a test is the grader's standard library)."""
    names = set()
    for rel in files:
        top = PurePosixPath(rel).parts[0]
        if top == "tests" or top.startswith("."):
            continue
        name = top.removesuffix(".py")
        if name.isidentifier() and (top.endswith(".py") or "/" in rel):
            names.add(name)
    return sorted(names)


def stage(hidden: Path, tests: Path | None = None) -> None:
    """Empty the hidden folder and copy in the runner (and ``tests``), fresh from the
    package: the model never saw these copies."""
    for child in hidden.iterdir():
        if child.is_dir() and not child.is_symlink():
            shutil.rmtree(child)
        else:
            child.unlink()
    shutil.copyfile(RUNNER, hidden / "runner.py")
    if tests is not None:
        shutil.copytree(tests, hidden / "tests",
                        ignore=shutil.ignore_patterns("__pycache__", "*.pyc"))


def grade(box: Sandbox, tests: Path, ids: list[str], modules: list[str], *,
          timeout: float, root: str = "/workspace") -> Grade:
    """Run the hidden ``tests`` (a host folder) against the workspace with the clean
    grader: it deletes planted byte code, ``.pth``, ``conftest.py`` and customize modules,
    then runs each test with the project in a fresh process, and reports on the socket."""
    stage(box.hidden, tests)
    cmd = (f"{PYTHON} /hidden/runner.py --clean --root {shlex.quote(root)} "
           f"--tests /hidden/tests --modules {shlex.quote(','.join(modules))} "
           f"--verdict /hidden/{SOCKET_NAME} {' '.join(shlex.quote(t) for t in ids)}")
    listener = VerdictListener(box.hidden)
    try:
        res = box.exec(cmd, timeout=timeout, hidden=True)
    finally:
        data = listener.finish()
    results = parse_verdict(data)
    if results is None:
        logger.info("no verdict from the grader (exit %s): %s", res.exit_code, res.output[-500:])
    return Grade(results or {}, results is not None, res.timed_out)


# ---------------------------------------------------------------------- SWE-bench-style
def test_files(ids: list[str]) -> set[str]:
    """The files of pytest-style test ids (``path.py::name``)."""
    return {t.split("::", 1)[0] for t in ids if "::" in t and t.split("::", 1)[0].endswith(".py")}


class ChunkReader:
    """A read-only file over an iterable of byte chunks (docker's archive stream), for
    ``tarfile``'s streaming mode: the archive is never held in memory whole."""

    def __init__(self, chunks):
        self._chunks = iter(chunks)
        self._buf = b""

    def read(self, size: int = -1) -> bytes:
        while size < 0 or len(self._buf) < size:
            chunk = next(self._chunks, None)
            if chunk is None:
                break
            self._buf += chunk
        if size < 0:
            size = len(self._buf)
        out, self._buf = self._buf[:size], self._buf[size:]
        return out


def pristine_files(archive, wanted: set[str]) -> tuple[dict[str, bytes], set[str]]:
    """From a tar stream of the original tree (top folder stripped): the bytes of every
    ``wanted`` file, of every ``conftest.py`` and of top-level pytest config files; and the
    relative paths of every file that :func:`clean_command` would otherwise delete."""
    found: dict[str, bytes] = {}
    owned: set[str] = set()
    with tarfile.open(fileobj=archive, mode="r|*") as tar:
        for m in tar:
            parts = PurePosixPath(m.name).parts[1:]
            if not parts or not m.isfile():
                continue
            rel, name = "/".join(parts), parts[-1]
            if name in ("conftest.py", "sitecustomize.py", "usercustomize.py") or \
                    name.endswith((".pyc", ".pyo", ".pth")):
                owned.add(rel)
            if rel in wanted or name == "conftest.py" or rel in PYTEST_CONFIG:
                fh = tar.extractfile(m)
                if fh is not None:
                    found[rel] = fh.read()
    return found, owned


def restore_plan(pristine: dict[str, bytes], wanted: set[str],
                 test_patch: str) -> dict[str, bytes | None]:
    """``path -> content`` (``None``: must not exist) for every file the grading needs as
    the task defines it: the pristine ``wanted`` files, with ``test_patch`` applied (in
    memory, on the pristine text, never on what the model left)."""
    plan: dict[str, bytes | None] = {rel: pristine.get(rel) for rel in wanted}
    plan.update(pristine)
    for kind, path, old, new in hunk_edits(test_patch):
        current = plan.get(path)
        text = current.decode() if current is not None else ""
        if kind == "delete":
            plan[path] = None
        elif kind == "create":
            plan[path] = new.encode()
        elif text.count(old) == 1:
            plan[path] = text.replace(old, new, 1).encode()
        else:
            raise PatchError(f"the test patch does not apply to the original {path}")
    return plan


def clean_command(repo_dir: str, keep_file: str | None = None) -> str:
    """The in-sandbox command that deletes planted byte code, ``.pth``, ``conftest.py`` and
    customize modules under ``repo_dir`` (as the sandbox user, never following links)."""
    keep = f" --keep {shlex.quote(keep_file)}" if keep_file else ""
    return f"{PYTHON} /hidden/runner.py --clean-only {shlex.quote(repo_dir)}{keep}"
