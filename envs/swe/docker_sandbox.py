"""The ``docker`` sandbox backend and the local image build (nothing can be pulled).

The image is a Debian root file system made by ``debootstrap --variant=minbase
--include=python3`` from the machine's apt mirror and imported with ``docker import``
(:func:`build_image`, run by ``turngym swe build-image``; it is skipped when the tag exists).

A :class:`DockerSandbox` is one long-lived container started from that image with no
network, a read-only root, a private ``/tmp`` (tmpfs capped at ``Limits.tmp_mb``), the
workspace bind-mounted read-write (from the sandbox's own size- and inode-capped tmpfs when
the host is root, see :mod:`turngym.envs.swe.sandbox`), every capability dropped,
``no-new-privileges``, and limits on memory, CPU and pids for the whole container. Commands
run as uid 65534. The container's own processes (``docker-init`` and ``sleep LIFETIME``)
run as a capability-less root that the sandbox user cannot signal, so the container also
ends by itself; it is removed on exit (``auto_remove``), and containers whose owner process
is gone are removed by :func:`sweep_containers` whenever a new sandbox starts.

Nothing a command starts outlives it. Every ``docker exec`` shares the container's pid
namespace, and the wrapper ``sh`` that kills the rest after the command runs as the sandbox
user, so the command can kill it first. So after every command, the host itself kills
every process of the sandbox user in the container: it reads the container's cgroup
(``cgroup.procs``) and sends SIGKILL through a pidfd to each member whose uid is 65534,
until none is left (bounded; else the container is restarted on the same folders). A timer
does the same when a command overruns its timeout by :data:`GRACE_S` (a survivor that holds
the output pipe would otherwise keep the exec open). Where the host cannot see the
container's processes (a remote engine), it falls back to ``docker top`` and a restart.
"""

from __future__ import annotations

import logging
import os
import re
import shutil
import signal
import socket
import subprocess
import tempfile
import threading
import time
import weakref
from pathlib import Path

from turngym.envs.swe.cgroups import _mounts, pid_alive
from turngym.envs.swe.sandbox import (
    RUNNER_INSIDE,
    SANDBOX_UID,
    ExecResult,
    Limits,
    Sandbox,
)
from turngym.errors import ConfigError, MissingDependencyError

logger = logging.getLogger(__name__)

DEFAULT_IMAGE = "turngym-swe:bookworm"
LABEL = "turngym.swe"
#: Seconds a container lives at most (its main process is ``sleep`` this long).
LIFETIME_S = 3 * 3600
#: Seconds past a command's timeout after which the host kills its processes itself.
GRACE_S = 5.0
_ENV = {"PATH": "/usr/local/bin:/usr/bin:/bin:/usr/sbin:/sbin", "HOME": "/tmp",
        "LANG": "C.UTF-8", "PYTHONDONTWRITEBYTECODE": "1", "PYTHONUNBUFFERED": "1"}


def _client(timeout: int = 60):
    try:
        import docker
    except ImportError as exc:
        raise MissingDependencyError(
            "the docker backend needs the docker SDK: pip install 'turngym[swe]'") from exc
    try:
        client = docker.from_env(timeout=timeout)
        client.ping()
    except Exception as exc:
        raise ConfigError(f"backend 'docker': no Docker engine answers ({exc}); start dockerd "
                          "or use backend='bwrap'") from exc
    return client


def _owner() -> str:
    return f"{socket.gethostname()}:{os.getpid()}"


def sweep_containers(client) -> int:
    """Remove turngym containers whose owner process (on this host) is gone. Best effort:
    it uses the plain listing (no per-container inspect, which races with containers that
    other runs are removing at the same moment) and never raises."""
    removed = 0
    host = socket.gethostname()
    try:
        rows = client.api.containers(all=True, filters={"label": LABEL})
    except Exception as exc:
        logger.debug("listing containers failed: %s", exc)
        return 0
    for row in rows:
        owner = (row.get("Labels") or {}).get(f"{LABEL}.owner", "")
        name, _, pid = owner.rpartition(":")
        if name == host and pid.isdigit() and int(pid) != os.getpid() and not pid_alive(int(pid)):
            try:
                client.api.remove_container(row["Id"], force=True)
                removed += 1
            except Exception as exc:  # already gone (auto_remove) is fine
                logger.debug("could not remove %s: %s", row["Id"][:12], exc)
    return removed


