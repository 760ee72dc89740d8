"""Checks that an environment keeps the turngym contract (``envs/core.py``).

``check_env("turngym/Sokoban-v0")`` runs every check and returns a :class:`CheckReport`;
``turngym envs check ID`` prints it as a table, and ``tests/envs/test_all_envs.py`` runs it
over every registered id. Each check catches its own exceptions, so one broken property
does not hide the others.

Besides the well-behaved contract (determinism, info keys, snapshots), the checker plays
an adversarial user: the inputs of :mod:`turngym.envs.adversarial` (deep JSON, lone surrogates,
NUL, ``NaN``/``Infinity``/``1e999`` and 400-digit integers in tool arguments, strings at the
length limit and of 1 MiB) must
give invalid steps that change nothing; steps after the episode's end must pay 0 and stay
ended; ``reset`` must reject wrong-type or misspelt ``options``; an env pickled after
``reset`` or mid-episode must keep its ``state_key`` and step like the original, or refuse to
pickle with :class:`~turngym.errors.EnvError`.
"""

from __future__ import annotations

import logging
import math
import pickle
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import gymnasium as gym
import numpy as np

from turngym.envs.adversarial import command_attacks, generic_attacks, tool_call_attacks
from turngym.envs.core import INFO_KEYS, TurnLimit
from turngym.envs.registration import make
from turngym.errors import EnvError

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


def check_snapshot_restore(make_env: Callable[[], gym.Env], prefix: int = 3,
                           future: int = 8) -> str:
    env = make_env()
    if not getattr(env.unwrapped, "snapshot_exact", True):
        return _check_inexact_snapshot(env)
    rng = np.random.default_rng(1)
    try:
        _, info = env.reset(seed=7, options={"task_id": _first_task(env)})
        for _ in range(prefix):  # walk a little, with expert moves where there are any
            a = env.unwrapped.expert_action() or _action(env, info, rng)
            _, _, term, trunc, info = env.step(a)
            if term or trunc:
                _, info = env.reset(seed=7, options={"task_id": _first_task(env)})
                break
        key = info["state_key"]
        blob = env.snapshot()
        assert isinstance(blob, bytes), "snapshot() must return bytes"
        actions = []
        for _ in range(future):
            a = _action(env, info, rng)
            actions.append(a)
            _, _, term, trunc, info = env.step(a)
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


def _check_inexact_snapshot(env: gym.Env) -> str:
    """An env that declares ``snapshot_exact = False``: restore is best effort (or a clear
    ``EnvError``), not compared."""
    try:
        env.reset(seed=7, options={"task_id": _first_task(env)})
        blob = env.snapshot()
        assert isinstance(blob, bytes), "snapshot() must return bytes"
        try:
            env.restore(blob)
        except EnvError:
            return "snapshot: declared inexact (restore refused with EnvError)"
        return "snapshot: declared inexact (restore not compared)"
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
                obs, _, term, trunc, info = env.step(bad)
                assert info["action_valid"] is False, f"garbage {bad[:30]!r} was accepted"
                assert isinstance(obs, str) and obs.strip(), "invalid action gave no explanation"
                assert term or trunc or info["state_key"] == key, \
                    f"garbage {bad[:30]!r} changed the state"
            else:
                obs, _, term, trunc, info = env.step(_action(env, info, rng))
            if term or trunc:
                obs, info = env.reset(seed=i, options={"task_id": _first_task(env)})
        return f"{n} actions"
    finally:
        env.close()


def check_close_and_pickle(make_env: Callable[[], gym.Env]) -> str:
    env = make_env()
    obs, info = env.reset(seed=5, options={"task_id": _first_task(env)})
    clone = pickle.loads(pickle.dumps(env))
    assert clone.unwrapped.state_key() == info["state_key"], \
        "an env unpickled after reset has a different state_key"
    obs2, _ = clone.reset(seed=5, options={"task_id": _first_task(clone)})
    assert obs2 == obs, "an unpickled env resets to a different observation"
    clone.close()
    env.close()
    env.close()
    return "close() twice, pickle round-trip"


