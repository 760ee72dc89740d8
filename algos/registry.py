"""Advantage estimators keyed by their config's ``name``.

``ADVANTAGES[name] = (ConfigModel, fn)`` with ``fn(batch: TurnBatch, cfg) -> AdvantageResult``.
The trainer holds an :data:`AdvantageConfig` (a pydantic union discriminated by ``name``)
and calls :func:`compute_advantages`; there is no ``if/elif`` over algorithm names.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Annotated, Any, Union

from pydantic import BaseModel, Field, ValidationError

from turngym.algos.batch import TurnBatch
from turngym.algos.gae import GAEConfig, gae_advantage_result
from turngym.algos.gigpo import GiGPOConfig, gigpo_advantage
from turngym.algos.graphgpo import GraphGPOConfig, graphgpo_advantage
from turngym.algos.grpo import GRPOConfig, grpo_advantage
from turngym.algos.hgpo import HGPOConfig, hgpo_advantage
from turngym.algos.reinforce_pp import ReinforcePPConfig, reinforce_pp_advantage
from turngym.algos.result import AdvantageResult
from turngym.algos.rloo import RLOOConfig, rloo_advantage
from turngym.errors import ConfigError

ADVANTAGES: dict[str, tuple[type[BaseModel], Callable[[TurnBatch, Any], AdvantageResult]]] = {
    "grpo": (GRPOConfig, grpo_advantage),
    "rloo": (RLOOConfig, rloo_advantage),
    "reinforce_pp": (ReinforcePPConfig, reinforce_pp_advantage),
    "gigpo": (GiGPOConfig, gigpo_advantage),
    "hgpo": (HGPOConfig, hgpo_advantage),  # GiGPO with history-aware step groups
    "graphgpo": (GraphGPOConfig, graphgpo_advantage),  # step credit: distance to the goal
    "gae": (GAEConfig, gae_advantage_result),  # PPO's critic advantage: needs batch.value_N
}

AdvantageConfig = Annotated[Union[tuple(model for model, _ in ADVANTAGES.values())],  # noqa: UP007
                            Field(discriminator="name")]
"""Any advantage config; pydantic picks the model by its ``name`` field. Built from
:data:`ADVANTAGES`, so a new estimator is one file plus one line there."""


def make_config(name: str, **fields: Any) -> BaseModel:
    """Build the config of estimator ``name`` (validated; unknown names and keys raise)."""
    if name not in ADVANTAGES:
        raise ConfigError(f"unknown advantage estimator {name!r}; "
                          f"choose one of {sorted(ADVANTAGES)}")
    try:
        return ADVANTAGES[name][0](**fields)
    except ValidationError as e:
        raise ConfigError(f"bad {name} config: {e}") from e


def compute_advantages(batch: TurnBatch, cfg: BaseModel) -> AdvantageResult:
    """Run the estimator that ``cfg.name`` names."""
    name = getattr(cfg, "name", None)
    if name not in ADVANTAGES:
        raise ConfigError(f"unknown advantage estimator {name!r}; "
                          f"choose one of {sorted(ADVANTAGES)}")
    model, fn = ADVANTAGES[name]
    if not isinstance(cfg, model):
        raise ConfigError(f"config for {name!r} must be a {model.__name__}, "
                          f"got {type(cfg).__name__}")
    return fn(batch, cfg)


__all__ = ["ADVANTAGES", "AdvantageConfig", "AdvantageResult", "compute_advantages",
           "make_config"]
