"""One registry and one ``make``, mirroring Gymnasium's ``envs/registration.py``.

Ids are versioned (``turngym/Name-vN``) and registered with an entry-point string
(``"turngym.envs.sokoban:SokobanEnv"``) that is imported only on :func:`make`. Every id is also
registered with :func:`gymnasium.register`, so ``gymnasium.make(id)`` works. Third-party
packages add envs through the ``turngym.envs`` entry-point group: each entry point names a
callable that calls :func:`register` (or is itself a zero-argument function doing so).
"""

from __future__ import annotations

import difflib
import importlib
import importlib.util
import inspect
import logging
from dataclasses import dataclass, field
from importlib.metadata import entry_points
from typing import Any, Callable

import gymnasium as gym

from turngym.errors import DuplicateEnvError, MissingDependencyError, TurngymError, UnknownEnvError

logger = logging.getLogger(__name__)

ENTRY_POINT_GROUP = "turngym.envs"


@dataclass(frozen=True)
class EnvSpec:
    """How to build one registered env."""

    id: str
    """Versioned id, e.g. ``turngym/Sokoban-v0``."""
    entry_point: str | Callable[..., gym.Env]
    """``"module:Class"`` string (imported lazily) or a callable."""
    max_turns: int = 50
    """Turn budget applied by :class:`turngym.envs.core.TurnLimit`."""
    kwargs: dict[str, Any] = field(default_factory=dict)
    """Default constructor kwargs; ``make(**kwargs)`` overrides them."""
    requires: tuple[str, ...] = ()
    """Import names of optional packages the env needs (e.g. ``("scienceworld",)``)."""
    extra: str | None = None
    """The pip extra that installs :attr:`requires` (e.g. ``"classic"``)."""
    description: str = ""

    @property
    def family(self) -> str:
        return self.id.split("/")[-1].rsplit("-v", 1)[0]

    def available(self) -> bool:
        """Whether the optional packages in :attr:`requires` are importable."""
        return all(importlib.util.find_spec(name) is not None for name in self.requires)

    def load(self) -> Callable[..., gym.Env]:
        if callable(self.entry_point):
            return self.entry_point
        module, _, attr = self.entry_point.partition(":")
        return getattr(importlib.import_module(module), attr)


registry: dict[str, EnvSpec] = {}
_plugins_loaded = False


def register(
    id: str,
    entry_point: str | Callable[..., gym.Env],
    max_turns: int = 50,
    kwargs: dict[str, Any] | None = None,
    requires: tuple[str, ...] = (),
    extra: str | None = None,
    description: str = "",
) -> EnvSpec:
    """Register an env id. A duplicate id raises :class:`DuplicateEnvError`."""
    if id in registry:
        raise DuplicateEnvError(f"env id {id!r} is already registered; pick a new version (-vN)")
    if "-v" not in id.rsplit("/", 1)[-1]:
        raise TurngymError(f"env id {id!r} must be versioned like 'owner/Name-v0'")
    env_spec = EnvSpec(id, entry_point, int(max_turns), dict(kwargs or {}), tuple(requires), extra,
                       description)
    registry[id] = env_spec
    if id not in gym.registry:
        gym.register(id=id, entry_point=_gym_entry(id), disable_env_checker=True,
                     order_enforce=False)
    return env_spec


def _gym_entry(env_id: str) -> Callable[..., gym.Env]:
    def build(**kwargs: Any) -> gym.Env:
        return make(env_id, **kwargs)

    return build


def load_plugins() -> None:
    """Import the ``turngym.envs`` entry points of installed third-party packages once."""
    global _plugins_loaded
    if _plugins_loaded:
        return
    _plugins_loaded = True
    for ep in entry_points(group=ENTRY_POINT_GROUP):
        try:
            obj = ep.load()
            if callable(obj):
                obj()
        except DuplicateEnvError:
            raise
        except Exception as exc:  # a broken plugin must not break turngym
            logger.warning("could not load env plugin %s: %s", ep.name, exc)


def spec(env_id: str) -> EnvSpec:
    """The :class:`EnvSpec` of ``env_id``; unknown ids raise with a "did you mean"."""
    load_plugins()
    if env_id in registry:
        return registry[env_id]
    close = difflib.get_close_matches(env_id, list(registry), n=3, cutoff=0.4)
    if not close:  # also match on the bare name, e.g. "sokoban" -> turngym/Sokoban-v0
        bare = {k.split("/")[-1].lower(): k for k in registry}
        close = [bare[m] for m in difflib.get_close_matches(env_id.lower(), list(bare), n=3)]
    hint = f" Did you mean {' or '.join(repr(c) for c in close)}?" if close else ""
    raise UnknownEnvError(f"unknown env id {env_id!r}.{hint} See `turngym envs list`.")


def make(env_id: str, *, max_turns: int | None = None, **kwargs: Any) -> gym.Env:
    """Build ``env_id`` wrapped in :class:`turngym.envs.core.TurnLimit`.

    ``kwargs`` override the spec's defaults. An unknown kwarg raises a
    :class:`~turngym.errors.ConfigError` that lists the accepted ones.
    """
    from turngym.envs.core import TurnLimit  # local: core imports gymnasium spaces only
    from turngym.errors import ConfigError

    env_spec = spec(env_id)
    if not env_spec.available():
        missing = [r for r in env_spec.requires if importlib.util.find_spec(r) is None]
        extra = env_spec.extra or missing[0]
        raise MissingDependencyError(
            f"{env_id} needs {', '.join(missing)}; install it with `pip install turngym[{extra}]`"
        )
    factory = env_spec.load()
    merged = {**env_spec.kwargs, **kwargs}
    params = inspect.signature(factory).parameters
    if not any(p.kind is p.VAR_KEYWORD for p in params.values()):
        unknown = sorted(set(merged) - set(params))
        if unknown:
            accepted = ", ".join(n for n in params if n != "self") or "none"
            raise ConfigError(f"{env_id} got unknown kwarg(s) {unknown}; accepted: {accepted}")
    try:
        env = factory(**merged)
    except (TypeError, ValueError) as exc:
        raise ConfigError(f"{env_id}: bad kwargs {merged}: {exc}") from exc
    turns = env_spec.max_turns if max_turns is None else int(max_turns)
    if turns < 1:
        raise ConfigError(f"max_turns must be >= 1, got {turns}")
    wrapped = TurnLimit(env, turns)
    wrapped.spec_id = env_id  # type: ignore[attr-defined]
    return wrapped


def list_ids(include_unavailable: bool = False) -> list[str]:
    """Registered ids, sorted; those whose optional packages are missing are hidden."""
    load_plugins()
    return sorted(k for k, s in registry.items() if include_unavailable or s.available())
