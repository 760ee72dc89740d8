"""Quiet third-party output: no library progress bars, banners or DEBUG lines by default.

The ``turngym`` command calls :func:`quiet_third_party` before any command runs
(``turngym -v`` calls it with ``verbose=True`` and shows everything); a library user who
wants the same console calls it too. It silences, at the default level:

* progress bars of transformers ("Loading weights", "Writing model shards", the GGUF
  conversion), huggingface_hub and datasets, and any ``tqdm`` bar of a child process;
* INFO/DEBUG records of the loggers in :data:`LOGGERS` (bm25s sets its own logger to
  DEBUG when imported; a filter on that logger drops its records below WARNING anyway);
* Ray's and vLLM's start-up banners and vLLM's CPU set-up warnings (their level comes from
  :data:`ENV`, which they read when imported, and child processes inherit), vLLM's weight
  loading bar (``turngym.agents.vllm_backend`` reads ``TQDM_DISABLE``) and its FutureWarnings
  (:data:`WARNINGS`).

Nothing heavy is imported here: the environment variables take effect when the libraries
are imported later, and libraries already imported are switched off through their own
calls.
"""

from __future__ import annotations

import importlib
import logging
import os
import sys
import warnings
from typing import Any

#: Loggers held at WARNING by default (those in :data:`ERROR_ONLY` at ERROR).
LOGGERS = ("bm25s", "transformers", "huggingface_hub", "datasets", "vllm", "ray",
           "torch.distributed", "urllib3", "httpx", "filelock")

#: Loggers held at ERROR: vLLM's warnings on CPU describe its set-up ("Triton is installed,
#: but doesn't include CPU backend", ...), as ``VLLM_LOGGING_LEVEL`` below says; the ones
#: logged while vLLM is imported, before it configures its own handler, reach ours.
ERROR_ONLY = ("vllm",)

#: Environment variables set by default (unless the user set them); the libraries read
#: them when imported, and child processes (Ray actors, torchrun ranks, vLLM workers)
#: inherit them.
#: vLLM's CPU warnings (no Triton, no tcmalloc in LD_PRELOAD, eager mode, thread binding)
#: and c10's NUMA binding note describe the engine's set-up, not anything a user can act on.
ENV = {"HF_HUB_DISABLE_PROGRESS_BARS": "1", "HF_DATASETS_DISABLE_PROGRESS_BARS": "1",
       "TQDM_DISABLE": "1", "RAY_LOGGER_LEVEL": "warning", "VLLM_LOGGING_LEVEL": "ERROR",
       "TORCH_CPP_LOG_LEVEL": "ERROR"}


#: vLLM's own deprecation warnings (FutureWarning about torch APIs it calls when imported):
#: ``warnings.filterwarnings(action, message, category, module)``.
WARNINGS = ("ignore", "", FutureWarning, r"vllm\.")


class _Below(logging.Filter):
    """Drops records below ``level`` logged on the logger it is attached to."""

    def __init__(self, level: int) -> None:
        super().__init__()
        self.level = level

    def filter(self, record: logging.LogRecord) -> bool:
        return record.levelno >= self.level


_FILTERS = {logging.WARNING: _Below(logging.WARNING), logging.ERROR: _Below(logging.ERROR)}


def _level(name: str) -> int:
    """The level :func:`quiet_third_party` holds logger ``name`` at."""
    return logging.ERROR if name in ERROR_ONLY else logging.WARNING


_saved: dict[str, Any] = {}
"""What :func:`quiet_third_party` changed, to undo: ``env`` (previous values), ``levels``
(previous logger levels), ``bars`` (libraries whose progress bars it switched off),
``warnings`` (True once it added :data:`WARNINGS`)."""


def quiet_third_party(verbose: bool = False) -> None:
    """Silence third-party progress bars, banners and INFO/DEBUG logs (module docstring);
    with ``verbose`` undo what an earlier call changed and otherwise leave them alone."""
    if verbose:
        _restore()
        return
    if not _saved:
        _saved.update(env={}, levels={}, bars={})
    env, levels, bars = _saved["env"], _saved["levels"], _saved["bars"]
    for key, value in ENV.items():
        if key not in os.environ:
            env[key] = None
            os.environ[key] = value
    for name in LOGGERS:
        log = logging.getLogger(name)
        levels.setdefault(name, log.level)
        log.setLevel(_level(name))
        log.addFilter(_FILTERS[_level(name)])  # a no-op when already there
    for library in _BAR_SWITCHES:
        if library in sys.modules and library not in bars:
            bars[library] = True
            _switch_bars(library, True)
    if "warnings" not in _saved:
        _saved["warnings"] = True
        warnings.filterwarnings(*WARNINGS)


def _restore() -> None:
    if not _saved:
        return
    for key in _saved["env"]:
        os.environ.pop(key, None)
    for name, level in _saved["levels"].items():
        log = logging.getLogger(name)
        log.setLevel(level)
        log.removeFilter(_FILTERS[_level(name)])
    for library in _saved["bars"]:
        _switch_bars(library, False)
    if _saved.get("warnings"):
        warnings.filters[:] = [f for f in warnings.filters if not _is_ours(f)]
    _saved.clear()


def _is_ours(entry: tuple) -> bool:
    """Whether a ``warnings.filters`` entry is the one :data:`WARNINGS` added."""
    action, _, category, module, _ = entry
    return (action, category, getattr(module, "pattern", module)) == (
        WARNINGS[0], WARNINGS[2], WARNINGS[3])


#: Progress-bar switches of libraries that may be imported before the call:
#: library -> (module holding the switches, the "off" function, the "on" function).
_BAR_SWITCHES = {
    "transformers": ("transformers.utils.logging", "disable_progress_bar", "enable_progress_bar"),
    "huggingface_hub": ("huggingface_hub.utils", "disable_progress_bars", "enable_progress_bars"),
    "datasets": ("datasets.utils", "disable_progress_bars", "enable_progress_bars"),
}


def _switch_bars(library: str, off: bool) -> None:
    """Turn ``library``'s progress bars off (or back on) through its own switch."""
    module, disable, enable = _BAR_SWITCHES[library]
    getattr(importlib.import_module(module), disable if off else enable)()
