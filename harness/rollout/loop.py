"""The per-turn loop of :class:`turngym.harness.rollout.engine.RolloutEngine` over a set of
episodes.

One :class:`EpisodeLoop` per ``run``/``fork`` call: reset every env, replay the expert
prefix, then loop student turns until no episode is live. See
:mod:`turngym.harness.rollout.engine` for the decisions on invalid output, env errors and
overlap.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Protocol

from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    TaskID,
    TextColumn,
    TimeElapsedColumn,
)

from turngym.agents.agent import Agent
from turngym.agents.backend import Backend, Generation
from turngym.envs.core import unwrapped_turn_env
from turngym.harness.rollout import calls as calls
from turngym.harness.rollout.calls import Episode, Policy, StepOut
from turngym.harness.rollout.config import RolloutConfig
from turngym.harness.rollout.expert import expert_response, expert_step
from turngym.harness.rollout.trajectory import StopReason, Trajectory, Turn
from turngym.harness.rollout.workers import CallResult, EnvPool, InlinePool

logger = logging.getLogger(__name__)

#: Notice put before the observation after an unparseable response.
PARSE_NOTICE = ("Your last response could not be used: {error}. Nothing happened; answer "
                "in the required format.\n")


class ProgressBar:
    """A rich progress bar of finished episodes; a no-op when disabled."""

    def __init__(self, total: int, description: str, enabled: bool = True):
        self.enabled, self.total, self.description = enabled, total, description
        self._progress: Progress | None = None
        self._task: TaskID | None = None

    def __enter__(self) -> ProgressBar:
        if self.enabled:
            self._progress = Progress(TextColumn("{task.description}"), BarColumn(),
                                      MofNCompleteColumn(), TimeElapsedColumn(), transient=True)
            self._progress.start()
            self._task = self._progress.add_task(self.description, total=self.total)
        return self

    def update(self, done: int) -> None:
        if self._progress is not None:
            self._progress.update(self._task, completed=done)

    def __exit__(self, *exc: object) -> None:
        if self._progress is not None:
            self._progress.stop()


@dataclass
class _Pending:
    """An env call in flight for one episode's turn."""

    ep: Episode
    kind: str
    """``step`` (a parsed action), ``skip`` (unparseable response) or ``scripted``."""
    handle: Any
    """The pool's handle of the call (:meth:`EnvPool.submit`; its type is the pool's own)."""
    fields: dict[str, Any]
    """Turn fields known before the step (ids, logprobs, texts)."""


class LoopEngine(Protocol):
    """What :class:`EpisodeLoop` uses of its engine, a
    :class:`~turngym.harness.rollout.engine.RolloutEngine` (named by this protocol because the
    engine module imports this one)."""

    cfg: RolloutConfig
    agent: Agent | None
    backend: Backend | None
    tools: list[dict[str, Any]] | None
    on_episodes: Callable[[int, int, int], object] | None

    def episode_policy(self, e: Episode) -> Policy: ...

    def generate(self, prompts_ids: list[list[int]], metrics: dict[str, float]
                 ) -> list[Generation]: ...


