"""Checks that an environment keeps the turngym contract (``envs/core.py``).

``check_env("turngym/Sokoban-v0")`` runs every check and returns a :class:`CheckReport`;
``turngym envs check ID`` prints it as a table, and ``tests/envs/test_all_envs.py`` runs it
over every registered id. Each check catches its own exceptions, so one broken property
does not hide the others.
"""

from __future__ import annotations

import logging
import pickle
import time
from dataclasses import dataclass, field
from typing import Any, Callable

import gymnasium as gym
import numpy as np

from envs.core import INFO_KEYS
from envs.registration import make

logger = logging.getLogger(__name__)

#: Inputs no env may accept as a valid action.
GARBAGE_ACTIONS: tuple[str, ...] = (
    "",
    " ",
    "x" * 10_000,
    "\x00\x01\x02\x1b[2J\x07",
    "ünïcødé ☃ 🤖 \u202e\u200b",
    "{\"name\": ",
    "<action></action>",
    "\n\n\t",
    "DROP TABLE envs; --",
    "🤖" * 500,
)
#: Keys a wrapper may add on top of the env's own info.
WRAPPER_INFO_KEYS = ("turn",)


@dataclass
class CheckResult:
    name: str
    passed: bool
    message: str = ""
    seconds: float = 0.0


@dataclass
class CheckReport:
    env_id: str
    results: list[CheckResult] = field(default_factory=list)

    @property
    def passed(self) -> bool:
        return all(r.passed for r in self.results)

    def failures(self) -> list[CheckResult]:
        return [r for r in self.results if not r.passed]


