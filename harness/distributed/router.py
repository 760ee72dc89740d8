"""A :class:`turngym.agents.backend.Backend` over engine actors, balanced by outstanding requests.

The rollout engine calls ``generate`` with the prompts of every live episode. The router
cuts them into ``num_engines`` contiguous chunks and sends each chunk to the engine with
the fewest prompts in flight at that moment (least-outstanding-requests), so concurrent
callers (the async producer, evaluation) spread over the engines too. Chunk ``k`` samples
with seed ``seed + k * 1_000_003``: identical prompts in different chunks (a GRPO group)
still get different samples, and the result does not depend on which engine ran a chunk.

``load_weights`` broadcasts the state dict to every engine over the weight group (gloo on
CPU, NCCL on GPU), or puts it into Ray's object store once (``weight_sync="object_store"``);
see :mod:`turngym.harness.distributed.weight_sync`.
"""

from __future__ import annotations

import dataclasses
import logging
import threading
from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Any

from turngym.agents.backend import Backend, Generation, SamplingParams
from turngym.errors import BackendError
from turngym.harness.distributed.weight_sync import CollectiveSync, push_to_engines

if TYPE_CHECKING:
    from ray.actor import ActorHandle
    from transformers import PreTrainedTokenizerBase

logger = logging.getLogger(__name__)

#: Seed stride between the chunks of one ``generate`` call.
CHUNK_SEED_STRIDE = 1_000_003


def split_even(n: int, parts: int) -> list[tuple[int, int]]:
    """``[start, stop)`` bounds of ``min(parts, n)`` contiguous chunks whose sizes differ
    by at most one (the first ones are larger): ``split_even(5, 2) == [(0, 3), (3, 5)]``."""
    parts = max(1, min(parts, n))
    base, extra = divmod(n, parts)
    bounds, start = [], 0
    for k in range(parts):
        stop = start + base + (k < extra)
        bounds.append((start, stop))
        start = stop
    return bounds


class RouterBackend(Backend):
    """Balances ``generate``/``score`` over engine actors (see the module docstring).

    Args:
        engines: Ray actor handles of :class:`turngym.harness.distributed.ray_engines.EngineActor`.
        tokenizer: the policy's tokenizer (the agent builds prompts with it).
        max_model_len: context length of the engines.
        weight_sync: ``gloo`` / ``nccl`` (a :class:`~turngym.harness.distributed.weight_sync.
            CollectiveSync` group with the engines) or ``object_store``.
    """

    def __init__(self, engines: list[ActorHandle], tokenizer: PreTrainedTokenizerBase,
                 max_model_len: int = 2048,
                 weight_sync: str = "object_store"):
        import ray

        if not engines:
            raise BackendError("RouterBackend needs at least one engine actor")
        self.ray = ray
        self.engines = list(engines)
        self.tokenizer = tokenizer
        self.max_model_len = int(max_model_len)
        self.outstanding = [0] * len(self.engines)
        """Prompts in flight per engine."""
        self.served = [0] * len(self.engines)
        """Prompts served per engine so far (for balance metrics)."""
        self.sync_s = 0.0
        self._lock = threading.Lock()
        self._group: CollectiveSync | None = None
        if weight_sync in ("gloo", "nccl"):
            self._group = CollectiveSync(self.engines, backend=weight_sync)
        elif weight_sync != "object_store":
            raise BackendError(f"weight_sync={weight_sync!r}: use gloo, nccl or object_store")

    def _pick(self, size: int) -> int:
        with self._lock:
            i = min(range(len(self.engines)), key=lambda k: (self.outstanding[k], k))
            self.outstanding[i] += size
            self.served[i] += size
            return i

    def _release(self, i: int, size: int) -> None:
        with self._lock:
            self.outstanding[i] -= size

    def _fan_out(self, method: str, n: int, make_args: Callable[[int, int, int], tuple]
                 ) -> list[Any]:
        refs = []
        for k, (a, b) in enumerate(split_even(n, len(self.engines))):
            i = self._pick(b - a)
            refs.append((i, b - a, getattr(self.engines[i], method).remote(*make_args(k, a, b))))
        out: list[Any] = []
        error: Exception | None = None
        for i, size, ref in refs:
            try:
                out.extend(self.ray.get(ref))
            except Exception as exc:  # noqa: BLE001  (reported after every chunk is back)
                error = error or exc
            finally:
                self._release(i, size)
        if error is not None:
            raise BackendError(f"engine actor failed in {method}: {type(error).__name__}: "
                               f"{str(error).splitlines()[0] if str(error) else ''}") from error
        return out

    def generate(self, prompts_ids: list[list[int]], sampling: SamplingParams) -> list[Generation]:
        """One response per prompt, chunks spread over the engines."""
        if not prompts_ids:
            return []

        def args(k: int, a: int, b: int) -> tuple:
            s = sampling
            if s.seed is not None and k:
                s = dataclasses.replace(s, seed=s.seed + k * CHUNK_SEED_STRIDE)
            return (prompts_ids[a:b], s)

        return self._fan_out("generate", len(prompts_ids), args)

    def score(self, prompts_ids: list[list[int]], responses_ids: list[list[int]], *,
              temperature: float = 1.0) -> list[list[float]]:
        """Per-token log-probs at ``temperature`` (the engines' ``score``), chunks spread
        over the engines."""
        if len(prompts_ids) != len(responses_ids):
            raise BackendError(f"score got {len(prompts_ids)} prompts and "
                               f"{len(responses_ids)} responses")
        if not prompts_ids:
            return []
        return self._fan_out("score", len(prompts_ids),
                             lambda k, a, b: (prompts_ids[a:b], responses_ids[a:b],
                                              temperature))

    def load_weights(self, state_dict: Mapping[str, Any]) -> None:
        """Send ``state_dict`` to every engine (weight group, or one object-store copy)."""
        if self._group is not None:
            self.sync_s += self._group.sync(state_dict)
            return
        self.sync_s += push_to_engines(self.engines, state_dict)

    def balance(self) -> dict[str, float]:
        """``router/...`` metrics: prompts served per engine and the max/min imbalance."""
        out = {f"router/engine{i}_prompts": float(n) for i, n in enumerate(self.served)}
        lo = min(self.served)
        out["router/imbalance"] = float(max(self.served) / lo) if lo else 0.0
        return out

    def close(self) -> None:
        """Stop the engine actors. Safe to call twice."""
        for e in self.engines:
            try:
                self.ray.kill(e, no_restart=True)
            except Exception as exc:  # noqa: BLE001  (already gone)
                logger.debug("killing engine actor: %s", exc)
        self.engines = []
        if self._group is not None:  # the engines' ends of the weight group died with them
            self._group.close()
            self._group = None
