"""The mismatch correction's trainer glue (``turngym.harness.learn.mismatch``): samples
re-based on the learner's log-probs, advantages weighted, ``auto`` resolved per backend, and
the async staleness correction running through the same code."""

from __future__ import annotations

import math
from types import SimpleNamespace

import pytest
import torch

from turngym.algos.mismatch import MismatchConfig
from turngym.errors import ConfigError
from turngym.harness.config import load_config
from turngym.harness.distributed.async_loop import importance_correct
from turngym.harness.learn.learner import Sample
from turngym.harness.learn.mismatch import correct_mismatch, resolve_mismatch

V = 4


class FixedLogits(torch.nn.Module):
    """A "model" whose next-token logits are ``[0, 2 ln 2, 0, 0]`` at every position: token 1
    has probability 4/7 at T = 1 and 2/5 at T = 2, the others 1/7 (1/5)."""

    def __init__(self) -> None:
        super().__init__()
        self.bias = torch.nn.Parameter(torch.tensor([0.0, 2 * math.log(2.0), 0.0, 0.0]))

    def forward(self, input_ids, attention_mask=None, position_ids=None, logits_to_keep=0,
                use_cache=False):
        B, L = input_ids.shape
        return SimpleNamespace(logits=self.bias.expand(B, logits_to_keep or L, V))


def _learner(temperature: float = 1.0) -> SimpleNamespace:
    return SimpleNamespace(model=FixedLogits(), logprob_temperature=temperature)


def _samples() -> list[Sample]:
    # learner log-probs: token 1 -> log 4/7, token 0 / 2 -> log 1/7. Behaviour log-probs give
    # ratios 2 (clipped, at the band's edge: kept), 1, 10 (masked) and 0.5 / 1 in sample 2.
    p1, p0 = 4 / 7, 1 / 7
    return [
        Sample(prompt_ids=[3, 2], response_ids=[1, 0, 2],
               old_logprobs=[math.log(p1 / 1.999), math.log(p0), math.log(p0 / 10)],
               adv=[1.0, 1.0, 1.0]),
        Sample(prompt_ids=[2], response_ids=[1, 1],
               old_logprobs=[math.log(p1 / 0.501), math.log(p1)], adv=[-2.0, -2.0],
               ref_logprobs=[-1.0, -1.0]),
    ]


def test_correct_mismatch_rebases_and_weights() -> None:
    cfg = MismatchConfig(mode="tis+mask")
    out, m = correct_mismatch(_learner(), _samples(), pad_id=0, cfg=cfg, micro_batch_size=1)
    lp1, lp0 = math.log(4 / 7), math.log(1 / 7)
    assert out[0].old_logprobs == pytest.approx([lp1, lp0, lp0], abs=1e-5)
    assert out[1].old_logprobs == pytest.approx([lp1, lp1], abs=1e-5)
    assert out[0].adv == pytest.approx([1.999, 1.0, 0.0], rel=1e-4)
    assert out[1].adv == pytest.approx([-2 * 0.501, -2.0], rel=1e-4)
    assert out[1].ref_logprobs == [-1.0, -1.0] and out[0].response_ids == [1, 0, 2]
    assert m["rollout/mismatch_masked_frac"] == pytest.approx(1 / 5)
    assert m["rollout/mismatch_clip_frac"] == 0.0
    assert m["rollout/mismatch_is_weight_mean"] == pytest.approx(
        (1.999 + 1 + 0 + 0.501 + 1) / 5, rel=1e-4)
    k3 = [r - math.log(r) - 1 for r in (1.999, 1.0, 10.0, 0.501, 1.0)]
    assert m["rollout/logprob_mismatch_kl"] == pytest.approx(sum(k3) / 5, rel=1e-4)


def test_tis_only_truncates_and_monitor_changes_nothing() -> None:
    out, m = correct_mismatch(_learner(), _samples(), 0, MismatchConfig(mode="tis"), 8)
    assert out[0].adv == pytest.approx([1.999, 1.0, 2.0], rel=1e-4)  # 10 -> C = 2
    assert m["rollout/mismatch_clip_frac"] == pytest.approx(1 / 5)
    samples = _samples()
    out, m = correct_mismatch(_learner(), samples, 0, MismatchConfig(mode="monitor"), 8)
    assert out is samples and m["rollout/mismatch_masked_frac"] == pytest.approx(1 / 5)
    assert correct_mismatch(_learner(), samples, 0, MismatchConfig(mode="off"), 8) == (
        samples, {})


def test_missing_behaviour_logprobs_count_as_on_policy() -> None:
    s = [Sample(prompt_ids=[2], response_ids=[1, 0], old_logprobs=[], adv=[1.0, 1.0])]
    out, m = correct_mismatch(_learner(), s, 0, MismatchConfig(mode="tis+mask"), 8)
    assert out[0].adv == pytest.approx([1.0, 1.0]) and m["rollout/logprob_mismatch_kl"] == 0.0