def _show(action: str) -> str:
    return f"{action[:40]!r}{'...' if len(action) > 40 else ''} ({len(action)} chars)"


def _safe_step(env: gym.Env, action: str) -> tuple:
    try:
        return env.step(action)
    except Exception as exc:
        raise AssertionError(f"{_show(action)} raised {type(exc).__name__}: {exc}") from exc


def check_adversarial_actions(make_env: Callable[..., gym.Env]) -> str:
    """Every input of :mod:`turngym.envs.adversarial`: no exception, a finite reward, an
    explanation; the generic ones are invalid; an invalid step leaves ``state_key``
    unchanged."""
    env = make_env()
    try:
        task = _first_task(env)
        _, info = env.reset(seed=11, options={"task_id": task})
        attacks = generic_attacks() + [
            (a, False) for a in [*command_attacks(env, info.get("admissible_actions")),
                                 *tool_call_attacks(env)]]
        accepted = 0
        for action, must_be_invalid in attacks:
            key = env.unwrapped.state_key()
            obs, reward, term, trunc, info = _safe_step(env, action)
            assert isinstance(obs, str) and obs.strip(), f"{_show(action)} gave no observation"
            assert isinstance(reward, float) and math.isfinite(reward), \
                f"{_show(action)} gave reward {reward!r}"
            valid = info["action_valid"]
            assert not (must_be_invalid and valid), f"{_show(action)} was accepted"
            assert valid or term or trunc or info["state_key"] == key, \
                f"invalid {_show(action)} changed the state"
            accepted += bool(valid)
            if valid or term or trunc:  # start clean, so the next attack meets a known state
                env.reset(seed=11, options={"task_id": task})
        return f"{len(attacks)} actions, {accepted} accepted as well-formed"
    finally:
        env.close()


def _assert_stays_ended(env: gym.Env, probes: list[str], ended: tuple, what: str) -> None:
    """``step`` after the end: reward 0, still ended, invalid, same state_key and won."""
    inner = env.unwrapped
    key, won = inner.state_key(), bool(inner.won())
    for action in probes:
        obs, reward, term, trunc, info = _safe_step(env, action)
        assert reward == 0.0, f"a step after {what} paid {reward} (action {_show(action)})"
        assert (term, trunc) == ended, \
            f"a step after {what} returned terminated={term}, truncated={trunc}"
        assert info["action_valid"] is False, f"a step after {what} was valid"
        assert info["state_key"] == key, f"a step after {what} changed state_key"
        assert info["won"] == won, f"a step after {what} changed won"
        assert isinstance(obs, str) and obs.strip(), f"a step after {what} gave no observation"


def _walk_to_end(env: gym.Env, max_steps: int) -> tuple[list[str], tuple | None]:
    """Follow the expert until the episode ends; the actions taken and (term, trunc)."""
    actions: list[str] = []
    for _ in range(max_steps):
        action = env.unwrapped.expert_action()
        if action is None:
            return actions, None
        actions.append(action)
        _, _, term, trunc, _ = env.step(action)
        if term or trunc:
            return actions, (term, trunc)
    return actions, None


def check_episode_end(make_env: Callable[..., gym.Env], expert_steps: int = 60) -> str:
    """After ``terminated`` (an expert episode of at most ``expert_steps``, 20 for
    ``slow_steps`` envs) and after ``truncated`` (a 2-turn budget), further steps pay
    nothing and change nothing; a snapshot taken at the end restores an ended env. One env
    instance serves every part (engines such as a JVM are slow to start)."""
    notes = []
    env = make_env()
    try:
        inner = env.unwrapped
        task = _first_task(env)
        _, info = env.reset(seed=13, options={"task_id": task})
        actions, ended = _walk_to_end(env, 20 if getattr(inner, "slow_steps", False)
                                      else expert_steps)
        if ended is not None and ended[0]:
            adm = inner.admissible_actions() or info.get("admissible_actions") or []
            probes = [actions[-1], *adm[:1], " ", "\ud800"]
            _assert_stays_ended(env, probes, ended, "termination")
            blob = env.snapshot()
            env.reset(seed=99, options={"task_id": task})
            env.restore(blob)
            _assert_stays_ended(env, probes[:1], ended, "restoring a terminated snapshot")
            notes.append(f"terminated after {len(actions)} expert steps")
        else:
            notes.append("no expert episode ended in termination (not tried)")
        short = TurnLimit(inner, 2)  # the same env under a 2-turn budget
        short.reset(seed=13, options={"task_id": task})
        for _ in range(2):
            _, _, term, trunc, info = short.step(" ")
        assert trunc and not term, f"a 2-turn budget gave terminated={term}, truncated={trunc}"
        probe = inner.expert_action() or " "
        _assert_stays_ended(short, [probe, probe], (False, True), "truncation")
        assert info["turn"] == 2, "the turn count moved after truncation"
        notes.append("truncated stays truncated")
    finally:
        env.close()
    return "; ".join(notes)