class DockerSandbox(Sandbox):
    """A container per sandbox; see the module docstring for its isolation."""

    name = "docker"

    def __init__(self, limits: Limits | None = None, image: str = DEFAULT_IMAGE,
                 workspace: str = "/workspace", environment: dict[str, str] | None = None):
        self.client = _client()
        sweep_containers(self.client)
        try:
            self.client.images.get(image)
        except Exception as exc:
            raise ConfigError(f"docker image {image!r} is missing; build it with "
                              "`turngym swe build-image`") from exc
        super().__init__(limits)
        self.image, self.workspace = image, workspace
        self.environment = dict(_ENV if environment is None else environment)
        self._procs_file: Path | None = None  # the container's cgroup.procs on this host
        # The finalizer must not hold ``self``; it holds this one-slot list instead.
        self._holder = [self._start()]
        self._finalizer.detach()
        self._finalizer = weakref.finalize(self, _remove, self._holder, self._res)
        self._check_workspace_mount()

    @property
    def container(self):
        """The current container (a restart replaces it)."""
        return self._holder[0]

    def _start(self):
        """Start the container (workspace and hidden folder are host folders, so a restart
        keeps the files)."""
        lim = self.limits
        container = self.client.containers.run(
            # init=True: docker-init is pid 1 and reaps orphans (a plain ``sleep`` would
            # leave zombies that fill the pids limit). It and ``sleep`` run as root without
            # capabilities, so the sandbox user (65534, every exec) cannot kill them.
            self.image, ["sleep", str(LIFETIME_S)], detach=True, auto_remove=True, init=True,
            network_mode="none", read_only=True, user="0:0",
            tmpfs={"/tmp": f"rw,size={lim.tmp_mb}m,nr_inodes=16384,mode=1777"},
            working_dir=self.workspace,
            volumes={str(self.work): {"bind": self.workspace, "mode": "rw"},
                     str(self.hidden): {"bind": "/hidden", "mode": "ro"},
                     str(self.runner): {"bind": RUNNER_INSIDE, "mode": "ro"}},
            mem_limit=f"{lim.memory_mb}m", memswap_limit=f"{lim.memory_mb}m",
            pids_limit=lim.pids, nano_cpus=int(lim.cpus * 1e9), cap_drop=["ALL"],
            security_opt=["no-new-privileges"], environment=self.environment,
            labels={LABEL: "1", f"{LABEL}.owner": _owner()})
        self._procs_file = _procs_file(container)
        return container

    def _check_workspace_mount(self) -> None:
        """The container must see the workspace tmpfs (it does not when the engine runs in
        another mount namespace): if not, drop the tmpfs and use plain host folders, with
        the quota checked by walking the workspace."""
        if not self.quota_mounted or self._procs_file is None:
            return
        try:
            pid = int(self._procs_file.read_text().split()[0])
            inside = os.stat(f"/proc/{pid}/root{self.workspace}").st_dev
        except (OSError, ValueError, IndexError):
            return
        if inside == os.stat(self.work).st_dev:
            return
        logger.warning("the Docker engine does not see the workspace tmpfs at %s; the quota is "
                       "checked by walking the workspace instead", self.root)
        self.container.remove(force=True)
        self._res.unmount()
        self._make_folders()
        self._holder[0] = self._start()

    def _restart(self) -> None:
        """Kill the container with everything in it (e.g. a fork bomb that a process-group
        kill cannot catch) and start a fresh one on the same folders."""
        try:
            self.container.remove(force=True)
        except Exception as exc:  # already gone
            logger.debug("remove before restart: %s", exc)
        self._holder[0] = self._start()

    def exec(self, command: str, *, timeout: float = 10.0, hidden: bool = False) -> ExecResult:
        start = time.monotonic()
        limit = self.limits.file_mb << 20
        # The outer sh outlives the command, then kills every other process of the sandbox
        # user (``kill`` is a builtin, so it works even at the pids limit): the fast path.
        # The command can kill this sh first, so the host checks and kills afterwards too.
        wrapper = 'timeout -s KILL "$1" bash -c "$2"; rc=$?; kill -9 -1 2>/dev/null; exit $rc'
        argv = ["sh", "-c", wrapper, "sh", str(max(1, int(round(timeout)))), command]
        api = self.client.api
        # The timer's kill must never overlap the next command: it runs only while this
        # command is in flight, and exec waits for it before returning.
        done = threading.Event()

        def overdue() -> None:
            if not done.is_set():
                self._kill_leftovers()

        timer = threading.Timer(timeout + GRACE_S, overdue)
        timer.daemon = True
        try:
            if not self._running():
                self._restart()  # it died (e.g. out of memory); the files are on the host
            exec_id = api.exec_create(self.container.id, argv, user=f"{SANDBOX_UID}",
                                      workdir=self.workspace,
                                      environment=self.environment)["Id"]
            chunks, size = [], 0
            timer.start()
            for chunk in api.exec_start(exec_id, stream=True):
                if size < limit:
                    chunks.append(chunk)
                size += len(chunk)
            code = api.exec_inspect(exec_id)["ExitCode"]
        except Exception as exc:  # the engine went away or the container died
            return ExecResult(125, f"sandbox error: {exc}", False, time.monotonic() - start)
        finally:
            done.set()
            timer.cancel()
            if timer.is_alive():  # it fired and is killing: let it finish first
                timer.join()
        code = -9 if code == 137 else int(code if code is not None else -1)
        timed_out = code == -9 and time.monotonic() - start >= timeout - 0.5
        text = b"".join(chunks).decode("utf-8", errors="replace")
        if timed_out:
            code = 124
        self._kill_leftovers()
        return self._with_quota(ExecResult(code, text, timed_out, time.monotonic() - start))

    def reset_workspace(self) -> None:
        """Empty the workspace and the hidden folder, and the container's ``/tmp`` (the
        sandbox user's ``HOME``) and ``/dev/shm``: they outlive commands, and one episode's
        files there (e.g. a ``usercustomize.py`` in the user site) must not reach the next
        episode's commands. Nothing the model started is alive by now, so the sandbox user
        deletes everything it made."""
        super().reset_workspace()
        self.exec("find /tmp /dev/shm -mindepth 1 -delete 2>/dev/null; true", timeout=10)

    def _kill_leftovers(self) -> None:
        """Kill every process of the sandbox user in the container, from the host; restart
        the container when that is not possible or some remain."""
        procs = self._procs_file
        if procs is None:  # the engine's processes are not visible here
            if self._busy():
                self._restart()
            return
        name = procs.parent.name
        for _ in range(100):
            try:
                pids = [int(p) for p in procs.read_text().split()]
            except (OSError, ValueError):
                return  # the container is gone: nothing left in it
            left = [p for p in pids if _uid_of(p) == SANDBOX_UID]
            if not left:
                return
            for pid in left:
                _kill_if(pid, name, SANDBOX_UID)
            time.sleep(0.002)  # killed processes leave the cgroup when they are reaped
        logger.warning("processes of the sandbox user survive in %s; restarting it", name[:12])
        self._restart()

    def _busy(self) -> bool:
        """Whether processes of the sandbox user are still alive (docker-init and sleep
        belong to root)."""
        try:
            top = self.container.top()
        except Exception:  # not running: nothing left inside
            return False
        col = top["Titles"].index("UID") if "UID" in top["Titles"] else 0
        return any(row[col] in (str(SANDBOX_UID), "nobody") for row in top["Processes"])

    def _running(self) -> bool:
        try:
            self.container.reload()
            return self.container.status == "running"
        except Exception:  # removed
            return False