def test_learner_logprobs_use_the_rollout_temperature() -> None:
    s = [Sample(prompt_ids=[2], response_ids=[1, 0], old_logprobs=[-1.0, -1.0], adv=[1, 1])]
    out, _ = correct_mismatch(_learner(2.0), s, 0, MismatchConfig(mode="tis"), 8)
    assert out[0].old_logprobs == pytest.approx([math.log(2 / 5), math.log(1 / 5)], abs=1e-5)


def test_async_importance_correct_is_the_same_correction() -> None:
    """Staleness correction: TIS with distributed.is_clip, plus the masking of algo.mismatch
    when it masks; the async/* metric names stay."""
    out, m = importance_correct(_learner(), _samples(), 0, clip=3.0, micro_batch_size=2)
    assert out[0].adv == pytest.approx([1.999, 1.0, 3.0], rel=1e-4)  # no masking: TIS at 3
    assert m["async/is_clip_frac"] == pytest.approx(1 / 5)
    assert m["async/is_weight_mean"] == pytest.approx((1.999 + 1 + 3 + 0.501 + 1) / 5, rel=1e-4)
    gaps = [-math.log(r) for r in (1.999, 1.0, 10.0, 0.501, 1.0)]
    assert m["async/behav_kl"] == pytest.approx(sum(gaps) / 5, rel=1e-4)
    out, m = importance_correct(_learner(), _samples(), 0, clip=3.0,
                                mismatch=MismatchConfig(mode="tis+mask"))
    assert out[0].adv == pytest.approx([1.999, 1.0, 0.0], rel=1e-4)  # 10 outside [0.5, 2]
    assert m["rollout/mismatch_masked_frac"] == pytest.approx(1 / 5)


@pytest.mark.parametrize("overrides, world, expected", [
    ([], 1, "off"),                                                  # hf: the learner itself
    (["model.backend=vllm"], 1, "tis+mask"),
    (["distributed.mode=ray"], 1, "tis+mask"),                       # Ray engine actors
    (["algo.mismatch.mode=monitor"], 1, "monitor"),
    (["model.backend=vllm", "algo.mismatch.mode=tis"], 1, "tis"),
    (["model.backend=vllm"], 2, "off"),                              # torchrun: not supported
])
def test_auto_resolves_per_backend(overrides, world, expected) -> None:
    cfg = load_config(None, overrides)
    assert cfg.algo.mismatch.mode == ("auto" if not any("mode=" in o and "mismatch" in o
                                                         for o in overrides) else expected)
    assert resolve_mismatch(cfg, world).mode == expected


def test_config_errors_name_the_key() -> None:
    with pytest.raises(ConfigError, match=r"algo\.mismatch\.band"):
        load_config(None, ["algo.mismatch.band=[0.9, 0.95]"])
    with pytest.raises(ConfigError, match=r"algo\.mismatch\.mode"):
        load_config(None, ["algo.mismatch.mode=clip"])
    cfg = load_config(None, ["model.backend=vllm", "algo.mismatch.mode=tis+mask"])
    with pytest.raises(ConfigError, match="torchrun"):
        resolve_mismatch(cfg, 2)
    cfg = load_config(None, ["algo.mismatch={mode: tis, band: [0.25, 4.0], level: sequence}"])
    assert (cfg.algo.mismatch.band, cfg.algo.mismatch.level) == ((0.25, 4.0), "sequence")


def test_train_logs_the_mismatch_metrics(tmp_path) -> None:
    """The wiring in harness/train.py: an explicit mode on the hf backend (whose log-probs are
    the learner's) corrects every step and logs a near-zero mismatch. OPD with the expert-hint
    teacher gives every token an advantage, so every step has samples to correct (with GRPO a
    step whose groups all tie has none: it is dropped before the correction)."""
    from turngym.harness.train import train

    cfg = load_config(None, [
        "model.path=tiny", "env.id=turngym/Maze-v0", "env.kwargs={size: 2}", "steps=2",
        "rollout.tasks_per_step=2", "rollout.group_size=2", "rollout.max_turns=2",
        "rollout.max_tokens=6", "rollout.history_length=1", "eval.num_tasks=2",
        "eval.at_start=false", "optim.micro_batch_size=2", "logging.plot=false",
        "logging.progress=false", "logging.tensorboard=false", "algo.name=opd",
        "teacher.expert_hint=true", "algo.opd.sod=false", "algo.loss.kl_coef=0",
        "algo.mismatch.mode=tis+mask", f"out_dir={tmp_path / 'run'}"])
    hist = train(cfg)["history"]
    assert len(hist) == 2
    for h in hist:
        m = h["metrics"]
        assert m["train/samples"] > 0
        assert 0.0 <= m["rollout/logprob_mismatch_kl"] < 1e-6
        assert m["rollout/mismatch_abs_log_ratio_max"] < 1e-3
        assert m["rollout/mismatch_masked_frac"] == 0.0
        assert m["rollout/mismatch_is_weight_mean"] == pytest.approx(1.0, abs=1e-3)
