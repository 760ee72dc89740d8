"""The router's balancing and chunk seeds, with stand-in engine handles (the real engine
actors run in tests/harness/distributed/test_distributed_ray.py)."""

from __future__ import annotations

import pytest

from turngym.agents.backend import Generation, SamplingParams
from turngym.errors import BackendError

pytest.importorskip("ray")


class _Method:
    def __init__(self, fn):
        self.fn = fn

    def remote(self, *args):
        return self.fn(*args)  # the "ref" is the value itself


class FakeEngine:
    """Answers ``generate.remote`` at once; records the seeds and sizes it saw."""

    def __init__(self, name: str, fail: bool = False):
        self.name, self.calls, self.fail = name, [], fail
        self.generate = _Method(self._generate)

    def _generate(self, prompts, sampling):
        self.calls.append((len(prompts), sampling.seed))
        if self.fail:
            return RuntimeError("engine died")
        return [Generation([p[0]], [-0.5], self.name, "stop") for p in prompts]


class _Ray:
    @staticmethod
    def get(ref):
        if isinstance(ref, Exception):
            raise ref
        return ref


def make_router(engines):
    from turngym.harness.distributed.router import RouterBackend

    router = RouterBackend(engines, tokenizer=None)
    router.ray = _Ray()
    return router


def test_least_outstanding_pick() -> None:
    router = make_router([FakeEngine("a"), FakeEngine("b"), FakeEngine("c")])
    assert router._pick(5) == 0          # all idle: the first
    assert router._pick(2) == 1          # a has 5 in flight
    assert router._pick(1) == 2
    assert router._pick(1) == 2          # c has 1 < b's 2 < a's 5
    router._release(0, 5)
    assert router._pick(1) == 0          # a is idle again
    assert router.outstanding == [1, 2, 2]


def test_generate_splits_in_order_with_chunk_seeds() -> None:
    from turngym.harness.distributed.router import CHUNK_SEED_STRIDE

    a, b = FakeEngine("a"), FakeEngine("b")
    router = make_router([a, b])
    gens = router.generate([[i] for i in range(5)], SamplingParams(seed=7))
    assert [g.ids[0] for g in gens] == [0, 1, 2, 3, 4]         # order kept
    assert [g.text for g in gens] == ["a"] * 3 + ["b"] * 2      # chunks 3 + 2
    assert a.calls == [(3, 7)] and b.calls == [(2, 7 + CHUNK_SEED_STRIDE)]
    assert router.outstanding == [0, 0]
    assert router.balance() == {"router/engine0_prompts": 3.0, "router/engine1_prompts": 2.0,
                                "router/imbalance": 1.5}


def test_engine_failure_is_a_backend_error_and_releases() -> None:
    router = make_router([FakeEngine("a"), FakeEngine("b", fail=True)])
    with pytest.raises(BackendError, match="engine actor failed in generate: RuntimeError"):
        router.generate([[1], [2]], SamplingParams(seed=1))
    assert router.outstanding == [0, 0]
    assert router.generate([], SamplingParams()) == []


class _Recorder:
    def __init__(self):
        self.loaded = []

    def load_weights(self, sd):
        self.loaded.append(sd)


@pytest.mark.parametrize("rank, pushes", [(0, 1), (1, 0)])
def test_object_store_sync_pushes_from_rank0_only(rank: int, pushes: int) -> None:
    import torch

    from turngym.harness.distributed.weight_sync import ObjectStoreSync

    model = torch.nn.Linear(2, 3)
    rec = _Recorder()
    seconds = ObjectStoreSync(rec, rank=rank).sync(model)
    assert seconds >= 0 and len(rec.loaded) == pushes
    if pushes:
        assert sorted(rec.loaded[0]) == ["bias", "weight"]
        assert torch.equal(rec.loaded[0]["weight"], model.weight)


def test_pack_unpack_round_trip_mixed_dtypes():
    import torch

    from turngym.harness.distributed.weight_sync import empty_buffers, pack, unpack

    sd = {"a.weight": torch.arange(6, dtype=torch.float32).reshape(2, 3),
          "b.bias": torch.tensor([1.5, -2.0], dtype=torch.bfloat16),
          "c.weight": torch.full((2, 2), 7.0), "steps": torch.tensor(3)}
    meta, bufs = pack(sd)
    assert [b.dtype for b in bufs] == [torch.float32, torch.bfloat16, torch.int64]
    assert [b.numel() for b in bufs] == [10, 2, 1]  # one flat buffer per dtype
    assert [b.numel() for b in empty_buffers(meta)] == [10, 2, 1]
    back = unpack(meta, bufs)
    assert list(back) == list(sd)
    for k, v in sd.items():
        assert back[k].dtype == v.dtype and torch.equal(back[k], v)


def test_gloo_weight_group_broadcasts_between_two_ranks():
    """The process group CollectiveSync uses (a TCPStore + ProcessGroupGloo of its own),
    with rank 1 in a thread standing in for an engine actor."""
    import threading

    import torch

    from turngym.harness.distributed.weight_sync import (
        empty_buffers,
        free_port,
        open_group,
        pack,
        unpack,
    )

    port = free_port("127.0.0.1")
    sd = {"w": torch.randn(3, 4), "h": torch.randn(5).to(torch.bfloat16)}
    meta, bufs = pack(sd)
    got = {}

    def engine():
        g = open_group("127.0.0.1", port, 1, 2, "gloo", timeout_s=60)
        recv = empty_buffers(meta)
        for b in recv:
            g.broadcast(b, 0).wait()
        got.update(unpack(meta, recv))

    t = threading.Thread(target=engine)
    t.start()
    g0 = open_group("127.0.0.1", port, 0, 2, "gloo", timeout_s=60)
    for b in bufs:
        g0.broadcast(b, 0).wait()
    t.join(timeout=60)
    assert set(got) == {"w", "h"}
    assert torch.equal(got["w"], sd["w"]) and torch.equal(got["h"], sd["h"])


def test_unknown_weight_sync_is_rejected():
    from turngym.harness.distributed.router import RouterBackend

    with pytest.raises(BackendError, match="weight_sync='carrier-pigeon'"):
        RouterBackend([FakeEngine("e0")], tokenizer=None, weight_sync="carrier-pigeon")


class _Scorer:
    """A backend stand-in whose log-probs are ``-temperature``; records each temperature."""

    def __init__(self):
        self.temperatures = []

    def score(self, prompts, responses, *, temperature=1.0):
        self.temperatures.append(temperature)
        return [[-temperature] * len(r) for r in responses]


def test_score_passes_the_temperature_to_the_engine_backends():
    """``router.score(temperature=T)`` -> ``EngineActor.score`` -> ``backend.score(T)``."""
    from turngym.harness.distributed.ray_engines import EngineActor

    engines, scorers = [], []
    for name in "ab":
        actor = object.__new__(EngineActor)  # the body without building a model
        actor.backend, actor.busy_s = _Scorer(), 0.0
        engine = FakeEngine(name)
        engine.score = _Method(actor.score)
        engines.append(engine)
        scorers.append(actor.backend)
    router = make_router(engines)
    out = router.score([[1], [2], [3]], [[4], [5, 6], []], temperature=0.7)
    assert out == [[-0.7], [-0.7, -0.7], []]
    assert router.score([[1]], [[4]]) == [[-1.0]]  # the default is T=1
    assert [s.temperatures for s in scorers] == [[0.7, 1.0], [0.7]]
