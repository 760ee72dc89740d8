"""The one error hierarchy of turngym.

Every error a user can cause derives from :class:`TurngymError` and also from the builtin
it refines, so ``except ValueError`` keeps working. Messages name the bad value and the fix.
"""

from __future__ import annotations


class TurngymError(Exception):
    """Root of every error turngym raises on purpose."""


class ConfigError(TurngymError, ValueError):
    """A config key or value is wrong. The message names the key."""


class UnknownEnvError(TurngymError, KeyError):
    """An env id is not registered. The message suggests close ids."""

    def __str__(self) -> str:  # KeyError quotes its message; keep it readable
        return str(self.args[0]) if self.args else ""


class DuplicateEnvError(TurngymError, ValueError):
    """An env id is registered twice."""


class UnknownTaskError(TurngymError, KeyError):
    """A ``task_id`` does not exist in the env's task set."""

    def __str__(self) -> str:
        return str(self.args[0]) if self.args else ""


class MissingDependencyError(TurngymError, ImportError):
    """An optional dependency is not installed. The message names the extra to install."""


class EnvError(TurngymError, RuntimeError):
    """An environment crashed or timed out. Rollouts turn it into ``env_error``."""


class BackendError(TurngymError, RuntimeError):
    """An LLM backend failed after its retries."""


class CheckpointError(TurngymError, RuntimeError):
    """A checkpoint is missing, incomplete or does not match the config."""
