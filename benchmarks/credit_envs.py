"""Tiny corridor envs where credit assignment matters: the learning tests
(``tests/harness/learn/test_learning.py``) and the ``--env corridor`` setting of the learning
benchmark (``benchmarks/learning.py --preset credit``).

One text world, three registrations (ids under ``turngym-tests/``, registered by
:func:`registered` for the duration of a ``with`` block and removed afterwards, so nothing
leaks into other tests and ``turngym envs list`` never shows them)::

    pit <- start -> hall -> goal          actions: "left", "right"

* :data:`BANDIT_ID`: one turn from the start (``length=1``): ``right`` reaches the goal
  (reward 1), ``left`` falls into the pit and ends the episode (reward 0). A policy that
  picks either word half the time succeeds 0.5.
* :data:`CORRIDOR_ID`: the credit-assignment task (``length=2``): the goal is two moves
  right of the start; ``left`` at the start is a trap into the pit (a dead end where
  ``left`` stays put and ``right`` climbs back to the start), so it wastes turns, and with
  a short budget it means failure. The states (``cell=start``, ``cell=pit``, ``cell=hall``)
  recur within and across the trajectories of a group: GiGPO's anchor states.
* :data:`DEMO_ID`: the warm-start data: a demonstrator that plays every left/right sequence
  of :data:`DEMO_TURNS` moves once per task, so that in every cell the SFT targets are
  exactly half ``left`` and half ``right``. SFT on it (:data:`WARM_START`) teaches the tiny
  model the ``<action>...</action>`` format and a coin-flip policy: success about 0.5 per
  move.

The observation text of a cell is the same in all three envs, so the warm start's prompts
are the learning tasks' prompts (with ``rollout.history_length=0``). The registrations live
in the registering process only: runs step the envs inline (``rollout.step_mode=inline``),
and a spawned process registers them again (``benchmarks/learning.py``: ``in_env``).
"""

from __future__ import annotations

import contextlib
import itertools
from collections.abc import Iterator
from typing import Any

from turngym.envs import TurnEnv, register, registry

BANDIT_ID = "turngym-tests/LearnBandit-v0"
CORRIDOR_ID = "turngym-tests/LearnCorridor-v0"
DEMO_ID = "turngym-tests/LearnCorridorDemo-v0"

#: Cell names by position; position -1 is the pit, ``length`` the goal.
CELLS = {-1: "pit", 0: "start", 1: "hall"}
ACTIONS = ("left", "right")
#: Moves per demonstration episode: every sequence in {left, right}^3 is one demo task.
DEMO_TURNS = 3


class Corridor(TurnEnv):
    """Walk right from the start to the goal; left of the start is a pit.

    Actions: ``left`` or ``right``. Observations: ``You are at the <cell>.`` (``pit``,
    ``start``, ``hall``). Tools: none. Rewards: 1 on reaching the goal, else 0. Episode
    end: terminated at the goal, or on entering the pit when ``fatal_pit``; otherwise the
    turn budget (``TurnLimit``) truncates. Info keys: state_key, action_valid, won,
    task_id, admissible_actions. Arguments: ``length`` (moves from the start to the goal,
    1 or 2), ``fatal_pit`` (the pit ends the episode), ``num_tasks`` (tasks per split; all
    tasks play the same corridor, they differ only in id and seed).
    """

    family = "corridor"
    splits = ("train", "test")

    def __init__(self, length: int = 2, fatal_pit: bool = False, num_tasks: int = 64,
                 render_mode: str | None = None):
        super().__init__(render_mode=render_mode)
        if length not in (1, 2):
            raise ValueError(f"length must be 1 or 2, got {length}")
        self.length, self.fatal_pit, self.num_tasks = length, fatal_pit, num_tasks
        self.pos = 0

    def task_ids(self, split: str | None = None) -> list[str]:
        split = split or "train"
        if split not in self.splits:
            raise KeyError(f"unknown split {split!r}; splits: {self.splits}")
        return [f"{split}-{i:03d}" for i in range(self.num_tasks)]

    def _obs(self) -> str:
        return f"You are at the {CELLS[self.pos]}."

    def _reset(self, task_id: str) -> str:
        self.pos = 0
        return self._obs()

    def _step(self, action: str) -> tuple[str, float, bool, bool, bool]:
        word = action.strip().lower()
        if word not in ACTIONS:
            return f"Invalid action {action[:40]!r}: say left or right.", 0.0, False, False, False
        self.pos = min(self.pos + 1, self.length) if word == "right" else max(self.pos - 1, -1)
        if self.won():
            return "You reached the goal.", 1.0, True, True, True
        if self.pos == -1 and self.fatal_pit:
            return "You fell into the pit.", 0.0, True, True, False
        return self._obs(), 0.0, False, True, False

    def won(self) -> bool:
        return self.pos == self.length

    def state_key(self) -> str:
        return "cell=goal" if self.won() else f"cell={CELLS[self.pos]}"

    def admissible_actions(self) -> list[str]:
        return list(ACTIONS)

    def expert_action(self) -> str | None:
        return None if self.won() else "right"

    def _state(self) -> Any:
        return self.pos

    def _set_state(self, state: Any) -> None:
        self.pos = int(state)


