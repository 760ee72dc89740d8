"""The torch policy that the trainer updates.

:func:`response_logprobs` computes per-token log-probs (and entropy) of response tokens
given their prompts for a padded micro-batch, token-in/token-out: the ids are exactly the
ids the rollout generated. :class:`Learner` owns the model, AdamW, the LR scheduler and the
optional LoRA adapters, and gives the merged full weights for syncing into the rollout
backend.

Padding layout of a micro-batch (B samples, prompt pad P, response pad T)::

    [pad pad p0 p1 p2 | r0 r1 r2 pad]     prompts left-padded, responses right-padded
                   ^-- logits at P-1 .. P+T-2 predict r0 .. r_{T-1}

so the model only has to return the last ``T + 1`` logit rows (``logits_to_keep``).

PPO's critic (``algo.name: ppo``): :attr:`Learner.value_head` is a ``Linear(hidden, 1)`` on
the final hidden state of each turn's last prompt token, ``V(s_t)``
(:func:`turngym.harness.learn.critic.prompt_hidden`; with LoRA the adapted model's decoder).
The hidden state is read without gradient, so the value loss trains the head only: the
policy moves on advantages alone (no signal, no step, as for the critic-free estimators) and
a poor critic cannot disturb its features. The head has its own AdamW param group
(``algo.value.lr``), is saved in the train state and is never synced into the rollout
backend.
"""

from __future__ import annotations

import ctypes
import functools
import logging
import math
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import safetensors.torch
import torch
import torch.distributed as dist

from turngym.agents.backend import score_temperature
from turngym.algos.kl import kl_estimate
from turngym.algos.ppo_loss import PPOLossConfig, ppo_policy_loss
from turngym.algos.value_loss import value_loss
from turngym.errors import CheckpointError, ConfigError
from turngym.harness.config import TrainConfig
from turngym.harness.learn.critic import prompt_hidden

if TYPE_CHECKING:
    from transformers import PreTrainedModel

logger = logging.getLogger(__name__)

Progressed = Callable[[int, int, int], None]
"""``on_progress(done, total, tokens)`` of :func:`ppo_update`."""


@dataclass
class Sample:
    """One trainable turn: what the model saw and said, and what to push it towards."""

    prompt_ids: list[int]
    response_ids: list[int]
    old_logprobs: list[float]
    """Behaviour log-probs from the rollout."""
    adv: list[float]
    """Per-token advantage (a scalar turn advantage repeated, plus any OPD term)."""
    ref_logprobs: list[float] | None = None
    value_target: float | None = None
    """The critic's regression target (GAE's return ``G_t``); None without a critic."""
    old_value: float | None = None
    """The critic's ``V(s_t)`` at rollout time (centre of the optional value clipping)."""


