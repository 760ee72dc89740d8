"""The turngym environment contract.

An environment is a :class:`gymnasium.Env` whose observations and actions are ``str``.
This module is written to the person who implements one. Subclass :class:`TurnEnv`, give
it a class docstring that lists action format, observation format, tools, rewards,
episode end, info keys and arguments, and implement the abstract methods below.

Contract (checked for every registered env by :mod:`turngym.envs.checker`):

* ``reset(*, seed=None, options=None) -> (obs, info)``;
  ``options={"task_id": ...}`` picks the task. The same ``task_id`` and ``seed`` give the
  same first observation and the same ``state_key``. ``options`` is ``None`` or a dict whose
  keys are in :attr:`TurnEnv.reset_options`; anything else raises
  :class:`~turngym.errors.ConfigError` naming the bad key and the allowed ones (a misspelt
  ``"taskid"`` never silently starts a random task).
* ``step(action) -> (obs, reward, terminated, truncated, info)``. ``terminated`` means the
  task ended (success, failure, or an answer was given); ``truncated`` means a budget ran
  out. Never both. The turn budget is :class:`TurnLimit`, applied by :func:`envs.make`.
* Every ``info`` carries :data:`INFO_KEYS`.
* Invalid input never raises: it is a step with ``action_valid=False``, an observation that
  says what was wrong, and the state unchanged. That includes the adversarial inputs the
  checker sends: JSON nested 10,000 deep, lone surrogates (``"\\ud800"``), NUL bytes,
  ``NaN``/``Infinity``/``1e999`` and integers too big for a float (400 digits) inside JSON
  arguments, and text longer than :data:`MAX_ACTION_CHARS` (up to 1 MiB).
  :meth:`TurnEnv.step` itself rejects non-text, over-long and non-Unicode (lone surrogate)
  actions; an env that decodes JSON must still check the
  strings it decodes (``"\\ud800"`` escapes), and decodes with
  :func:`turngym.envs.tooljson.loads_tool_json`, which refuses deep nesting before ``json.loads``
  recurses (whatever the interpreter's recursion limit). A step that fails modifies no file.
* **Episode end.** Once a step returned ``terminated`` (or the :class:`TurnLimit` returned
  ``truncated``) the episode is over until the next ``reset``. A further ``step`` raises
  nothing and changes nothing: it returns :data:`EPISODE_ENDED_NOTICE` followed by the last
  observation, reward ``0.0``, ``terminated``/``truncated`` as they were (still True),
  ``action_valid=False`` and the same ``state_key`` and ``won``. The action never reaches
  ``_step``, so an env cannot pay twice or un-terminate; :meth:`TurnEnv.step` enforces it
  for every subclass, and a snapshot taken at the end restores an ended env.
* ``snapshot() -> bytes`` / ``restore(bytes)`` copy the complete state (exactly, unless the
  class sets :attr:`TurnEnv.snapshot_exact` to False). An env pickled mid-episode either steps
  like the original after unpickling or raises :class:`~turngym.errors.EnvError` when pickled.
* ``expert_action() -> str | None`` returns a correct next action from the current state.
* All randomness comes from ``self.np_random``, seeded in ``reset``.
"""

from __future__ import annotations

import abc
import pickle
from typing import Any, ClassVar, SupportsFloat

import gymnasium as gym
from gymnasium import spaces

from turngym.errors import ConfigError, UnknownTaskError

#: Info keys every env returns after every ``reset`` and ``step``.
INFO_KEYS: tuple[str, ...] = ("state_key", "action_valid", "won", "task_id", "admissible_actions")

#: The longest action string an env has to look at; longer input is invalid, not an error.
MAX_ACTION_CHARS = 4096

