"""Trainer glue for the train-inference mismatch correction (maths in
:mod:`turngym.algos.mismatch`).

:func:`correct_mismatch` recomputes the learner's log-probs ``log pi_prox`` of every
sample's response under the current weights, makes them the samples' ``old_logprobs``
(decoupled PPO: the ratio starts at exactly 1) and multiplies each token's advantage by the
weight ``w_t`` of ``algo.mismatch`` (truncated and/or masked ``pi_prox / pi_behav``). The
async mode's staleness correction
(:func:`turngym.harness.distributed.async_loop.importance_correct`) is the same computation with
``pi_behav`` an older policy, so it calls :func:`correct_mismatch` too, and one pass per step
covers both causes.

:func:`resolve_mismatch` resolves ``auto``: the in-process ``hf`` backend scores with the
learner's own forward pass (log-probs equal to 1e-5), so ``off``; ``vllm``, an OpenAI-compatible
server and Ray engine actors (``distributed.mode: ray``) are other engines, so ``tis+mask``.
"""

from __future__ import annotations

import dataclasses
import logging
from typing import TYPE_CHECKING

import torch

from turngym.algos.mismatch import MismatchConfig, mismatch_weights, resolve_mode
from turngym.errors import ConfigError
from turngym.harness.learn.learner import Learner, Sample, response_logprobs

if TYPE_CHECKING:
    from turngym.harness.config import TrainConfig

logger = logging.getLogger(__name__)
_WARNED: list[bool] = []  # the torchrun warning is logged once per process


def engine_is_learner(cfg: TrainConfig) -> bool:
    """Whether rollouts are scored by the learner's own forward pass (the ``hf`` backend in
    this process)."""
    return cfg.model.backend == "hf" and cfg.distributed.mode == "local"


def resolve_mismatch(cfg: TrainConfig, world_size: int = 1) -> MismatchConfig:
    """``cfg.algo.mismatch`` with ``mode`` resolved (never ``auto``).

    Under torchrun (``world_size > 1``) the learner's forward pass is collective across the
    FSDP ranks, which the rank-0-only recomputation here cannot join: ``auto`` resolves to
    ``off`` there (with a warning when the engine is not the learner) and an explicit mode
    fails with :class:`ConfigError`.
    """
    mm = cfg.algo.mismatch
    mode = resolve_mode(mm.mode, engine_is_learner=engine_is_learner(cfg))
    if world_size > 1 and mode != "off":
        if mm.mode != "auto":
            raise ConfigError(f"algo.mismatch.mode={mm.mode} is not supported under torchrun "
                              "(the FSDP learner's forward pass is collective); set "
                              "algo.mismatch.mode=off or run one process")
        if not _WARNED:
            logger.warning("algo.mismatch: no train-inference mismatch correction under "
                           "torchrun (model.backend=%s)", cfg.model.backend)
            _WARNED.append(True)
        mode = "off"
    return mm.model_copy(update={"mode": mode})


def learner_logprobs(learner: Learner, samples: list[Sample], pad_id: int, micro_batch_size: int
                     ) -> list[torch.Tensor]:
    """The learner's log-probs of each sample's response (float32 CPU rows, no gradient),
    at the rollout's log-prob temperature."""
    temperature = getattr(learner, "logprob_temperature", 1.0)
    rows: list[torch.Tensor] = []
    was_training = learner.model.training
    learner.model.eval()
    try:
        for i in range(0, len(samples), micro_batch_size):
            micro = samples[i:i + micro_batch_size]
            with torch.no_grad():
                lp_BT, _, _ = response_logprobs(learner.model, [s.prompt_ids for s in micro],
                                                [s.response_ids for s in micro], pad_id,
                                                temperature=temperature)
            for row, s in enumerate(micro):
                rows.append(lp_BT[row, :len(s.response_ids)].float().cpu())
    finally:
        learner.model.train(was_training)
    return rows


def _padded(rows: list[torch.Tensor]) -> tuple[torch.Tensor, torch.Tensor]:
    T = max((len(r) for r in rows), default=0)
    out_BT = torch.zeros((len(rows), max(T, 1)), dtype=torch.float32)
    mask_BT = torch.zeros_like(out_BT, dtype=torch.bool)
    for i, r in enumerate(rows):
        out_BT[i, :len(r)] = r
        mask_BT[i, :len(r)] = True
    return out_BT, mask_BT


def correct_mismatch(learner: Learner, samples: list[Sample], pad_id: int, cfg: MismatchConfig,
                     micro_batch_size: int = 8) -> tuple[list[Sample], dict[str, float]]:
    """Re-base ``samples`` on the learner's log-probs and weight their advantages.

    ``cfg.mode`` must be resolved (:func:`resolve_mismatch`). ``off`` returns the samples
    unchanged; ``monitor`` returns them unchanged with the metrics; the correcting modes
    return new samples with ``old_logprobs = log pi_prox`` and ``adv_t *= w_t``.
    Metrics: ``rollout/*`` of :func:`turngym.algos.mismatch.mismatch_weights`.
    """
    if cfg.mode == "off" or not samples:
        return samples, {}
    prox = learner_logprobs(learner, samples, pad_id, micro_batch_size)
    # a backend without log-probs (some OpenAI-compatible servers) leaves old_logprobs short:
    # the missing tokens take the learner's own log-probs (ratio 1, weight min(1, C) = 1)
    behav = [torch.cat([torch.tensor(s.old_logprobs[:len(p)], dtype=torch.float32),
                        p[len(s.old_logprobs):]]) for s, p in zip(samples, prox)]
    prox_BT, mask_BT = _padded(prox)
    behav_BT, _ = _padded(behav)
    w_BT, metrics = mismatch_weights(prox_BT, behav_BT, mask_BT, cfg)
    if cfg.mode == "monitor":
        return samples, metrics
    out = []
    for i, s in enumerate(samples):
        n = len(s.response_ids)
        w = w_BT[i, :n].tolist()
        out.append(dataclasses.replace(s, old_logprobs=prox[i].tolist(),
                                       adv=[a * x for a, x in zip(s.adv, w)]))
    return out, metrics
