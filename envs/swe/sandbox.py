"""The interface every sandbox backend implements, and what the process backends share.

Backends: ``bwrap`` (bubblewrap, :mod:`turngym.envs.swe.bwrap_sandbox`), ``local-unsafe`` (rlimits
only, NOT isolated, :mod:`turngym.envs.swe.local_sandbox`) and ``docker``
(:mod:`turngym.envs.swe.docker_sandbox`); :mod:`turngym.envs.swe.backends` picks and builds one.

A sandbox owns a host folder ``root`` with two parts:

* ``root/work``: the workspace, mounted read-write at ``/workspace`` inside;
* ``root/hidden``: the grader's files (runner and pristine tests), mounted read-only at
  ``/hidden`` only for :meth:`Sandbox.exec` calls made with ``hidden=True``.

The model is treated as an adversary (threat model: ``docs/swe.md``). Every command runs as
an unprivileged user (uid 65534; ``local-unsafe``: see below) with limits on memory,
processes, CPU time, file size and wall time. Output is captured to a file and truncated
by the caller.

* **Processes.** Nothing a command starts outlives it. bwrap runs each command in a fresh
  pid namespace (killed whole when its first process exits); when the host is root and the
  cgroup file system is writable, every backend but docker also runs it in a per-sandbox
  cgroup (:mod:`turngym.envs.swe.cgroups`) that is killed whole at the command's end and at
  :meth:`Sandbox.close`. Docker kills every process of the sandbox user in the container
  from the host after each command (see :mod:`turngym.envs.swe.docker_sandbox`).
* **Memory and processes for the whole tree**: the cgroup's memory and pids limits (docker:
  the container's), on top of ``RLIMIT_AS`` per process. Without a writable cgroup file
  system, bwrap and local have the per-process ``RLIMIT_AS`` and the ``RLIMIT_NPROC`` count
  only, so ``n`` processes may together hold ``n x memory_mb``.
* **Disk.** When the host is root, ``root`` is a tmpfs of its own, capped at
  :attr:`Limits.disk_mb` and :attr:`Limits.files` (writes fail with ``ENOSPC``); otherwise
  the workspace is walked after each command (at most ``files`` entries) and an over-quota
  workspace is reported in the command's output and in :attr:`ExecResult.quota`. Every
  other writable tmpfs (bwrap's ``/tmp``, ``/dev/shm``; docker's ``/tmp``) is capped at
  :attr:`Limits.tmp_mb`; bwrap's root, ``/dev`` and ``/opt`` are read-only.
* **No host paths inside.** bwrap reads its arguments from a file descriptor (``--args``),
  so ``/proc/1/cmdline`` shows none; with the tmpfs above, mount sources are ``/work``,
  ``/hidden`` and ``/runner.py`` of a tmpfs called ``turngym``; the folder name carries no
  owner pid (that sits in ``root/.owner``). bwrap forbids nested user namespaces
  (``--disable-userns``).

Folders, cgroups and processes are cleaned up on :meth:`Sandbox.close`, at interpreter
exit, and, after a hard kill, by :func:`sweep_stale` the next time a sandbox starts.

The process limit is per sandbox, so that envs stepped concurrently (the rollout harness's
thread pool) cannot use up each other's. The kernel counts ``RLIMIT_NPROC`` per uid, and in
every user namespace up the chain, so one limit set on the host side would be one budget
shared by every sandbox of that uid (and by docker's uid-65534 commands). bwrap therefore
sets it inside the sandbox, where the count covers that sandbox's own user namespace only;
``local-unsafe`` sandboxes (no namespaces) each run as a uid of their own when started as
root.
"""

from __future__ import annotations

import abc
import ctypes
import logging
import os
import resource
import shutil
import signal
import subprocess
import tempfile
import time
import weakref
from dataclasses import dataclass, fields
from pathlib import Path

from turngym.envs.swe import cgroups
from turngym.errors import ConfigError

logger = logging.getLogger(__name__)

