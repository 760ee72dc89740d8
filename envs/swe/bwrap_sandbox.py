"""The ``bwrap`` sandbox backend: each command in a fresh bubblewrap (see
:mod:`turngym.envs.swe.sandbox` for what every backend promises)."""

from __future__ import annotations

import logging
import os
import shutil
import subprocess
from pathlib import Path

from turngym.envs.swe.sandbox import RUNNER_INSIDE, SHELL, Limits, _ProcessSandbox
from turngym.errors import ConfigError

logger = logging.getLogger(__name__)


class BwrapSandbox(_ProcessSandbox):
    """bubblewrap: new user, pid, net, ipc, uts, cgroup and mount namespaces; no nested user
    namespaces (``--disable-userns``); read-only system folders (``/usr``, ``/etc``
    essentials) and a read-only root, ``/dev`` and ``/opt``; no host home; a private,
    size-capped ``/tmp`` and ``/dev/shm``; the workspace read-write. Each command is a fresh
    bwrap whose pid namespace dies with its first process, inside the sandbox's cgroup when
    there is one. ``--die-with-parent`` and a watchdog end it when the env's process dies.
    Its arguments travel over a file descriptor (``--args``), so ``/proc/1/cmdline`` inside
    names no host path."""

    name = "bwrap"
    # Set on the host side, RLIMIT_NPROC would also cap the uid's processes summed over
    # every sandbox (the kernel checks each user namespace up the chain against its
    # creator's limit), so concurrent envs would fail each other's forks. Inside, the count
    # is this sandbox's own user namespace.
    _nproc_outside = False

    def __init__(self, limits: Limits | None = None, bwrap: str | None = None):
        self.bwrap = bwrap or shutil.which("bwrap")
        if not self.bwrap:
            raise ConfigError("backend 'bwrap' needs bubblewrap: apt-get install bubblewrap")
        self.features = _bwrap_features(self.bwrap)
        super().__init__(limits)

    def _tmpfs(self, dest: str, size_mb: int) -> list[str]:
        size = ["--size", str(size_mb << 20)] if "--size" in self.features else []
        return [*size, "--tmpfs", dest]

    def _argv(self, command: str, hidden: bool, watch_fd: int) -> list[str]:
        userns = (["--unshare-user", "--disable-userns"]
                  if "--disable-userns" in self.features else [])
        argv = [self.bwrap, "--unshare-all", *userns, "--die-with-parent", "--new-session",
                "--ro-bind", "/usr", "/usr", "--proc", "/proc", "--dev", "/dev",
                *self._tmpfs("/dev/shm", self.limits.tmp_mb), "--remount-ro", "/dev",
                *self._tmpfs("/tmp", self.limits.tmp_mb), *self._tmpfs("/opt", 1),
                "--dir", "/opt/turngym/bin",
                "--symlink", "/usr/bin/python3", "/opt/turngym/bin/python",
                "--ro-bind", str(self.runner), RUNNER_INSIDE, "--remount-ro", "/opt"]
        for link in ("bin", "lib", "lib64", "sbin"):
            target = Path("/") / link
            if target.is_symlink():
                argv += ["--symlink", os.readlink(target), f"/{link}"]
            elif target.exists():
                argv += ["--ro-bind", str(target), f"/{link}"]
        for name in ("passwd", "group", "hosts", "nsswitch.conf", "ld.so.cache", "localtime",
                     "alternatives"):
            if (Path("/etc") / name).exists():
                argv += ["--ro-bind", f"/etc/{name}", f"/etc/{name}"]
        argv += ["--bind", str(self.work), "/workspace"]
        if hidden:
            argv += ["--ro-bind", str(self.hidden), "/hidden"]
        argv += ["--remount-ro", "/"]
        # A watchdog inside the sandbox kills everything when the env's process dies: bwrap's
        # own --die-with-parent does not reach its pid-1 helper after a SIGKILL (0.8.0).
        # Killing the watchdog frees nothing: the pid namespace dies with the outer shell,
        # and the cgroup is killed when the command ends.
        # The process limit is set first, inside this sandbox's user namespace (see above);
        # dash calls RLIMIT_NPROC -p, bash -u.
        flag = "-u" if SHELL.endswith("bash") else "-p"
        script = (f'ulimit {flag} {int(self.limits.pids)} 2>/dev/null; '
                  f'(cat <&{watch_fd} >/dev/null 2>&1; kill -9 -1 2>/dev/null) & '
                  f'exec {watch_fd}<&-; {SHELL} -c "$1"')
        argv += ["--chdir", "/workspace", SHELL, "-c", script, "bash", command]
        return argv

    def _popen_argv(self, argv: list[str]) -> tuple[list[str], int]:
        if "--args" not in self.features:
            return argv, -1
        # The options go over the fd; the command (no host path in it) stays on argv, where
        # bwrap expects it.
        split = argv.index("--chdir") + 2
        blob = b"".join(os.fsencode(a) + b"\0" for a in argv[1:split])
        fd = os.memfd_create("bwrap-args")
        try:
            os.write(fd, blob) if len(blob) < (1 << 16) else _write_all(fd, blob)
            os.lseek(fd, 0, os.SEEK_SET)
        except OSError:
            os.close(fd)
            raise
        return [argv[0], "--args", str(fd), *argv[split:]], fd


def _write_all(fd: int, data: bytes) -> None:
    view = memoryview(data)
    while view:
        view = view[os.write(fd, view):]


_bwrap_features_cache: dict[str, frozenset[str]] = {}


def _bwrap_features(bwrap: str) -> frozenset[str]:
    """The options of ``bwrap --help`` this code uses (``--size``, ``--disable-userns``,
    ``--args``); older versions lack some, and then those protections are missing."""
    if bwrap not in _bwrap_features_cache:
        try:
            text = subprocess.run([bwrap, "--help"], capture_output=True, text=True, check=False,
                                  timeout=10).stdout
        except (OSError, subprocess.SubprocessError):
            text = ""
        found = frozenset(o for o in ("--size", "--disable-userns", "--args") if o in text)
        for missing in sorted({"--size", "--disable-userns", "--args"} - found):
            logger.warning("bubblewrap at %s has no %s: that protection is missing", bwrap,
                           missing)
        _bwrap_features_cache[bwrap] = found
    return _bwrap_features_cache[bwrap]

