"""turngym: a gym for training LLM agents on multi-turn tasks.

One namespace over the repository's folders (mapped at install time, see ``setup.py``):
``turngym.envs`` (Gymnasium envs, registration), ``turngym.agents`` (backends, prompts,
parsing), ``turngym.algos`` (pure estimators and losses), ``turngym.harness`` (rollouts,
learning, evaluation, CLI) and ``turngym.benchmarks`` (performance scripts).

The public face::

    import turngym
    env = turngym.make("turngym/Maze-v0")          # an env, by registered id
    turngym.register("acme/Thing-v0", "acme.envs:ThingEnv")
    turngym.train(turngym.load_config("configs/quickstart.yaml"))
    turngym.evaluate(turngym.load_suite("maze"), settings)

Every name loads on first use: ``import turngym`` (and :mod:`turngym.errors`, the one module
every layer shares) registers no env and imports no torch; ``make`` / ``register`` load the
env registry, the training and evaluation names (and the record types ``Turn``,
``Trajectory``, ``Group``, ``StopReason``) the harness.
"""

from __future__ import annotations

import importlib
from typing import Any

__version__ = "0.1.0"

_LAZY = {
    "make": "turngym.envs.registration",
    "register": "turngym.envs.registration",
    "spec": "turngym.envs.registration",
    "list_ids": "turngym.envs.registration",
    "train": "turngym.harness.train",
    "load_config": "turngym.harness.config",
    "TrainConfig": "turngym.harness.config",
    "evaluate": "turngym.harness.eval.evaluate",
    "EvalSettings": "turngym.harness.eval.evaluate",
    "load_suite": "turngym.harness.eval.suite",
    "Turn": "turngym.harness.rollout.trajectory",
    "Trajectory": "turngym.harness.rollout.trajectory",
    "Group": "turngym.harness.rollout.trajectory",
    "StopReason": "turngym.harness.rollout.trajectory",
}

__all__ = [*_LAZY]


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        return getattr(importlib.import_module(_LAZY[name]), name)
    raise AttributeError(f"module 'turngym' has no attribute {name!r}")
