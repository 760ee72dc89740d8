"""The turngym environment contract.

An environment is a :class:`gymnasium.Env` whose observations and actions are ``str``.
This module is written to the person who implements one. Subclass :class:`TurnEnv`, give
it a class docstring that lists action format, observation format, tools, rewards,
episode end, info keys and arguments, and implement the abstract methods below.

Contract (checked for every registered env by :mod:`envs.checker`):

* ``reset(*, seed=None, options=None) -> (obs, info)``;
  ``options={"task_id": ...}`` picks the task. The same ``task_id`` and ``seed`` give the
  same first observation and the same ``state_key``.
* ``step(action) -> (obs, reward, terminated, truncated, info)``. ``terminated`` means the
  task ended (success, failure, or an answer was given); ``truncated`` means a budget ran
  out. Never both. The turn budget is :class:`TurnLimit`, applied by :func:`envs.make`.
* Every ``info`` carries :data:`INFO_KEYS`.
* Invalid input never raises: it is a step with ``action_valid=False``, an observation that
  says what was wrong, and the state unchanged.
* ``snapshot() -> bytes`` / ``restore(bytes)`` copy the complete state.
* ``expert_action() -> str | None`` returns a correct next action from the current state.
* All randomness comes from ``self.np_random``, seeded in ``reset``.
"""

from __future__ import annotations

import abc
import pickle
from typing import Any, ClassVar, SupportsFloat

import gymnasium as gym
from gymnasium import spaces

from envs.errors import UnknownTaskError

#: Info keys every env returns after every ``reset`` and ``step``.
INFO_KEYS: tuple[str, ...] = ("state_key", "action_valid", "won", "task_id", "admissible_actions")

#: The longest action string an env has to look at; longer input is invalid, not an error.
MAX_ACTION_CHARS = 4096

_CHARSET = "".join(chr(c) for c in range(32, 127)) + "\n\t"
#: Gymnasium space for free text. Sampling gives printable ASCII; ``contains`` accepts any str.
TEXT_SPACE_MAX = 1 << 20


class TextSpace(spaces.Text):
    """A text space that accepts any ``str`` (Gymnasium's ``Text`` restricts the charset)."""

    def __init__(self, max_length: int = TEXT_SPACE_MAX):
        super().__init__(max_length=max_length, min_length=0, charset=_CHARSET)

    def contains(self, x: Any) -> bool:
        return isinstance(x, str) and len(x) <= self.max_length


