"""Where a long run is: the phase, the progress inside it, and an ETA from completed steps.

:func:`turngym.harness.train.train`, :func:`turngym.harness.sft.run_sft` and
:func:`turngym.harness.eval.evaluate.evaluate` take an optional ``reporter``: a
:class:`Progress`. The loop announces each phase
(``progress.phase("rollout", total=8, unit="episodes")``), counts inside it
(``progress.advance(3)``: episodes finished, SFT batches, update samples) and, in a training
run, brackets each step (``begin_step`` / ``end_step``) so the ETA can be taken from the
steps already done.

This base class keeps that state and prints nothing (the library default; STYLE.md rule
11). A front end overrides the ``on_*`` hooks: the CLI's live bar and its plain
one-line-per-phase output are :mod:`turngym.harness.cli.progress_view`.

Phases of a training run, in order (``turngym.harness.train``): ``setup`` (models, engines),
``baseline eval`` (``eval.at_start``), then per step ``rollout`` (episodes; generated
tokens), ``scoring`` (teacher / reference log-probs), ``advantages``, ``update`` (samples),
``eval`` (every ``eval.every`` steps), ``checkpoint`` (every ``checkpoint.every`` steps and
the last), and after the last step ``final eval``. SFT: ``expert data`` (episodes),
``setup``, ``sft`` (batches; tokens), ``save``. ``turngym eval``: ``eval <entry>`` per suite
entry (episodes).
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Protocol


class Watchable(Protocol):
    """What :meth:`Progress.watch` follows: a
    :class:`turngym.harness.rollout.engine.RolloutEngine` (its ``on_episodes(done, total,
    tokens)`` hook; the engine sits in a layer above this one)."""

    on_episodes: Callable[[int, int, int], object] | None


class Progress:
    """A phase reporter that renders nothing; subclass it and override the ``on_*`` hooks.

    Args:
        clock: seconds, monotonic (``time.perf_counter``); tests inject a fake one.

    Attributes read by the hooks: ``name`` (the current phase), ``done``/``total``/``unit``
    (progress inside it; ``total`` None when unknown), ``tokens`` (tokens generated or
    trained on in the phase so far, 0 where not counted), ``step``/``steps`` (completed
    steps of a training run and its total; ``steps`` None outside one), ``running`` (the
    1-based step under way, None between steps), ``last_step_s`` (the wall time of the last
    step done).
    """

    def __init__(self, clock: Callable[[], float] = time.perf_counter):
        self.clock = clock
        self.name = ""
        self.done = 0
        self.total: int | None = None
        self.unit = ""
        self.tokens = 0
        self.step = 0
        self.steps: int | None = None
        self.running: int | None = None
        self.last_step_s = 0.0
        self._first_step = 0
        self._step_t0: float | None = None
        self._steps_s = 0.0
        self._last_end: float | None = None

    # ------------------------------------------------------------------ the run
    def start(self, steps: int, done: int = 0) -> None:
        """A training run of ``steps`` steps, ``done`` of them already (a resume)."""
        self.steps, self.step, self._first_step = steps, done, done
        self._steps_s, self._last_end = 0.0, None
        self.on_start()

    def begin_step(self, step: int) -> None:
        """Step ``step`` (1-based) starts: its wall time counts from here."""
        self.running, self._step_t0 = step, self.clock()

    def end_step(self, step: int, metrics: dict[str, float]) -> None:
        """Step ``step`` (1-based) is done, checkpoint included; ``metrics`` are its logged
        numbers."""
        now = self.clock()
        if self._step_t0 is not None:
            self.last_step_s = now - self._step_t0
            self._steps_s += self.last_step_s
        self.step, self._last_end, self._step_t0, self.running = step, now, None, None
        self.on_step(step, metrics)

    @property
    def eta_s(self) -> float | None:
        """Seconds left: the mean wall time of the steps done in this run times the steps
        left, less the time since the last step ended (never below 0). None until a step
        is done."""
        n = self.step - self._first_step
        if self.steps is None or n <= 0 or self._last_end is None:
            return None
        left = self._steps_s / n * (self.steps - self.step)
        return max(left - (self.clock() - self._last_end), 0.0)

    # ------------------------------------------------------------------ phases
    def phase(self, name: str, total: int | None = None, unit: str = "") -> None:
        """Phase ``name`` starts, with ``total`` ``unit`` to do (None: unknown)."""
        self.name, self.total, self.unit, self.done, self.tokens = name, total, unit, 0, 0
        self.on_phase()

    def advance(self, done: int, total: int | None = None, tokens: int | None = None) -> None:
        """``done`` units of the phase are finished (a running count, not an increment);
        ``total`` and ``tokens`` (running count) update theirs when given."""
        self.done = done
        if total is not None:
            self.total = total
        if tokens is not None:
            self.tokens = tokens
        self.on_advance()

    def watch(self, *engines: Watchable) -> None:
        """Count the episodes of these
        :class:`turngym.harness.rollout.engine.RolloutEngine`\\ s as the current phase's
        progress (their ``on_episodes`` hook)."""
        for engine in engines:
            engine.on_episodes = self.advance

    # ------------------------------------------------------------------ hooks
    def on_start(self) -> None:
        """After :meth:`start`."""

    def on_phase(self) -> None:
        """After :meth:`phase`."""

    def on_advance(self) -> None:
        """After :meth:`advance`. Called often (once per rollout turn): keep it cheap."""

    def on_step(self, step: int, metrics: dict[str, float]) -> None:
        """After :meth:`end_step`."""


def or_silent(reporter: Progress | None) -> Progress:
    """``reporter``, or a :class:`Progress` that renders nothing."""
    return reporter if reporter is not None else Progress()
