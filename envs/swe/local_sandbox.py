"""The ``local-unsafe`` sandbox backend: NOT isolated, a plain subprocess with rlimits (see
:mod:`turngym.envs.swe.sandbox` for what the other backends promise)."""

from __future__ import annotations

import logging
import os
import signal
import subprocess
import threading
import weakref

from turngym.envs.swe.sandbox import (
    LOCAL_UID_BASE,
    LOCAL_UIDS,
    RUNNER_INSIDE,
    SANDBOX_UID,
    SHELL,
    UNSAFE,
    Limits,
    _ProcessSandbox,
)

logger = logging.getLogger(__name__)


class LocalSandbox(_ProcessSandbox):
    """NOT ISOLATED (``local-unsafe``): a plain subprocess in the workspace folder with
    rlimits and a timeout. It can read the host's files and reach its network, and the
    model's code runs in the host's ``/tmp`` and file system. It promises nothing of the
    threat model (``docs/swe.md``): :func:`~turngym.envs.swe.backends.make_sandbox` refuses
    it unless called with ``allow_unsafe=True`` (the SWE env: ``unsafe_local=True``).

    What it still does, as root: each sandbox runs as a uid of its own, in a per-sandbox
    cgroup when the cgroup file system is writable (memory and pids for the whole tree, and
    nothing it starts, ``setsid`` included, outlives the command), else every process of
    its uid is killed after each command; the workspace quota as in every backend. Not as
    root: only its process group is killed, and there is no process limit."""

    name = UNSAFE
    isolated = False

    _warned = False

    def __init__(self, limits: Limits | None = None):
        super().__init__(limits)
        self._own_uid: int | None = None
        if os.getuid() == 0:  # a uid of its own, so that RLIMIT_NPROC is per sandbox
            slot = _take_local_slot()
            self._own_uid = LOCAL_UID_BASE + os.getpid() * LOCAL_UIDS + slot
            self._slot_finalizer = weakref.finalize(self, _release_local_slot, slot)
        if not LocalSandbox._warned:
            LocalSandbox._warned = True
            logger.warning("SWE sandbox backend 'local-unsafe' is NOT isolated (rlimits and "
                           "timeouts only)")
        # The runner and the agent see the same paths as in the other backends.
        self._paths = {"/workspace": str(self.work), "/hidden": str(self.hidden),
                       RUNNER_INSIDE: str(self.runner)}

    def _cwd(self) -> str:
        return str(self.work)

    def _uid(self) -> int | None:
        return self._own_uid

    @property
    def _nproc_outside(self) -> bool:  # type: ignore[override]
        # Without a uid of its own (not root), RLIMIT_NPROC would count every process and
        # thread of the user running the env, not the sandbox's: no process limit then.
        return self._own_uid is not None

    def _kill_all(self, proc: subprocess.Popen) -> None:
        super()._kill_all(proc)
        if self.cgroup is None and self._own_uid is not None:
            _kill_uid(self._own_uid)

    def close(self) -> None:
        """Stop what runs, delete the folders and free this sandbox's uid."""
        if self.cgroup is None and getattr(self, "_own_uid", None) is not None:
            _kill_uid(self._own_uid)
        super().close()
        finalizer = getattr(self, "_slot_finalizer", None)
        if finalizer is not None:
            finalizer()

    def _argv(self, command: str, hidden: bool, watch_fd: int) -> list[str]:
        for inside, outside in self._paths.items():
            command = command.replace(inside, outside)
        return [SHELL, "-c", command]


def _kill_uid(uid: int) -> None:
    """SIGKILL every process of ``uid`` (a uid of one local sandbox) with ``kill(-1)`` from
    a child that has become ``uid``: one atomic pass, which a forking process cannot race.
    The child only makes system calls (it is forked from a threaded process)."""
    pid = os.fork()
    if pid == 0:
        try:
            os.setgid(SANDBOX_UID)
            os.setuid(uid)
            os.kill(-1, signal.SIGKILL)
        finally:
            os._exit(0)
    os.waitpid(pid, 0)


_local_slots_lock = threading.Lock()
_local_slots_used: dict[int, int] = {}  # slot -> live sandboxes on it


def _take_local_slot() -> int:
    """The least used uid slot for a ``local`` sandbox of this process: a free one unless
    more than :data:`LOCAL_UIDS` are live at once (then some share a uid and its budget)."""
    with _local_slots_lock:
        slot = min(range(LOCAL_UIDS), key=lambda s: _local_slots_used.get(s, 0))
        shared = _local_slots_used.get(slot, 0)
        _local_slots_used[slot] = shared + 1
    if shared:
        logger.warning("more than %d live 'local' sandboxes: some share a uid and their "
                       "process limit", LOCAL_UIDS)
    return slot


def _release_local_slot(slot: int) -> None:
    with _local_slots_lock:
        left = _local_slots_used.get(slot, 0) - 1
        if left > 0:
            _local_slots_used[slot] = left
        else:
            _local_slots_used.pop(slot, None)

