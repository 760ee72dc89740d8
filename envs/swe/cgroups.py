"""Per-sandbox control groups: one memory and process budget for a sandbox's whole process
tree, and a kill that reaches every process in it (``setsid``, double forks, daemons).

A :class:`SandboxCgroup` is a folder named ``turngym-swe-<owner pid>-<random>`` beside the
cgroup this process runs in, in each hierarchy that is mounted and writable:

* cgroup v2 (the unified hierarchy): ``cgroup.kill`` ends the whole tree in one atomic
  step (Linux 5.14+), and ``memory.max``/``pids.max`` when those controllers can be
  enabled there (a v2 cgroup that holds processes cannot hand controllers down, so on a
  host where this process sits in a non-root v2 cgroup only the kill is available);
* cgroup v1 ``memory`` and ``pids`` hierarchies (a hybrid host, e.g. Docker's cgroupfs
  driver on v1): ``memory.limit_in_bytes`` (+ ``memory.memsw.limit_in_bytes``) and
  ``pids.max``, for the controllers v2 does not have.

The host adds a command's first process (before it drops root) by writing ``0`` to each
``cgroup.procs`` from a ``preexec_fn`` (:meth:`SandboxCgroup.join_fds`); its children
inherit the cgroup and an unprivileged process cannot leave it. Without root or a writable
cgroup file system, :func:`create` returns ``None`` and the backends fall back to what they
have without it (see :mod:`turngym.envs.swe.sandbox`). Folders of dead owners are removed by
:func:`sweep_stale_cgroups`.
"""

from __future__ import annotations

import logging
import os
import signal
import time
import uuid
from pathlib import Path

logger = logging.getLogger(__name__)

PREFIX = "turngym-swe-"
_V1_CONTROLLERS = ("memory", "pids")


def pid_alive(pid: int) -> bool:
    """Whether process ``pid`` exists (a process of another user counts). It lives here, at
    the bottom of the sandbox modules, because both the cgroup sweep and the sandbox folder
    and container sweeps ask it."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _mounts() -> tuple[str | None, dict[str, str]]:
    """``(v2 mount point or None, {v1 controller: mount point})``."""
    v2, v1 = None, {}
    try:
        lines = Path("/proc/self/mountinfo").read_text().splitlines()
    except OSError:
        return None, {}
    for line in lines:
        left, _, right = line.partition(" - ")
        fields, tail = left.split(), right.split()
        if len(fields) < 5 or len(tail) < 3:
            continue
        if tail[0] == "cgroup2" and v2 is None:
            v2 = fields[4]
        elif tail[0] == "cgroup":
            for opt in tail[2].split(","):
                if opt in _V1_CONTROLLERS:
                    v1.setdefault(opt, fields[4])
    return v2, v1


def _own_paths() -> dict[str, str]:
    """This process's cgroup path per hierarchy (``""`` for v2, controller names for v1)."""
    out = {}
    try:
        lines = Path("/proc/self/cgroup").read_text().splitlines()
    except OSError:
        return out
    for line in lines:
        _, controllers, path = line.split(":", 2)
        for name in controllers.split(",") if controllers else [""]:
            out[name] = path
    return out


def _write(path: Path, value: str) -> bool:
    try:
        path.write_text(value)
        return True
    except OSError:
        return False


class SandboxCgroup:
    """The cgroup folders of one sandbox (see the module docstring)."""

    def __init__(self, dirs: list[Path], kill_file: Path | None, memory: bool, pids: bool):
        self.dirs = dirs
        """Every folder the sandbox's processes are added to."""
        self.kill_file = kill_file
        """A v2 ``cgroup.kill`` (None: kill process by process)."""
        self.limits_memory = memory
        """Whether the memory of the whole tree is capped."""
        self.limits_pids = pids
        """Whether the processes of the whole tree are capped."""

    def join_fds(self) -> list[int]:
        """Open ``cgroup.procs`` of each folder for writing; a ``preexec_fn`` writes ``0``
        to each (:func:`join`) and the caller closes them after the fork."""
        fds = []
        for folder in self.dirs:
            try:
                fds.append(os.open(folder / "cgroup.procs", os.O_WRONLY | os.O_CLOEXEC))
            except OSError as exc:
                logger.debug("cgroup %s: %s", folder, exc)
        return fds

    def pids(self) -> list[int]:
        """Processes in the sandbox's cgroup now."""
        found: set[int] = set()
        for folder in self.dirs:
            try:
                found.update(int(p) for p in (folder / "cgroup.procs").read_text().split())
            except (OSError, ValueError):
                continue
        return sorted(found)

    def kill(self, wait_s: float = 5.0) -> bool:
        """SIGKILL every process in the cgroup and wait until it is empty; True if it is."""
        deadline = time.monotonic() + wait_s
        while True:
            left = self.pids()
            if not left:
                return True
            if self.kill_file is None or not _write(self.kill_file, "1"):
                for pid in left:
                    _kill_member(pid, self.dirs[0].name)
            if time.monotonic() > deadline:
                logger.warning("cgroup %s still holds %d processes", self.dirs[0].name, len(left))
                return False
            time.sleep(0.002)  # killed processes leave the cgroup when the kernel reaps them

    def remove(self) -> None:
        """Kill what is left and remove the folders (idempotent)."""
        self.kill()
        for folder in self.dirs:
            for _ in range(50):
                try:
                    folder.rmdir()
                    break
                except FileNotFoundError:
                    break
                except OSError:
                    time.sleep(0.01)  # EBUSY while the last exits are accounted
        self.dirs = []