class TurnEnv(gym.Env[str, str], abc.ABC):
    """Base class for turngym environments.

    Subclasses implement :meth:`_reset`, :meth:`_step`, :meth:`state_key`,
    :meth:`task_ids`, :meth:`expert_action` and, where the default pickle of
    :meth:`_state` is not enough, :meth:`snapshot`/:meth:`restore`.

    The base class owns the parts every env shares: task choice, seeding, the info dict,
    the checks that turn a non-text or oversized action into an invalid step, and refusing
    ``step`` before ``reset``. Parsing the action text is the subclass's ``_step``: it must
    return an invalid step for bad text, never raise (the checker fuzzes it with garbage; an
    exception that escapes ends the episode with ``env_error`` in the rollout engine).
    """

    metadata: ClassVar[dict[str, Any]] = {"render_modes": ["ansi"]}
    #: Tool JSON schemas for tool envs (search, SWE); ``None`` for text-action envs.
    tools: ClassVar[list[dict[str, Any]] | None] = None
    #: Env family, used by prompt templates and ``turngym envs list``.
    family: ClassVar[str] = "generic"
    #: True for envs whose steps take milliseconds or more (sandboxes, browsers, JVMs): the
    #: rollout engine then steps them in a worker pool with a timeout instead of inline.
    slow_steps: ClassVar[bool] = False
    #: Names of the task splits; ``reset`` accepts a ``task_id`` from any of them.
    splits: ClassVar[tuple[str, ...]] = ()
    #: Env-specific info keys, beyond :data:`INFO_KEYS`. The checker compares the returned
    #: keys with this tuple and with the class docstring.
    extra_info_keys: ClassVar[tuple[str, ...]] = ()

    def __init__(self, render_mode: str | None = None):
        self.observation_space = TextSpace()
        self.action_space = TextSpace()
        self.render_mode = render_mode
        self.task_id: str | None = None
        self._last_obs = ""
        self._ready = False
        self._task_set: frozenset[str] | None = None

    # ------------------------------------------------------------------ to implement
    @abc.abstractmethod
    def task_ids(self, split: str | None = None) -> list[str]:
        """Return the task ids of ``split``, in a fixed order. ``None`` means the env's own
        split (its ``split`` argument): the pool ``reset`` samples from without a task id."""

    def has_task(self, task_id: str) -> bool:
        """Whether ``reset`` accepts ``task_id``: any task of any split in :attr:`splits`."""
        if getattr(self, "_task_set", None) is None:
            known = set(self.task_ids())
            for split in self.splits:
                known.update(self.task_ids(split))
            self._task_set = frozenset(known)
        return task_id in self._task_set

    @abc.abstractmethod
    def _reset(self, task_id: str) -> str:
        """Set up ``task_id`` using ``self.np_random``; return the first observation."""

    @abc.abstractmethod
    def _step(self, action: str) -> tuple[str, float, bool, bool, bool]:
        """Apply ``action``; return ``(obs, reward, terminated, action_valid, won)``.

        Must not raise for any string. An invalid action leaves the state unchanged.
        """

    @abc.abstractmethod
    def state_key(self) -> str:
        """A canonical fingerprint of the state the agent faces now (no history)."""

    @abc.abstractmethod
    def expert_action(self) -> str | None:
        """A correct next action from the current state, or ``None`` when there is none."""

    def admissible_actions(self) -> list[str] | None:
        """The exact list of valid actions now, for envs with a finite action set."""
        return None

    def random_action(self, rng: Any) -> str | None:
        """A random *well-formed* action for an env without a finite action set (a tool
        env), drawn with the numpy Generator ``rng``: the random baseline of evaluations.
        ``None`` (the default) means the env has none; envs with admissible actions need not
        define it (a random policy picks among those)."""
        return None

    def extra_info(self) -> dict[str, Any]:
        """Env-specific info keys (must match :attr:`extra_info_keys`)."""
        return {}

    def won(self) -> bool:
        """Whether the task is solved now."""
        return False

    # ------------------------------------------------------------------ state copy
    def _state(self) -> Any:
        """The complete mutable state; default snapshot pickles it."""
        raise NotImplementedError(f"{type(self).__name__} must implement _state or snapshot")

    def _set_state(self, state: Any) -> None:
        raise NotImplementedError(f"{type(self).__name__} must implement _set_state or restore")

    def snapshot(self) -> bytes:
        """Copy the complete state (including RNG and task) into bytes."""
        payload = (self.task_id, self._last_obs, self.np_random.bit_generator.state, self._state())
        return pickle.dumps(payload, protocol=pickle.HIGHEST_PROTOCOL)

    def restore(self, blob: bytes) -> None:
        """Restore a state made by :meth:`snapshot` of an env built with the same kwargs."""
        task_id, obs, rng_state, state = pickle.loads(blob)
        self.task_id, self._last_obs = task_id, obs
        self.np_random.bit_generator.state = rng_state
        self._set_state(state)
        self._ready = True

    # ------------------------------------------------------------------ gymnasium API
    def reset(
        self, *, seed: int | None = None, options: dict[str, Any] | None = None
    ) -> tuple[str, dict[str, Any]]:
        """Start the task ``options["task_id"]`` (default: one drawn with ``np_random``)."""
        super().reset(seed=seed)
        task_id = (options or {}).get("task_id")
        if task_id is None:
            known = self.task_ids()
            task_id = known[int(self.np_random.integers(len(known)))]
        elif not self.has_task(str(task_id)):
            sample = ", ".join(self.task_ids()[:5])
            raise UnknownTaskError(
                f"unknown task_id {task_id!r} for {type(self).__name__}; "
                f"its tasks look like {sample}"
            )
        self.task_id = str(task_id)
        self._last_obs = self._reset(self.task_id)
        self._ready = True
        return self._last_obs, self._info(action_valid=True)

    def step(self, action: str) -> tuple[str, SupportsFloat, bool, bool, dict[str, Any]]:
        """Apply one action. Never raises for bad input; see the module docstring."""
        if not self._ready:
            raise gym.error.ResetNeeded("call reset() before step()")
        if not isinstance(action, str):
            obs = f"Invalid action: expected text, got {type(action).__name__}."
            return obs, 0.0, False, False, self._info(action_valid=False)
        if len(action) > MAX_ACTION_CHARS:
            obs = f"Invalid action: {len(action)} characters is longer than {MAX_ACTION_CHARS}."
            return obs, 0.0, False, False, self._info(action_valid=False)
        obs, reward, terminated, valid, _ = self._step(action)
        self._last_obs = obs
        return obs, float(reward), bool(terminated), False, self._info(action_valid=valid)

    def render(self) -> str | None:
        """``ansi``: the last observation."""
        return self._last_obs

    def close(self) -> None:
        """Release resources. Safe to call more than once."""
        self._ready = False

    def _info(self, action_valid: bool) -> dict[str, Any]:
        info = {
            "state_key": self.state_key(),
            "action_valid": bool(action_valid),
            "won": bool(self.won()),
            "task_id": self.task_id,
            "admissible_actions": self.admissible_actions(),
        }
        info.update(self.extra_info())
        return info


