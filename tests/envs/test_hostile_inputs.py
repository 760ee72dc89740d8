"""Inputs that once crashed an env (issue #21), sent to each env that met them.

Deep JSON in tool arguments raised ``RecursionError`` out of ``step`` (Search, SWE), and it
must stay an invalid step whatever the interpreter's recursion limit is (other tests and
libraries raise it); a lone surrogate in a SWE ``create`` raised ``UnicodeEncodeError``; a
400-digit integer as a SWE ``timeout`` or line number raised ``OverflowError``;
TextWorld and ScienceWorld lost their ``state_key`` across a pickle round-trip. The
checker (``turngym.envs.adversarial``) sends the same inputs to every env; these tests pin the
observation each env gives.
"""

from __future__ import annotations

import json
import pickle
import sys

import pytest

from turngym import envs

DEEP = "[" * 1500 + "]" * 1500
TOOL_ENVS = {
    "turngym/Search-v0": ("search", "query"),
    "turngym/SWE-v0": ("create", "content"),
}


def _calls(name: str, arg: str) -> list[str]:
    deep_objects = '{"a":' * 600 + "1" + "}" * 600
    return [
        f'{{"name": "{name}", "arguments": {{"{arg}": {DEEP}}}}}',
        json.dumps({"name": name, "arguments": DEEP}),  # OpenAI's form: a JSON string
        f'{{"name": "{name}", "arguments": {{"{arg}": {deep_objects}}}}}',
        f'{{"name": {DEEP}}}',
    ]


@pytest.fixture(params=[None, 100_000], ids=["default-limit", "raised-limit"])
def recursion_limit(request):
    if request.param:
        old = sys.getrecursionlimit()
        sys.setrecursionlimit(request.param)
        yield request.param
        sys.setrecursionlimit(old)
    else:
        yield sys.getrecursionlimit()


@pytest.mark.parametrize("env_id", sorted(TOOL_ENVS))
def test_deep_tool_arguments_are_invalid_with_a_reason(env_id: str, recursion_limit) -> None:
    env = envs.make(env_id)
    try:
        for action in _calls(*TOOL_ENVS[env_id]):  # Search has a 4-turn budget: reset each
            _, info = env.reset(seed=0, options={"task_id": env.unwrapped.task_ids()[0]})
            obs, reward, term, trunc, after = env.step(action)
            assert after["action_valid"] is False, action[:60]
            assert "nested deeper than" in obs, obs
            assert after["state_key"] == info["state_key"] and reward <= 0.0  # Search: -0.1
            assert not term and not trunc
    finally:
        env.close()


@pytest.mark.parametrize("args", [
    {"path": "new.py", "content": "x = '\ud800'\n"},
    {"path": "new\ud800.py", "content": "x = 1\n"},
])
@pytest.mark.parametrize("ascii_escapes", [True, False], ids=["escaped", "raw"])
def test_swe_create_with_a_lone_surrogate_is_invalid(args, ascii_escapes: bool) -> None:
    env = envs.make("turngym/SWE-v0")
    try:
        _, info = env.reset(seed=0, options={"task_id": env.unwrapped.task_ids()[0]})
        action = json.dumps({"name": "create", "arguments": args}, ensure_ascii=ascii_escapes)
        obs, reward, term, _, after = env.step(action)
        assert after["action_valid"] is False and not term and reward == 0.0
        assert "lone surrogate" in obs, obs
        assert after["state_key"] == info["state_key"]
        listing, *_ = env.step(json.dumps({"name": "bash", "arguments": {"command": "ls"}}))
        assert "new" not in listing  # nothing was written
    finally:
        env.close()


