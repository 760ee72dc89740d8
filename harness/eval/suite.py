"""Evaluation suites: fixed task lists, seeds and sampling settings, stored as YAML.

A suite is a file under ``harness/eval/suites/`` (or any path). It lists one or more
*entries*; each entry is one env id with its kwargs, a split, the tasks (explicit
``task_ids`` or the first ``num_tasks`` of the split), the seeds, and a turn limit. The
suite gives the number of samples per task (``samples``, the n of pass@k) and the sampling
parameters shared by every entry::

    name: sokoban
    description: Sokoban test split.
    seed: 0
    samples: 1
    sampling: {temperature: 0.7, max_tokens: 256}
    entries:
      - name: test
        env_id: turngym/Sokoban-v0
        split: test
        num_tasks: 50
        max_turns: 30

Seeds: task ``i`` of an entry gets ``seeds[i]`` when ``seeds`` is given (one per task),
else ``suite.seed + i``. Every sample of a task starts from the same ``(task_id, seed)``.

Loading validates with pydantic (``extra="forbid"``); a bad file raises
:class:`turngym.errors.ConfigError` naming the file and the key (``entries.0.num_tasks``).
:func:`check_suite` also builds each env and checks that every task id exists.
"""

from __future__ import annotations

import difflib
from pathlib import Path
from typing import TYPE_CHECKING, Any

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from turngym.errors import ConfigError
from turngym.harness.rollout.config import RolloutConfig

if TYPE_CHECKING:
    import gymnasium as gym

#: Where the shipped suites live.
SUITES_DIR = Path(__file__).resolve().parent / "suites"


class Sampling(BaseModel):
    """Sampling parameters of every model turn (ignored by scripted policies)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    temperature: float = Field(default=0.7, ge=0.0, le=5.0)
    top_p: float = Field(default=1.0, gt=0.0, le=1.0)
    top_k: int = Field(default=-1, ge=-1)
    max_tokens: int = Field(default=256, ge=1, le=32768)
    """Max generated tokens per turn."""


class SuiteEntry(BaseModel):
    """One env + split of a suite."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    name: str = Field(min_length=1)
    """Entry name, unique within the suite (``valid_seen``, ``test``)."""
    env_id: str
    """Registered env id."""
    env_kwargs: dict[str, Any] = Field(default_factory=dict)
    """Constructor kwargs for :func:`envs.make` (e.g. ``{split: valid_seen}``)."""
    split: str | None = None
    """Split whose task ids ``num_tasks`` draws from (the env's default when None)."""
    task_ids: list[str] | None = None
    """Explicit task ids (exclusive with ``num_tasks``)."""
    num_tasks: int | None = Field(default=None, ge=1)
    """Take the first ``num_tasks`` task ids of ``split``."""
    seeds: list[int] | None = None
    """One env seed per task; default ``suite.seed + i``."""
    max_turns: int | None = Field(default=None, ge=1)
    """Turn limit (the env's registered default when None)."""
    rollout: dict[str, Any] = Field(default_factory=dict)
    """Extra :class:`turngym.harness.rollout.engine.RolloutConfig` fields for this entry
    (``step_mode``, ``num_workers``, ``env_timeout_s``, ...); checked by
    ``RolloutConfig``."""
    group_by: str = "task_type"
    """Info key for the per-type breakdown (``task_type``; ``question_type`` for search)."""

    @model_validator(mode="after")
    def _check(self) -> SuiteEntry:
        if (self.task_ids is None) == (self.num_tasks is None):
            raise ValueError("give exactly one of task_ids and num_tasks")
        if self.task_ids is not None and not self.task_ids:
            raise ValueError("task_ids is empty")
        n = len(self.task_ids) if self.task_ids is not None else self.num_tasks
        if self.seeds is not None and len(self.seeds) != n:
            raise ValueError(f"seeds has {len(self.seeds)} values for {n} tasks")
        return self