#: First line of the observation a ``step`` after the episode's end returns.
EPISODE_ENDED_NOTICE = ("The episode is over: this action was ignored and nothing changed. "
                        "Call reset() to start a new episode.")

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

    The base class owns the parts every env shares: task choice, seeding, ``options``
    validation, the info dict, the checks that turn a non-text, oversized or non-Unicode
    (lone surrogate) action into an invalid step, refusing ``step`` before ``reset``, and
    the episode end (a step after it never reaches ``_step``). Parsing the action text is
    the subclass's ``_step``: it must return an invalid step for bad text, never raise (the
    checker fuzzes it with garbage; an exception that escapes ends the episode with
    ``env_error`` in the rollout engine).
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
    #: Whether :meth:`restore` is exact: the restored env steps exactly like the original
    #: did from the snapshot. An env whose engine cannot promise that sets it False; its
    #: ``restore`` is then best effort (or raises :class:`~turngym.errors.EnvError`), and the
    #: checker reports "snapshot: declared inexact" instead of testing it.
    snapshot_exact: ClassVar[bool] = True
    #: The keys ``reset(options=...)`` accepts; any other key raises ``ConfigError``.
    reset_options: ClassVar[tuple[str, ...]] = ("task_id",)

    def __init__(self, render_mode: str | None = None):
        self.observation_space = TextSpace()
        self.action_space = TextSpace()
        self.render_mode = render_mode
        self.task_id: str | None = None
        self._last_obs = ""
        self._ready = False
        self._terminated = False
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

    @property
    def episode_ended(self) -> bool:
        """Whether the last step returned ``terminated`` (until the next ``reset``)."""
        return bool(getattr(self, "_terminated", False))

    def snapshot(self) -> bytes:
        """Copy the complete state (including RNG, task and episode end) into bytes.

        An override must keep :attr:`episode_ended` too (the checker restores a snapshot
        taken at the end and expects an ended env)."""
        payload = (self.task_id, self._last_obs, self.np_random.bit_generator.state,
                   self._state(), self.episode_ended)
        return pickle.dumps(payload, protocol=pickle.HIGHEST_PROTOCOL)

    def restore(self, blob: bytes) -> None:
        """Restore a state made by :meth:`snapshot` of an env built with the same kwargs."""
        task_id, obs, rng_state, state, *ended = pickle.loads(blob)  # older blobs: 4 items
        self.task_id, self._last_obs = task_id, obs
        self.np_random.bit_generator.state = rng_state
        self._set_state(state)
        self._terminated = bool(ended and ended[0])
        self._ready = True

    # ------------------------------------------------------------------ gymnasium API
    def reset(
        self, *, seed: int | None = None, options: dict[str, Any] | None = None
    ) -> tuple[str, dict[str, Any]]:
        """Start the task ``options["task_id"]`` (default: one drawn with ``np_random``).

        ``options`` must be ``None`` or a dict with keys from :attr:`reset_options`."""
        self._check_options(options)
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
        self._terminated = False
        self._last_obs = self._reset(self.task_id)
        self._ready = True
        return self._last_obs, self._info(action_valid=True)

    def _check_options(self, options: Any) -> None:
        if options is None:
            return
        allowed = ", ".join(repr(k) for k in self.reset_options)
        if not isinstance(options, dict):
            raise ConfigError(f"{type(self).__name__}.reset: options must be a dict or None, got "
                              f"{type(options).__name__} {options!r:.80}; allowed keys: {allowed}")
        unknown = [k for k in options if k not in self.reset_options]
        if unknown:
            raise ConfigError(f"{type(self).__name__}.reset: unknown options key(s) "
                              f"{', '.join(repr(k) for k in unknown)}; allowed keys: {allowed}")

    def step(self, action: str) -> tuple[str, SupportsFloat, bool, bool, dict[str, Any]]:
        """Apply one action. Never raises for bad input; see the module docstring.

        After the episode ended (see "Episode end" in the module docstring) the action is
        ignored: the notice and last observation, reward 0.0, still terminated."""
        if not self._ready:
            raise gym.error.ResetNeeded("call reset() before step()")
        if self.episode_ended:
            obs = f"{EPISODE_ENDED_NOTICE}\n\n{self._last_obs}"
            return obs, 0.0, True, False, self._info(action_valid=False)
        if not isinstance(action, str):
            obs = f"Invalid action: expected text, got {type(action).__name__}."
            return obs, 0.0, False, False, self._info(action_valid=False)
        if len(action) > MAX_ACTION_CHARS:
            obs = f"Invalid action: {len(action)} characters is longer than {MAX_ACTION_CHARS}."
            return obs, 0.0, False, False, self._info(action_valid=False)
        bad = _lone_surrogate(action)
        if bad is not None:
            obs = (f"Invalid action: the text holds a lone surrogate {action[bad]!r} at index "
                   f"{bad}; send valid Unicode text.")
            return obs, 0.0, False, False, self._info(action_valid=False)
        obs, reward, terminated, valid, _ = self._step(action)
        self._last_obs = obs
        self._terminated = bool(terminated)
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


