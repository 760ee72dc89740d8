"""Progress that says where it is: the phases of train / SFT / eval, the counts inside each
phase, the ETA from completed steps, and the CLI's live and plain renderings."""

from __future__ import annotations

import io
import sys
from pathlib import Path

import pytest
from rich.console import Console

sys.path.insert(0, str(Path(__file__).parents[1]))  # rollout_fakes

import rollout_fakes

from turngym.harness.cli.progress_view import ProgressView, clock_text
from turngym.harness.rollout.engine import RolloutConfig, RolloutEngine
from turngym.harness.ui.progress import Progress


class FakeClock:
    """Seconds that move only when the test says so."""

    def __init__(self) -> None:
        self.t = 100.0

    def __call__(self) -> float:
        return self.t


class Recorder(Progress):
    """Records every hook call; each phase "takes" ``cost[name]`` seconds of the fake clock
    (the clock moves when the phase starts, before the previous state is read)."""

    def __init__(self, cost: dict[str, float] | None = None):
        self.fake = FakeClock()
        super().__init__(self.fake)
        self.cost = cost or {}
        self.phases: list[tuple[str, int | None]] = []
        self.counts: dict[str, list[tuple[int, int | None, int]]] = {}
        self.steps_done: list[tuple[int, float | None, float]] = []
        self.etas_before_first_step: list[float | None] = []

    def on_phase(self) -> None:
        self.fake.t += self.cost.get(self.name, 0.0)
        self.phases.append((self.name, self.running))
        self.counts.setdefault(self.name, [])
        if not self.steps_done:
            self.etas_before_first_step.append(self.eta_s)

    def on_advance(self) -> None:
        self.counts[self.name].append((self.done, self.total, self.tokens))

    def on_step(self, step: int, metrics: dict[str, float]) -> None:
        self.steps_done.append((step, self.eta_s, self.last_step_s))


# ---------------------------------------------------------------------- the ETA
@pytest.mark.parametrize(("steps", "done", "step_s", "since_end", "eta"), [
    (4, 0, [10.0], 0.0, 30.0),            # 1 of 4 done in 10 s: 3 left at 10 s
    (4, 0, [10.0, 20.0], 0.0, 30.0),      # mean 15 s, 2 left
    (4, 0, [10.0, 20.0], 12.0, 18.0),     # 12 s into step 3
    (4, 0, [10.0], 45.0, 0.0),            # a slow step: never below 0
    (10, 6, [8.0], 0.0, 24.0),            # a resume at step 6: only this run's steps count
    (2, 0, [5.0, 7.0], 0.0, 0.0),         # done
], ids=["first-step", "mean", "counts-down", "floor", "resume", "done"])
def test_eta_is_mean_step_time_times_steps_left(steps, done, step_s, since_end, eta) -> None:
    clock = FakeClock()
    p = Progress(clock)
    p.start(steps, done)
    assert p.eta_s is None
    for k, s in enumerate(step_s, start=done + 1):
        p.begin_step(k)
        clock.t += s
        p.end_step(k, {})
    clock.t += since_end
    assert p.eta_s == eta
    assert p.last_step_s == step_s[-1]


def test_phase_resets_the_counts_and_advance_keeps_running_totals() -> None:
    p = Progress()
    p.phase("rollout", 8, "episodes")
    p.advance(3, tokens=120)
    assert (p.name, p.done, p.total, p.unit, p.tokens) == ("rollout", 3, 8, "episodes", 120)
    p.advance(5, 6)  # the engine knows better: 6 episodes
    assert (p.done, p.total, p.tokens) == (5, 6, 120)
    p.phase("scoring")
    assert (p.name, p.done, p.total, p.unit, p.tokens) == ("scoring", 0, None, "", 0)


# ---------------------------------------------------------------------- rollout engine
def test_engine_reports_finished_episodes_up_to_the_total() -> None:
    cfg = RolloutConfig.build(env_id="turngym/Sokoban-v0", group_size=2)
    eng = RolloutEngine("turngym/Sokoban-v0", rollout_fakes.ExpertPolicy(), None, cfg)
    seen: list[tuple[int, int, int]] = []
    eng.on_episodes = lambda done, total, tokens: seen.append((done, total, tokens))
    eng.run([("train-00001", 7), ("train-00000", 3)], progress=False)
    eng.close()
    assert seen[0] == (0, 4, 0)  # after the resets
    assert seen[-1] == (4, 4, 0)  # a scripted policy generates no tokens
    assert [d for d, _, _ in seen] == sorted(d for d, _, _ in seen)


