"""The record types passed between rollout, algorithms, training, evaluation and reports.

One :class:`Turn` per model turn; a :class:`Trajectory` is one episode; a :class:`Group` is
the G trajectories that started from the same ``task_id`` and seed. Trajectories are stored
as JSONL, one trajectory a line (:func:`write_jsonl` / :func:`read_jsonl`).

Token-in / token-out: ``prompt_ids`` are the ids the model saw and ``response_ids`` the ids
it produced. They are the ids that are trained on; text is never re-tokenised.
"""

from __future__ import annotations

import enum
import json
from collections.abc import Iterable, Iterator
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path
from typing import Any


class StopReason(str, enum.Enum):
    """Why a trajectory ended."""

    TERMINATED = "terminated"
    """The env said the task ended (success, failure or an answer was given)."""
    TRUNCATED = "truncated"
    """The env's turn or time budget ran out."""
    MAX_TOKENS = "max_tokens"
    """The prompt no longer fits the model's context, even after dropping history."""
    PARSE_ERROR = "parse_error"
    """Too many consecutive unparseable model outputs (when the rollout is set to stop)."""
    ENV_ERROR = "env_error"
    """The env raised or timed out; the episode ended there and the env was recreated."""
    HORIZON = "horizon"
    """A curriculum (TCOD f2b) cut the episode after k student turns."""


@dataclass(frozen=True)
class Turn:
    """One model turn: what the model saw, what it said, and what the env did with it."""

    group_id: str
    """Id of the group of rollouts that share ``task_id`` and seed."""
    traj_id: str
    """Id of the trajectory (unique within a run)."""
    task_id: str
    """The env task this trajectory plays."""
    turn: int
    """0-based turn index within the trajectory (expert-prefix turns count)."""
    prompt_ids: list[int]
    """Token ids of the full prompt the model saw."""
    response_ids: list[int]
    """Token ids the model generated (the action text's tokens)."""
    response_logprobs: list[float]
    """Behaviour-policy log-probs of ``response_ids``; same length."""
    reward: float
    """Env reward of this step."""
    state_key: str
    """``info["state_key"]`` of the state the model acted from (before the step)."""
    action_valid: bool
    """Whether the env could apply the action (a Maze move into a wall: False). A response
    that did not parse is never sent to the env, so it is False too; ``format_valid`` tells
    the two apart."""
    done: bool
    """Whether the episode ended after this turn."""
    won: bool
    """``info["won"]`` after this turn."""
    prompt_text: str = ""
    """Rendered prompt (for viewers; never re-tokenised for training)."""
    response_text: str = ""
    """Decoded response."""
    action: str = ""
    """The env action parsed from the response ('' when parsing failed)."""
    observation: str = ""
    """The observation the env returned after the step."""
    trainable: bool = True
    """False for turns that must not be trained on (TCOD expert prefix)."""
    teacher_logprobs: list[float] | None = None
    """Teacher log-probs of ``response_ids`` when a teacher scored this turn."""
    ref_logprobs: list[float] | None = None
    """Reference-model log-probs of ``response_ids`` (for the KL term)."""
    prompt_truncated: bool = False
    """Whether history was dropped or the observation cut to fit the context."""
    info: dict[str, Any] = field(default_factory=dict)
    """Extra, JSON-serialisable, env-specific info (e.g. ``task_type``)."""
    format_valid: bool = True
    """Whether the model's response parsed into an action (False: a format error, recorded
    with ``info["parse_error"]`` and no env step). Expert and scripted turns are True. Last
    field, so positional construction stays as it was; records written before it existed
    read back as ``"parse_error" not in info``."""


@dataclass(frozen=True)
class Trajectory:
    """One episode."""

    group_id: str
    traj_id: str
    task_id: str
    seed: int
    env_id: str
    turns: tuple[Turn, ...]
    stop_reason: StopReason
    won: bool
    """Whether the task was solved at the end."""
    error: str | None = None
    """The env/backend error message when ``stop_reason`` is ``env_error``."""
    task_type: str | None = None
    """Task family for per-type metrics (e.g. ``pick_and_place``)."""
    metrics: dict[str, float] = field(default_factory=dict)
    """Timing and other per-episode numbers (``env_s``, ``model_s``, ...)."""

    @property
    def total_reward(self) -> float:
        return float(sum(t.reward for t in self.turns))

    @property
    def num_turns(self) -> int:
        return len(self.turns)

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["stop_reason"] = self.stop_reason.value
        return d

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> Trajectory:
        turn_names = {f.name for f in fields(Turn)}
        turns = tuple(Turn(**{k: v for k, v in t.items() if k in turn_names},
                           **({} if "format_valid" in t else
                              {"format_valid": "parse_error" not in t.get("info", {})}))
                      for t in d["turns"])
        names = {f.name for f in fields(cls)}
        kw = {k: v for k, v in d.items() if k in names and k not in ("turns", "stop_reason")}
        return cls(turns=turns, stop_reason=StopReason(d["stop_reason"]), **kw)


@dataclass(frozen=True)
class Group:
    """The G trajectories of one task and seed."""

    group_id: str
    task_id: str
    seed: int
    trajectories: tuple[Trajectory, ...]


def write_jsonl(path: str | Path, trajectories: Iterable[Trajectory], append: bool = False,
                extra: dict[str, Any] | None = None) -> int:
    """Write trajectories, one JSON object a line. Returns how many were written.

    ``extra`` keys go first on every line (training's rollouts log adds ``{"step": n}``);
    :func:`read_jsonl` ignores them, so such a file reads like ``turngym eval``'s."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    n = 0
    with path.open("a" if append else "w", encoding="utf-8") as f:
        for traj in trajectories:
            f.write(json.dumps({**(extra or {}), **traj.to_dict()}, ensure_ascii=False) + "\n")
            n += 1
    return n


def read_jsonl(path: str | Path) -> Iterator[Trajectory]:
    """Read trajectories written by :func:`write_jsonl`."""
    with Path(path).open(encoding="utf-8") as f:
        for line in f:
            if line.strip():
                yield Trajectory.from_dict(json.loads(line))