def _lone_surrogate(text: str) -> int | None:
    """Index of the first lone surrogate in ``text`` (not encodable as UTF-8), else None."""
    try:
        text.encode("utf-8")
    except UnicodeEncodeError as exc:
        return exc.start
    return None


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
        return pickle.dumps((self.task_id, self._last_obs, rng, list(self._actions),
                             bool(getattr(self, "_terminated", False))))

    def restore(self, blob: bytes) -> None:
        task_id, obs, rng, actions, *ended = pickle.loads(blob)  # older blobs: 4 items
        self._reset(task_id)
        self.task_id, self._last_obs = task_id, obs
        self.np_random.bit_generator.state = rng
        for action in actions:
            self._step(action)
        self._terminated = bool(ended and ended[0])
        self._ready = True


class TurnLimit(gym.Wrapper[str, str, str, str]):
    """Truncate an episode after ``max_turns`` steps (``truncated=True``, never with
    ``terminated=True``). :func:`envs.make` applies it; envs never count turns themselves.

    Adds the info key ``turn`` (number of steps taken). The wrapper forwards
    ``snapshot``/``restore``/``expert_action`` and keeps its count in the snapshot.

    Truncated stays truncated: a step after the truncating one is not forwarded; it returns
    :data:`EPISODE_ENDED_NOTICE` and the last observation, reward 0.0, ``truncated=True``,
    ``action_valid=False`` and the last info (``turn`` no longer counts up).
    """

    def __init__(self, env: gym.Env, max_turns: int):
        super().__init__(env)
        if max_turns < 1:
            raise ValueError(f"max_turns must be >= 1, got {max_turns}")
        self.max_turns = int(max_turns)
        self.turn = 0
        self._truncated = False
        self._last: tuple[str, dict[str, Any]] | None = None

    def reset(self, **kwargs: Any):
        obs, info = self.env.reset(**kwargs)
        self.turn, self._truncated = 0, False
        info["turn"] = 0
        self._last = (obs, dict(info))
        return obs, info

    def step(self, action: str):
        if self._truncated:
            return self._ended_step()
        if self._inner_ended():  # terminated: the env answers with its notice; no turn counts
            obs, reward, terminated, truncated, info = self.env.step(action)
            info["turn"] = self.turn
            return obs, reward, terminated, truncated, info
        obs, reward, terminated, truncated, info = self.env.step(action)
        self.turn += 1
        if not terminated and self.turn >= self.max_turns:
            truncated = True
        self._truncated = bool(truncated and not terminated)
        info["turn"] = self.turn
        self._last = (obs, dict(info))
        return obs, reward, terminated, truncated, info

    def _inner_ended(self) -> bool:
        return bool(getattr(self.env.unwrapped, "episode_ended", False))

    def _ended_step(self):
        inner = self.env.unwrapped
        obs, info = self._last if self._last is not None else ("", {})
        if isinstance(inner, TurnEnv) and inner._ready:  # fresh info (after a restore too)
            obs, info = obs or inner._last_obs, inner._info(action_valid=False)
        else:  # a plain gymnasium env: repeat the last info
            info = {**info, "action_valid": False}
        info["turn"] = self.turn
        return f"{EPISODE_ENDED_NOTICE}\n\n{obs}", 0.0, False, True, info

    def snapshot(self) -> bytes:
        return pickle.dumps((self.turn, self.env.snapshot()))

    def restore(self, blob: bytes) -> None:
        self.turn, inner = pickle.loads(blob)
        self.env.restore(inner)
        self._truncated = self.turn >= self.max_turns and not self._inner_ended()
        self._last = None  # the env's own last observation stands

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
