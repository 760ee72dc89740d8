"""Env-side calls of the rollout engine, and the mutable state of one live episode.

The ``*_call(env, ...)`` functions run wherever the env lives (this thread, a worker
thread, a worker process or a Ray actor), so they are plain module-level functions with
picklable arguments and results. Each returns what the engine needs to record a turn.
The expert's step is :func:`turngym.harness.rollout.expert.expert_step`.
"""

from __future__ import annotations

import json
from dataclasses import MISSING, dataclass, field, fields
from typing import Any, NamedTuple, Protocol

import gymnasium as gym

from turngym.agents.agent import Agent, Prompt
from turngym.envs.core import INFO_KEYS, TurnLimit, unwrapped_turn_env
from turngym.harness.rollout.trajectory import StopReason, Turn

#: Info keys recorded in ``Turn.info`` only if they are JSON-serialisable.
_SKIP_INFO = set(INFO_KEYS) | {"turn"}
_SCALARS = (bool, int, float, str)
#: Info key tuple -> the keys of it that ``extra_info`` looks at (bounded).
_EXTRA_KEYS: dict[tuple[str, ...], tuple[str, ...]] = {}


class Policy(Protocol):
    """A scripted policy: no model, an action straight from the env
    (:class:`turngym.agents.scripted.ScriptedPolicy`, a replay, a test's own)."""

    def act(self, env: gym.Env) -> str: ...


class StepOut(NamedTuple):
    """What one env step returned, plus the key of the state it started from."""

    action: str
    obs: str
    reward: float
    terminated: bool
    truncated: bool
    info: dict[str, Any]
    state_key_before: str


def _turn_limit(env: gym.Env | None) -> TurnLimit | None:
    while env is not None:
        if isinstance(env, TurnLimit):
            return env
        env = getattr(env, "env", None)
    return None


def _state_info(env: gym.Env) -> dict[str, Any]:
    inner = unwrapped_turn_env(env)
    info = {"state_key": inner.state_key(), "action_valid": True, "won": bool(inner.won()),
            "task_id": inner.task_id, "admissible_actions": inner.admissible_actions()}
    info.update(inner.extra_info())
    return info


def reset_call(env: gym.Env, seed: int, task_id: str) -> tuple[str, dict[str, Any]]:
    """``env.reset(seed=seed, options={"task_id": task_id})``."""
    return env.reset(seed=seed, options={"task_id": task_id})


def _step(env: gym.Env, action: str, key: str | None = None) -> StepOut:
    if key is None:
        key = unwrapped_turn_env(env).state_key()
    obs, reward, term, trunc, info = env.step(action)
    return StepOut(action, obs, float(reward), bool(term), bool(trunc), info, key)


def step_call(env: gym.Env, action: str, key: str | None = None) -> StepOut:
    """One ``env.step(action)``; ``key`` is the state key before it when already known."""
    return _step(env, action, key)


def policy_step_call(env: gym.Env, policy: Policy, key: str | None = None
                     ) -> tuple[StepOut, Policy]:
    """Ask a scripted policy (``policy.act(env) -> str``) for an action and step it.

    Returns the policy too: its state (an RNG, a replay position) moves on wherever the env
    lives, and the engine keeps that copy for the episode's next turn.
    """
    action = policy.act(env)
    return _step(env, action, key), policy


def skip_turn_call(env: gym.Env) -> tuple[bool, str, bool]:
    """An unparseable response: no env step, but the turn counts toward the turn limit.

    Returns ``(truncated, state_key, won)``.
    """
    limit = _turn_limit(env)
    truncated = False
    if limit is not None:
        limit.turn += 1
        truncated = limit.turn >= limit.max_turns
    inner = unwrapped_turn_env(env)
    return truncated, inner.state_key(), bool(inner.won())


def snapshot_call(env: gym.Env) -> bytes:
    """``env.snapshot()`` (the TurnLimit wrapper keeps its count in it)."""
    return env.snapshot()


def restore_call(env: gym.Env, blob: bytes) -> tuple[str, dict[str, Any]]:
    """``env.restore(blob)``; returns the observation and info of the restored state."""
    env.restore(blob)
    return unwrapped_turn_env(env).render() or "", _state_info(env)


def replay_call(env: gym.Env, seed: int, task_id: str, actions: list[str | None]) -> bytes:
    """Reset, replay ``actions`` and return the snapshot (for forking a trajectory).

    ``None`` stands for an unparseable turn (no env step; the turn limit still counts it).
    """
    env.reset(seed=seed, options={"task_id": task_id})
    for action in actions:
        if action is None:
            skip_turn_call(env)
        else:
            env.step(action)
    return env.snapshot()


def extra_info(info: dict[str, Any]) -> dict[str, Any]:
    """The env-specific, JSON-serialisable part of an info dict."""
    keys = tuple(info)
    extra = _EXTRA_KEYS.get(keys)
    if extra is None:  # an env's info keys rarely change: cache which ones are extra
        extra = tuple(k for k in keys if k not in _SKIP_INFO)
        if len(_EXTRA_KEYS) < 256:
            _EXTRA_KEYS[keys] = extra
    out = {}
    for key in extra:
        value = info[key]
        if value is None or type(value) in _SCALARS:
            out[key] = value
            continue
        try:
            json.dumps(value)
        except (TypeError, ValueError):
            continue
        out[key] = value
    return out