class CorridorDemo(Corridor):
    """The corridor with a coin-flip demonstrator, for the SFT warm start.

    Actions, observations, tools, rewards, episode end: as :class:`Corridor`. Info keys:
    state_key, action_valid, won, task_id, admissible_actions. Arguments: ``repeats`` (tasks
    per move sequence). Task ``demo-<seq>-<k>`` plays the move sequence ``seq`` (``l``/``r``
    letters, every sequence of :data:`DEMO_TURNS` moves once per repeat): ``expert_action``
    is its next move, not a correct one. Over all tasks, every cell sees as many ``left`` as
    ``right`` targets.
    """

    def __init__(self, repeats: int = 2, render_mode: str | None = None):
        super().__init__(length=2, fatal_pit=False, render_mode=render_mode)
        self.repeats = repeats
        self.turn = 0

    def task_ids(self, split: str | None = None) -> list[str]:
        seqs = ("".join(s) for s in itertools.product("lr", repeat=DEMO_TURNS))
        return [f"demo-{s}-{k}" for s in seqs for k in range(self.repeats)]

    def _reset(self, task_id: str) -> str:
        self.turn = 0
        return super()._reset(task_id)

    def _step(self, action: str) -> tuple[str, float, bool, bool, bool]:
        self.turn += 1
        return super()._step(action)

    def expert_action(self) -> str | None:
        seq = str(self.task_id).split("-")[1]
        if self.won() or self.turn >= len(seq):
            return None
        return "left" if seq[self.turn] == "l" else "right"

    def _state(self) -> Any:
        return (self.pos, self.turn)

    def _set_state(self, state: Any) -> None:
        self.pos, self.turn = (int(x) for x in state)


#: The SFT warm start on :data:`DEMO_ID` (train-config overrides, on top of the prompt and
#: response settings of the runs that start from it: ``rollout.history_length=0``,
#: ``rollout.max_tokens=16``, ``rollout.step_mode=inline``, ``seed=0`` and ``model.path=tiny``).
#: One task per move sequence (8 tasks, 22 expert turns), full-batch steps (every step sees
#: as many ``left`` as ``right`` targets in each cell, so the policy ends near 50/50 rather
#: than wherever the last mini-batch's noise left it), 20 epochs at lr 3e-3. ``sft.max_turns``
#: plays every demo move even where ``eval.max_turns`` is shorter (the benchmark's 2).
WARM_START = [f"env.id={DEMO_ID}", "env.kwargs={repeats: 1}", f"rollout.max_turns={DEMO_TURNS}",
              f"sft.max_turns={DEMO_TURNS}", "sft.num_tasks=8", "sft.epochs=20", "sft.lr=3e-3",
              "sft.batch_size=64", "optim.mini_batch_size=64", "optim.micro_batch_size=32"]

#: id -> (entry point, turn budget, default kwargs)
SPECS: dict[str, tuple[Any, int, dict[str, Any]]] = {
    BANDIT_ID: (Corridor, 1, {"length": 1, "fatal_pit": True}),
    CORRIDOR_ID: (Corridor, 8, {"length": 2, "fatal_pit": False}),
    DEMO_ID: (CorridorDemo, DEMO_TURNS, {}),
}


@contextlib.contextmanager
def registered() -> Iterator[None]:
    """Register the test envs for the ``with`` block; remove them from the registry after.

    ``envs.register`` refuses a duplicate id (``DuplicateEnvError``), so an id left over by
    another test would fail loudly here rather than be silently reused. (The gymnasium
    registry keeps its forwarding entry; it only calls ``envs.make``, which then reports
    the id as unknown.)
    """
    done: list[str] = []
    try:
        for env_id, (entry, turns, kwargs) in SPECS.items():
            register(env_id, entry, max_turns=turns, kwargs=kwargs,
                     description="test-only (benchmarks/credit_envs.py)")
            done.append(env_id)
        yield
    finally:
        for env_id in done:
            registry.pop(env_id, None)