SANDBOX_UID = 65534
PATH = "/opt/turngym/bin:/usr/local/bin:/usr/bin:/bin:/usr/sbin:/sbin"
#: Sandbox folders are ``TMP_PREFIX`` + random letters; the owner pid is in ``.owner``.
TMP_PREFIX = "turngym-swe-"
OWNER_FILE = ".owner"
#: Backend names. ``local`` is an alias of ``local-unsafe`` that logs a warning.
BACKENDS = ("docker", "bwrap", "local-unsafe")
ALIASES = {"local": "local-unsafe"}
UNSAFE = "local-unsafe"
#: The test runner, mounted read-only at ``/opt/turngym/runner.py`` in every backend.
RUNNER = Path(__file__).resolve().parent / "runner.py"
RUNNER_INSIDE = "/opt/turngym/runner.py"
#: The shell that runs ``bash`` tool commands (bwrap and local; docker runs ``bash``).
SHELL = "/bin/bash" if Path("/bin/bash").exists() else "/bin/sh"
#: ``local`` sandboxes started as root run as ``LOCAL_UID_BASE + pid * LOCAL_UIDS + slot``:
#: a uid per live sandbox (unique on the host while this process lives), so that
#: ``RLIMIT_NPROC``, which the kernel counts per uid, limits each sandbox on its own.
LOCAL_UID_BASE = 1 << 30
LOCAL_UIDS = 256
#: Processes a bwrap sandbox needs besides the command's own (bwrap twice, the shells and
#: the watchdog); the cgroup's pids limit is ``Limits.pids`` plus these.
BWRAP_HELPERS = 8
#: Inodes of the sandbox folder besides the workspace's entries: the folder itself,
#: ``.owner``, ``work``, ``hidden`` and ``runner.py``.
_OWN_INODES = 5
#: The hidden folder's own tmpfs (root only): the grader's copies of the tests.
HIDDEN_MB, HIDDEN_FILES = 64, 4096


@dataclass(frozen=True)
class Limits:
    """Resource limits of one sandbox. Every field must be a positive number."""

    memory_mb: int = 1024
    """Memory of the whole sandbox: its cgroup (bwrap/local as root with a writable cgroup
    file system; files it writes into the workspace tmpfs count too) or the container's
    (docker). bwrap/local also cap each process's address space at this."""
    pids: int = 128
    """Processes (threads included) of one sandbox: ``RLIMIT_NPROC`` inside its own user
    namespace (bwrap) or of its own uid (local), cgroup pids (docker; bwrap/local with a
    cgroup, plus :data:`BWRAP_HELPERS`)."""
    cpu_s: int = 30
    """CPU seconds per command."""
    file_mb: int = 64
    """Largest file a command may write (also bounds captured output)."""
    cpus: float = 1.0
    """CPU share (docker only)."""
    disk_mb: int = 1024
    """Workspace quota in MiB (with the hidden tests and the runner, a few KiB)."""
    files: int = 65536
    """Workspace quota in files and folders (inodes)."""
    tmp_mb: int = 64
    """Size cap of each private tmpfs (``/tmp``; bwrap's ``/dev/shm``)."""

    def __post_init__(self):
        for f in fields(self):
            value = getattr(self, f.name)
            if isinstance(value, bool) or not isinstance(value, (int, float)) or not value > 0:
                raise ConfigError(f"Limits.{f.name} must be a positive number, got {value!r}")


@dataclass(frozen=True)
class ExecResult:
    """What a command did."""

    exit_code: int
    """Exit status; ``-N`` when killed by signal N; ``124`` on timeout."""
    output: str
    """stdout and stderr interleaved (not truncated here), plus a quota note."""
    timed_out: bool
    """The wall-clock timeout killed it."""
    seconds: float
    """Wall time."""
    quota: str = ""
    """Non-empty when the workspace is at or over its quota: what was hit (also appended
    to ``output``)."""