class ReplaySnapshot:
    """Snapshot by replay, for :class:`TurnEnv` subclasses wrapping an engine whose state
    cannot be exported (a JVM, a story-file interpreter). A snapshot holds the task id and
    the actions applied since reset; ``restore`` resets to the task and replays them, which
    is exact because the engines are deterministic. The env appends every action it applies
    to ``self._actions`` (invalid actions, which change nothing, are not recorded).
    """

    _actions: list[str]

    def snapshot(self) -> bytes:
        rng = self.np_random.bit_generator.state
        return pickle.dumps((self.task_id, self._last_obs, rng, list(self._actions)))

    def restore(self, blob: bytes) -> None:
        task_id, obs, rng, actions = pickle.loads(blob)
        self._reset(task_id)
        self.task_id, self._last_obs = task_id, obs
        self.np_random.bit_generator.state = rng
        for action in actions:
            self._step(action)
        self._ready = True


class TurnLimit(gym.Wrapper[str, str, str, str]):
    """Truncate an episode after ``max_turns`` steps (``truncated=True``, never with
    ``terminated=True``). :func:`envs.make` applies it; envs never count turns themselves.

    Adds the info key ``turn`` (number of steps taken). The wrapper forwards
    ``snapshot``/``restore``/``expert_action`` and keeps its count in the snapshot.
    """

    def __init__(self, env: gym.Env, max_turns: int):
        super().__init__(env)
        if max_turns < 1:
            raise ValueError(f"max_turns must be >= 1, got {max_turns}")
        self.max_turns = int(max_turns)
        self.turn = 0

    def reset(self, **kwargs: Any):
        self.turn = 0
        obs, info = self.env.reset(**kwargs)
        info["turn"] = 0
        return obs, info

    def step(self, action: str):
        obs, reward, terminated, truncated, info = self.env.step(action)
        self.turn += 1
        if not terminated and self.turn >= self.max_turns:
            truncated = True
        info["turn"] = self.turn
        return obs, reward, terminated, truncated, info

    def snapshot(self) -> bytes:
        return pickle.dumps((self.turn, self.env.snapshot()))

    def restore(self, blob: bytes) -> None:
        self.turn, inner = pickle.loads(blob)
        self.env.restore(inner)

    def expert_action(self) -> str | None:
        return self.env.expert_action()

    def __getattr__(self, name: str) -> Any:
        # Gymnasium 1.x no longer forwards attributes; forward the contract's public ones
        # (task_ids, tools, family, state_key, admissible_actions, ...).
        if name.startswith("_"):
            raise AttributeError(name)
        return getattr(self.env, name)


def unwrapped_turn_env(env: gym.Env) -> TurnEnv:
    """The :class:`TurnEnv` inside any stack of wrappers."""
    inner = env.unwrapped
    if not isinstance(inner, TurnEnv):
        raise TypeError(f"{type(inner).__name__} is not a turngym TurnEnv")
    return inner
