"""The CLI's display of a :class:`turngym.harness.ui.progress.Progress`.

On a terminal: a live rich display with a row for the run (steps done, elapsed, ETA, the
last step's key numbers) and a row for the current phase (its episodes, samples or
batches, and tokens). Otherwise (a pipe, a log file): one plain line per phase change and
one per finished step, e.g.::

    train: setup
    train: baseline eval (8 episodes)
    train: step 1/2 rollout (32 episodes)
    ...
    train: step 1/2 done in 41.0s success=0.25 loss=0.012, eta 0:00:41
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Callable
from typing import TYPE_CHECKING, Self

from rich.console import Console

from turngym.harness.ui.progress import Progress

if TYPE_CHECKING:
    from rich import progress as rp

#: The step's numbers shown next to the run's progress.
SUMMARY_KEYS = ("env/success", "algo/loss", "algo/kl_ref", "eval/success")


def clock_text(seconds: float) -> str:
    """``H:MM:SS`` of ``seconds`` (rounded down)."""
    s = int(max(seconds, 0.0))
    return f"{s // 3600}:{s % 3600 // 60:02d}:{s % 60:02d}"


def summary(metrics: dict[str, float]) -> str:
    """``success=0.25 loss=0.012`` of the :data:`SUMMARY_KEYS` present in ``metrics``."""
    return " ".join(f"{k.split('/')[-1]}={metrics[k]:.3g}" for k in SUMMARY_KEYS
                    if metrics.get(k) is not None)


class ProgressView(Progress):
    """Renders the reporter's state on ``console``; use it as a context manager.

    Args:
        console: where to draw.
        label: the run's name in the display (``train``, ``sft``).
        live: a live display (default: when ``console`` is a terminal) or plain lines.
        clock: see :class:`turngym.harness.ui.progress.Progress`.
    """

    def __init__(self, console: Console, label: str, *, live: bool | None = None,
                 clock: Callable[[], float] = time.perf_counter):
        super().__init__(clock)
        self.console, self.label = console, label
        self.live = console.is_terminal if live is None else live
        self.info = ""
        self._bar: rp.Progress | None = None
        self._run_task: rp.TaskID | None = None
        self._phase_task: rp.TaskID | None = None

    def __enter__(self) -> Self:
        if self.live:
            from rich import progress as rp

            self._bar = rp.Progress(rp.TextColumn("[bold]{task.description}"), rp.BarColumn(),
                                    rp.TextColumn("{task.fields[count]}"),
                                    rp.TimeElapsedColumn(), rp.TextColumn("{task.fields[extra]}"),
                                    console=self.console)
            self._phase_task = self._bar.add_task("", total=None, count="", extra="")
            self._bar.start()
        return self

    def __exit__(self, *exc: object) -> None:
        if self._bar is not None:
            self._bar.remove_task(self._phase_task)  # the run's row stays on screen
            self._bar.stop()
            self._bar = None

    # ------------------------------------------------------------------ hooks
    def on_start(self) -> None:
        if self._bar is None:
            return
        if self._run_task is None:  # above the phase row
            self._bar.remove_task(self._phase_task)
            self._run_task = self._bar.add_task(self.label, total=self.steps, count="",
                                                extra="")
            self._phase_task = self._bar.add_task("", total=None, count="", extra="")
        self._update_run()

    def on_phase(self) -> None:
        if self._bar is None:
            self.console.print(self._plain_phase(), markup=False, highlight=False,
                               soft_wrap=True)
            return
        self._bar.reset(self._phase_task, total=self.total, completed=0,
                        description=f"  {self.name}", count=self._count(), extra="")
        self._update_run()

    def on_advance(self) -> None:
        if self._bar is None:
            return
        tokens = f"{self.tokens} tokens" if self.tokens else ""
        self._bar.update(self._phase_task, total=self.total, completed=self.done,
                         count=self._count(), extra=tokens)
        self._update_run()

    def on_step(self, step: int, metrics: dict[str, float]) -> None:
        self.info = summary(metrics)
        if self._bar is None:
            eta = self.eta_s
            line = (f"{self.label}: step {step}/{self.steps} done in {self.last_step_s:.1f}s"
                    + (f" {self.info}" if self.info else "")
                    + (f", eta {clock_text(eta)}" if eta is not None else ""))
            self.console.print(line, markup=False, highlight=False, soft_wrap=True)
            return
        self._update_run()

    # ------------------------------------------------------------------ text
    def _count(self) -> str:
        if self.total is not None:
            return f"{self.done}/{self.total} {self.unit}".rstrip()
        return f"{self.done} {self.unit}" if self.unit else ""

    def _plain_phase(self) -> str:
        where = f"step {self.running}/{self.steps} " if self.running is not None else ""
        size = f" ({self.total} {self.unit})" if self.total is not None else ""
        eta = self.eta_s if self.running is not None else None  # inside a step only
        return (f"{self.label}: {where}{self.name}{size}"
                + (f", eta {clock_text(eta)}" if eta is not None else ""))

    def _update_run(self) -> None:
        if self._run_task is None:
            return
        eta = self.eta_s
        extra = " ".join(x for x in ((f"eta {clock_text(eta)}" if eta is not None else ""),
                                     self.info) if x)
        self._bar.update(self._run_task, completed=self.step,
                         count=f"{self.step}/{self.steps} steps", extra=extra)


def progress_view(console: Console, label: str, enabled: bool = True
                  ) -> contextlib.AbstractContextManager[Progress]:
    """A :class:`ProgressView` to enter; with ``enabled`` False (``logging.progress=false``)
    a context that gives a :class:`~turngym.harness.ui.progress.Progress` that shows nothing."""
    return ProgressView(console, label) if enabled else contextlib.nullcontext(Progress())