@pytest.mark.slow
@pytest.mark.parametrize("env_id, module, task", [
    ("turngym/TextWorld-v0", "textworld", "custom-L2-0"),  # longer than one step
    ("turngym/ScienceWorld-v0", "scienceworld", None),
])
def test_state_key_survives_a_pickle_round_trip(env_id: str, module: str, task) -> None:
    pytest.importorskip(module, reason="install turngym[classic]")
    env = envs.make(env_id)
    clones = []
    try:
        ids = env.unwrapped.task_ids()
        _, info = env.reset(seed=0, options={"task_id": task or ids[len(ids) // 3]})
        clones.append(pickle.loads(pickle.dumps(env)))
        assert clones[-1].unwrapped.state_key() == info["state_key"]
        _, _, term, trunc, info = env.step(env.unwrapped.expert_action())
        assert not (term or trunc)
        clones.append(pickle.loads(pickle.dumps(env)))
        assert clones[-1].unwrapped.state_key() == info["state_key"]
        action = env.unwrapped.expert_action()
        assert clones[-1].step(action)[4]["state_key"] == env.step(action)[4]["state_key"]
    finally:
        for e in [env, *clones]:
            e.close()


HUGE = "9" * 400  # an int beyond a float: float() and math.isfinite raise OverflowError
_VIEW = '{"name": "view", "arguments": {"path": "bank/account.py", '


def _call(name: str, args: str) -> str:
    return f'{{"name": "{name}", "arguments": {{{args}}}}}'


@pytest.mark.parametrize("env_id, action, obs, reward, valid", [
    ("turngym/Search-v0", _call("search", f'"query": "a", "k": {HUGE}'),
     f"Invalid action: k must be between 1 and 10, got {HUGE}.", -0.1, False),
    ("turngym/Search-v0", _call("search", f'"query": "a", "k": -{HUGE}'),
     f"Invalid action: k must be between 1 and 10, got -{HUGE}.", -0.1, False),
    ("turngym/Search-v0", _call("search", '"query": "a", "k": NaN'),
     "Invalid action: search's k must be an integer, got nan.", -0.1, False),
    ("turngym/Search-v0", _call("answer", '"text": Infinity'),
     "Invalid action: answer needs a string argument 'text'.", -0.1, False),
    ("turngym/Search-v0", _call("search", '"query": "a\\u0000b"'),
     "Invalid action: search's query holds a NUL byte at index 1; send plain text.", -0.1, False),
    ("turngym/SWE-v0", _call("bash", f'"command": "echo hi", "timeout": {HUGE}'),
     "[exit code 0]\nhi\n", 0.0, True),  # clamped to the longest timeout, like 1000
    ("turngym/SWE-v0", _call("bash", f'"command": "echo hi", "timeout": -{HUGE}'),
     "bash: timeout must be a positive number of seconds.", 0.0, False),
    ("turngym/SWE-v0", _VIEW + f'"start": {HUGE}}}}}',
     f"start={HUGE} is past the end of bank/account.py (61 lines).", 0.0, False),
    ("turngym/SWE-v0", _VIEW + f'"start": 1, "end": -{HUGE}}}}}',
     f"view: end=-{HUGE} is before start=1.", 0.0, False),
    ("turngym/SWE-v0", _VIEW + '"start": NaN}}',
     "Invalid action: argument 'start' of view must be a finite line number, got nan.", 0.0,
     False),
    ("turngym/SWE-v0", _VIEW + '"start": 1e999}}',
     "Invalid action: argument 'start' of view must be a finite line number, got inf.", 0.0,
     False),
    ("turngym/SWE-v0", _call("bash", '"command": "ls", "timeout": -Infinity'),
     ("Invalid action: argument 'timeout' of bash must be a finite positive number of seconds, "
      "got -inf."), 0.0, False),
    ("turngym/SWE-v0", _call("bash", '"command": "ls\\u0000"'),
     "Invalid action: argument 'command' of bash contains a NUL byte at index 2.", 0.0, False),
])
def test_hostile_numbers_and_nul_in_tool_arguments(env_id: str, action: str, obs: str,
                                                   reward: float, valid: bool) -> None:
    env = envs.make(env_id)
    try:
        _, info = env.reset(seed=0, options={"task_id": env.unwrapped.task_ids()[0]})
        got, got_reward, term, trunc, after = env.step(action)
        assert (got, got_reward, term, trunc, after["action_valid"]) == \
            (obs, reward, False, False, valid)
        assert after["state_key"] == info["state_key"]
    finally:
        env.close()


@pytest.mark.parametrize("env_id", ["turngym/Search-v0", "turngym/SWE-v0", "turngym/Maze-v0"])
def test_a_megabyte_action_is_invalid_with_its_length(env_id: str) -> None:
    env = envs.make(env_id)
    try:
        _, info = env.reset(seed=0, options={"task_id": env.unwrapped.task_ids()[0]})
        action = _call("bash", '"command": "' + "y" * (1 << 20) + '"')
        got, reward, term, trunc, after = env.step(action)
        assert got == "Invalid action: 1048622 characters is longer than 4096."
        assert (reward, term, trunc, after["action_valid"]) == (0.0, False, False, False)
        assert after["state_key"] == info["state_key"]
    finally:
        env.close()
