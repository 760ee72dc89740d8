"""The ``docker`` sandbox backend and the local image build (nothing can be pulled).

The image is a Debian root file system made by ``debootstrap --variant=minbase
--include=python3`` from the machine's apt mirror and imported with ``docker import``
(:func:`build_image`, run by ``turngym swe build-image``; it is skipped when the tag exists).

A :class:`DockerSandbox` is one long-lived container started from that image with no
network, a read-only root, a private ``/tmp`` (tmpfs), the workspace bind-mounted
read-write, every capability dropped, ``no-new-privileges``, and limits on memory, CPU and
pids. Commands run as uid 65534. The container's own processes (``docker-init`` and
``sleep LIFETIME``) run as a capability-less root that the sandbox user cannot signal, so
the container also ends by itself; it is removed on exit (``auto_remove``), and containers
whose owner process is gone are removed by :func:`sweep_containers` whenever a new sandbox
starts. Nothing a command starts outlives it: after each command every process of the
sandbox user is killed, and the container is restarted (same folders) if any remain.
"""

from __future__ import annotations

import logging
import os
import re
import shutil
import socket
import subprocess
import tempfile
import time
import uuid
import weakref
from pathlib import Path

from envs.errors import ConfigError, MissingDependencyError
from envs.swe.sandbox import (
    RUNNER_INSIDE,
    SANDBOX_UID,
    ExecResult,
    Limits,
    Sandbox,
    _pid_alive,
)

logger = logging.getLogger(__name__)

DEFAULT_IMAGE = "turngym-swe:bookworm"
LABEL = "turngym.swe"
#: Seconds a container lives at most (its main process is ``sleep`` this long).
LIFETIME_S = 3 * 3600
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
        if name == host and pid.isdigit() and int(pid) != os.getpid() and not _pid_alive(int(pid)):
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
        # The finalizer must not hold ``self``; it holds this one-slot list instead.
        self._holder = [self._start()]
        self._finalizer.detach()
        self._finalizer = weakref.finalize(self, _remove, self._holder, str(self.root))

    @property
    def container(self):
        """The current container (a restart replaces it)."""
        return self._holder[0]

    def _start(self):
        """Start the container (workspace and hidden folder are host folders, so a restart
        keeps the files)."""
        lim = self.limits
        return self.client.containers.run(
            # init=True: docker-init is pid 1 and reaps orphans (a plain ``sleep`` would
            # leave zombies that fill the pids limit). It and ``sleep`` run as root without
            # capabilities, so the sandbox user (65534, every exec) cannot kill them.
            self.image, ["sleep", str(LIFETIME_S)], detach=True, auto_remove=True, init=True,
            network_mode="none", read_only=True, user="0:0",
            tmpfs={"/tmp": "rw,size=64m,mode=1777"}, working_dir=self.workspace,
            volumes={str(self.work): {"bind": self.workspace, "mode": "rw"},
                     str(self.hidden): {"bind": "/hidden", "mode": "ro"},
                     str(self.runner): {"bind": RUNNER_INSIDE, "mode": "ro"}},
            mem_limit=f"{lim.memory_mb}m", memswap_limit=f"{lim.memory_mb}m",
            pids_limit=lim.pids, nano_cpus=int(lim.cpus * 1e9), cap_drop=["ALL"],
            security_opt=["no-new-privileges"], environment=self.environment,
            labels={LABEL: "1", f"{LABEL}.owner": _owner()})

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
        # user (``kill`` is a builtin, so it works even at the pids limit); as in bwrap,
        # nothing a command started survives it. If there was something to kill, it prints
        # a marker, and the container is checked (and restarted if processes remain).
        marker = f"__turngym_leftover_{uuid.uuid4().hex}__"
        wrapper = ('timeout -s KILL "$1" bash -c "$2"; rc=$?; '
                   'if kill -9 -1 2>/dev/null; then printf "\\n%s" "$3"; '
                   "for i in 1 2 3; do kill -9 -1 2>/dev/null; done; fi; exit $rc")
        argv = ["sh", "-c", wrapper, "sh", str(max(1, int(round(timeout)))), command, marker]
        api = self.client.api
        try:
            if not self._running():
                self._restart()  # it died (e.g. out of memory); the files are on the host
            exec_id = api.exec_create(self.container.id, argv, user=f"{SANDBOX_UID}",
                                      workdir=self.workspace,
                                      environment=self.environment)["Id"]
            chunks, size = [], 0
            for chunk in api.exec_start(exec_id, stream=True):
                if size < limit:
                    chunks.append(chunk)
                size += len(chunk)
            code = api.exec_inspect(exec_id)["ExitCode"]
        except Exception as exc:  # the engine went away or the container died
            return ExecResult(125, f"sandbox error: {exc}", False, time.monotonic() - start)
        code = -9 if code == 137 else int(code if code is not None else -1)
        timed_out = code == -9 and time.monotonic() - start >= timeout - 0.5
        text = b"".join(chunks).decode("utf-8", errors="replace")
        leftover = marker in text
        text = text.replace("\n" + marker, "").replace(marker, "")
        if timed_out:
            code = 124
        if timed_out or (leftover and self._busy()):
            self._restart()
        return ExecResult(code, text, timed_out, time.monotonic() - start)

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


def _remove(holder: list, root: str) -> None:
    try:
        holder[0].remove(force=True)
    except Exception as exc:  # auto_remove may have won
        logger.debug("container remove: %s", exc)
    shutil.rmtree(root, ignore_errors=True)


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
