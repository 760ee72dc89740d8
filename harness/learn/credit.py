"""Credit assignment: one call from rollout groups to training samples, over a registry.

:func:`assign_credit` is the whole of phase 4 of the training loop::

    groups -> TurnBatch (one row per turn, samples.turn_batch)
           -> the estimator's per-turn advantage (turngym.algos.registry.ADVANTAGES, picked by
              the typed advantage config's ``name``; none for pure OPD)
           -> each active modifier, in registry order (MODIFIERS below)
           -> Sample rows (samples.build_samples) + the metrics of every piece

The loop (``turngym.harness.train``) names no algorithm: what runs is read off the config
by the registry. Two registries make up a method:

* **estimators** (``turngym.algos.registry.ADVANTAGES``): ``name -> (ConfigClass, fn)``,
  ``fn(TurnBatch, cfg) -> AdvantageResult`` with a per-turn ``adv_N`` (and ``return_N``
  for a critic's targets). A critic estimator (GAE) reads ``batch.value_N``, which
  :func:`assign_credit` fills from ``values`` when the learner has a value head.
* **modifiers** (:data:`MODIFIERS`): each reads the config (``active``), then edits the
  credit state: the advantage from a state graph kept across steps (``algo.state_graph``),
  the row mask (DAPO dynamic sampling), per-token terms (OPD with SOD step weights), or the
  advantage itself (REINFORCE++ with the KL penalty in the reward).
  ``reference_first`` says the modifier reads reference log-probs, so the loop scores the
  reference before credit instead of after the unsignalled samples are dropped.

Adding an estimator is one file under ``algos/`` plus one line in ``ADVANTAGES``; adding a
modifier is one function here plus one :class:`Modifier` line (docs/algorithms.md shows
both with a worked example).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np

from turngym.algos.batch import TurnBatch
from turngym.algos.dynamic_sampling import filter_batch
from turngym.algos.graph_credit import graph_credit
from turngym.algos.registry import compute_advantages
from turngym.algos.reinforce_pp import ReinforcePPConfig
from turngym.algos.state_graph import StateGraph, stable_key_ids
from turngym.errors import ConfigError
from turngym.harness.config import TrainConfig
from turngym.harness.learn.learner import Sample
from turngym.harness.learn.samples import (
    build_samples,
    opd_token_adv,
    reinforce_pp_kl_token_adv,
    signal_metrics,
    turn_batch,
)
from turngym.harness.rollout.trajectory import Group, Turn

#: ``values(rows, mask_N) -> V(s_t)`` per row: the learner's value head (PPO's critic).
ValueFn = Callable[[list[Turn], np.ndarray], np.ndarray]


@dataclass
class CreditState:
    """What the estimator and the modifiers build up, row by row (one row per turn)."""

    batch: TurnBatch
    rows: list[Turn]
    mask_N: np.ndarray
    """Rows that become samples (trainable turns of episodes that did not crash, minus
    whatever a modifier drops)."""
    adv_N: np.ndarray | None = None
    """The per-turn advantage, broadcast over the turn's response tokens (None: no RL term)."""
    return_N: np.ndarray | None = None
    """A critic's value targets (GAE), else None."""
    token_adv: list[np.ndarray] | None = None
    """Per-token terms added to ``rl_coef * adv_N`` (OPD, REINFORCE++ KL)."""
    rl_coef: float = 1.0
    metrics: dict[str, float] = field(default_factory=dict)
    graph: StateGraph | None = None
    """The state graph the train loop keeps across steps (``algo.state_graph``), else None."""
    step: int = 0
    """The training step (0-based) of this batch: the graph's clock."""


@dataclass(frozen=True)
class Modifier:
    """A registered change to the credit state. ``apply`` returns its metrics."""

    name: str
    active: Callable[[TrainConfig], bool]
    apply: Callable[[CreditState, TrainConfig], dict[str, float]]
    reference_first: bool = False
    """Reads ``ref_logprobs`` of every row, so the reference scores the rollout first."""


@dataclass(frozen=True)
class Credit:
    """The result of :func:`assign_credit`."""

    samples: list[Sample]
    metrics: dict[str, float]
    batch: TurnBatch


# ------------------------------------------------------------------------ modifiers
def _state_graph(state: CreditState, cfg: TrainConfig) -> dict[str, float]:
    """The persistent state graph (``algo.state_graph``): (a) add its term to the advantage
    (``turngym.algos.graph_credit.graph_credit``: ``singleton`` or ``value`` mode), reading
    the graph as it was *before* this batch, then (b) fold this batch's discounted returns
    into it, so a batch never baselines against itself. Rows of crashed (``env_error``)
    episodes and other masked rows enter neither."""
    g = cfg.algo.state_graph
    if state.graph is None:
        raise ConfigError("algo.state_graph.enabled=true but assign_credit got no graph: the "
                          "train loop passes graph=build_state_graph(cfg), kept across steps")
    keys = [str(r.state_key) for r in state.rows]
    key_ids_N = stable_key_ids(keys, [r.task_id for r in state.rows] if g.per_task else None)
    res = graph_credit(state.graph, state.batch, state.mask_N, key_ids_N, g,
                       g.discount(cfg.algo.advantage))
    if state.adv_N is not None:
        state.adv_N = state.adv_N + res.adv_N
    update_m = state.graph.update(key_ids_N[res.keep_N], res.return_N[res.keep_N], state.step)
    return {**res.metrics, **update_m}