def _kill_member(pid: int, name: str) -> None:
    """SIGKILL ``pid`` if it is (still) in the cgroup called ``name``: the pidfd pins the
    process, so a pid reused by an unrelated process after the check is never signalled."""
    try:
        fd = os.pidfd_open(pid)
    except OSError:
        return
    try:
        if f"/{name}" in Path(f"/proc/{pid}/cgroup").read_text():
            signal.pidfd_send_signal(fd, signal.SIGKILL)
    except OSError:
        pass
    finally:
        os.close(fd)


def join(fds: list[int]) -> None:
    """In a ``preexec_fn``, before dropping root: move this process into the cgroup."""
    for fd in fds:
        os.write(fd, b"0")


def create(memory_mb: int, pids: int) -> SandboxCgroup | None:
    """A new cgroup with those limits for the whole tree, or None where the cgroup file
    system is missing or not writable (not root, a read-only ``/sys/fs/cgroup``)."""
    v2_mount, v1_mounts = _mounts()
    own = _own_paths()
    name = f"{PREFIX}{os.getpid()}-{uuid.uuid4().hex[:8]}"
    dirs: list[Path] = []
    kill_file, has_memory, has_pids = None, False, False
    limit = str(memory_mb << 20)
    if v2_mount is not None and "" in own:
        parent = Path(v2_mount + own[""])
        folder = parent / name
        try:
            folder.mkdir()
            dirs.append(folder)
            if (folder / "cgroup.kill").exists():
                kill_file = folder / "cgroup.kill"
            enabled = (parent / "cgroup.subtree_control").read_text().split()
            if "memory" not in enabled or "pids" not in enabled:
                _write(parent / "cgroup.subtree_control", "+memory +pids")
            has_memory = _write(folder / "memory.max", limit)
            _write(folder / "memory.swap.max", "0")
            has_pids = _write(folder / "pids.max", str(pids))
        except OSError as exc:
            logger.debug("cgroup v2 at %s: %s", parent, exc)
    for controller, mount in v1_mounts.items():
        if (controller == "memory" and has_memory) or (controller == "pids" and has_pids):
            continue
        folder = Path(mount + own.get(controller, "/")) / name
        try:
            folder.mkdir()
        except OSError as exc:
            logger.debug("cgroup v1 %s: %s", controller, exc)
            continue
        dirs.append(folder)
        if controller == "memory":
            has_memory = _write(folder / "memory.limit_in_bytes", limit)
            _write(folder / "memory.memsw.limit_in_bytes", limit)
        else:
            has_pids = _write(folder / "pids.max", str(pids))
    if not dirs:
        return None
    return SandboxCgroup(dirs, kill_file, has_memory, has_pids)


def sweep_stale_cgroups() -> int:
    """Kill and remove sandbox cgroups whose owner process is gone (after a hard kill)."""
    v2_mount, v1_mounts = _mounts()
    own = _own_paths()
    parents = []
    if v2_mount is not None and "" in own:
        parents.append(Path(v2_mount + own[""]))
    parents += [Path(mount + own.get(c, "/")) for c, mount in v1_mounts.items()]
    removed = 0
    for parent in parents:
        try:
            folders = list(parent.glob(f"{PREFIX}*"))
        except OSError:
            continue
        for folder in folders:
            try:
                pid = int(folder.name[len(PREFIX):].split("-", 1)[0])
            except ValueError:
                continue
            if pid == os.getpid() or pid_alive(pid):
                continue
            kill = folder / "cgroup.kill"
            SandboxCgroup([folder], kill if kill.exists() else None, False, False).remove()
            removed += 1
    return removed
