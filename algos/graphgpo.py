"""GraphGPO: credit from a state-transition graph of the rollouts (arXiv 2605.26684, ICML 2026).

GiGPO (:mod:`turngym.algos.gigpo`) scores a step by the discounted return of the trajectory
it belongs to, so a good move in a failed episode still shares that episode's fate.
GraphGPO merges the trajectories of one task group into a directed graph and scores each
step by where it *leads*: how far its successor state is from the goal on that graph,
whichever trajectory took the step. For the kept rows of task group g:

1. Graph. Nodes: the ``state_N`` values of g's kept rows (the states turns acted from), plus
   one goal node ``GOAL_g``. Edges, one per kept row t (repeats stay repeats):
   ``s_t -> s_{t+1}`` when the next kept row of the trajectory is turn ``t + 1``;
   ``s_t -> GOAL_g`` when t is the last turn of a successful trajectory (episode return
   over its kept rows ``> success_threshold``). An unparseable response leaves the state
   as it is, so it is a self-loop ``s -> s``.
2. Distance ``d(s)``: the fewest edges from s to ``GOAL_g`` (BFS over the reversed edges;
   unit cost per edge, as in the paper's experiments). A state with no path to the goal
   gets ``d = d_max + 1``, ``d_max`` the largest finite distance of g's nodes.
3. Step reward of row t: ``R^G_t = omega^d(s_{t+1})`` (default omega 0.2): an edge into the
   goal scores 1, one that ends a step further away scores ``omega`` times less.
4. Step groups: the scored rows of g acting from the same state (GiGPO's anchor state).
   ``A_G`` normalises ``R^G`` within its step group (``mode``); a singleton gets 0. Within a
   group ``d(s_t)`` is shared, so ranking by ``d(s_{t+1})`` ranks by the distance *decrease*
   ``d(s_t) - d(s_{t+1})``: a move toward the goal beats a self-loop, and a self-loop beats
   a move away from it.
5. ``A = beta_E * A_E + beta_G * A_G - p * [penalised turn]``, with ``A_E`` GiGPO's episode
   advantage (GRPO over the episode returns), ``beta_E = episode_weight`` and ``beta_G =
   step_weight`` (both default 1, the paper's form), and the invalid-action penalty ``p``
   exactly as in GiGPO (``invalid_penalty``, ``penalize``, ``penalty_stage``).

GiGPO's ``gamma`` has no counterpart: no discounted return is used; ``omega`` discounts
distance instead (the recipe's code calls it ``gamma``).

Edge cases:

- A task group without a successful episode has no goal: every ``A_G`` there is 0 and its
  rows get ``A_E`` (itself 0 when all returns are equal).
- Loops: a trajectory that comes back to a state adds an edge out of it each time; a
  self-loop or a cycle never shortens a distance. A state whose only way out is a
  self-loop has no path to the goal.
- Unreachable states (no edge path to ``GOAL_g``, such as dead ends) get ``d_max + 1``:
  worse than any state that reaches the goal, and all equal.
- The last turn of an episode that did not reach the goal (truncated, or ended in a
  failure): ``TurnBatch`` does not carry the state after it, so its edge is unknown.
  ``failed_end="skip"`` (default) leaves that row out of the step groups (``A_G = 0``; it
  keeps ``A_E``), which is never wrong in sign for a truncated episode whose last move was
  good. ``failed_end="dead_end"`` scores it as a move into a dead end (``d_max + 1``), right
  for episodes that terminate in a failure (a fatal trap), too harsh for truncated ones.
- Rows with ``mask_N`` False (padding, duplicates, TCOD expert prefixes; env_error
  episodes are masked whole by the trainer) are removed first: they get ``A = 0``, are in
  no return or statistic, and are never an edge's source or target. A kept row whose next
  turn is masked has an unknown successor and is left out of the step groups, as above.
- A batch of one trajectory has ``A_E = 0`` and only its own edges; an empty batch raises
  ``ConfigError``; rows may come in any order.

Metrics: the shared episode metrics (``algo/episode_*``, ``algo/adv_*``); the step groups of
scored rows (``algo/step_groups``, ``algo/step_group_size_mean``, ``algo/step_group_size_max``,
``algo/step_group_singleton_frac``); ``algo/episode_adv_std`` and ``algo/step_adv_std``
(``A_G``); GiGPO's ``algo/invalid_frac``, ``algo/format_error_frac``,
``algo/penalized_frac``; and the graph's: ``algo/goal_groups_frac`` (task groups with a
goal), ``algo/goal_scored_frac`` (kept rows with a step reward),
``algo/goal_unreachable_frac`` (scored rows whose successor has no path to the goal),
``algo/goal_dist_mean`` (mean ``d(s_t)`` over scored rows whose state reaches the goal; 0
if none), ``algo/goal_graph_nodes_mean`` and ``algo/goal_graph_edges_mean`` (distinct
nodes, goal included, and distinct edges per task group with a goal; 0 if none).

Reference: verl-agent ``recipe/GraphGPO/core_graph.py`` (``ComplexGraph.from_data``,
``all_to_target_shortest_paths``, ``compute_graph_path_returns``,
``compute_graphgpo_outcome_advantage``), read from a copy of the recipe; the trainer's
config was not available. Same here: one graph per task (``uid``) with equal states merged,
edges ``anchor_obs -> next_obs`` and the last step of a successful episode into a
``success`` node, reverse shortest paths with ``far + 1`` for unreachable nodes, ``R^G =
10 * gamma^d(next_obs)`` normalised among the steps from the same ``anchor_obs`` of the
task, plus the GiGPO episode advantage with weights. Differences:

- the scale: ``R^G = omega^d`` without the factor 10 (ALFWorld's success reward there;
  turngym's rewards are 0/1). The paper's Eq. 4, ``r_succ * omega^(d + c)``, is the same
  up to a factor ``omega`` (``c = 1``). Only ``mode="mean_norm"`` sees either factor.
- ``omega`` defaults to 0.2, the value the recipe's ``compare_advantages.py`` passes; a
  third-party reproduction uses 0.1. Under ``mean_std_norm`` a step group with two distinct
  distances gets the same ``A_G`` for every omega.
- singleton step groups: the recipe reuses verl-agent's GiGPO ``step_norm_reward``, which
  gives a lone step its raw ``R^G`` (mean 0, std 1); the paper and this module give 0.
- the successor of a failed episode's last turn: the recipe has its final observation;
  here it is unknown (``failed_end``).
- success: the recipe marks episodes with ``episode_rewards > 0`` (its rollout loop writes
  ``success`` as their last ``next_obs``); here the kept rows' return ``> success_threshold``.
- the recipe has no masks (it asserts every ``active_mask`` is 1), no similarity merging
  is offered (``StateCanonicalizer``; the env's ``state_key`` is already canonical), and
  its ``normalize_distance`` variant ``gamma^(d(s') - d(s) + 1)`` only rescales each step
  group (``d(s)`` is shared there), so it is left out.
- the episode advantage and the penalty are GiGPO's here (per-trajectory statistics by
  default, ``episode_stats="turn"`` for the recipe's per-row ones; penalty after
  normalisation).

Worked example (``GraphGPOConfig(mode="mean_norm", omega=0.5)``; weights 1, penalty 0.1 on
format errors). One task group, states ``s`` (start), ``h`` (hall), ``p`` (pit):

    A: s -> h, h -> won                          rewards 0, 1
    B: s -> p, p -> s, s -> h, h -> truncated    rewards 0, 0, 0, 0
    C: s (unparseable: stays at s), s -> h, h -> won      rewards 0, 0, 1

- edges: ``s->h`` (A0, B2, C1), ``h->GOAL`` (A1, C2), ``s->p`` (B0), ``p->s`` (B1),
  ``s->s`` (C0); B3 has no known successor (skipped).
- distances: ``GOAL 0, h 1, s 2, p 3``; ``R^G = 0.5^d(next)``: ``s->h`` 0.5, ``h->GOAL`` 1,
  ``s->p`` 0.125, ``p->s`` 0.25, ``s->s`` 0.25.
- step groups: s ``{A0 .5, B0 .125, B2 .5, C0 .25, C1 .5}`` (mean 0.375): ``A_G`` = A0
  0.125, B0 -0.25, B2 0.125, C0 -0.125, C1 0.125; h ``{A1 1, C2 1}``: 0, 0; p ``{B1}``: 0.
- returns 1, 0, 1: ``A_E`` = 1/3, -2/3, 1/3.
- ``A`` = A ``[11/24, 1/3]``, B ``[-11/12, -2/3, -13/24, -2/3]``, C ``[13/120, 11/24,
  1/3]`` (C0 also loses the penalty 0.1). B2, the right move of a failed episode, gets
  credit; GiGPO's step return would give it 0.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import numpy as np
from pydantic import BaseModel, ConfigDict, Field

from turngym.algos.batch import TurnBatch
from turngym.algos.gigpo import GiGPOConfig, gigpo_parts
from turngym.algos.grouping import dense_ids, subtract_baseline
from turngym.algos.grpo import episode_metrics, scatter
from turngym.algos.result import AdvantageResult
from turngym.algos.segments import Segments, traj_sums

_UNKNOWN, _DEAD_END = -1, -2  # successor codes of rows without a successor node


class GraphGPOConfig(BaseModel):
    """Config of :func:`graphgpo_advantage`. The fields GiGPO also has (``mode``,
    ``step_weight``, ``invalid_penalty``, ``penalize``, ``penalty_stage``, ``eps``,
    ``episode_stats``, ``unbiased_std``) mean the same and have GiGPO's defaults."""

    model_config = ConfigDict(extra="forbid", frozen=True)
    name: Literal["graphgpo"] = "graphgpo"
    mode: Literal["mean_norm", "mean_std_norm"] = "mean_std_norm"
    """Normalise ``A_E`` and ``A_G`` by the group mean only, or by mean and std."""
    omega: float = Field(0.2, gt=0.0, lt=1.0)
    """Distance discount: a step ending at distance d from the goal scores ``omega^d``."""
    step_weight: float = Field(1.0, ge=0.0, le=10.0)
    """beta_G, the weight of the graph step advantage ``A_G``."""
    episode_weight: float = Field(1.0, ge=0.0, le=10.0)
    """beta_E, the weight of the episode advantage ``A_E`` (0: the graph term alone)."""
    success_threshold: float = Field(0.0, ge=-1e6, le=1e6)
    """An episode whose return over its kept rows exceeds this reached the goal."""
    failed_end: Literal["skip", "dead_end"] = "skip"
    """The last turn of an episode that did not reach the goal, whose next state the batch
    does not hold: left out of the step groups, or scored as a move into a dead end."""
    invalid_penalty: float = Field(0.1, ge=0.0, le=10.0)
    """p, subtracted for each penalised turn (as GiGPO)."""
    penalize: Literal["format", "action"] = "format"
    """Which turns the penalty hits (as GiGPO)."""
    penalty_stage: Literal["advantage", "reward"] = "advantage"
    """Where the penalty enters (as GiGPO; with ``reward`` it changes ``A_E`` only)."""
    eps: float = Field(1e-6, gt=0.0, le=1.0)
    """Added to the std before dividing (mean_std_norm)."""
    episode_stats: Literal["trajectory", "turn"] = "trajectory"
    """Episode statistics over one value per trajectory, or per turn row (the recipe)."""
    unbiased_std: bool = True
    """Use the unbiased (ddof=1) std, as torch.std does."""

    def gigpo_config(self) -> GiGPOConfig:
        """GiGPO's config with the shared fields: its episode advantage and penalty."""
        shared = set(GiGPOConfig.model_fields) - {"name"}
        return GiGPOConfig(**self.model_dump(include=shared))


