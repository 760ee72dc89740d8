"""The rollout engine: N tasks x G rollouts, one batched ``generate`` per turn.

Per turn, over all live episodes: build prompts (``Agent.build_prompt``) -> one
``backend.generate`` call -> ``Agent.parse`` -> env steps on a worker pool
(:mod:`turngym.harness.rollout.workers`) -> one
:class:`~turngym.harness.rollout.trajectory.Turn` per episode. Finished episodes leave the
batch.

Overlap: with a concurrent pool (threads, processes, ray) the live episodes are split into
``pipeline_splits`` fixed micro-batches; while micro-batch A's envs step, the backend
generates for micro-batch B. Wall time per turn approaches max(env, model), not the sum.

Decisions (documented in ``docs/rollout.md``):

* An unparseable response is an invalid turn: the env is *not* stepped (its state is
  unchanged), the turn counts toward the turn limit, ``action_valid=False`` and
  ``format_valid=False`` (every other turn has ``format_valid=True``), and the next
  observation starts with a notice of what was wrong. ``max_parse_errors`` optionally ends
  the episode with ``parse_error``.
* An env call that raises or times out ends that episode with ``env_error`` (the error text
  is in ``Trajectory.error``); the turn is recorded with ``trainable=False`` and the env is
  rebuilt. A backend error is retried with exponential backoff, then the run fails with
  :class:`~turngym.errors.BackendError` (finished trajectories ride on the exception as
  ``partial_trajectories``).
* Expert-prefix turns (TCOD b2f) have empty prompt/response ids, ``trainable=False`` and
  ``response_text = expert_response(A)`` (``<action>A</action>``; a ``<tool_call>`` in a
  tool env), so the student's history window shows them
  (:mod:`turngym.harness.rollout.expert`: the one place the expert is played).
* Prompts come from :meth:`~turngym.harness.rollout.calls.Episode.prompt`, which ``turngym sft``
  uses too (with ``expert_response`` as its target), so SFT trains on these prompts.
* ``state_key`` of a turn is the key of the state the model acted *from*.
"""

from __future__ import annotations

import contextlib
import copy
import gc
import logging
import time
from collections.abc import Callable, Iterator

import numpy as np

from turngym import envs
from turngym.agents.agent import Agent
from turngym.agents.backend import Backend, Generation, SamplingParams
from turngym.errors import BackendError, ConfigError
from turngym.harness.rollout import calls as calls
from turngym.harness.rollout import ray_pool as _ray_pool  # noqa: F401 - the "ray" pool kind
from turngym.harness.rollout.calls import Episode, Policy
from turngym.harness.rollout.config import RolloutConfig
from turngym.harness.rollout.loop import EpisodeLoop, ProgressBar
from turngym.harness.rollout.procs import ScriptedProcessPool, merge_metrics
from turngym.harness.rollout.trajectory import Group, StopReason, Trajectory
from turngym.harness.rollout.workers import EnvFactory, EnvPool, make_pool

logger = logging.getLogger(__name__)

__all__ = ["RolloutConfig", "RolloutEngine", "episode_seed"]


def episode_seed(policy_seed: int, run_seed: int, index: int) -> int:
    """The seed of episode ``index``'s scripted-policy copy."""
    state = np.random.SeedSequence([policy_seed, run_seed, index]).generate_state(1)
    return int(state[0] & 0x7FFFFFFF)


