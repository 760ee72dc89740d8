"""``turngym/ScienceWorld-v0``: the real ScienceWorld engine (a JVM) behind the contract."""

from __future__ import annotations

import functools
import hashlib
import json
import logging
import threading
from pathlib import Path
from typing import Any

from turngym.envs.core import ReplaySnapshot, TurnEnv
from turngym.errors import ConfigError

logger = logging.getLogger(__name__)

SPLITS = ("train", "dev", "test")
_NO_MATCH = "No known action matches that input."
_MAX_ACTION_LEN = 300
_variations: dict[str, dict[str, list[int]]] = {}  # task name -> split -> variation ids
_variations_lock = threading.Lock()
_gold_paths: dict[tuple[str, str], list[str]] = {}  # (task id, simplification) -> gold path
#: Default cap of each engine JVM's heap. Without one the JVM sizes its heap to a quarter of
#: the machine's memory and rarely collects: it grew from 0.6 to 3.3 GB over 30
#: ``expert_action`` calls (each new task's gold-path search allocates ~110 MB). The gold
#: path of every task is found within 512 MB.
DEFAULT_MAX_HEAP_MB = 1024
_launch_lock = threading.Lock()
#: The package's variation splits, saved by ``python -m turngym.envs.scienceworld.env`` so that
#: listing tasks needs no JVM. Recomputed when the installed version differs.
VARIATIONS_FILE = Path(__file__).with_name("variations.json")


def _canonical(text: str) -> str:
    """``text`` with every comma-separated list sorted, at every parenthesis depth, and its
    lines sorted: the engine lists a room's or a container's contents in an order that
    changes between loads of the same task (JVM hash order), not with the state."""

    def sort_lists(s: str) -> str:
        parts, depth, start, out = [], 0, 0, []
        i = 0
        while i < len(s):  # canonicalise each top-level parenthesised group first
            if s[i] == "(":
                depth, j = 1, i + 1
                while j < len(s) and depth:
                    depth += {"(": 1, ")": -1}.get(s[j], 0)
                    j += 1
                out.append("(" + sort_lists(s[i + 1:j - 1]) + ")")
                i = j
                continue
            out.append(s[i])
            i += 1
        flat, prefix = "".join(out), ""
        depth = 0
        for k, ch in enumerate(flat):  # then sort its own top-level list, after its lead-in
            depth += {"(": 1, ")": -1}.get(ch, 0)
            if depth:
                continue
            if not parts and not prefix:
                for lead in (": ", "containing "):
                    if flat.startswith(lead, k):
                        prefix, start = flat[:k + len(lead)], k + len(lead)
            if flat.startswith(", ", k):
                parts.append(flat[start:k])
                start = k + 2
        parts.append(flat[start:])
        return prefix + ", ".join(sorted(parts))

    return "\n".join(sorted(sort_lists(line.strip()) for line in text.splitlines()
                             if line.strip()))


def jvm_options(max_heap_mb: int) -> list[str]:
    """The JVM options of an engine: the heap cap, and the serial collector (one GC thread
    per JVM instead of one per core, and it gives freed heap back to the system)."""
    return [f"-Xmx{int(max_heap_mb)}m", "-XX:+UseSerialGC"]


def _start_engine(max_heap_mb: int = DEFAULT_MAX_HEAP_MB) -> Any:
    import scienceworld.scienceworld as package
    from scienceworld import ScienceWorldEnv as Engine

    # The package starts its JVM with py4j's ``launch_gateway`` and no way to pass JVM
    # options: hand them to that call (under a lock, as the name is swapped in the module).
    with _launch_lock:
        launch = package.launch_gateway
        package.launch_gateway = functools.partial(launch, javaopts=jvm_options(max_heap_mb))
        try:
            # The engine's own step limit would end episodes on its own; TurnLimit owns budgets.
            return Engine("", envStepLimit=1_000_000)
        finally:
            package.launch_gateway = launch


def _load_variations(env: ScienceWorldEnv) -> dict[str, dict[str, list[int]]]:
    """Variation ids of every task and split, as the package defines them (cached)."""
    from scienceworld.version import __version__

    with _variations_lock:
        if not _variations and VARIATIONS_FILE.exists():
            saved = json.loads(VARIATIONS_FILE.read_text())
            if saved["scienceworld_version"] == __version__:
                _variations.update(saved["variations"])
        if not _variations:
            engine = env.engine
            for name in engine.get_task_names():
                engine.load(name, 0, "")
                _variations[name] = {"train": list(engine.get_variations_train()),
                                     "dev": list(engine.get_variations_dev()),
                                     "test": list(engine.get_variations_test())}
    return _variations