@dataclass(frozen=True)
class TransitionGraph:
    """The graphs of all task groups of a batch, over its sorted kept rows (``_M``).

    Nodes ``0..S-1`` are the (task group, state) pairs of the kept rows; node ``S + k`` is
    the goal of dense task group k (only groups with ``has_goal_K`` reach one).
    """

    src_M: np.ndarray
    """Node of the state each row acted from."""
    dst_M: np.ndarray
    """Node the row led to; ``-1``: unknown, ``-2``: a failed episode's end."""
    group_V: np.ndarray
    """Dense task group of each node."""
    dist_V: np.ndarray
    """Distance to the group's goal; ``d_max + 1`` when there is no path (0 in groups
    without a goal, where nothing is scored)."""
    reach_V: np.ndarray
    """bool, whether the node has a path to its group's goal."""
    has_goal_K: np.ndarray
    """bool, whether dense task group k has a successful episode."""
    dmax_K: np.ndarray
    """Largest finite distance in each task group (0 without a goal)."""


def graphgpo_advantage(batch: TurnBatch, cfg: GraphGPOConfig) -> AdvantageResult:
    """GraphGPO advantage ``beta_E * A_E + beta_G * A_G`` (``- p`` on penalised rows) of every
    turn row. See the module docstring for the graph, the edge cases and a worked example."""
    parts = gigpo_parts(batch, cfg.gigpo_config())  # A_E, penalised rows, sorted kept rows
    seg = parts.seg
    won_J = traj_sums(batch.reward_N[seg.rows_M], seg) > cfg.success_threshold
    graph = transition_graph(batch, seg, won_J)
    # Step reward omega^d(next) of every scored row.
    gid_M = graph.group_V[graph.src_M]
    known_M = graph.dst_M >= 0
    scored_M = graph.has_goal_K[gid_M] & (known_M | ((graph.dst_M == _DEAD_END)
                                                     & (cfg.failed_end == "dead_end")))
    d_next_M = np.where(known_M, graph.dist_V[np.maximum(graph.dst_M, 0)],
                        graph.dmax_K[gid_M] + 1)
    reward_M = cfg.omega ** d_next_M.astype(np.float64)
    # A_G: normalised within the step groups (same task group and state) of scored rows.
    sid_S, num_steps = dense_ids(graph.src_M[scored_M])
    norm = "mean" if cfg.mode == "mean_norm" else "mean_std"
    adv_g_M = np.zeros(len(seg.rows_M))
    adv_g_M[scored_M] = subtract_baseline(reward_M[scored_M], sid_S, num_steps, norm,
                                          eps=cfg.eps, ddof=1 if cfg.unbiased_std else 0)
    adv_e_M = cfg.episode_weight * parts.adv_e_M
    adv_M = adv_e_M + cfg.step_weight * adv_g_M
    if cfg.penalty_stage == "advantage":  # after normalisation, as GiGPO
        adv_M = adv_M - cfg.invalid_penalty * parts.hit_M
    metrics = episode_metrics(seg, parts.return_J, adv_M)
    metrics.update(graph_metrics(graph, scored_M, known_M, sid_S, num_steps, adv_e_M, adv_g_M))
    rows = seg.rows_M
    metrics["algo/invalid_frac"] = float(np.mean(~batch.valid_N[rows]))
    metrics["algo/format_error_frac"] = float(np.mean(~batch.format_valid_N[rows]))
    metrics["algo/penalized_frac"] = float(np.mean(parts.hit_M))
    return AdvantageResult(adv_N=scatter(adv_M, seg, len(batch)), metrics=metrics)