class EpisodeLoop:
    """Drives ``episodes`` on ``pool`` for ``engine`` (reset, expert prefix, student turns)."""

    def __init__(self, engine: LoopEngine, pool: EnvPool, episodes: list[Episode]):
        self.engine, self.pool, self.episodes = engine, pool, episodes
        self.bar: ProgressBar | None = None
        self.counts: dict[str, float] = {}
        self.model_wall = 0.0
        self.env_wait = 0.0
        self.agent_wall = 0.0
        self.tokens = 0  # generated, for the progress hook
        self._rebuilds0, self._timeouts0 = pool.rebuilds, pool.timeouts

    # ------------------------------------------------------------------ phases
    def reset_all(self) -> None:
        """Reset every env with its episode's ``(seed, task_id)``."""
        eps = self.episodes
        results = self._collect([self.pool.submit(e.slot, calls.reset_call, e.seed, e.task_id)
                                 for e in eps])
        for e, r in zip(eps, results):
            e.env_s += r.seconds
            if r.ok:
                e.start(*r.value)
            else:
                e.end(StopReason.ENV_ERROR, f"reset failed: {r.error}")
                self._count("rollout/env_errors")
        self._progress()

    def expert_prefix(self, c: int) -> None:
        """Replay up to ``c`` expert actions per episode as ``trainable=False`` turns."""
        active = [e for e in self.episodes if e.live]
        for _ in range(c):
            if not active:
                break
            results = self._collect([self.pool.submit(e.slot, expert_step)
                                     for e in active])
            still = []
            for e, r in zip(active, results):
                e.env_s += r.seconds
                if not r.ok:
                    self._env_failed(e, r, {"response_text": "", "action": ""})
                elif r.value is not None:
                    out: StepOut = r.value
                    text = expert_response(out.action, self.engine.tools)
                    self._record_step(e, out, dict(response_text=text, action=out.action,
                                                   trainable=False))
                    if e.live:
                        still.append(e)
            active = still
        self._progress()

    def student_turns(self, horizon: int | None) -> None:
        """Loop turns until no episode is live, with micro-batch pipelining."""
        eng = self.engine
        live = [e for e in self.episodes if e.live]
        if eng.backend is None and isinstance(self.pool, InlinePool) and not self.pool.concurrent:
            while live:  # the hot path of fast envs: see _scripted_inline
                live = self._apply_horizon(live, horizon)
                self._scripted_inline(live)
                live = [e for e in live if e.stop is None]
                self._progress()
            return
        splits = eng.cfg.pipeline_splits if (self.pool.concurrent and eng.backend) else 1
        for pos, e in enumerate(live):
            e.micro_batch = pos % splits
        pending: dict[int, list[_Pending]] = {}
        while True:
            for m in range(splits):
                if m in pending:
                    self._finish(pending.pop(m))
                batch = [e for e in self.episodes if e.live and e.micro_batch == m]
                batch = self._apply_horizon(batch, horizon)
                if batch:
                    pending[m] = self._act(batch)
            if not pending:
                break

    # ------------------------------------------------------------------ acting
    def _apply_horizon(self, batch: list[Episode], horizon: int | None) -> list[Episode]:
        if horizon is None:
            return batch
        for e in batch:
            if e.student_turns >= horizon:
                e.end(StopReason.HORIZON)
        self._progress()
        return [e for e in batch if e.live]

    def _act(self, batch: list[Episode]) -> list[_Pending]:
        if self.engine.backend is None:
            for e in batch:
                if e.policy is None:
                    e.policy = self.engine.episode_policy(e)
            return [_Pending(e, "scripted", self.pool.submit(
                e.slot, calls.policy_step_call, e.policy, e.info.get("state_key")), {})
                for e in batch]
        return self._act_model(batch)

    def _scripted_inline(self, batch: list[Episode]) -> None:
        """One scripted turn of every episode in ``batch`` on an inline pool.

        The same turns as ``_act`` + ``_finish`` (same policy call, same step, same fields,
        same env-error handling through :meth:`InlinePool.fail`), without per-call handles,
        result tuples and field dicts: for a microsecond env those cost as much as the step.
        ``Episode.history`` is not kept: only a model's prompt reads it.
        """
        pool: InlinePool = self.pool  # type: ignore[assignment]
        env_list, clock, new, extra_info = pool.envs, time.perf_counter, object.__new__, \
            calls.extra_info
        for e in batch:
            policy = e.policy
            if policy is None:
                policy = e.policy = self.engine.episode_policy(e)
            env = env_list[e.slot]
            key = e.info.get("state_key")
            t0 = clock()
            try:
                action = policy.act(env)
                if key is None:
                    key = unwrapped_turn_env(env).state_key()
                obs, reward, term, trunc, info = env.step(action)
                reward, term, trunc = float(reward), bool(term), bool(trunc)
            except Exception as exc:  # noqa: BLE001 - an env bug ends one episode, not the run
                r = pool.fail(e.slot, exc, clock() - t0)
                e.env_s += r.seconds
                e.student_turns += 1
                self._env_failed(e, r, {})
                continue
            e.env_s += clock() - t0
            e.student_turns += 1
            won = bool(info.get("won", False))
            turn = new(Turn)  # = calls.new_turn(...) inlined: this loop is the hot path
            turn.__dict__.update({
                "group_id": e.group_id, "traj_id": e.traj_id, "task_id": e.task_id,
                "turn": e.turn_offset + len(e.turns), "prompt_ids": [], "response_ids": [],
                "response_logprobs": [], "reward": reward, "state_key": key,
                "action_valid": bool(info.get("action_valid", False)), "done": term or trunc,
                "won": won, "prompt_text": "", "response_text": action, "action": action,
                "observation": obs, "trainable": True, "teacher_logprobs": None,
                "ref_logprobs": None, "prompt_truncated": False, "info": extra_info(info),
                "format_valid": True})
            e.turns.append(turn)
            e.obs, e.info, e.won = obs, info, won
            if term:
                e.end(StopReason.TERMINATED)
            elif trunc:
                e.end(StopReason.TRUNCATED)

    def _act_model(self, batch: list[Episode]) -> list[_Pending]:
        eng = self.engine
        agent, backend = eng.agent, eng.backend
        ready = []
        t_agent = time.perf_counter()
        for e in batch:
            prompt = e.prompt(agent, eng.tools)
            if not calls.prompt_fits(prompt, agent.max_prompt_tokens, eng.cfg.max_tokens,
                                     getattr(backend, "max_model_len", None)):
                e.end(StopReason.MAX_TOKENS)
            else:
                ready.append((e, prompt))
        self.agent_wall += time.perf_counter() - t_agent
        if not ready:
            self._progress()
            return []
        t0 = time.perf_counter()
        gens = eng.generate([p.ids for _, p in ready], self.counts)
        wall = time.perf_counter() - t0
        self.model_wall += wall
        self.tokens += sum(len(g.ids) for g in gens)
        self._count("rollout/generate_calls")
        pending = []
        for (e, prompt), gen in zip(ready, gens):
            e.model_s += wall / len(ready)
            t_parse = time.perf_counter()
            parsed = agent.parse(gen.text, admissible=e.info.get("admissible_actions"),
                                 tools=eng.tools)
            self.agent_wall += time.perf_counter() - t_parse
            fields = dict(prompt_ids=list(prompt.ids), response_ids=list(gen.ids),
                          response_logprobs=list(gen.logprobs), prompt_text=prompt.text,
                          response_text=gen.text, prompt_truncated=prompt.truncated,
                          action=parsed.action if parsed.valid else "")
            if parsed.valid:
                handle = self.pool.submit(e.slot, calls.step_call, parsed.action,
                                          e.info.get("state_key"))
                pending.append(_Pending(e, "step", handle, fields))
            else:
                fields["info"] = {"parse_error": parsed.error or "no action found"}
                pending.append(_Pending(e, "skip", self.pool.submit(e.slot, calls.skip_turn_call),
                                        fields))
        return pending

    def _finish(self, pending: list[_Pending]) -> None:
        results = self._collect([p.handle for p in pending])
        for p, r in zip(pending, results):
            e = p.ep
            e.env_s += r.seconds
            e.student_turns += 1
            if not r.ok:
                self._env_failed(e, r, p.fields)
            elif p.kind == "skip":
                self._record_skip(e, r.value, p.fields)
            else:
                out, e.policy = r.value if p.kind == "scripted" else (r.value, e.policy)
                e.notice = ""
                e.parse_fails = 0
                self._record_step(e, out, p.fields)
        self._progress()

    # ------------------------------------------------------------------ recording
    def _record_step(self, e: Episode, out: StepOut, fields: dict[str, Any]) -> None:
        info = out.info
        extra = calls.extra_info(info)
        if "info" in fields:
            extra.update(fields["info"])
        values = {"group_id": e.group_id, "traj_id": e.traj_id, "task_id": e.task_id,
                  "turn": e.turn_offset + len(e.turns), "prompt_ids": [], "response_ids": [],
                  "response_logprobs": [], "reward": out.reward,
                  "state_key": out.state_key_before,
                  "action_valid": bool(info.get("action_valid", False)),
                  "done": out.terminated or out.truncated, "won": bool(info.get("won", False)),
                  "prompt_text": "", "response_text": out.action, "action": out.action,
                  "observation": out.obs, "trainable": True, "teacher_logprobs": None,
                  "ref_logprobs": None, "prompt_truncated": False, "format_valid": True}
        values.update(fields)
        values["info"] = extra
        e.turns.append(calls.make_turn(values))  # hot path: see make_turn
        e.apply(out, values["response_text"])

    def _record_skip(self, e: Episode, value: tuple[bool, str, bool], fields: dict) -> None:
        truncated, key, won = value
        e.parse_fails += 1
        e.notice = PARSE_NOTICE.format(error=fields["info"]["parse_error"].rstrip("."))
        limit = self.engine.cfg.max_parse_errors
        stop = limit is not None and e.parse_fails >= limit
        e.turns.append(Turn(**e.turn_base(), reward=0.0, state_key=key, action_valid=False,
                            format_valid=False, done=truncated or stop, won=won,
                            observation=e.notice + e.obs, **fields))
        e.history.append((e.obs, fields["response_text"]))
        if truncated:
            e.end(StopReason.TRUNCATED)
        elif stop:
            e.end(StopReason.PARSE_ERROR)

    def _env_failed(self, e: Episode, r: CallResult, fields: dict[str, Any]) -> None:
        fields = {"prompt_ids": [], "response_ids": [], "response_logprobs": [], **fields}
        info = {**fields.pop("info", {}), "env_error": r.error}
        fields.pop("trainable", None)
        e.turns.append(Turn(**e.turn_base(), reward=0.0,
                            state_key=str(e.info.get("state_key", "")), action_valid=False,
                            format_valid="parse_error" not in info, done=True, won=False,
                            observation="", trainable=False, info=info, **fields))
        e.end(StopReason.ENV_ERROR, r.error)
        self._count("rollout/env_errors")
        logger.warning("episode %s ended with env_error: %s", e.traj_id, r.error)

    # ------------------------------------------------------------------ bookkeeping
    def _collect(self, handles: list[Any]) -> list[CallResult]:
        t0 = time.perf_counter()
        results = self.pool.collect(handles)
        self.env_wait += time.perf_counter() - t0
        return results

    def _count(self, key: str, n: float = 1.0) -> None:
        self.counts[key] = self.counts.get(key, 0.0) + n

    def _progress(self) -> None:
        hook = getattr(self.engine, "on_episodes", None)  # RolloutEngine.on_episodes
        bar = self.bar is not None and self.bar.enabled
        if bar or hook is not None:
            done = sum(not e.live for e in self.episodes)
            if bar:
                self.bar.update(done)
            if hook is not None:
                hook(done, len(self.episodes), self.tokens)

    def metrics(self, wall_s: float, trajs: list[Trajectory]) -> dict[str, float]:
        """Engine-level numbers of this loop (``rollout/*`` keys)."""
        turns = sum(t.num_turns for t in trajs)
        out = {"rollout/episodes": float(len(trajs)), "rollout/turns_total": float(turns),
               "rollout/wall_s": wall_s, "rollout/turns_per_s": turns / max(wall_s, 1e-9),
               "rollout/model_wall_s": self.model_wall, "rollout/env_wait_s": self.env_wait,
               "rollout/agent_wall_s": self.agent_wall,
               "rollout/env_errors": 0.0, "rollout/backend_retries": 0.0,
               "rollout/generate_calls": 0.0,
               "rollout/env_timeouts": float(self.pool.timeouts - self._timeouts0),
               "rollout/env_rebuilds": float(self.pool.rebuilds - self._rebuilds0)}
        out.update(self.counts)
        return out