class ScienceWorldEnv(ReplaySnapshot, TurnEnv):
    """ScienceWorld (Wang et al., 2022): 30 science tasks in a text world, run by the
    ``scienceworld`` package's own simulator (a JVM started per env instance).

    **Actions.** ScienceWorld's action language (``open door to kitchen``, ``focus on
    water``, ``pick up thermometer``, ...). Text the engine cannot parse ("No known action
    matches that input."), empty text and text over 300 characters are invalid and change
    nothing.

    **Observations.** The engine's observation text. The first one is ``look around``
    preceded by the task description.

    **Tools.** None.

    **Rewards.** Score delta / 100 (the engine's score runs 0..100).

    **Episode end.** ``terminated`` when the engine reports completion (success, or a
    failure that sets the score below 0). ``won`` when the score reaches 100. The turn budget
    truncates.

    **Info keys.** ``state_key`` (hash of look + inventory + task progress + score, never
    the history; lists and lines sorted, so the engine's listing order does not matter),
    ``action_valid``, ``won``, ``task_id`` (``"<task name>/<variation>"``),
    ``admissible_actions`` (the engine's valid action-object combinations), ``score`` (int,
    0..100), ``task_type`` (the task name).

    **Expert.** ``expert_action`` follows the engine's gold path while the episode's valid
    actions are a prefix of it; off the gold path it returns ``None``.

    **Snapshot.** Declared inexact (``snapshot_exact = False``). The engine has no state
    export, so a snapshot is the task id plus the action list, and ``restore`` reloads the
    task and replays them. The engine lists the contents of rooms and containers in an
    order that changes from one load of a task to the next (measured: 2 of 12 random
    snapshots restored with another order), so a restored env can describe the same world
    in another order and, where the episode answered one of the engine's "which one?"
    prompts by number, pick another of two same-named objects. ``state_key`` is
    order-independent and equal after a restore in the ordinary case. Pickling works the
    same way: the copy starts its own JVM on first use and replays the episode there.

    **Memory.** One JVM per env (about 0.25 GB at start, up to about 1.3 GB once gold
    paths are searched), its heap capped at ``max_heap_mb`` (``-Xmx``) so it stays bounded
    however many tasks and ``expert_action`` calls it serves; ``close()`` stops it. Gold
    paths are cached per task in the process (a few KB each, bounded by the task set).

    **Arguments.** ``split`` (``train``, ``dev``, ``test``: the package's variation splits),
    ``tasks`` (task names to include; default all 30), ``simplification`` (default
    ``"easy"``; see ScienceWorld's simplifications), ``max_heap_mb`` (the JVM's heap cap,
    default 1024).

    **Version history.** v0: first version.
    """

    family = "scienceworld"
    slow_steps = True
    snapshot_exact = False  # the engine's listing order changes between loads; see Snapshot
    splits = SPLITS
    extra_info_keys = ("score", "task_type")

    def __init__(self, split: str = "train", tasks: list[str] | None = None,
                 simplification: str = "easy", max_heap_mb: int = DEFAULT_MAX_HEAP_MB,
                 render_mode: str | None = None):
        super().__init__(render_mode)
        if split not in SPLITS:
            raise ValueError(f"split must be one of {SPLITS}, got {split!r}")
        if not isinstance(max_heap_mb, int) or max_heap_mb < 256:
            raise ConfigError(f"max_heap_mb must be an int >= 256 (MB), got {max_heap_mb!r}")
        self.split, self.tasks, self.simplification = split, tasks, simplification
        self.max_heap_mb = max_heap_mb
        self._engine: Any = None
        self._pending: bytes | None = None  # a snapshot to replay when the engine starts
        self._actions: list[str] = []
        self._score = 0
        self._done = False

    # -------------------------------------------------------------- engine lifetime
    @property
    def engine(self) -> Any:
        if self._engine is None:
            self._engine = _start_engine(self.max_heap_mb)
            pending, self._pending = self._pending, None
            if pending is not None:  # unpickled mid-episode: replay to the pickled state
                self.restore(pending)
        return self._engine

    def close(self) -> None:
        super().close()
        if self._engine is not None:
            engine, self._engine = self._engine, None
            try:
                engine.close()
            except Exception as exc:  # the JVM may already be gone
                logger.debug("closing ScienceWorld engine: %s", exc)

    def __getstate__(self) -> dict[str, Any]:
        """A JVM cannot be pickled: the copy starts its own on first use and, when the
        original was mid-episode, replays the episode's actions there (as ``restore``)."""
        state = self.__dict__.copy()
        state["_engine"] = None
        if self._ready and self.task_id is not None:
            state["_pending"] = self.snapshot()
        return state

    def __setstate__(self, state: dict[str, Any]) -> None:
        state.setdefault("_pending", None)
        self.__dict__.update(state)

    # -------------------------------------------------------------- contract
    def task_ids(self, split: str | None = None) -> list[str]:
        variations = _load_variations(self)
        names = self.tasks or sorted(variations)
        unknown = sorted(set(names) - set(variations))
        if unknown:
            raise ValueError(f"unknown ScienceWorld task(s) {unknown}; known: {sorted(variations)}")
        splits = [split] if split else [self.split]
        return [f"{n}/{v}" for s in splits for n in names for v in variations[n][s]]

    def _reset(self, task_id: str) -> str:
        name, var = task_id.rsplit("/", 1)
        self.engine.load(name, int(var), self.simplification, generateGoldPath=False)
        obs, _ = self.engine.reset()
        self._actions, self._score, self._done = [], 0, False
        return f"{self.engine.taskdescription()}\n\n{obs}"

    def _step(self, action: str) -> tuple[str, float, bool, bool, bool]:
        text = action.strip()
        if not text or len(text) > _MAX_ACTION_LEN or not text.isprintable():
            return (f"Invalid action: expected one ScienceWorld command of at most "
                    f"{_MAX_ACTION_LEN} printable characters, "
                    "e.g. 'look around'."), 0.0, False, False, False
        obs, _, completed, info = self.engine.step(text)
        if obs.strip() == _NO_MATCH:
            return f"{_NO_MATCH} Try one of the admissible actions.", 0.0, False, False, False
        self._actions.append(text)
        delta = int(info["score"]) - self._score
        self._score, self._done = int(info["score"]), bool(completed)
        return obs, delta / 100.0, bool(completed), True, self.won()

    def won(self) -> bool:
        return self._score >= 100

    def state_key(self) -> str:
        e = self.engine
        text = "\n".join((_canonical(e.look()), _canonical(e.inventory()),
                          e.get_goal_progress(), str(self._score)))
        return f"{self.task_id}|{hashlib.sha1(text.encode()).hexdigest()[:20]}"

    def admissible_actions(self) -> list[str]:
        return sorted(self.engine.get_valid_action_object_combinations())

    def extra_info(self) -> dict[str, Any]:
        return {"score": self._score, "task_type": (self.task_id or "/").rsplit("/", 1)[0]}

    def expert_action(self) -> str | None:
        gold = self._gold_path()
        k = len(self._actions)
        if self._done or k >= len(gold) or self._actions != gold[:k]:
            return None
        return gold[k]

    def _gold_path(self) -> list[str]:
        """The engine's gold path, generated on first use (it makes loading slow) and cached
        per task: reload with generation on, then replay this episode's actions."""
        key = (self.task_id, self.simplification)
        if key not in _gold_paths:
            name, var = self.task_id.rsplit("/", 1)
            self.engine.load(name, int(var), self.simplification, generateGoldPath=True)
            self.engine.reset()
            _gold_paths[key] = list(self.engine.get_gold_action_sequence())
            for a in self._actions:
                self.engine.step(a)
        return _gold_paths[key]


if __name__ == "__main__":  # regenerate variations.json for the installed package
    from scienceworld.version import __version__

    _env = ScienceWorldEnv()
    _variations.clear()
    VARIATIONS_FILE.unlink(missing_ok=True)
    _found = _load_variations(_env)
    _env.close()
    VARIATIONS_FILE.write_text(json.dumps({"scienceworld_version": __version__,
                                           "variations": _found}, indent=0, sort_keys=True))