def test_engine_in_worker_processes_reports_whole_groups() -> None:
    from turngym.agents.scripted import ScriptedPolicy

    cfg = RolloutConfig.build(env_id="turngym/Maze-v0", group_size=3, max_turns=6,
                              scripted_processes=2)
    eng = RolloutEngine("turngym/Maze-v0", ScriptedPolicy("expert", seed=1), None, cfg)
    seen: list[tuple[int, int, int]] = []
    eng.on_episodes = lambda done, total, tokens: seen.append((done, total, tokens))
    try:
        eng.run([("train-00000", 0), ("train-00003", 4)], progress=False)
    finally:
        eng.close()
    assert seen[-1] == (6, 6, 0)
    assert all(d % 3 == 0 and t == 6 for d, t, _ in seen)  # a group at a time


# ---------------------------------------------------------------------- train
#: Seconds each phase takes on the fake clock of the train test.
COST = {"setup": 50.0, "baseline eval": 7.0, "rollout": 5.0, "scoring": 1.0,
        "advantages": 0.5, "update": 2.0, "eval": 3.0, "checkpoint": 1.5, "final eval": 4.0}


@pytest.mark.slow
def test_train_reports_each_phase_its_episodes_and_the_eta(tmp_path: Path) -> None:
    from test_train import TINY

    from turngym.harness.config import load_config
    from turngym.harness.train import train

    rec = Recorder(COST)
    cb_steps: list[int] = []
    cfg = load_config(None, [*TINY, f"out_dir={tmp_path / 'run'}", "eval.at_start=true",
                             "eval.every=1"])
    train(cfg, reporter=rec, progress_cb=lambda step, m: cb_steps.append(step))
    assert rec.phases == [
        ("setup", None), ("baseline eval", None),
        ("rollout", 1), ("scoring", 1), ("advantages", 1), ("update", 1), ("eval", 1),
        ("rollout", 2), ("scoring", 2), ("advantages", 2), ("update", 2), ("checkpoint", 2),
        ("final eval", None)]
    assert cb_steps == [1, 2]  # the old callback still runs
    # episodes: 2 tasks x 2 rollouts per step; 2 held-out tasks x 1 per eval
    for name, total in (("rollout", 4), ("baseline eval", 2), ("eval", 2), ("final eval", 2)):
        assert rec.counts[name][-1][:2] == (total, total), name
        assert rec.counts[name][0][0] == 0, name
    done, total, tokens = rec.counts["update"][-1]
    assert done == total >= 1 and tokens >= done
    assert rec.counts["rollout"][-1][2] > 0  # generated tokens are counted
    # step 1: rollout 5 + scoring 1 + advantages 0.5 + update 2 + eval 3 = 11.5 s;
    # step 2: 5 + 1 + 0.5 + 2 + checkpoint 1.5 = 10 s
    assert rec.steps_done == [(1, 11.5, 11.5), (2, 0.0, 10.0)]
    assert rec.etas_before_first_step == [None] * 7


# ---------------------------------------------------------------------- SFT
@pytest.mark.slow
def test_sft_reports_every_batch_and_the_expert_episodes(tmp_path: Path) -> None:
    from turngym.harness.config import load_config
    from turngym.harness.sft import run_sft

    rec = Recorder()
    epochs: list[int] = []
    cfg = load_config(None, ["model.path=tiny", "env.id=turngym/Maze-v0",
                             "env.kwargs={size: 2}", "rollout.max_turns=4",
                             f"out_dir={tmp_path}", "sft.num_tasks=2", "sft.epochs=2",
                             "sft.batch_size=2", "logging.tensorboard=false"])
    out = run_sft(cfg, progress_cb=lambda e, loss: epochs.append(e), reporter=rec)
    assert [name for name, _ in rec.phases] == ["expert data", "setup", "sft", "save"]
    assert rec.counts["expert data"] == [(1, 2, 0), (2, 2, 0)]
    assert out["sft/samples"] == 8.0  # 8 expert turns: 4 batches of 2 per epoch
    assert [(d, t) for d, t, _ in rec.counts["sft"]] == [(k, 8) for k in range(1, 9)]
    tokens = [tok for _, _, tok in rec.counts["sft"]]
    assert tokens[7] == 2 * tokens[3]  # epoch 2 trains on the same tokens again
    assert tokens == sorted(tokens) and tokens[0] > 0
    assert epochs == [1, 2]