def _first_task(env: gym.Env) -> str:
    ids = env.unwrapped.task_ids()
    return ids[len(ids) // 3]


def _action(env: gym.Env, info: dict[str, Any], rng: np.random.Generator) -> str:
    """A plausible action: admissible when known, else expert, else random text."""
    admissible = info.get("admissible_actions")
    if admissible:
        return admissible[int(rng.integers(len(admissible)))]
    if rng.random() < 0.5:
        expert = env.unwrapped.expert_action()
        if expert:
            return expert
    return GARBAGE_ACTIONS[int(rng.integers(len(GARBAGE_ACTIONS)))]


def check_reset_determinism(make_env: Callable[[], gym.Env]) -> str:
    a, b = make_env(), make_env()
    try:
        task = _first_task(a)
        obs_a, info_a = a.reset(seed=123, options={"task_id": task})
        obs_b, info_b = b.reset(seed=123, options={"task_id": task})
        assert obs_a == obs_b, "same seed and task_id gave different first observations"
        assert info_a["state_key"] == info_b["state_key"], "same seed/task gave different state_key"
        obs_c, info_c = a.reset(seed=123, options={"task_id": task})
        assert obs_c == obs_a and info_c["state_key"] == info_a["state_key"], \
            "a second reset on the same env differs from the first"
        assert info_a["task_id"] == task, f"info['task_id'] is {info_a['task_id']!r}, not {task!r}"
        return f"task {task}"
    finally:
        a.close()
        b.close()


def check_types_and_info(make_env: Callable[[], gym.Env], steps: int = 30) -> str:
    env = make_env()
    inner = env.unwrapped
    documented = set(INFO_KEYS) | set(getattr(inner, "extra_info_keys", ()))
    doc = type(inner).__doc__ or ""
    missing_doc = [k for k in documented if k not in doc]
    assert not missing_doc, f"info keys {missing_doc} are not documented in the class docstring"
    rng = np.random.default_rng(0)
    try:
        obs, info = env.reset(seed=0, options={"task_id": _first_task(env)})
        for t in range(steps + 1):
            assert isinstance(obs, str), f"observation is {type(obs).__name__}, not str"
            keys = set(info) - set(WRAPPER_INFO_KEYS)
            assert keys == documented, (f"info keys {sorted(keys)} differ from documented "
                                        f"{sorted(documented)}")
            assert isinstance(info["state_key"], str) and info["state_key"], "bad state_key"
            assert isinstance(info["action_valid"], bool), "action_valid is not a bool"
            assert isinstance(info["won"], bool), "won is not a bool"
            adm = info["admissible_actions"]
            assert adm is None or (isinstance(adm, list) and all(isinstance(a, str) for a in adm))
            if t == steps:
                break
            obs, reward, term, trunc, info = env.step(_action(env, info, rng))
            assert isinstance(reward, float), f"reward is {type(reward).__name__}, not float"
            assert isinstance(term, bool) and isinstance(trunc, bool), "terminated/truncated type"
            assert not (term and trunc), "terminated and truncated are both True"
            if term or trunc:
                obs, info = env.reset(seed=t, options={"task_id": _first_task(env)})
        return f"{steps} steps"
    finally:
        env.close()


def _play(env: gym.Env, actions: list[str]) -> list[tuple]:
    out = []
    for a in actions:
        obs, r, term, trunc, info = env.step(a)
        out.append((obs, r, term, trunc, info["state_key"], info["action_valid"], info["won"]))
        if term or trunc:
            break
    return out


def check_snapshot_restore(make_env: Callable[[], gym.Env], prefix: int = 3, future: int = 8) -> str:
    env = make_env()
    rng = np.random.default_rng(1)
    try:
        obs, info = env.reset(seed=7, options={"task_id": _first_task(env)})
        for _ in range(prefix):  # walk a little, with expert moves where there are any
            a = env.unwrapped.expert_action() or _action(env, info, rng)
            obs, _, term, trunc, info = env.step(a)
            if term or trunc:
                obs, info = env.reset(seed=7, options={"task_id": _first_task(env)})
                break
        key = info["state_key"]
        blob = env.snapshot()
        assert isinstance(blob, bytes), "snapshot() must return bytes"
        actions = []
        for _ in range(future):
            a = _action(env, info, rng)
            actions.append(a)
            obs, _, term, trunc, info = env.step(a)
            if term or trunc:
                break
        env.restore(blob)
        first = _play(env, actions)
        env.restore(blob)
        assert env.unwrapped.state_key() == key, "state_key after restore differs"
        second = _play(env, actions)
        assert first == second, "the same actions after restore gave a different future"
        fresh = make_env()  # restoring into another instance works too
        try:
            fresh.reset(seed=99, options={"task_id": _first_task(fresh)})
            fresh.restore(blob)
            assert _play(fresh, actions) == first, "restore into a new env gave a different future"
        finally:
            fresh.close()
        return f"{len(actions)} actions replayed"
    finally:
        env.close()


def check_bad_actions(make_env: Callable[[], gym.Env], n: int = 200) -> str:
    env = make_env()
    rng = np.random.default_rng(2)
    try:
        obs, info = env.reset(seed=3, options={"task_id": _first_task(env)})
        for i in range(n):
            if i % 2 == 0:
                bad = GARBAGE_ACTIONS[(i // 2) % len(GARBAGE_ACTIONS)]
                key = info["state_key"]
                obs, r, term, trunc, info = env.step(bad)
                assert info["action_valid"] is False, f"garbage {bad[:30]!r} was accepted"
                assert isinstance(obs, str) and obs.strip(), "invalid action gave no explanation"
                assert term or trunc or info["state_key"] == key, \
                    f"garbage {bad[:30]!r} changed the state"
            else:
                obs, r, term, trunc, info = env.step(_action(env, info, rng))
            if term or trunc:
                obs, info = env.reset(seed=i, options={"task_id": _first_task(env)})
        return f"{n} actions"
    finally:
        env.close()


def check_close_and_pickle(make_env: Callable[[], gym.Env]) -> str:
    env = make_env()
    obs, _ = env.reset(seed=5, options={"task_id": _first_task(env)})
    clone = pickle.loads(pickle.dumps(env))
    obs2, _ = clone.reset(seed=5, options={"task_id": _first_task(clone)})
    assert obs2 == obs, "an unpickled env resets to a different observation"
    clone.close()
    env.close()
    env.close()
    return "close() twice, pickle round-trip"


CHECKS: dict[str, Callable[[Callable[[], gym.Env]], str]] = {
    "reset determinism": check_reset_determinism,
    "types and info keys": check_types_and_info,
    "snapshot/restore": check_snapshot_restore,
    "bad actions": check_bad_actions,
    "close and pickle": check_close_and_pickle,
}


def check_env(env_id: str, **kwargs: Any) -> CheckReport:
    """Run every check on ``env_id`` built with ``kwargs``."""
    report = CheckReport(env_id)

    def make_env() -> gym.Env:
        return make(env_id, **kwargs)

    for name, check in CHECKS.items():
        start = time.perf_counter()
        try:
            msg = check(make_env)
            report.results.append(CheckResult(name, True, msg, time.perf_counter() - start))
        except Exception as exc:  # report, don't raise: one failure must not hide the rest
            logger.debug("check %s failed on %s", name, env_id, exc_info=True)
            report.results.append(CheckResult(name, False, f"{type(exc).__name__}: {exc}",
                                              time.perf_counter() - start))
    return report