class Suite(BaseModel):
    """A named list of entries with shared samples, seed and sampling parameters."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    name: str = Field(min_length=1)
    description: str = ""
    seed: int = Field(default=0, ge=0)
    """Base seed: task seeds (when not listed) and the sampling seeds derive from it."""
    samples: int = Field(default=1, ge=1, le=1024)
    """n: samples per task (pass@k is reported for k <= n)."""
    sampling: Sampling = Field(default_factory=Sampling)
    entries: list[SuiteEntry] = Field(min_length=1)

    @model_validator(mode="after")
    def _unique(self) -> Suite:
        names = [e.name for e in self.entries]
        dup = sorted({n for n in names if names.count(n) > 1})
        if dup:
            raise ValueError(f"duplicate entry names {dup}")
        return self

    def with_samples(self, samples: int | None) -> Suite:
        """A copy with ``samples`` replaced (``None`` keeps it)."""
        if samples is None:
            return self
        if samples < 1:
            raise ConfigError(f"--samples must be >= 1, got {samples}")
        return self.model_copy(update={"samples": samples})


def list_suites() -> list[str]:
    """Names of the shipped suites (files in :data:`SUITES_DIR`)."""
    return sorted(p.stem for p in SUITES_DIR.glob("*.yaml"))


def suite_path(name_or_path: str | Path) -> Path:
    """The file of a shipped suite name, or ``name_or_path`` itself when it is a file."""
    path = Path(name_or_path)
    if path.is_file():
        return path
    shipped = SUITES_DIR / f"{name_or_path}.yaml"
    if shipped.is_file():
        return shipped
    near = difflib.get_close_matches(str(name_or_path), list_suites(), n=1)
    hint = f"; did you mean {near[0]!r}?" if near else ""
    raise ConfigError(f"no suite {str(name_or_path)!r}: not a file and not one of "
                      f"{', '.join(list_suites())}{hint}")


def load_suite(name_or_path: str | Path) -> Suite:
    """Read and validate a suite; errors name the file and the key."""
    path = suite_path(name_or_path)
    try:
        data = yaml.safe_load(path.read_text())
    except yaml.YAMLError as exc:
        raise ConfigError(f"{path}: not valid YAML: {exc}") from None
    if not isinstance(data, dict):
        raise ConfigError(f"{path}: expected a mapping with name, entries, ...")
    try:
        return Suite(**data)
    except ValidationError as exc:
        parts = []
        for err in exc.errors():
            key = ".".join(str(p) for p in err["loc"]) or "suite"
            parts.append(f"{key}: {err['msg']}")
        raise ConfigError(f"{path}: " + "; ".join(parts)) from None


def entry_tasks(entry: SuiteEntry, base_seed: int,
                env: gym.Env | None = None) -> list[tuple[str, int]]:
    """The ``(task_id, seed)`` pairs of ``entry``; ``env`` (made with the entry's kwargs)
    is used to list the split and to check that every task id exists."""
    from turngym import envs  # registers the envs: not at import (``turngym.load_suite``)
    from turngym.envs.core import unwrapped_turn_env

    own = env is None
    if own:
        try:
            env = envs.make(entry.env_id, **entry.env_kwargs)
        except TypeError as exc:
            raise ConfigError(f"entry {entry.name!r}: env_kwargs: {exc}") from None
    try:
        base = unwrapped_turn_env(env)
        if entry.task_ids is not None:
            ids = list(entry.task_ids)
        else:
            try:
                pool = base.task_ids(entry.split)
            except (KeyError, ValueError) as exc:
                raise ConfigError(f"entry {entry.name!r}: split {entry.split!r}: {exc}") from None
            if entry.num_tasks > len(pool):
                raise ConfigError(f"entry {entry.name!r}: num_tasks {entry.num_tasks} is more "
                                  f"than the {len(pool)} tasks of split {entry.split!r}")
            ids = pool[: entry.num_tasks]
        missing = [t for t in ids if not base.has_task(t)]
        if missing:
            raise ConfigError(f"entry {entry.name!r}: task ids {missing[:3]} are not accepted by "
                              f"{entry.env_id} with env_kwargs {entry.env_kwargs} (a split "
                              "that needs env_kwargs, e.g. {split: valid_seen}?)")
    finally:
        if own:
            env.close()
    seeds = entry.seeds or [base_seed + i for i in range(len(ids))]
    return list(zip(ids, (int(s) for s in seeds)))


def check_suite(suite: Suite) -> dict[str, list[tuple[str, int]]]:
    """Build each entry's env once and resolve its tasks (fails naming the entry)."""
    from turngym import envs  # registers the envs: not at import (``turngym.load_suite``)

    owned = {"env_id", "env_kwargs", "group_size", "max_turns", "temperature", "top_p",
             "top_k", "max_tokens", "seed"}
    for e in suite.entries:
        envs.spec(e.env_id)  # unknown ids fail with a "did you mean"
        clash = sorted(owned & set(e.rollout))
        if clash:
            raise ConfigError(f"entry {e.name!r}: rollout.{clash[0]} is set by the suite itself")
        try:
            RolloutConfig.build(env_id=e.env_id, **e.rollout)
        except ConfigError as exc:
            raise ConfigError(f"entry {e.name!r}: {exc}") from None
    return {e.name: entry_tasks(e, suite.seed) for e in suite.entries}