def _procs_file(container) -> Path | None:
    """The host path of the container's ``cgroup.procs`` (v2, else the v1 ``pids``
    hierarchy), or None when its processes are not visible from here."""
    try:
        container.reload()
        pid = int(container.attrs["State"]["Pid"])
        lines = Path(f"/proc/{pid}/cgroup").read_text().splitlines()
    except (OSError, KeyError, ValueError, TypeError):  # docker's errors are OSErrors too
        return None  # a remote engine, or the container already ended
    v2, v1 = _mounts()
    for line in lines:
        _, controllers, path = line.split(":", 2)
        mount = v2 if controllers == "" else v1.get("pids") if "pids" in controllers.split(",") \
            else None
        if mount is None or path == "/":
            continue
        procs = Path(mount + path) / "cgroup.procs"
        try:
            if pid in [int(p) for p in procs.read_text().split()]:
                return procs
        except (OSError, ValueError):
            continue
    return None


def _uid_of(pid: int) -> int | None:
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("Uid:"):
                return int(line.split()[1])
    except (OSError, ValueError, IndexError):
        pass
    return None


def _kill_if(pid: int, cgroup_name: str, uid: int) -> None:
    """SIGKILL ``pid`` if it still is a process of ``uid`` in the cgroup ``cgroup_name``;
    the pidfd pins it, so a pid reused after the check is never signalled."""
    try:
        fd = os.pidfd_open(pid)
    except OSError:
        return
    try:
        if _uid_of(pid) == uid and cgroup_name in Path(f"/proc/{pid}/cgroup").read_text():
            signal.pidfd_send_signal(fd, signal.SIGKILL)
    except OSError:
        pass
    finally:
        os.close(fd)


