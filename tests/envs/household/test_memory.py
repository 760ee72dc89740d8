"""Household memory stays bounded under a model's garbage, and ``close()`` frees the env's
data: the parser used to memoise every distinct action string (about 43 MB per task with
4 KB actions) in a per-task cache that outlived ``close()``."""

from __future__ import annotations

import gc
import tracemalloc
import weakref

import numpy as np

from turngym import envs
from turngym.envs.household.commands import MEMO_LIMIT, MEMO_MAX_CHARS

#: Measured: +0.01 MB over 2,000 distinct 4 KB actions (before the fix: +8.5 MB, every
#: string kept). The bound leaves room for allocator noise, far below 2,000 * 4 KB.
KEPT_BOUND_BYTES = 512 * 1024


def _garbage(rng: np.random.Generator, i: int, n: int) -> str:
    return f"take {i} " + bytes(rng.integers(97, 123, n).astype("uint8")).decode()


def test_distinct_long_actions_are_not_kept() -> None:
    env = envs.make("turngym/Household-v0", max_turns=100_000)
    env.reset(seed=0, options={"task_id": "train-00001"})
    rng = np.random.default_rng(0)
    gc.collect()
    tracemalloc.start()
    try:
        before = tracemalloc.get_traced_memory()[0]
        for i in range(2000):  # each string is garbage once the step returns, unless kept
            _, _, _, _, info = env.step(_garbage(rng, i, 4000))
            assert not info["action_valid"]
        gc.collect()
        kept = tracemalloc.get_traced_memory()[0] - before
    finally:
        tracemalloc.stop()
    assert kept < KEPT_BOUND_BYTES, f"{kept / 2**20:.2f} MB kept for 2,000 distinct actions"


def test_parser_memo_keeps_only_short_valid_commands_and_is_bounded() -> None:
    from turngym.envs.household import commands

    env = envs.make("turngym/Household-v0")
    _, info = env.reset(seed=0, options={"task_id": "train-00001"})
    parser = env.unwrapped._parser
    env.step("go to " + " " * 300 + info["admissible_actions"][0][6:])  # parses; too long
    env.step("fly away")  # does not parse
    mine = [text for serial, text in commands._memo if serial == parser._serial]
    assert not any(len(t) > MEMO_MAX_CHARS or t == "fly away" for t in mine)
    for i in range(MEMO_LIMIT + 10):  # distinct spellings of valid commands
        parser.parse("look" + " " * (i % 150) + "." * (i // 150 % 2) + "!" * (i // 300))
    assert len(commands._memo) <= MEMO_LIMIT


def test_close_frees_the_envs_data() -> None:
    env = envs.make("turngym/Household-v0")
    _, info = env.reset(seed=0, options={"task_id": "train-00002"})
    for action in info["admissible_actions"][:3]:
        env.step(action)
    inner = env.unwrapped
    memo = weakref.ref(inner._memo[next(iter(inner._memo))][1])  # an admissible frozenset
    env.close()
    gc.collect()
    assert memo() is None and not inner._memo
    assert inner.state is None and inner.task is None and inner._parser is None
    _, info = env.reset(seed=0, options={"task_id": "train-00002"})  # usable again
    assert info["admissible_actions"]