def transition_graph(batch: TurnBatch, seg: Segments, won_J: np.ndarray) -> TransitionGraph:
    """Nodes, each row's edge and the distances to the goal (steps 1-2 of the docstring).

    ``won_J``: whether each trajectory of ``seg`` reached the goal.
    """
    rows = seg.rows_M
    m = len(rows)
    gdense_J, num_groups = dense_ids(seg.group_J)
    gid_M = gdense_J[seg.traj_M]
    src_M, num_states = dense_ids(gid_M, batch.state_N[rows])
    # Successors: the next kept row when it is the next turn of the same trajectory.
    turn_M = batch.turn_N[rows]
    dst_M = np.full(m, _UNKNOWN, np.int64)
    nxt = np.flatnonzero((np.arange(m) < seg.end_M) & (np.append(turn_M[1:], -1) == turn_M + 1))
    dst_M[nxt] = src_M[nxt + 1]
    # The trajectory's last turn (over all its rows, masked ones too) leads to the goal or
    # to an end the batch does not hold.
    tid_N, num_traj = dense_ids(batch.traj_N)
    last_T = np.full(num_traj, -1, np.int64)
    np.maximum.at(last_T, tid_N, batch.turn_N)
    final_M = (np.arange(m) == seg.end_M) & (turn_M == last_T[tid_N[rows]])
    won_M = won_J[seg.traj_M]
    dst_M[final_M & won_M] = num_states + gid_M[final_M & won_M]
    dst_M[final_M & ~won_M] = _DEAD_END
    group_V = np.empty(num_states + num_groups, np.int64)
    group_V[src_M] = gid_M
    group_V[num_states:] = np.arange(num_groups)
    has_goal_K = np.zeros(num_groups, bool)
    has_goal_K[gid_M[final_M & won_M]] = True
    dist_V, reach_V = goal_distances(src_M, dst_M, num_states + num_groups,
                                     num_states + np.flatnonzero(has_goal_K))
    dmax_K = np.zeros(num_groups, np.int64)
    np.maximum.at(dmax_K, group_V[reach_V], dist_V[reach_V])
    dist_V = np.where(reach_V, dist_V, dmax_K[group_V] + 1)
    dist_V[~has_goal_K[group_V]] = 0
    return TransitionGraph(src_M=src_M, dst_M=dst_M, group_V=group_V, dist_V=dist_V,
                           reach_V=reach_V, has_goal_K=has_goal_K, dmax_K=dmax_K)