_TURN_DEFAULTS = {f.name: f.default for f in fields(Turn) if f.default is not MISSING}
_TURN_FACTORIES = {f.name: f.default_factory for f in fields(Turn)
                   if f.default_factory is not MISSING}
_TURN_NAMES = frozenset(f.name for f in fields(Turn))
_TURN_REQUIRED = frozenset(f.name for f in fields(Turn)
                           if f.default is MISSING and f.default_factory is MISSING)


def make_turn(values: dict[str, Any]) -> Turn:
    """``Turn(**values)`` without the frozen-dataclass ``__init__``.

    The generated ``__init__`` of a 22-field frozen dataclass costs ~20 us (one
    ``object.__setattr__`` per field), a tenth of a Sokoban step; this builds the same
    object (equal, picklable, ``asdict``-able) in ~2 us. Unknown or missing fields raise.
    """
    if values.keys() == _TURN_NAMES:  # the engine's hot path passes every field
        turn = object.__new__(Turn)
        turn.__dict__.update(values)
        return turn
    missing = _TURN_REQUIRED.difference(values)
    unknown = set(values).difference(_TURN_REQUIRED, _TURN_DEFAULTS, _TURN_FACTORIES)
    if missing or unknown:
        raise TypeError(f"Turn fields missing {sorted(missing)}, unknown {sorted(unknown)}")
    turn = object.__new__(Turn)
    d = turn.__dict__
    d.update(_TURN_DEFAULTS)
    for name, factory in _TURN_FACTORIES.items():
        if name not in values:
            d[name] = factory()
    d.update(values)
    return turn


def task_text(obs: str, info: dict[str, Any]) -> str:
    """The task statement of an episode: ``info["task"]`` when the env gives one, else the
    first observation."""
    return str(info.get("task") or obs)


def prompt_fits(prompt: Prompt, max_prompt_tokens: int, max_tokens: int,
                max_model_len: int | None) -> bool:
    """Whether the model may act on ``prompt``: it fits ``max_prompt_tokens`` (the agent
    could not cut it down far enough otherwise) and, with ``max_model_len`` known, leaves
    room for ``max_tokens`` of response. The rollout ends an episode whose prompt does not
    fit with ``max_tokens``; SFT stops its expert episode there too."""
    n = len(prompt.ids)
    return n <= max_prompt_tokens and (max_model_len is None or n + max_tokens <= max_model_len)


@dataclass
class Episode:
    """The mutable state of one live episode inside the engine (``turngym sft`` plays its
    expert episodes on it too, so both build the same prompts)."""

    index: int
    slot: int
    group_id: str
    traj_id: str
    task_id: str
    seed: int
    obs: str = ""
    info: dict[str, Any] = field(default_factory=dict)
    task: str = ""
    """The first observation (the task statement the agent's prompt starts from)."""
    turns: list[Turn] = field(default_factory=list)
    history: list[tuple[str, str]] = field(default_factory=list)
    student_turns: int = 0
    parse_fails: int = 0
    stop: StopReason | None = None
    error: str | None = None
    won: bool = False
    env_s: float = 0.0
    model_s: float = 0.0
    micro_batch: int = 0
    turn_offset: int = 0
    """Index of this episode's first recorded turn (a fork continues its parent's count)."""
    policy: Policy | None = None
    """This episode's own copy of a scripted policy (None with a backend)."""
    notice: str = ""
    """Text put before the next observation (why the last response was not understood)."""

    @property
    def live(self) -> bool:
        return self.stop is None

    def end(self, reason: StopReason, error: str | None = None) -> None:
        """Mark the episode finished (the first reason wins)."""
        if self.stop is None:
            self.stop, self.error = reason, error

    def start(self, obs: str, info: dict[str, Any]) -> None:
        """Take the first observation after ``reset``: the task statement is
        ``info["task"]`` when the env gives one, else the first observation."""
        self.obs, self.info = obs, info
        self.task = task_text(obs, info)

    def prompt(self, agent: Agent, tools: list[dict[str, Any]] | None) -> Prompt:
        """The agent's :class:`~turngym.agents.agent.Prompt` for this episode's next turn: the task,
        the memory window of ``history``, the notice about an unparseable last response
        before the observation, the admissible actions and the env's ``tools``.

        The rollout engine and ``turngym sft`` both build prompts here, so SFT trains on
        exactly the prompts the policy sees.
        """
        return agent.build_prompt(task=self.task, history=self.history,
                                  observation=self.notice + self.obs,
                                  admissible=self.info.get("admissible_actions"), tools=tools)

    def turn_base(self) -> dict[str, Any]:
        """The id fields shared by every :class:`Turn` of this episode."""
        return {"group_id": self.group_id, "traj_id": self.traj_id, "task_id": self.task_id,
                "turn": self.turn_offset + len(self.turns)}

    def apply(self, out: StepOut, response_text: str) -> tuple[bool, bool]:
        """Update obs/info/history after a step; returns ``(done, won)`` and ends the
        episode on ``terminated``/``truncated``."""
        self.history.append((self.obs, response_text))  # (what it saw, what it said)
        self.obs, self.info = out.obs, out.info
        self.won = bool(out.info.get("won", False))
        if out.terminated:
            self.end(StopReason.TERMINATED)
        elif out.truncated:
            self.end(StopReason.TRUNCATED)
        return out.terminated or out.truncated, self.won