def pad_batch(prompts: list[list[int]], responses: list[list[int]], pad_id: int
              ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
    """Left-pad prompts, right-pad responses.

    Returns ``input_ids_BL``, ``attention_BL``, ``position_BL`` and ``resp_mask_BT``.
    """
    P = max(len(p) for p in prompts)
    T = max(max(len(r) for r in responses), 1)
    B = len(prompts)
    ids = torch.full((B, P + T), pad_id, dtype=torch.long)
    att = torch.zeros((B, P + T), dtype=torch.long)
    resp_mask = torch.zeros((B, T), dtype=torch.bool)
    for i, (p, r) in enumerate(zip(prompts, responses)):
        ids[i, P - len(p):P] = torch.tensor(p, dtype=torch.long)
        att[i, P - len(p):P] = 1
        if r:
            ids[i, P:P + len(r)] = torch.tensor(r, dtype=torch.long)
            att[i, P:P + len(r)] = 1
            resp_mask[i, :len(r)] = True
    pos = (att.cumsum(1) - 1).clamp(min=0)
    return ids, att, pos, resp_mask


def response_logprobs(model: torch.nn.Module, prompts: list[list[int]], responses: list[list[int]],
                      pad_id: int, *, with_entropy: bool = False, temperature: float = 1.0
                      ) -> tuple[torch.Tensor, torch.Tensor | None, torch.Tensor]:
    """Per-token log-probs of ``responses`` given ``prompts`` under ``softmax(logits / T)``.

    ``temperature`` is the rollout's sampling temperature
    (:func:`turngym.agents.backend.score_temperature`), so the learner's distribution is the one
    the behaviour log-probs were recorded under (verl's convention); the entropy is that
    distribution's too.
    Returns ``(logprobs_BT, entropy_BT or None, mask_BT)``; padded positions hold 0.
    """
    ids, att, pos, mask_BT = pad_batch(prompts, responses, pad_id)
    device = next(model.parameters()).device
    ids, att, pos = ids.to(device), att.to(device), pos.to(device)
    T = mask_BT.shape[1]
    out = model(input_ids=ids, attention_mask=att, position_ids=pos, logits_to_keep=T + 1,
                use_cache=False)
    logits_BTV = out.logits[:, :-1, :].float()  # rows P-1 .. P+T-2
    if temperature != 1.0:
        logits_BTV = logits_BTV / temperature
    targets_BT = ids[:, -T:]
    logz_BT = torch.logsumexp(logits_BTV, dim=-1)
    lp_BT = logits_BTV.gather(-1, targets_BT.unsqueeze(-1)).squeeze(-1) - logz_BT
    mask_BT = mask_BT.to(device)
    lp_BT = torch.where(mask_BT, lp_BT, torch.zeros_like(lp_BT))
    ent_BT = None
    if with_entropy:
        p_BTV = torch.softmax(logits_BTV, dim=-1)
        ent_BT = logz_BT - (p_BTV * logits_BTV).sum(-1)
        ent_BT = torch.where(mask_BT, ent_BT, torch.zeros_like(ent_BT))
    return lp_BT, ent_BT, mask_BT


def to_padded(rows: list[list[float]], T: int, device: torch.device | str = "cpu"
              ) -> torch.Tensor:
    """Right-pad float rows to ``[B, T]`` with zeros, on ``device``."""
    out = torch.zeros((len(rows), T), dtype=torch.float32)
    for i, r in enumerate(rows):
        if r:
            out[i, :len(r)] = torch.tensor(r[:T], dtype=torch.float32)
    return out.to(device)


def resolve_device(name: str) -> torch.device:
    """``auto`` -> ``cuda`` when torch sees a GPU, else ``cpu``; ``cuda`` without one fails."""
    if name == "auto":
        name = "cuda" if torch.cuda.is_available() else "cpu"
    if name == "cuda" and not torch.cuda.is_available():
        raise ConfigError("model.device=cuda but torch sees no GPU; use model.device=cpu "
                          "or auto")
    return torch.device(name)


def load_model(model_dir: str | Path, dtype: str = "float32") -> PreTrainedModel:
    """Load a local HF causal LM (offline) for training."""
    from transformers import AutoModelForCausalLM

    model = AutoModelForCausalLM.from_pretrained(
        str(model_dir), dtype=getattr(torch, dtype), local_files_only=True)
    model.config.use_cache = False
    return model


class Learner:
    """Model + AdamW + warmup scheduler (+ optional LoRA)."""

    def __init__(self, model_dir: str | Path, cfg: TrainConfig):
        """``cfg`` is a :class:`turngym.harness.config.TrainConfig`."""
        self.cfg = cfg
        self.logprob_temperature = score_temperature(cfg.rollout.temperature)
        """Log-probs (PPO ratio, KL, entropy) are of ``softmax(logits / T)`` at this T."""
        self.device = resolve_device(cfg.model.device)
        self.model = load_model(model_dir, cfg.model.dtype).to(self.device)
        if cfg.model.gradient_checkpointing:
            self.model.gradient_checkpointing_enable()
        self.lora = cfg.lora.enabled
        if self.lora:
            from peft import LoraConfig, get_peft_model

            self.model = get_peft_model(self.model, LoraConfig(
                r=cfg.lora.r, lora_alpha=cfg.lora.alpha, lora_dropout=cfg.lora.dropout,
                target_modules=list(cfg.lora.target_modules), task_type="CAUSAL_LM"))
        self.model.train()
        params: list[torch.nn.Parameter] | list[dict[str, Any]] = [
            p for p in self.model.parameters() if p.requires_grad]
        o = cfg.optim
        self.value_head: torch.nn.Linear | None = None
        """PPO's critic (``cfg.algo.uses_critic``), zero-initialised: ``V = 0`` at first."""
        if cfg.algo.uses_critic:
            self.value_head = torch.nn.Linear(self.model.config.hidden_size, 1).to(self.device)
            torch.nn.init.zeros_(self.value_head.weight)
            torch.nn.init.zeros_(self.value_head.bias)
            params = [{"params": params},
                      {"params": list(self.value_head.parameters()), "lr": cfg.algo.value.lr,
                       "weight_decay": 0.0}]
        self.optimizer = torch.optim.AdamW(params, lr=o.lr, betas=tuple(o.betas),
                                           weight_decay=o.weight_decay)
        warm = o.warmup_steps
        self.scheduler = torch.optim.lr_scheduler.LambdaLR(
            self.optimizer, lambda s: min(1.0, (s + 1) / warm) if warm else 1.0)

    def sync_state_dict(self) -> dict[str, torch.Tensor]:
        """Full (LoRA-merged) weights with the base model's key names, for the backend."""
        if not self.lora:
            return {k: v.detach() for k, v in self.model.state_dict().items()}
        self.model.merge_adapter()
        try:
            sd = {}
            for k, v in self.model.state_dict().items():
                if "lora_" in k:
                    continue
                k = k.removeprefix("base_model.model.").replace(".base_layer.", ".")
                sd[k] = v.detach().clone()
        finally:
            self.model.unmerge_adapter()
        return sd

    def values(self, prompts: list[list[int]], keep_N: Sequence[bool] | np.ndarray, pad_id: int
               ) -> np.ndarray:
        """``V(s)`` (float64 numpy, one per prompt; 0 where ``keep_N`` is False) of the value
        head, in no-grad micro-batches of ``optim.micro_batch_size``."""
        assert self.value_head is not None, "values() needs algo.name=ppo (a value head)"
        out_N = np.zeros(len(prompts), np.float64)
        idx = [i for i in range(len(prompts)) if keep_N[i]]
        mb = self.cfg.optim.micro_batch_size
        for k in range(0, len(idx), mb):
            chunk = idx[k:k + mb]
            with torch.no_grad():
                v_B = self.value_head(prompt_hidden(self.model, [prompts[i] for i in chunk],
                                                    pad_id)).squeeze(-1)
            out_N[chunk] = v_B.double().cpu().numpy()
        return out_N

    def update(self, samples: list[Sample], loss_cfg: PPOLossConfig, *, seed: int, pad_id: int,
               on_progress: Progressed | None = None) -> dict[str, float]:
        """One PPO update (:func:`ppo_update`) over ``samples``."""
        return ppo_update(self, samples, loss_cfg, seed=seed, pad_id=pad_id,
                          on_progress=on_progress)

    def save_train_state(self, ck_dir: Path) -> dict[str, Any]:
        """Write the trainable weights (``policy.safetensors``, LoRA adapters included) into
        ``ck_dir``; return the optimizer/scheduler states for ``trainer_state.pt``."""
        safetensors.torch.save_model(self.model, str(ck_dir / "policy.safetensors"))
        state = {"optimizer": self.optimizer.state_dict(),
                 "scheduler": self.scheduler.state_dict()}
        if self.value_head is not None:
            state["value_head"] = {k: v.detach().cpu().clone()
                                   for k, v in self.value_head.state_dict().items()}
        return state

    def load_train_state(self, ck_dir: Path, state: dict[str, Any]) -> None:
        """Undo :meth:`save_train_state` (``state`` is the loaded ``trainer_state.pt``)."""
        try:
            safetensors.torch.load_model(self.model, str(ck_dir / "policy.safetensors"))
        except (RuntimeError, KeyError) as exc:
            raise CheckpointError(f"{ck_dir}: weights do not match the configured model "
                                  f"(model.path / lora settings differ?): {exc}") from None
        if self.value_head is not None:
            if "value_head" not in state:
                raise CheckpointError(f"{ck_dir}: no value head in the checkpoint (saved by a "
                                      "run without algo.name=ppo?)")
            self.value_head.load_state_dict(state["value_head"])
        self.optimizer.load_state_dict(state["optimizer"])
        self.scheduler.load_state_dict(state["scheduler"])

    def save_model(self, out_dir: str | Path) -> None:
        """Save full weights as safetensors + config (loadable by ``load_model``)."""
        out_dir = Path(out_dir)
        out_dir.mkdir(parents=True, exist_ok=True)
        if self.lora:
            self.model.save_pretrained(str(out_dir / "adapter"))
        base = self.model.get_base_model() if self.lora else self.model
        base.save_pretrained(str(out_dir), state_dict=self.sync_state_dict() if self.lora
                             else None, safe_serialization=True)


def has_signal(sample: Sample) -> bool:
    """Whether ``sample`` carries a non-zero advantage on any token."""
    return any(a != 0.0 for a in sample.adv)


def regularised(loss_cfg: PPOLossConfig) -> bool:
    """Whether the loss moves the policy on samples without advantage: an entropy bonus.

    The KL to the reference does not count. It regularises the policy-gradient step; on its
    own, at (or near) the reference, its gradient is float noise (the learner's and the
    reference scorer's log-probs agree to ~1e-6), which Adam's normalised step would turn
    into a full ``lr``-sized move in a random direction."""
    return loss_cfg.entropy_coef > 0


def moves_policy(sample: Sample, loss_cfg: PPOLossConfig) -> bool:
    """Whether ``sample`` enters the policy loss: it has advantage, or the loss is
    :func:`regularised`."""
    return regularised(loss_cfg) or has_signal(sample)


def drop_unsignalled(samples: list[Sample], loss_cfg: PPOLossConfig) -> tuple[list[Sample], int]:
    """``samples`` without those that carry no signal, and how many were dropped. A sample
    carries signal when it :func:`moves_policy` or has a critic target (``value_target``;
    such a sample with all-zero advantages trains the value head only)."""
    if regularised(loss_cfg):
        return samples, 0
    kept = [s for s in samples if has_signal(s) or s.value_target is not None]
    return kept, len(samples) - len(kept)


def ppo_update(learner: Learner, samples: list[Sample], loss_cfg: PPOLossConfig, *, seed: int,
               pad_id: int, with_entropy: bool = True, rank: int = 0,
               world_size: int = 1, on_progress: Progressed | None = None) -> dict[str, float]:
    """PPO epochs over ``samples`` in shuffled mini-batches with grad accumulation.

    The policy moves only on signal. Samples whose advantages are all 0 are dropped first
    (``train/zero_adv_samples``) unless an entropy bonus is on (:func:`regularised`);
    a mini-batch whose gradient norm is 0 takes no AdamW step, so neither the weights nor
    the optimizer's moments change (AdamW would otherwise keep moving every weight by
    ``lr * m / sqrt(v)`` from stale moments); the LR schedule advances only on an update that
    took an optimizer step. With nothing left, the update is a no-op and says so
    (``train/optimizer_steps`` 0, ``train/skipped`` 1).

    Each mini-batch of ``optim.mini_batch_size`` samples is one AdamW step (after gradient
    clipping); it is split into micro-batches of ``optim.micro_batch_size`` whose token-mean
    losses are weighted by their share of the mini-batch's response tokens, so accumulation
    gives the same gradient as one big batch. ``loss_cfg`` is the ``turngym.algos.ppo_loss`` config.
    Log-probs are taken at ``learner.logprob_temperature`` (the rollout's temperature).
    Shuffling uses its own generator seeded by ``seed`` (exact resume).

    With a value head (PPO): samples with a ``value_target`` also add
    :func:`value_loss` (mean over the mini-batch's samples, gradient into the head only);
    the policy loss takes only the samples that :func:`moves_policy`, weighted as if the
    others had been dropped. The head's gradient is clipped on its own; a part whose
    gradient norm is 0 has its grads set to None, so AdamW leaves it (and its moments)
    alone while the other part steps.

    Data parallel (``turngym.harness.distributed.fsdp``): with ``world_size > 1`` every rank gets
    the same ``samples`` and seed, and works on ``mini[rank::world_size]`` of each
    mini-batch; shares stay relative to the whole mini-batch and are scaled by
    ``world_size`` because FSDP averages gradients over ranks. Ranks run equally many
    micro-batches (zero-weight padding), as the collectives require; the skip decisions
    depend only on the shared samples and the global gradient norm, so ranks agree.

    ``on_progress(done, total, tokens)``, when given, is called after every micro-batch with
    running counts of this rank's samples and response tokens worked through, out of
    ``total`` = kept samples x ``ppo_epochs`` (the CLI's update-phase progress).
    """
    samples, dropped = drop_unsignalled(samples, loss_cfg)
    stats = {"train/samples": float(len(samples)), "train/zero_adv_samples": float(dropped)}
    head = getattr(learner, "value_head", None)
    if head is not None:
        stats["train/value_only_samples"] = float(sum(not moves_policy(s, loss_cfg)
                                                      for s in samples))
    if not samples:
        return {**stats, "train/optimizer_steps": 0.0, "train/skipped": 1.0,
                "train/lr": float(learner.scheduler.get_last_lr()[0])}
    o = learner.cfg.optim
    temperature = learner.logprob_temperature
    gen = torch.Generator().manual_seed(seed)
    sums: dict[str, float] = {}
    counts: dict[str, int] = {}
    n_opt = 0
    params = [p for p in learner.model.parameters() if p.requires_grad]
    head_params = list(head.parameters()) if head is not None else []
    done = [0, 0]  # samples, response tokens

    def tick(micro: list[Sample]) -> None:
        if on_progress is not None:
            done[0] += len(micro)
            done[1] += sum(len(s.response_ids) for s in micro)
            on_progress(done[0], len(samples) * o.ppo_epochs, done[1])

    for _epoch in range(o.ppo_epochs):
        order = torch.randperm(len(samples), generator=gen).tolist()
        for m0 in range(0, len(order), o.mini_batch_size):
            mini = [samples[i] for i in order[m0:m0 + o.mini_batch_size]]
            learner.optimizer.zero_grad(set_to_none=True)
            _accumulate(learner, mini, loss_cfg, pad_id, with_entropy, temperature, rank,
                        world_size, sums, counts, tick)
            gnorm = torch.nn.utils.clip_grad_norm_(params, o.grad_clip)
            gnorm = float(gnorm.full_tensor() if hasattr(gnorm, "full_tensor") else gnorm)
            sums["train/grad_norm"] = sums.get("train/grad_norm", 0.0) + gnorm
            counts["train/grad_norm"] = counts.get("train/grad_norm", 0) + 1
            live = gnorm > 0.0 and math.isfinite(gnorm)  # no signal, no step
            if head_params:  # the critic steps on its own signal; a None grad skips a param
                hnorm = float(torch.nn.utils.clip_grad_norm_(head_params, o.grad_clip))
                sums["train/value_grad_norm"] = sums.get("train/value_grad_norm", 0.0) + hnorm
                counts["train/value_grad_norm"] = counts.get("train/value_grad_norm", 0) + 1
                for group, ok in ((params, live), (head_params, hnorm > 0 and
                                                   math.isfinite(hnorm))):
                    if not ok:  # AdamW leaves params without grad (and their moments) alone
                        for p in group:
                            p.grad = None
                live = live or any(p.grad is not None for p in head_params)
            if live:  # moments of params that got no signal stay untouched
                learner.optimizer.step()
                n_opt += 1
    if n_opt:
        learner.scheduler.step()
        _policy_kl(learner, [s for s in samples if moves_policy(s, loss_cfg)], pad_id,
                   temperature, rank, world_size, sums, counts)
    if world_size > 1:  # every rank logs the means over all ranks' micro-batches
        sums, counts = _merge_over_ranks(sums, counts, world_size)
    out = {k if "/" in k else f"train/{k}": sums[k] / counts[k] for k in sums}
    out.update(stats)
    out["train/optimizer_steps"] = float(n_opt)
    out["train/skipped"] = float(n_opt == 0)
    out["train/lr"] = float(learner.scheduler.get_last_lr()[0])
    release_freed_memory()
    return out


@functools.cache
def _libc() -> ctypes.CDLL | None:
    try:
        return ctypes.CDLL("libc.so.6")
    except OSError:  # not glibc (macOS, musl): nothing to trim
        return None


def release_freed_memory() -> bool:
    """Hand the C heap's free pages back to the OS (glibc ``malloc_trim(0)``); False where
    there is no glibc.

    On CPU an update's micro-batches allocate gigabytes for the backward pass: every
    layer's activations over prompt and response (``response_logprobs`` keeps logits only
    for the response positions: 32 x 17 x 49,152 x 4 bytes is ~0.1 GB for SmolLM2), in
    sizes that change with every micro-batch. glibc keeps what they free: measured on the
    2-core machine (GiGPO on Maze, 180 samples, micro-batches of 32), the run's RSS went
    4.1 GB before the first update, 15.4 GB during it, 10.4 GB after it, 18.4 GB in the
    second update, and the third was OOM-killed at 20 GB on the 24 GB machine. Trimming
    after each update returns the freed pages, so steps do not accumulate."""
    libc = _libc()
    return bool(libc is not None and libc.malloc_trim(0) >= 0)


def _accumulate(learner: Learner, mini: list[Sample], loss_cfg: PPOLossConfig, pad_id: int,
                with_entropy: bool, temperature: float, rank: int, world_size: int,
                sums: dict[str, float], counts: dict[str, int],
                tick: Callable[[list[Sample]], None] | None = None) -> None:
    """Backward the loss of one mini-batch (this rank's micro-batches) into the grads;
    ``tick(micro)`` after each live micro-batch."""
    head = getattr(learner, "value_head", None)
    pol_mini = [s for s in mini if moves_policy(s, loss_cfg)]
    mini_tokens = sum(len(s.response_ids) for s in pol_mini)
    n_value = sum(s.value_target is not None for s in mini) if head is not None else 0
    for micro, live in _ticked(_rank_micro_batches(mini, learner.cfg.optim.micro_batch_size,
                                                   rank, world_size), tick):
        vmicro = [s for s in micro if s.value_target is not None] if n_value and live else []
        if vmicro:  # the critic: gradient into the head only (prompt_hidden has none)
            v_B = head(prompt_hidden(learner.model, [s.prompt_ids for s in vmicro],
                                     pad_id)).squeeze(-1)
            dev = v_B.device
            g_B = torch.tensor([s.value_target for s in vmicro], dtype=torch.float32,
                               device=dev)
            old_B = torch.tensor([s.old_value if s.old_value is not None else 0.0
                                  for s in vmicro], dtype=torch.float32, device=dev)
            vcfg = learner.cfg.algo.value
            vloss, vm = value_loss(v_B, g_B, old_B, vcfg.coef, vcfg.clip)
            (vloss * (len(vmicro) / n_value)).backward()
            for k, v in vm.items():
                sums[k] = sums.get(k, 0.0) + float(v)
                counts[k] = counts.get(k, 0) + 1
        micro = [s for s in micro if moves_policy(s, loss_cfg)]  # the policy: signal only
        if not micro:
            continue
        lp_BT, ent_BT, mask_BT = response_logprobs(
            learner.model, [s.prompt_ids for s in micro], [s.response_ids for s in micro],
            pad_id, with_entropy=with_entropy, temperature=temperature)
        T, dev = mask_BT.shape[1], lp_BT.device
        old_BT = to_padded([s.old_logprobs for s in micro], T, dev)
        adv_BT = to_padded([s.adv for s in micro], T, dev)
        ref_BT = (to_padded([s.ref_logprobs for s in micro], T, dev)
                  if all(s.ref_logprobs is not None for s in micro) else None)
        loss, metrics = ppo_policy_loss(lp_BT, old_BT, adv_BT, mask_BT, loss_cfg,
                                        ref_logprobs_BT=ref_BT, entropy_BT=ent_BT)
        share = (sum(len(s.response_ids) for s in micro) / max(mini_tokens, 1)
                 if loss_cfg.agg == "token-mean" else len(micro) / len(pol_mini))
        (loss * (share * world_size if live else 0.0)).backward()
        if not live:
            continue
        for k, v in metrics.items():
            sums[k] = sums.get(k, 0.0) + float(v)
            counts[k] = counts.get(k, 0) + 1


def _policy_kl(learner: Learner, samples: list[Sample], pad_id: int, temperature: float,
               rank: int, world_size: int, sums: dict[str, float], counts: dict[str, int]
               ) -> None:
    """``train/policy_kl``: how far the update moved the policy on the samples it trained
    on, the k3 estimate of KL(pi_old || pi_new) per token (``pi_old`` = the samples'
    ``old_logprobs``, the behaviour policy); one no-grad forward pass after the update. The
    in-update ``algo/approx_kl`` is 0 with one optimizer step per RL step (the loss is taken
    before the step), so this is the per-step drift to watch."""
    if not samples:
        return
    was_training = learner.model.training
    learner.model.eval()
    try:
        for micro, live in _rank_micro_batches(samples, learner.cfg.optim.micro_batch_size,
                                               rank, world_size):
            with torch.no_grad():
                lp_BT, _, mask_BT = response_logprobs(
                    learner.model, [s.prompt_ids for s in micro],
                    [s.response_ids for s in micro], pad_id, temperature=temperature)
            if not live:
                continue
            old_BT = to_padded([s.old_logprobs for s in micro], mask_BT.shape[1],
                               lp_BT.device)
            kl_BT = kl_estimate(old_BT, lp_BT.float(), "k3") * mask_BT
            # token-weighted: one count per token, so the merged mean is over all tokens
            sums["train/policy_kl"] = sums.get("train/policy_kl", 0.0) + float(kl_BT.sum())
            counts["train/policy_kl"] = counts.get("train/policy_kl", 0) + int(mask_BT.sum())
    finally:
        learner.model.train(was_training)


def _merge_over_ranks(sums: dict[str, float], counts: dict[str, int], world_size: int
                      ) -> tuple[dict[str, float], dict[str, int]]:
    """Sum the per-rank metric sums and counts (``all_gather_object``: a rank whose share
    was all padding has no keys)."""
    parts: list[Any] = [None] * world_size
    dist.all_gather_object(parts, (sums, counts))
    all_sums: dict[str, float] = {}
    all_counts: dict[str, int] = {}
    for s_r, c_r in parts:
        for k, v in s_r.items():
            all_sums[k] = all_sums.get(k, 0.0) + v
            all_counts[k] = all_counts.get(k, 0) + c_r[k]
    return all_sums, all_counts


def _ticked(pairs: Iterator[tuple[list[Sample], bool]],
            tick: Callable[[list[Sample]], None] | None) -> Iterator[tuple[list[Sample], bool]]:
    """``pairs`` as they are, calling ``tick(micro)`` once the loop body of each live one
    has run (a generator resumes after the body, ``continue`` included)."""
    for micro, live in pairs:
        yield micro, live
        if live and tick is not None:
            tick(micro)


def _rank_micro_batches(mini: list[Sample], micro_size: int, rank: int, world_size: int):
    """Yield ``(micro_batch, live)`` of this rank's share ``mini[rank::world_size]``; every
    rank yields the same number, padding with ``(mini[:1], False)`` (weight 0)."""
    local = mini[rank::world_size]
    n_micro = -(-len(mini[0::world_size]) // micro_size)  # rank 0 has the largest share
    for k in range(n_micro):
        chunk = local[k * micro_size:(k + 1) * micro_size]
        yield (chunk, True) if chunk else (mini[:1], False)
