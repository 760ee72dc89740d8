"""Async mode: truncated IS weights (hand-computed), the producer's staleness bound, and
3 real training steps with ``distributed.async_staleness=1``."""

from __future__ import annotations

import math
import threading
import time
from pathlib import Path

import pytest
import torch

from turngym.algos.mismatch import truncated_is_weights
from turngym.errors import ConfigError
from turngym.harness.config import load_config
from turngym.harness.distributed.async_loop import AsyncRollouts
from turngym.harness.distributed.router import split_even


@pytest.mark.parametrize("prox, behav, clip, expected", [
    ([0.0, -1.0], [0.0, -1.0], 2.0, [1.0, 1.0]),                    # on-policy: w = 1
    ([math.log(0.5)], [math.log(0.25)], 2.0, [2.0]),                 # ratio 2 -> at the cap
    ([math.log(0.9)], [math.log(0.1)], 2.0, [2.0]),                  # ratio 9 -> truncated to C
    ([math.log(0.2)], [math.log(0.4)], 2.0, [0.5]),                  # ratio 0.5 kept
    ([math.log(0.9)], [math.log(0.3)], 5.0, [3.0]),                  # ratio 3 under C = 5
])
def test_truncated_is_weights(prox, behav, clip, expected) -> None:
    w = truncated_is_weights(torch.tensor(prox), torch.tensor(behav), clip)
    assert w.tolist() == pytest.approx(expected, rel=1e-6)


@pytest.mark.parametrize("n, parts, bounds", [
    (5, 2, [(0, 3), (3, 5)]), (4, 2, [(0, 2), (2, 4)]), (1, 3, [(0, 1)]),
    (7, 3, [(0, 3), (3, 5), (5, 7)]),
])
def test_split_even(n, parts, bounds) -> None:
    assert split_even(n, parts) == bounds


@pytest.mark.parametrize("k", [1, 2])
def test_producer_respects_staleness_bound(k: int) -> None:
    """Versions the producer used, seen from a learner that trains slowly: never more than
    k behind, and exactly k behind once the pipeline is full (it runs ahead)."""
    started: list[tuple[int, int]] = []
    version = [0]  # the engines' weights version, set by the sync callback below

    def produce(b: int) -> int:
        started.append((b, version[0]))
        time.sleep(0.01)
        return b * 10

    prod = AsyncRollouts(produce, staleness=k, start=0, steps=6)
    seen = []
    for step in range(6):
        value, stale, m = prod.get(step)
        assert value == step * 10
        assert m["async/staleness"] == stale
        seen.append(stale)
        time.sleep(0.05)  # "training"
        prod.after_update(step + 1, lambda v=step + 1: version.__setitem__(0, v))
    prod.close()
    assert all(0 <= s <= k for s in seen)
    assert seen[:k + 1] == list(range(k + 1))  # batch b starts at once while b <= k
    assert seen[k + 1:] == [k] * (6 - k - 1)
    assert all(b - v <= k for b, v in started)


def test_producer_error_reaches_the_learner() -> None:
    def produce(b: int) -> int:
        if b == 1:
            raise RuntimeError("env exploded")
        return b

    prod = AsyncRollouts(produce, staleness=1, start=0, steps=3)
    assert prod.get(0)[0] == 0
    with pytest.raises(RuntimeError, match="env exploded"):
        prod.get(1)
    prod.close()


def test_sync_waits_for_the_batch_in_flight() -> None:
    release = threading.Event()

    def produce(b: int) -> int:
        if b == 1:
            release.wait(5)
        return b

    prod = AsyncRollouts(produce, staleness=1, start=0, steps=2)
    prod.get(0)
    threading.Timer(0.2, release.set).start()
    m = prod.after_update(1, lambda: None)
    assert m["async/sync_wait_s"] >= 0.1  # blocked until batch 1 finished
    assert prod.get(1)[1] == 1
    prod.close()


@pytest.mark.parametrize("override, key", [
    ("distributed.async_staleness=-1", "distributed.async_staleness"),
    ("distributed.mode=cluster", "distributed.mode"),
    ("distributed.is_clip=0.5", "distributed.is_clip"),
    ("distributed.num_engine=2", "distributed.num_engine"),
])
def test_bad_distributed_config_names_the_key(override: str, key: str) -> None:
    with pytest.raises(ConfigError, match=key.replace(".", r"\.")):
        load_config(None, [override])


def test_distributed_defaults_are_local_and_sync() -> None:
    d = load_config(None, []).distributed
    assert (d.mode, d.async_staleness, d.num_engines, d.num_env_workers) == ("local", 0, 1, 1)
    assert d.resources_per_worker == {"num_cpus": 1.0}


@pytest.mark.slow
def test_async_training_three_steps_within_staleness(tmp_path: Path) -> None:
    from turngym.harness.train import train

    cfg = load_config(None, [
        "model.path=tiny", "env.id=turngym/Maze-v0", "env.kwargs={size: 2}", "steps=3",
        "rollout.tasks_per_step=2", "rollout.group_size=2", "rollout.max_turns=2",
        "rollout.max_tokens=6", "rollout.history_length=1", "eval.num_tasks=2",
        "eval.at_start=false", "optim.mini_batch_size=4", "optim.micro_batch_size=2",
        "optim.lr=1e-3", "logging.plot=false", "logging.progress=false",
        "logging.tensorboard=false", "algo.name=grpo", "algo.loss.entropy_coef=0.01",
        "distributed.async_staleness=1", f"out_dir={tmp_path / 'run'}"])
    out = train(cfg)
    hist = out["history"]
    assert [h["step"] for h in hist] == [1, 2, 3]
    stale = [h["metrics"]["async/staleness"] for h in hist]
    assert stale == [0.0, 1.0, 1.0]  # batch 0 on the initial weights, then one update old
    for h in hist[1:]:
        m = h["metrics"]
        assert 0 < m["async/is_weight_mean"] <= cfg.distributed.is_clip
        assert m["train/grad_norm"] > 0
    assert "async/is_weight_mean" not in hist[0]["metrics"]  # fresh batch: no correction