class RolloutEngine:
    """Runs groups of episodes of one env with a backend (+ agent) or a scripted policy.

    Args:
        env_id: registered env id (must equal ``cfg.env_id`` when both are given).
        backend_or_policy: an :class:`turngym.agents.backend.Backend` (needs ``agent``) or a
            scripted policy with ``act(env) -> str`` (no model: prompt/response ids stay
            empty).
        agent: an ``turngym.agents.agent.Agent`` (``build_prompt`` / ``parse``).
        cfg: the :class:`RolloutConfig`; defaults to ``RolloutConfig(env_id=env_id)``.
    """

    def __init__(self, env_id: str, backend_or_policy: Backend | Policy,
                 agent: Agent | None = None, cfg: RolloutConfig | None = None):
        cfg = cfg or RolloutConfig.build(env_id=env_id)
        if cfg.env_id != env_id:
            raise ConfigError(f"rollout.env_id is {cfg.env_id!r} but the engine was built for "
                              f"{env_id!r}")
        self.cfg, self.env_id, self.agent = cfg, env_id, agent
        self.backend = backend_or_policy if isinstance(backend_or_policy, Backend) else None
        self.policy: Policy | None = (None if self.backend is not None
                                      else backend_or_policy)
        if self.backend is not None and agent is None:
            raise ConfigError("a backend needs an agent (turngym.agents.agent.Agent) to build "
                              "prompts")
        if self.policy is not None and not callable(getattr(self.policy, "act", None)):
            raise ConfigError(f"{type(backend_or_policy).__name__} is neither a Backend nor a "
                              "scripted policy with act(env)")
        env_spec = envs.spec(env_id)  # unknown ids fail here with a "did you mean"
        self.env_cls = env_spec.load()
        self.tools = getattr(self.env_cls, "tools", None)
        self.factory = EnvFactory.for_env(env_id, cfg.env_kwargs, cfg.max_turns)
        self.mode: str | None = None
        self._pool: EnvPool | None = None
        self._procs: ScriptedProcessPool | None = None
        self._generate_calls = 0
        self.last_metrics: dict[str, float] = {}
        self.on_episodes: Callable[[int, int, int], object] | None = None
        """``on_episodes(done, total, tokens)``: called as episodes of a run finish (running
        counts; ``tokens`` generated so far), e.g.
        :meth:`turngym.harness.ui.progress.Progress.advance`."""

    # ------------------------------------------------------------------ pool
    def resolve_mode(self) -> str:
        """The step mode actually used (``auto`` resolved once, see RolloutConfig)."""
        if self.mode is not None:
            return self.mode
        cfg = self.cfg
        if cfg.workers == "ray":
            self.mode = "ray"
        elif cfg.step_mode != "auto":
            self.mode = cfg.step_mode
        elif getattr(self.env_cls, "slow_steps", False):
            self.mode = "threads"
        else:
            self.mode = "inline" if self._probe_reset_s() <= cfg.inline_max_reset_s else "threads"
        if self.mode == "inline" and cfg.env_timeout_s is not None:
            logger.info("%s resets in microseconds: stepping inline, env_timeout_s not "
                        "enforced (set step_mode=threads to enforce it)", self.env_id)
        return self.mode

    def _probe_reset_s(self) -> float:
        env = self.factory()
        try:
            task_id = env.unwrapped.task_ids()[0]
            times = []
            for _ in range(2):  # the first reset may fill caches
                t0 = time.perf_counter()
                env.reset(seed=0, options={"task_id": task_id})
                times.append(time.perf_counter() - t0)
            return min(times)
        finally:
            env.close()

    def _get_pool(self, n_slots: int) -> EnvPool:
        if self._pool is not None and self._pool.n_slots >= n_slots:
            return self._pool
        if self._pool is not None:
            self._pool.close()
        self._pool = make_pool(self.resolve_mode(), self.factory, n_slots,
                               timeout_s=self.cfg.env_timeout_s, num_workers=self.cfg.num_workers)
        return self._pool

    def close(self) -> None:
        """Close the env pool and worker processes (a later run builds new ones). Safe to
        call twice."""
        if self._pool is not None:
            self._pool.close()
            self._pool = None
        if self._procs is not None:
            self._procs.close()
            self._procs = None

    # ------------------------------------------------------------------ public API
    def run(self, tasks: list[tuple[str, int]], *, horizon: int | None = None,
            expert_prefix: int = 0, progress: bool = True, id_prefix: str = "") -> list[Group]:
        """Run ``cfg.group_size`` rollouts of every ``(task_id, seed)``.

        Args:
            tasks: ``(task_id, seed)`` pairs; each gives one :class:`Group`.
            horizon: TCOD f2b: stop after this many *student* turns (stop reason ``horizon``).
            expert_prefix: TCOD b2f: replay up to this many expert actions first
                (``trainable=False`` turns).
            progress: show a progress bar of finished episodes.
            id_prefix: prepended to group and trajectory ids (e.g. ``"step3/"``).
        """
        if horizon is not None and horizon < 0:
            raise ConfigError(f"horizon must be >= 0, got {horizon}")
        if expert_prefix < 0:
            raise ConfigError(f"expert_prefix must be >= 0, got {expert_prefix}")
        if self.policy is not None and self.cfg.scripted_processes > 1 and len(tasks) > 1:
            return self._run_in_processes(tasks, horizon, expert_prefix, progress, id_prefix)
        episodes = self.make_episodes(tasks, id_prefix)
        return self.drive(episodes, horizon, expert_prefix, progress, reset=True)

    def fork(self, snapshot: bytes, *, task_id: str, seed: int, n: int | None = None,
             history: list[tuple[str, str]] | None = None, task: str = "",
             start_turn: int = 0, horizon: int | None = None, progress: bool = False,
             group_id: str | None = None) -> Group:
        """Branching rollouts: ``n`` (default G) continuations from ``snapshot``.

        ``history``/``task`` seed the agent's memory window; turn indices start at
        ``start_turn``. Returns one group whose trajectories share ``task_id`` and seed.
        """
        n = n or self.cfg.group_size
        gid = group_id or f"fork/{task_id}@{seed}/t{start_turn}"
        episodes = [Episode(index=i, slot=i, group_id=gid, traj_id=f"{gid}/{i}",
                            task_id=task_id, seed=seed, task=task,
                            history=list(history or []), turn_offset=start_turn)
                    for i in range(n)]
        pool = self._get_pool(n)
        results = pool.map([e.slot for e in episodes], calls.restore_call,
                           [(snapshot,)] * n)
        for e, r in zip(episodes, results):
            if r.ok:
                e.obs, e.info = r.value
                e.task = e.task or e.obs
            else:
                e.end(StopReason.ENV_ERROR, f"restore failed: {r.error}")
        return self.drive(episodes, horizon, 0, progress, reset=False)[0]

    def fork_trajectory(self, traj: Trajectory, at_turn: int, *, n: int | None = None,
                        horizon: int | None = None, progress: bool = False) -> Group:
        """Fork ``traj`` at turn ``at_turn``: replay its first ``at_turn`` actions from
        ``reset(seed, task_id)``, check the state key, and run ``n`` continuations."""
        if not 0 <= at_turn <= len(traj.turns):
            raise ConfigError(f"at_turn must be in 0..{len(traj.turns)}, got {at_turn}")
        env = self.factory()
        try:
            first_obs, info0 = env.reset(seed=traj.seed, options={"task_id": traj.task_id})
            actions = [None if "parse_error" in t.info else t.action
                       for t in traj.turns[:at_turn]]
            blob = calls.replay_call(env, traj.seed, traj.task_id, actions)
            key = env.unwrapped.state_key()
        finally:
            env.close()
        if at_turn < len(traj.turns) and key != traj.turns[at_turn].state_key:
            raise ConfigError(f"replaying {traj.traj_id} to turn {at_turn} reached a different "
                              "state; the env is not deterministic under its seed")
        obs_before = [first_obs] + [t.observation for t in traj.turns[:at_turn]]
        history = [(obs_before[k], t.response_text) for k, t in enumerate(traj.turns[:at_turn])]
        return self.fork(blob, task_id=traj.task_id, seed=traj.seed, n=n, history=history,
                         task=calls.task_text(first_obs, info0), start_turn=at_turn,
                         horizon=horizon, progress=progress,
                         group_id=f"{traj.traj_id}/fork{at_turn}")

    # ------------------------------------------------------------------ driver
    def make_episodes(self, tasks: list[tuple[str, int]], prefix: str,
                      group_index: list[int] | None = None) -> list[Episode]:
        """One :class:`Episode` per rollout of each ``(task_id, seed)``. ``group_index[k]`` is
        task ``k``'s position in the whole run (ids and policy seeds follow it; a worker
        process plays a share of a run), default ``k``; env slots are local."""
        episodes: list[Episode] = []
        G = self.cfg.group_size
        for n, item in enumerate(tasks):
            try:
                task_id, seed = str(item[0]), int(item[1])
            except (TypeError, ValueError, IndexError):
                raise ConfigError(f"task {n} is {item!r}; expected (task_id, seed)") from None
            k = n if group_index is None else int(group_index[n])
            gid = f"{prefix}g{k:04d}:{task_id}@{seed}"
            for j in range(G):
                episodes.append(Episode(index=k * G + j, slot=len(episodes), group_id=gid,
                                        traj_id=f"{gid}/{j}", task_id=task_id, seed=seed))
        return episodes

    def _run_in_processes(self, tasks: list[tuple[str, int]], horizon: int | None,
                          expert_prefix: int, progress: bool, id_prefix: str) -> list[Group]:
        """Scripted policy: whole groups in ``cfg.scripted_processes`` worker processes
        (:mod:`turngym.harness.rollout.procs`); the same trajectories as one process."""
        t0 = time.perf_counter()
        if self._procs is None:
            # workers hold plain inline engines (pickled by reference: RolloutEngine)
            self._procs = ScriptedProcessPool(RolloutEngine, self.env_id, self.factory.spec,
                                              self.policy, self.cfg, self.cfg.scripted_processes)

        G = self.cfg.group_size
        with ProgressBar(len(tasks) * G, f"rollout {self.env_id}", enabled=progress) as bar:
            groups, parts = self._procs.run(tasks, horizon, expert_prefix, id_prefix, self,
                                            on_done=lambda n: self._done(bar, n * G, bar.total))
        self.last_metrics = merge_metrics(parts, time.perf_counter() - t0)
        self.last_metrics["rollout/processes"] = float(self._procs.n)
        return groups

    def _done(self, bar: ProgressBar, done: int, total: int) -> None:
        bar.update(done)
        if self.on_episodes is not None:
            self.on_episodes(done, total, 0)

    def drive(self, episodes: list[Episode], horizon: int | None, expert_prefix: int,
              progress: bool, reset: bool) -> list[Group]:
        """Play ``episodes`` to the end on this process's env pool; returns their groups."""
        t0 = time.perf_counter()
        pool = self._get_pool(len(episodes))
        loop = EpisodeLoop(self, pool, episodes)
        bar = ProgressBar(len(episodes), f"rollout {self.env_id}", enabled=progress)
        with _gc_paused(self.cfg.pause_gc), bar:
            loop.bar = bar
            try:
                if reset:
                    loop.reset_all()
                if expert_prefix:
                    loop.expert_prefix(expert_prefix)
                loop.student_turns(horizon)
            except BackendError as exc:
                exc.partial_trajectories = [self._finish(e) for e in episodes if not e.live]
                logger.error("backend failed; %d finished and %d unfinished episodes",
                             len(exc.partial_trajectories),
                             sum(e.live for e in episodes))
                raise
        trajs = [self._finish(e) for e in episodes]
        self.last_metrics = loop.metrics(time.perf_counter() - t0, trajs)
        return _group(trajs)

    def _finish(self, e: Episode) -> Trajectory:
        return Trajectory(group_id=e.group_id, traj_id=e.traj_id, task_id=e.task_id,
                          seed=e.seed, env_id=self.env_id, turns=tuple(e.turns),
                          stop_reason=e.stop or StopReason.TRUNCATED, won=e.won, error=e.error,
                          task_type=e.info.get("task_type") if e.info else None,
                          metrics={"env_s": e.env_s, "model_s": e.model_s,
                                   "student_turns": float(e.student_turns)})

    def episode_policy(self, e: Episode) -> Policy:
        """A copy of the scripted policy for episode ``e``. A policy with ``seed`` and
        ``reset()`` (``turngym.agents.scripted.ScriptedPolicy``) is reseeded from its seed, the run
        seed and the episode index, so episodes differ and runs repeat."""
        if not (hasattr(self.policy, "seed") and callable(getattr(self.policy, "reset", None))):
            return copy.deepcopy(self.policy)
        policy = copy.copy(self.policy)  # reset() below gives the copy its own state
        policy.seed = episode_seed(int(getattr(self.policy, "seed", 0) or 0), self.cfg.seed,
                                   e.index)
        policy.reset()
        return policy

    # ------------------------------------------------------------------ generation
    def state_dict(self) -> dict[str, int]:
        """The engine's sampling-seed counter: restoring it makes resumed runs sample the
        same seeds as an uninterrupted run."""
        return {"generate_calls": self._generate_calls}

    def load_state_dict(self, state: dict[str, int]) -> None:
        self._generate_calls = int(state["generate_calls"])

    def next_sampling(self) -> SamplingParams:
        """Sampling params of the next generate call; its seed is derived from the run
        seed and the call count, so a fresh engine with the same seed repeats itself."""
        state = np.random.SeedSequence([self.cfg.seed, self._generate_calls]).generate_state(1)
        self._generate_calls += 1
        c = self.cfg
        return SamplingParams(temperature=c.temperature, top_p=c.top_p, top_k=c.top_k,
                              max_tokens=c.max_tokens, stop=tuple(c.stop),
                              seed=int(state[0] & 0x7FFFFFFF))

    def generate(self, prompts_ids: list[list[int]], metrics: dict[str, float]
                 ) -> list[Generation]:
        """One batched ``backend.generate`` with retries; raises BackendError at the end."""
        sampling = self.next_sampling()
        attempts = self.cfg.backend_retries + 1
        last: Exception | None = None
        for attempt in range(attempts):
            try:
                gens = self.backend.generate(prompts_ids, sampling)
                if len(gens) != len(prompts_ids):
                    raise BackendError(f"returned {len(gens)} generations for "
                                       f"{len(prompts_ids)} prompts")
                return gens
            except Exception as exc:  # noqa: BLE001 - retried below, then reported with its type
                last = exc
                metrics["rollout/backend_retries"] = metrics.get("rollout/backend_retries",
                                                                 0.0) + 1
                logger.warning("generate failed (attempt %d/%d): %s: %s", attempt + 1,
                               attempts, type(exc).__name__, exc)
                if attempt + 1 < attempts:
                    time.sleep(self.cfg.backend_backoff_s * 2 ** attempt)
        raise BackendError(f"backend {type(self.backend).__name__} failed {attempts} time(s) in "
                           f"a row; last error: {type(last).__name__}: {last}. Check the model "
                           "server / engine, or raise rollout.backend_retries.") from last


@contextlib.contextmanager
def _gc_paused(pause: bool) -> Iterator[None]:
    """Disable the cyclic GC inside the block when ``pause`` (restored after)."""
    was_enabled = gc.isenabled()
    if pause:
        gc.disable()
    try:
        yield
    finally:
        if was_enabled:
            gc.enable()


def _group(trajs: list[Trajectory]) -> list[Group]:
    groups: dict[str, list[Trajectory]] = {}
    for t in trajs:
        groups.setdefault(t.group_id, []).append(t)
    return [Group(gid, ts[0].task_id, ts[0].seed, tuple(ts)) for gid, ts in groups.items()]