class Sandbox(abc.ABC):
    """One isolated place to run commands against a workspace folder."""

    #: Backend name, recorded in the env's info.
    name: str = "base"
    #: Whether commands are isolated from the host (network, files, processes).
    isolated: bool = True
    #: Whether commands run in a per-sandbox cgroup made here (docker has its own).
    _own_cgroup: bool = False

    def __init__(self, limits: Limits | None = None):
        self.limits = limits or Limits()
        sweep_stale()
        self._res = _Resources(Path(tempfile.mkdtemp(prefix=f"{TMP_PREFIX}s")))
        self.root = self._res.root
        self.root.chmod(0o755)
        _write_owner(self.root)
        # Root: the whole folder is a tmpfs capped at the quota (also hides the host path).
        if os.geteuid() == 0 and _mount_tmpfs(self.root, (self.limits.disk_mb + 1) << 20,
                                              self.limits.files + _OWN_INODES):
            self._res.mounted = True
            _write_owner(self.root)
        self._make_folders()
        if self._own_cgroup and os.geteuid() == 0:
            self._res.cgroup = cgroups.create(self.limits.memory_mb,
                                              self.limits.pids + BWRAP_HELPERS)
        self._closed = False
        self._finalizer = weakref.finalize(self, self._res.release)

    def _make_folders(self) -> None:
        self.work = self.root / "work"
        self.hidden = self.root / "hidden"
        self.work.mkdir(mode=0o777, exist_ok=True)
        self.hidden.mkdir(mode=0o755, exist_ok=True)
        if self._res.mounted:  # its own tmpfs: a full workspace must not stop grading
            _mount_tmpfs(self.hidden, HIDDEN_MB << 20, HIDDEN_FILES)
        self.work.chmod(0o777)
        # The runner is mounted from this copy, not from the package: the package may sit in
        # a folder that the sandbox user cannot traverse (a mode-700 checkout in /tmp).
        self.runner = self.root / "runner.py"
        shutil.copyfile(RUNNER, self.runner)
        self.runner.chmod(0o644)

    @property
    def quota_mounted(self) -> bool:
        """Whether the workspace is a size- and inode-capped tmpfs (else it is walked)."""
        return self._res.mounted

    @property
    def cgroup(self) -> cgroups.SandboxCgroup | None:
        """The per-sandbox cgroup (None: none could be made, or docker)."""
        return self._res.cgroup

    @abc.abstractmethod
    def exec(self, command: str, *, timeout: float = 10.0, hidden: bool = False) -> ExecResult:
        """Run ``command`` with ``bash -c`` in ``/workspace``. Never raises for what the
        command does; every process it started is dead when this returns."""

    def quota_note(self) -> str:
        """A note when the workspace is at or over its quota, else ``""``. Bounded cost: a
        ``statvfs`` on the tmpfs, or a walk of at most ``files`` entries."""
        lim = self.limits
        if self._res.mounted:
            try:
                st = os.statvfs(self.root)
            except OSError:
                return ""
            if st.f_bavail * st.f_frsize >= 64 << 10 and st.f_favail > 1:
                return ""
            return (f"[workspace quota reached: at most {lim.disk_mb} MiB and {lim.files} files "
                    "and folders; writes fail with 'No space left on device'. Delete files to "
                    "go on.]")
        if _within_quota(self.work, lim.disk_mb << 20, lim.files):
            return ""
        return (f"[workspace over its quota of {lim.disk_mb} MiB and {lim.files} files and "
                "folders. Delete files to go on.]")

    def _with_quota(self, res: ExecResult) -> ExecResult:
        note = self.quota_note()
        if not note:
            return res
        return ExecResult(res.exit_code, f"{res.output.rstrip()}\n{note}", res.timed_out,
                          res.seconds, note)

    def reset_workspace(self) -> None:
        """Empty the workspace and the hidden folder."""
        for folder in (self.work, self.hidden):
            for child in folder.iterdir():
                if child.is_dir() and not child.is_symlink():
                    shutil.rmtree(child, ignore_errors=True)
                else:
                    child.unlink(missing_ok=True)

    def close(self) -> None:
        """Stop what runs and delete the folders. Safe to call twice."""
        self._closed = True
        self._finalizer()

    @property
    def closed(self) -> bool:
        return self._closed


class _Resources:
    """What a sandbox holds on the host; released by its finalizer (no reference to it)."""

    def __init__(self, root: Path):
        self.root = root
        self.mounted = False
        self.cgroup: cgroups.SandboxCgroup | None = None

    def release(self) -> None:
        if self.cgroup is not None:
            self.cgroup.remove()
        self.unmount()
        shutil.rmtree(self.root, ignore_errors=True)

    def unmount(self) -> None:
        if self.mounted:
            _umount(self.root)
            self.mounted = False


def _write_owner(root: Path) -> None:
    (root / OWNER_FILE).write_text(str(os.getpid()))


def _libc():
    try:
        return ctypes.CDLL(None, use_errno=True)
    except OSError:  # not Linux/glibc
        return None


#: Looked up once here, not in a forked child (see :data:`_PRCTL`).
_LIBC = _libc()
_MS_NOSUID, _MS_NODEV, _MNT_DETACH = 2, 4, 2


