"""Report plots: whole-number step ticks, and constant series drawn flat
(harness/eval/report.py)."""

from __future__ import annotations

import pytest

from turngym.harness.ui.plots import draw_curves, steady_ylim


def visible_xticks(ax) -> list[float]:
    lo, hi = ax.get_xlim()
    return [float(t) for t in ax.get_xticks() if lo <= t <= hi]


@pytest.mark.parametrize(("steps", "ticks"), [
    ([1, 2, 3], [1.0, 2.0, 3.0]),  # matplotlib's default puts ticks at 1.5, 2.5 here
    ([0, 1], [0.0, 1.0]),
    ([5], [4.0, 5.0, 6.0]),  # one step: its whole neighbours, not 4.94 .. 5.06
])
def test_step_ticks_are_whole_numbers(steps: list[int], ticks: list[float]) -> None:
    fig = draw_curves([{"step": s, "env/success": 0.1 * s} for s in steps], ("env/success",))
    assert visible_xticks(fig.axes[0]) == ticks


def test_long_runs_tick_whole_steps() -> None:
    fig = draw_curves([{"step": s, "algo/loss": 1.0 / s} for s in range(1, 38)], ("algo/loss",))
    ticks = visible_xticks(fig.axes[0])
    assert len(ticks) >= 3 and all(t == int(t) for t in ticks)


@pytest.mark.parametrize(("values", "ylim"), [
    ([0.3, 0.1 + 0.2, 0.3], (0.2, 0.4)),  # float noise: 0.30000000000000004
    ([0.0, 0.0], (-0.1, 0.1)),
    ([1000.0, 1000.0 + 1e-10], (900.0, 1100.0)),
    ([-2.0], (-2.2, -1.8)),
    ([1.0, 1.0 + 5e-13], (0.9, 1.1)),
    ([1.0, 1.0 + 2e-12], None),  # a real (if tiny) movement: autoscale shows it
    ([0.0, 0.5], None),
])
def test_steady_ylim(values: list[float], ylim: tuple[float, float] | None) -> None:
    got = steady_ylim(values)
    if ylim is None:
        assert got is None
    else:
        assert got == pytest.approx(ylim, rel=1e-12, abs=1e-12)


def test_a_constant_series_is_drawn_flat_with_a_span() -> None:
    rows = [{"step": s, "env/success": 0.1 + 0.2 if s % 2 else 0.3, "algo/loss": 2.0 - s}
            for s in range(1, 6)]
    fig = draw_curves(rows, ("env/success", "algo/loss", "eval/success"))
    assert [ax.get_title() for ax in fig.axes if ax.axison] == ["env/success", "algo/loss"]
    lo, hi = fig.axes[0].get_ylim()
    assert (lo, hi) == pytest.approx((0.2, 0.4))
    assert lo < 0.3 < hi
    lo, hi = fig.axes[1].get_ylim()  # a moving series keeps matplotlib's autoscale
    assert lo < -3.0 and hi > 1.0 and hi - lo < 5.0


def test_no_plottable_key_draws_nothing() -> None:
    assert draw_curves([{"step": 1, "x": 1.0}], ("env/success",)) is None