def _dynamic_sampling(state: CreditState, cfg: TrainConfig) -> dict[str, float]:
    """DAPO dynamic sampling: drop the rows of groups whose episode returns are all equal
    (no RL signal). Without an RL term there is nothing to filter."""
    if state.adv_N is None:
        return {}
    res = filter_batch(state.batch)
    state.mask_N = state.mask_N & np.asarray(res.keep_J, dtype=bool)
    return dict(res.metrics)


def _opd(state: CreditState, cfg: TrainConfig) -> dict[str, float]:
    """On-policy distillation: ``beta * (teacher - student)`` per token (SOD step weights
    when ``algo.opd.sod``), and ``algo.opd.rl_coef`` on the RL term."""
    o = cfg.algo.opd
    state.token_adv, metrics = opd_token_adv(state.rows, state.mask_N, state.batch.traj_N,
                                             o.beta, o.sod, o.sod_delta, o.sod_eps)
    state.rl_coef = o.rl_coef
    return metrics


def _kl_in_reward(state: CreditState, cfg: TrainConfig) -> dict[str, float]:
    """REINFORCE++ with the KL penalty in the reward: a per-token advantage replaces the
    per-turn one (each turn's return lands on its last token)."""
    state.token_adv, metrics = reinforce_pp_kl_token_adv(state.batch, state.rows,
                                                         state.mask_N, cfg.algo.advantage)
    state.adv_N = None
    return metrics


def _kl_reward_active(cfg: TrainConfig) -> bool:
    est = cfg.algo.advantage
    return isinstance(est, ReinforcePPConfig) and est.kl_coef > 0


#: Applied in this order to every batch whose config activates them.
MODIFIERS: list[Modifier] = [
    Modifier("state_graph", lambda cfg: cfg.algo.state_graph.enabled, _state_graph),
    Modifier("dynamic_sampling", lambda cfg: cfg.algo.dynamic_sampling, _dynamic_sampling),
    Modifier("opd", lambda cfg: cfg.algo.uses_teacher, _opd),
    Modifier("kl_in_reward", _kl_reward_active, _kl_in_reward, reference_first=True),
]


# ------------------------------------------------------------------------ the call
def active_modifiers(cfg: TrainConfig) -> list[Modifier]:
    """The modifiers ``cfg`` turns on, in the order they apply."""
    return [m for m in MODIFIERS if m.active(cfg)]


def reference_first(cfg: TrainConfig) -> bool:
    """Whether credit reads reference log-probs (score the reference before it)."""
    return any(m.reference_first for m in active_modifiers(cfg))


def build_state_graph(cfg: TrainConfig) -> StateGraph | None:
    """The graph ``algo.state_graph`` asks for (empty), or None when it is off. The train
    loop keeps it across steps and saves ``graph.state_dict()`` in every checkpoint."""
    g = cfg.algo.state_graph
    return StateGraph.from_config(g) if g.enabled else None


def assign_credit(groups: list[Group], cfg: TrainConfig, *, values: ValueFn | None = None,
                  graph: StateGraph | None = None, step: int = 0) -> Credit:
    """Rollout groups -> training samples: estimator, then modifiers, then samples.

    ``values`` (the learner's value head) fills ``batch.value_N`` first, for a critic
    estimator and for the samples' ``old_value``. ``graph`` (:func:`build_state_graph`,
    owned by the caller and kept across steps) is read and then updated in place by the
    ``state_graph`` modifier at training ``step``.
    """
    batch, rows = turn_batch(groups)
    if values is not None:
        batch = dataclasses.replace(batch, value_N=values(rows, batch.mask_N))
    state = CreditState(batch=batch, rows=rows, mask_N=batch.mask_N.copy(), graph=graph,
                        step=step)
    est = cfg.algo.advantage
    if est is not None:
        res = compute_advantages(batch, est)
        state.adv_N, state.return_N = res.adv_N, res.return_N
        state.metrics.update(res.metrics)
    for mod in active_modifiers(cfg):
        state.metrics.update(mod.apply(state, cfg))
    state.metrics.update(signal_metrics(batch, state.mask_N, state.adv_N, state.token_adv))
    samples = build_samples(rows, state.mask_N, state.adv_N, state.token_adv, state.rl_coef,
                            state.return_N, batch.value_N)
    return Credit(samples=samples, metrics=state.metrics, batch=batch)