def _mount_tmpfs(path: Path, size: int, inodes: int) -> bool:
    """Mount a tmpfs named ``turngym`` of ``size`` bytes and ``inodes`` files at ``path``;
    False where mounting is not allowed."""
    if _LIBC is None:
        return False
    opts = f"size={size},nr_inodes={inodes},mode=0755".encode()
    if _LIBC.mount(b"turngym", str(path).encode(), b"tmpfs", _MS_NOSUID | _MS_NODEV,
                   ctypes.c_char_p(opts)) != 0:
        logger.debug("no workspace tmpfs at %s: %s", path, os.strerror(ctypes.get_errno()))
        return False
    return True


def _umount(path: Path) -> None:
    if _LIBC is not None:
        _LIBC.umount2(str(path).encode(), _MNT_DETACH)


def _within_quota(work: Path, max_bytes: int, max_files: int) -> bool:
    """Walk ``work`` without following links; stop as soon as it is over either limit."""
    used, count, stack = 0, 0, [str(work)]
    while stack:
        try:
            entries = list(os.scandir(stack.pop()))
        except OSError:
            continue
        for entry in entries:
            count += 1
            try:
                st = entry.stat(follow_symlinks=False)
            except OSError:
                continue
            used += st.st_blocks * 512
            if count > max_files or used > max_bytes:
                return False
            if entry.is_dir(follow_symlinks=False):
                stack.append(entry.path)
    return True


def _owner_of(folder: Path) -> int | None:
    """The pid that made ``folder`` (``.owner``; older folders: ``turngym-swe-<pid>-...``)."""
    try:
        return int((folder / OWNER_FILE).read_text())
    except (OSError, ValueError):
        pass
    try:
        return int(folder.name[len(TMP_PREFIX):].split("-", 1)[0])
    except ValueError:
        return None


def sweep_stale() -> int:
    """Delete sandbox folders (and cgroups) whose owner process is gone (after a hard
    kill); a folder still being made (no ``.owner`` yet) is left alone."""
    removed = 0
    if os.geteuid() == 0:
        cgroups.sweep_stale_cgroups()
    base = Path(tempfile.gettempdir())
    for folder in base.glob(f"{TMP_PREFIX}*"):
        pid = _owner_of(folder)
        if pid is None or pid == os.getpid() or cgroups.pid_alive(pid) or not folder.is_dir():
            continue
        _umount(folder)  # EINVAL when it is no mount point: harmless
        shutil.rmtree(folder, ignore_errors=True)
        removed += 1
    return removed


def _limit_child(limits: Limits, uid: int | None, nproc: bool, cgroup_fds: list[int]) -> None:
    """``preexec_fn``: the sandbox's cgroup (while still root), a new session, rlimits, and
    the unprivileged user ``uid`` (None: stay). ``nproc``: also set ``RLIMIT_NPROC`` here,
    which is only a per-sandbox limit when ``uid`` belongs to this sandbox alone (bwrap sets
    it inside its user namespace instead)."""
    cgroups.join(cgroup_fds)
    os.setsid()
    mb = 1 << 20
    resource.setrlimit(resource.RLIMIT_AS, (limits.memory_mb * mb, limits.memory_mb * mb))
    resource.setrlimit(resource.RLIMIT_CPU, (limits.cpu_s, limits.cpu_s + 1))
    resource.setrlimit(resource.RLIMIT_FSIZE, (limits.file_mb * mb, limits.file_mb * mb))
    resource.setrlimit(resource.RLIMIT_CORE, (0, 0))
    if uid is not None:
        os.setgroups([])
        os.setgid(SANDBOX_UID)
        os.setuid(uid)
    if nproc:  # counted per uid; root is exempt, so it only bites after dropping the user
        resource.setrlimit(resource.RLIMIT_NPROC, (limits.pids, limits.pids))
    # Die with the env's process even on SIGKILL (set after setuid, which clears it).
    _set_pdeathsig(signal.SIGKILL)


def _find_prctl():
    try:
        import ctypes

        return ctypes.CDLL(None, use_errno=True).prctl
    except (OSError, AttributeError):  # not Linux/glibc: the timeouts still apply
        return None


#: Looked up once here, not in the forked child: a child of a threaded process (the
#: harness steps envs in threads) must not import or dlopen, which can take locks that
#: another thread held at the fork.
_PRCTL = _find_prctl()


def _set_pdeathsig(sig: int) -> None:
    if _PRCTL is not None:
        _PRCTL(1, int(sig), 0, 0, 0)  # PR_SET_PDEATHSIG = 1