def check_reset_options(make_env: Callable[..., gym.Env]) -> str:
    """``reset(options=...)`` with a wrong type or a misspelt key raises a ``ValueError``
    naming the key and the allowed ones; a good reset works afterwards."""
    env = make_env()
    try:
        task = _first_task(env)
        for bad in ("task_id", [task], 3, {"taskid": task}, {"task_id": task, "seed": 1}):
            try:
                env.reset(seed=0, options=bad)  # type: ignore[arg-type]
            except ValueError as exc:
                assert "task_id" in str(exc), f"options={bad!r}: the error does not name the " \
                    f"allowed keys: {exc}"
                if isinstance(bad, dict):
                    wrong = next(k for k in bad if k != "task_id")
                    assert wrong in str(exc), f"options={bad!r}: the error does not name {wrong!r}"
            except Exception as exc:
                raise AssertionError(f"options={bad!r} raised {type(exc).__name__}, not a "
                                     f"ValueError (ConfigError): {exc}") from exc
            else:
                raise AssertionError(f"reset(options={bad!r}) was accepted")
        _, info = env.reset(seed=0, options={"task_id": task})
        assert info["task_id"] == task, "reset after a rejected one picked another task"
        return "5 bad options rejected"
    finally:
        env.close()


def check_pickle_mid_episode(make_env: Callable[..., gym.Env], steps: int = 1,
                             future: int = 3) -> str:
    """An env pickled mid-episode has the original's ``state_key`` and steps like it, or
    refuses with ``EnvError``."""
    env = make_env()
    rng = np.random.default_rng(4)
    clone = None
    try:
        _, info = env.reset(seed=17, options={"task_id": _first_task(env)})
        for _ in range(steps):
            _, _, term, trunc, info = env.step(env.unwrapped.expert_action()
                                               or _action(env, info, rng))
            if term or trunc:
                break
        try:
            blob = pickle.dumps(env)
        except EnvError as exc:
            return f"pickling mid-episode refused: {exc}"
        clone = pickle.loads(blob)
        assert clone.unwrapped.state_key() == env.unwrapped.state_key(), \
            "an env unpickled mid-episode has a different state_key"
        actions = []
        for _ in range(future):
            actions.append(env.unwrapped.expert_action() or _action(env, info, rng))
        theirs = _play(clone, actions)
        ours = _play(env, actions)
        assert theirs == ours, "an env unpickled mid-episode steps differently from the original"
        return f"unpickled mid-episode, {len(ours)} steps alike"
    finally:
        env.close()
        if clone is not None:
            clone.close()


CHECKS: dict[str, Callable[[Callable[..., gym.Env]], str]] = {
    "reset determinism": check_reset_determinism,
    "types and info keys": check_types_and_info,
    "snapshot/restore": check_snapshot_restore,
    "bad actions": check_bad_actions,
    "close and pickle": check_close_and_pickle,
    "adversarial actions": check_adversarial_actions,
    "episode end": check_episode_end,
    "reset options": check_reset_options,
    "pickle mid-episode": check_pickle_mid_episode,
}


def check_env(env_id: str, **kwargs: Any) -> CheckReport:
    """Run every check on ``env_id`` built with ``kwargs``."""
    report = CheckReport(env_id)

    def make_env(**overrides: Any) -> gym.Env:
        return make(env_id, **{**kwargs, **overrides})

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