def goal_distances(src_M: np.ndarray, dst_M: np.ndarray, num_nodes: int,
                   goals: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Fewest edges from every node to a goal node: ``(dist_V, reach_V)``.

    Breadth-first search backwards from all goals at once, one vectorised pass over the
    distinct edges per distance (groups share no node, so their searches do not mix).
    Unreached nodes get distance 0 and ``reach_V`` False.
    """
    known = dst_M >= 0
    edge_E = np.unique(np.stack([src_M[known], dst_M[known]], axis=1), axis=0)
    src_E, dst_E = edge_E[:, 0], edge_E[:, 1]
    dist_V = np.full(num_nodes, -1, np.int64)
    dist_V[goals] = 0
    frontier_V = np.zeros(num_nodes, bool)
    frontier_V[goals] = True
    depth = 0
    while frontier_V.any():
        depth += 1
        new = np.unique(src_E[frontier_V[dst_E] & (dist_V[src_E] < 0)])
        dist_V[new] = depth
        frontier_V[:] = False
        frontier_V[new] = True
    reach_V = dist_V >= 0
    return np.maximum(dist_V, 0), reach_V


def graph_metrics(graph: TransitionGraph, scored_M: np.ndarray, known_M: np.ndarray,
                  sid_S: np.ndarray, num_steps: int, adv_e_M: np.ndarray,
                  adv_g_M: np.ndarray) -> dict[str, float]:
    """Step-group sizes, the spread of both advantage parts and the graph's shape."""
    size_S = np.bincount(sid_S, minlength=num_steps)
    goal_K = graph.has_goal_K
    src_S = graph.src_M[scored_M]
    reach_S = graph.reach_V[src_S]
    nxt_S = graph.dst_M[scored_M]
    unreach_S = (nxt_S < 0) | ~graph.reach_V[np.maximum(nxt_S, 0)]
    # Distinct nodes and edges of the groups with a goal (a goal node has no out-edge).
    gid_M = graph.group_V[graph.src_M]
    in_goal_M = goal_K[gid_M]
    nodes = len(np.unique(graph.src_M[in_goal_M])) + int(goal_K.sum())
    edge = np.unique(np.stack([graph.src_M, graph.dst_M], axis=1)[in_goal_M & known_M], axis=0)
    groups = max(int(goal_K.sum()), 1)
    return {
        "algo/step_groups": float(num_steps),
        "algo/step_group_size_mean": float(size_S.mean()) if num_steps else 0.0,
        "algo/step_group_size_max": float(size_S.max()) if num_steps else 0.0,
        "algo/step_group_singleton_frac": float(np.mean(size_S == 1)) if num_steps else 0.0,
        "algo/episode_adv_std": float(adv_e_M.std()),
        "algo/step_adv_std": float(adv_g_M.std()),
        "algo/goal_groups_frac": float(goal_K.mean()),
        "algo/goal_scored_frac": float(scored_M.mean()),
        "algo/goal_unreachable_frac": float(unreach_S.mean()) if len(src_S) else 0.0,
        "algo/goal_dist_mean": (float(graph.dist_V[src_S[reach_S]].mean()) if reach_S.any()
                                else 0.0),
        "algo/goal_graph_nodes_mean": float(nodes / groups) if goal_K.any() else 0.0,
        "algo/goal_graph_edges_mean": float(len(edge) / groups) if goal_K.any() else 0.0,
    }