def _close_fd(fd: int) -> int:
    """Close ``fd`` unless it is -1 (already closed); returns -1."""
    if fd >= 0:
        try:
            os.close(fd)
        except OSError:
            pass
    return -1


class _ProcessSandbox(Sandbox):
    """Shared parts of ``bwrap`` and ``local-unsafe``: run a host process in the sandbox's
    cgroup, capture, time out, and kill everything it started."""

    _own_cgroup = True

    def _argv(self, command: str, hidden: bool, watch_fd: int) -> list[str]:
        raise NotImplementedError

    #: Whether :func:`_limit_child` sets ``RLIMIT_NPROC`` (see the module docstring).
    _nproc_outside = True

    def _cwd(self) -> str:
        return "/"

    def _uid(self) -> int | None:
        """The uid commands run as (None: this process's own, when it is not root)."""
        return SANDBOX_UID if os.getuid() == 0 else None

    def _env(self) -> dict[str, str]:
        return {"PATH": PATH, "HOME": "/tmp", "LANG": "C.UTF-8", "PYTHONDONTWRITEBYTECODE": "1",
                "PYTHONUNBUFFERED": "1", "TERM": "dumb"}

    def _popen_argv(self, argv: list[str]) -> tuple[list[str], int]:
        """``(argv to start, fd to pass or -1)``; bwrap hands its arguments over a fd."""
        return argv, -1

    def exec(self, command: str, *, timeout: float = 10.0, hidden: bool = False) -> ExecResult:
        start = time.monotonic()
        uid, nproc = self._uid(), self._nproc_outside
        # The read end of this pipe goes into the sandbox; only this process holds the write
        # end, so it sees EOF exactly when this process dies, even by SIGKILL (see bwrap).
        # Every descriptor is closed on every path (a command Popen refuses, such as one
        # holding a NUL byte or a lone surrogate, used to leak them).
        watch_r, watch_w = os.pipe()
        args_fd, cg_fds = -1, []
        try:
            try:
                argv, args_fd = self._popen_argv(self._argv(command, hidden, watch_r))
            except ValueError as exc:  # a NUL byte in the command
                return ExecResult(127, f"sandbox could not start: {exc}", False, 0.0)
            cg_fds = self.cgroup.join_fds() if self.cgroup is not None else []
            # Not in ``root``: a full workspace quota must not lose the command's output.
            with tempfile.TemporaryFile() as out:
                try:
                    proc = subprocess.Popen(
                        argv, stdin=subprocess.DEVNULL, stdout=out, stderr=subprocess.STDOUT,
                        cwd=self._cwd(), env=self._env(),
                        preexec_fn=lambda: _limit_child(self.limits, uid, nproc, cg_fds),
                        close_fds=True, pass_fds=tuple(f for f in (watch_r, args_fd) if f >= 0))
                except (OSError, ValueError) as exc:  # ValueError: NUL byte, bad encoding
                    return ExecResult(127, f"sandbox could not start: {exc}", False, 0.0)
                watch_r = _close_fd(watch_r)
                timed_out = False
                try:
                    code = proc.wait(timeout=timeout)
                except subprocess.TimeoutExpired:
                    timed_out = True
                    code = 124
                self._kill_all(proc)
                watch_w = _close_fd(watch_w)
                out.seek(0)
                text = out.read(self.limits.file_mb << 20).decode("utf-8", errors="replace")
        finally:
            for fd in (watch_r, watch_w, args_fd, *cg_fds):
                _close_fd(fd)
        return self._with_quota(ExecResult(code, text, timed_out, time.monotonic() - start))

    def _kill_all(self, proc: subprocess.Popen) -> None:
        """Kill the command's session, then everything left in the sandbox's cgroup
        (``setsid``, double forks and daemons leave the session but not the cgroup)."""
        try:
            os.killpg(proc.pid, signal.SIGKILL)
        except (ProcessLookupError, PermissionError):
            pass
        if self.cgroup is not None:
            self.cgroup.kill()
        try:
            proc.wait(timeout=5)
        except subprocess.TimeoutExpired:
            logger.warning("sandbox process %d did not die", proc.pid)

    def close(self) -> None:
        """Kill what runs, delete the folders and the cgroup. Safe to call twice."""
        if self.cgroup is not None:
            self.cgroup.kill()
        super().close()