# ---------------------------------------------------------------------- the CLI's view
def _drive(view: ProgressView, clock: FakeClock) -> None:
    view.phase("setup")
    view.start(2)
    view.phase("baseline eval", 2, "episodes")
    view.advance(2)
    for step in (1, 2):
        view.begin_step(step)
        view.phase("rollout", 4, "episodes")
        view.advance(2, tokens=30)
        view.advance(4, tokens=61)
        clock.t += 12.0
        view.phase("update", 8, "samples")
        view.advance(8)
        view.end_step(step, {"env/success": 0.25, "algo/loss": 0.0125, "time/step_s": 12.0})
    view.phase("final eval", 2, "episodes")


def test_plain_view_prints_one_line_per_phase_and_per_step() -> None:
    clock = FakeClock()
    buf = io.StringIO()
    with ProgressView(Console(file=buf, width=200), "train", clock=clock) as view:
        assert not view.live  # not a terminal
        _drive(view, clock)
    assert buf.getvalue().splitlines() == [
        "train: setup",
        "train: baseline eval (2 episodes)",
        "train: step 1/2 rollout (4 episodes)",
        "train: step 1/2 update (8 samples)",
        "train: step 1/2 done in 12.0s success=0.25 loss=0.0125, eta 0:00:12",
        "train: step 2/2 rollout (4 episodes), eta 0:00:12",
        "train: step 2/2 update (8 samples), eta 0:00:00",
        "train: step 2/2 done in 12.0s success=0.25 loss=0.0125, eta 0:00:00",
        "train: final eval (2 episodes)",
    ]


def test_live_view_shows_steps_phase_counts_and_tokens() -> None:
    clock = FakeClock()
    buf = io.StringIO()
    console = Console(file=buf, width=200, force_terminal=True, color_system=None)
    with ProgressView(console, "train", clock=clock) as view:
        assert view.live
        view.phase("setup")
        view.start(2)
        view.begin_step(1)
        view.phase("rollout", 4, "episodes")
        view.advance(3, tokens=61)
        view._bar.refresh()
        live = buf.getvalue()
        assert "rollout" in live and "3/4 episodes" in live and "61 tokens" in live
        assert "0/2 steps" in live
        clock.t += 12.0
        view.end_step(1, {"env/success": 0.5})
        view._bar.refresh()
        assert "1/2 steps" in buf.getvalue() and "eta 0:00:12 success=0.5" in buf.getvalue()


@pytest.mark.parametrize(("seconds", "text"), [(0.0, "0:00:00"), (59.9, "0:00:59"),
                                               (3725.0, "1:02:05"), (-3.0, "0:00:00")])
def test_clock_text(seconds: float, text: str) -> None:
    assert clock_text(seconds) == text


# ---------------------------------------------------------------------- turngym eval
def test_suite_eval_reports_one_phase_per_entry_with_its_episodes() -> None:
    from turngym.harness.eval.evaluate import EvalSettings, evaluate
    from turngym.harness.eval.suite import Suite

    suite = Suite(name="mini", seed=3, samples=2, entries=[
        {"name": "sokoban", "env_id": "turngym/Sokoban-v0", "split": "test", "num_tasks": 3,
         "max_turns": 12},
        {"name": "maze", "env_id": "turngym/Maze-v0", "split": "test", "num_tasks": 2,
         "max_turns": 8}])
    rec = Recorder()
    evaluate(suite, EvalSettings(), reporter=rec)  # the scripted expert: no model, no setup
    assert rec.phases == [("eval sokoban", None), ("eval maze", None)]
    assert rec.counts["eval sokoban"][-1] == (6, 6, 0)
    assert rec.counts["eval maze"][-1] == (4, 4, 0)
