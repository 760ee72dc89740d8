"""Which sandbox backend to use, and building one: ``auto`` picks docker if an engine answers,
else bwrap, and never the non-isolated ``local-unsafe`` (see :mod:`turngym.envs.swe.sandbox`)."""

from __future__ import annotations

import logging
import shutil

from turngym.envs.swe.bwrap_sandbox import BwrapSandbox
from turngym.envs.swe.docker_sandbox import DockerSandbox
from turngym.envs.swe.local_sandbox import LocalSandbox
from turngym.envs.swe.sandbox import ALIASES, BACKENDS, UNSAFE, Limits, Sandbox
from turngym.errors import ConfigError

logger = logging.getLogger(__name__)


def docker_available(timeout: float = 3.0) -> bool:
    """Whether a Docker engine answers (through the docker SDK)."""
    try:
        import docker
    except ImportError:
        return False
    try:
        client = docker.from_env(timeout=timeout)
        client.ping()
        client.close()
        return True
    except Exception:  # any failure means "no engine"
        return False


#: Raised by ``auto`` when no isolating backend is available.
NO_ISOLATION = ("neither a Docker engine nor bubblewrap is available, and the SWE env never "
                "falls back to the non-isolated 'local-unsafe' backend on its own: install "
                "bubblewrap (apt-get install bubblewrap) or docker.io, or pass "
                "backend='local-unsafe' with unsafe_local=True (rlimits and timeouts only, "
                "NOT isolated)")


def default_backend() -> str:
    """``docker`` if an engine answers, else ``bwrap`` if installed; else ConfigError.

    ``local-unsafe`` is never picked here: it does not isolate, so it runs only when named
    and explicitly allowed.
    """
    if docker_available():
        return "docker"
    if shutil.which("bwrap"):
        return "bwrap"
    raise ConfigError(NO_ISOLATION)


def resolve_backend(backend: str, allow_unsafe: bool = False, key: str = "allow_unsafe") -> str:
    """The canonical name of ``backend`` (``local`` -> ``local-unsafe``, with a warning);
    ConfigError for an unknown name, or for ``local-unsafe`` unless ``allow_unsafe`` (the
    error names ``key``, the argument that allows it). ``auto`` is returned as is."""
    if backend in ALIASES:
        logger.warning("SWE sandbox backend %r is now called %r", backend, ALIASES[backend])
        backend = ALIASES[backend]
    if backend not in ("auto", *BACKENDS):
        raise ConfigError(f"backend {backend!r} is unknown; use one of auto, "
                          f"{', '.join(BACKENDS)}")
    if backend == UNSAFE and not allow_unsafe:
        raise ConfigError(f"backend {UNSAFE!r} is NOT isolated: the model's code can read and "
                          "write the host's files, reach its network and leave processes "
                          f"behind (docs/swe.md, threat model). Pass {key}=True to use it "
                          "anyway, or use backend 'bwrap' or 'docker'")
    return backend


def make_sandbox(backend: str, limits: Limits | None = None, *, allow_unsafe: bool = False,
                 **kwargs) -> Sandbox:
    """Build a sandbox of ``backend`` (``auto`` picks :func:`default_backend`).
    ``local-unsafe`` (alias ``local``) needs ``allow_unsafe=True``."""
    backend = resolve_backend(backend, allow_unsafe)
    if backend == "auto":
        backend = default_backend()
    if backend == "bwrap":
        return BwrapSandbox(limits)
    if backend == UNSAFE:
        return LocalSandbox(limits)
    return DockerSandbox(limits, **kwargs)