def _remove(holder: list, res) -> None:
    try:
        holder[0].remove(force=True)
    except Exception as exc:  # auto_remove may have won
        logger.debug("container remove: %s", exc)
    res.release()


def apt_mirror() -> tuple[str, str]:
    """``(mirror URL, suite)`` of the main Debian archive in the machine's apt sources."""
    files = [Path("/etc/apt/sources.list"), *sorted(Path("/etc/apt/sources.list.d").glob("*"))]
    for file in files:
        try:
            text = file.read_text()
        except OSError:
            continue
        for stanza in re.split(r"\n\s*\n", text):
            uris = re.findall(r"^URIs:\s*(\S+)", stanza, re.M)
            suites = re.findall(r"^Suites:\s*(.+)$", stanza, re.M)
            for line in re.findall(r"^deb\s+(?:\[[^\]]*\]\s+)?(\S+)\s+(\S+)", stanza, re.M):
                uris, suites = [line[0]], [line[1]]
            if uris and suites:
                suite = suites[0].split()[0]
                if "debian" in uris[0] and "security" not in uris[0] and "-" not in suite:
                    return uris[0], suite
    raise ConfigError("no Debian mirror found in /etc/apt/sources.list*; pass --mirror")


def image_exists(image: str = DEFAULT_IMAGE) -> bool:
    """Whether ``image`` is already in the engine."""
    try:
        _client().images.get(image)
        return True
    except ConfigError:
        raise
    except Exception:
        return False


def build_image(image: str = DEFAULT_IMAGE, *, mirror: str | None = None,
                suite: str | None = None, force: bool = False) -> str:
    """Build ``image`` from Debian packages with debootstrap; skip when the tag exists."""
    client = _client(timeout=600)
    if not force:
        try:
            client.images.get(image)
            logger.info("image %s exists; not rebuilding", image)
            return image
        except Exception:
            pass
    if not shutil.which("debootstrap"):
        raise ConfigError("building the image needs debootstrap: apt-get install debootstrap")
    if mirror is None or suite is None:
        found_mirror, found_suite = apt_mirror()
        mirror, suite = mirror or found_mirror, suite or found_suite
    repo, _, tag = image.partition(":")
    with tempfile.TemporaryDirectory(prefix="turngym-rootfs-") as tmp:
        rootfs, tar = Path(tmp) / "rootfs", Path(tmp) / "rootfs.tar"
        cmd = ["debootstrap", "--variant=minbase", "--include=python3", suite, str(rootfs),
               mirror]
        logger.info("running %s", " ".join(cmd))
        proc = subprocess.run(cmd, capture_output=True, text=True)
        if proc.returncode != 0:
            raise ConfigError(f"debootstrap failed ({proc.returncode}): {proc.stderr[-2000:]}")
        for sub in ("workspace", "hidden"):
            (rootfs / sub).mkdir(exist_ok=True)
        subprocess.run(["tar", "-C", str(rootfs), "-cf", str(tar), "."], check=True)
        client.api.import_image_from_file(str(tar), repository=repo, tag=tag or "latest")
    client.images.get(image)
    return image
