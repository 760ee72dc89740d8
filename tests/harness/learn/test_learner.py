"""Learner plumbing on hand-computed cases and against the real hf backend."""

from __future__ import annotations

import copy

import numpy as np
import pytest
import torch

from turngym.harness.config import load_config
from turngym.harness.learn.learner import Learner, Sample, pad_batch, ppo_update, response_logprobs
from turngym.harness.learn.samples import build_samples, opd_token_adv
from turngym.harness.rollout.trajectory import Turn


@pytest.fixture(scope="module")
def tiny():
    from turngym.agents.models import tiny_model_dir

    return tiny_model_dir()


def make_learner(tiny, *overrides: str) -> Learner:
    cfg = load_config(None, ["model.path=tiny", "optim.lr=1e-2", "optim.mini_batch_size=4",
                             "optim.micro_batch_size=4", "algo.loss.clip_high=0.2",
                             *overrides])
    torch.manual_seed(0)
    return Learner(tiny, cfg)


def test_pad_batch_layout() -> None:
    ids, att, pos, mask = pad_batch([[5, 6, 7], [8]], [[1, 2], [3, 4, 9]], pad_id=0)
    assert ids.tolist() == [[5, 6, 7, 1, 2, 0], [0, 0, 8, 3, 4, 9]]
    assert att.tolist() == [[1, 1, 1, 1, 1, 0], [0, 0, 1, 1, 1, 1]]
    assert pos.tolist() == [[0, 1, 2, 3, 4, 4], [0, 0, 0, 1, 2, 3]]
    assert mask.tolist() == [[True, True, False], [True, True, True]]


def test_logprobs_match_unpadded_forward_and_hf_backend(tiny) -> None:
    from turngym.agents.hf import HFBackend

    learner = make_learner(tiny)
    learner.model.eval()
    prompts = [[1, 17, 300, 4000, 2], [9, 10]]
    responses = [[55, 66, 77], [88]]
    with torch.no_grad():
        lp_BT, ent_BT, mask_BT = response_logprobs(learner.model, prompts, responses, 0,
                                                   with_entropy=True)
        for i, (p, r) in enumerate(zip(prompts, responses)):  # one sequence, no padding
            logits = learner.model(input_ids=torch.tensor([p + r])).logits[0].float()
            want = torch.log_softmax(logits, -1)[len(p) - 1:-1].gather(
                -1, torch.tensor(r)[:, None])[:, 0]
            assert torch.allclose(lp_BT[i, :len(r)], want, atol=1e-4)
    assert lp_BT[1, 1:].abs().sum() == 0 and mask_BT.tolist() == [[True] * 3, [True, False, False]]
    assert (ent_BT[mask_BT] > 0).all()
    scored = HFBackend(str(tiny), dtype="float32").score(prompts, responses)
    for i, r in enumerate(responses):
        assert np.allclose(scored[i], lp_BT[i, :len(r)].numpy(), atol=1e-4)


@pytest.mark.parametrize("sign", [1.0, -1.0])
def test_update_moves_logprob_with_the_advantage(tiny, sign: float) -> None:
    learner = make_learner(tiny)
    prompt, resp = [1, 17, 300, 4000], [55, 66, 77]
    with torch.no_grad():
        before = response_logprobs(learner.model, [prompt], [resp], 0)[0][0].sum().item()
    old = response_logprobs(learner.model, [prompt], [resp], 0)[0][0].detach().tolist()
    s = Sample(prompt_ids=prompt, response_ids=resp, old_logprobs=old, adv=[sign] * 3)
    from turngym.algos.ppo_loss import PPOLossConfig

    m = ppo_update(learner, [s], PPOLossConfig(kl_coef=0), seed=0, pad_id=0)
    with torch.no_grad():
        after = response_logprobs(learner.model, [prompt], [resp], 0)[0][0].sum().item()
    assert m["train/optimizer_steps"] == 1.0 and m["train/grad_norm"] > 0
    assert (after - before) * sign > 0


def test_grad_accumulation_equals_one_big_batch(tiny) -> None:
    from turngym.algos.ppo_loss import PPOLossConfig

    rng = np.random.default_rng(0)
    a = make_learner(tiny, "optim.micro_batch_size=4")
    b = make_learner(tiny, "optim.micro_batch_size=1")
    b.model.load_state_dict(copy.deepcopy(a.model.state_dict()))
    samples = []
    for n in (2, 5, 3, 4):  # unequal lengths: token-mean weights micro-batches by tokens
        p = rng.integers(10, 5000, size=6).tolist()
        r = rng.integers(10, 5000, size=n).tolist()
        with torch.no_grad():
            old = response_logprobs(a.model, [p], [r], 0)[0][0, :n].tolist()
        samples.append(Sample(p, r, old_logprobs=old, adv=rng.normal(size=n).tolist()))
    ma = ppo_update(a, samples, PPOLossConfig(kl_coef=0), seed=1, pad_id=0, with_entropy=False)
    mb = ppo_update(b, samples, PPOLossConfig(kl_coef=0), seed=1, pad_id=0, with_entropy=False)
    assert ma["train/grad_norm"] == pytest.approx(mb["train/grad_norm"], rel=1e-4)
    for (k, pa), pb in zip(a.model.named_parameters(), b.model.parameters()):
        assert torch.allclose(pa.grad, pb.grad, atol=1e-6, rtol=1e-4), k


def turn(i: int, t: int, n: int, teacher=None, trainable=True) -> Turn:
    return Turn(group_id="g", traj_id=f"t{i}", task_id="x", turn=t, prompt_ids=[1, 2],
                response_ids=list(range(n)), response_logprobs=[-1.0] * n, reward=0.0,
                state_key="s", action_valid=True, done=False, won=False,
                trainable=trainable, teacher_logprobs=teacher)


def test_build_samples_broadcasts_turn_advantage_and_adds_opd() -> None:
    rows = [turn(0, 0, 2, teacher=[-0.5, -2.0]), turn(0, 1, 1, teacher=[-0.0]),
            turn(1, 0, 1, trainable=False)]
    mask = np.array([True, True, False])
    traj = np.array([0, 0, 1])
    opd, metrics = opd_token_adv(rows, mask, traj, beta=1.0, sod=False, delta=0.2, eps=1e-6)
    # teacher - student: [-0.5+1, -2+1] = [0.5, -1.0]; [0+1] = [1.0]
    assert [a.tolist() for a in opd[:2]] == [[0.5, -1.0], [1.0]]
    assert metrics["algo/opd_gap"] == pytest.approx((0.75 + 1.0) / 2)
    samples = build_samples(rows, mask, np.array([0.3, -0.2, 9.0]), opd, rl_coef=2.0)
    assert len(samples) == 2  # the expert-prefix turn is never trained on
    assert samples[0].adv == pytest.approx([0.6 + 0.5, 0.6 - 1.0])
    assert samples[1].adv == pytest.approx([-0.4 + 1.0])
    # SOD: d_1 = 0.75, d_2 = 1.0 -> w_2 = min(0.75/1.0, 1.2) = 0.75
    sod, m = opd_token_adv(rows, mask, traj, beta=1.0, sod=True, delta=0.2, eps=1e-9)
    assert sod[1].tolist() == pytest.approx([0.75])
    assert sod[0].tolist() == pytest.approx([0.5, -1.0])
    assert m["algo/sod_weight_mean"] == pytest.approx((1.0 + 0.75) / 2)


def test_dynamic_sampling_keeps_only_informative_groups() -> None:
    from turngym.algos.batch import TurnBatch
    from turngym.harness.learn.credit import CreditState, _dynamic_sampling

    # group 0: returns 1 and 0 (kept); group 1: returns 0 and 0 (dropped)
    batch = TurnBatch.from_lists(group=[0, 0, 0, 1, 1], traj=[0, 0, 1, 2, 3],
                                 turn=[0, 1, 0, 0, 0], reward=[0.0, 1.0, 0.0, 0.0, 0.0],
                                 state=["a", "b", "a", "c", "c"])
    state = CreditState(batch=batch, rows=[], mask_N=batch.mask_N.copy(),
                        adv_N=np.zeros(len(batch)))
    metrics = _dynamic_sampling(state, None)
    assert state.mask_N.tolist() == [True, True, True, False, False]
    assert metrics["algo/groups_dropped"] == 1.0


# ------------------------------------------------------------------ no update without signal
def _snapshot(learner: Learner) -> tuple[dict, dict]:
    params = {k: v.detach().clone() for k, v in learner.model.state_dict().items()}
    return params, copy.deepcopy(learner.optimizer.state_dict())


def _assert_identical(learner: Learner, snap: tuple[dict, dict]) -> None:
    params, opt = snap
    for k, v in learner.model.state_dict().items():
        assert torch.equal(v, params[k]), k
    now = learner.optimizer.state_dict()
    assert now["param_groups"] == opt["param_groups"]
    for i, st in opt["state"].items():
        for name, value in st.items():
            assert torch.equal(now["state"][i][name], value), (i, name)


def _samples(learner: Learner, advs: list[list[float]], ref_noise: float | None = None
             ) -> list[Sample]:
    rng = np.random.default_rng(3)
    out = []
    for adv in advs:
        p = rng.integers(10, 5000, size=5).tolist()
        r = rng.integers(10, 5000, size=len(adv)).tolist()
        with torch.no_grad():
            old = response_logprobs(learner.model, [p], [r], 0)[0][0].tolist()
        ref = None if ref_noise is None else [x + ref_noise for x in old]
        out.append(Sample(p, r, old_logprobs=old, adv=adv, ref_logprobs=ref))
    return out


@pytest.mark.parametrize("kl_coef", [0.0, 0.05])
def test_update_without_signal_leaves_weights_and_optimizer_bit_identical(
        tiny, kl_coef: float) -> None:
    from turngym.algos.ppo_loss import PPOLossConfig

    learner = make_learner(tiny, "optim.weight_decay=0.1")
    loss_cfg = PPOLossConfig(kl_coef=kl_coef)
    noise = 1e-6 if kl_coef else None  # reference = the policy up to scorer float noise
    m = ppo_update(learner, _samples(learner, [[1.0, 1.0, 1.0], [-0.5, -0.5]], noise),
                   loss_cfg, seed=0, pad_id=0)
    assert m["train/optimizer_steps"] == 1.0 and m["train/grad_norm"] > 0
    snap, lr = _snapshot(learner), learner.scheduler.get_last_lr()
    # all-success / all-fail groups: every advantage exactly 0; Adam's moments from the
    # step above would otherwise keep moving every weight (and weight decay shrink it)
    m = ppo_update(learner, _samples(learner, [[0.0] * 3, [0.0] * 4], noise), loss_cfg,
                   seed=1, pad_id=0)
    _assert_identical(learner, snap)
    assert learner.scheduler.get_last_lr() == lr
    assert (m["train/optimizer_steps"], m["train/skipped"]) == (0.0, 1.0)
    assert (m["train/samples"], m["train/zero_adv_samples"]) == (0.0, 2.0)


def test_zero_advantage_samples_are_dropped_before_the_update(tiny) -> None:
    from turngym.algos.ppo_loss import PPOLossConfig

    a, b = make_learner(tiny), make_learner(tiny)
    mixed = _samples(a, [[0.0, 0.0], [0.7, 0.7, 0.7], [0.0]])
    ma = ppo_update(a, mixed, PPOLossConfig(kl_coef=0), seed=5, pad_id=0)
    mb = ppo_update(b, [mixed[1]], PPOLossConfig(kl_coef=0), seed=5, pad_id=0)
    assert (ma["train/samples"], ma["train/zero_adv_samples"]) == (1.0, 2.0)
    assert (mb["train/samples"], mb["train/zero_adv_samples"]) == (1.0, 0.0)
    for (k, pa), pb in zip(a.model.named_parameters(), b.model.parameters()):
        assert torch.equal(pa, pb), k


def test_an_entropy_bonus_still_trains_on_zero_advantage_samples(tiny) -> None:
    from turngym.algos.ppo_loss import PPOLossConfig

    learner = make_learner(tiny)
    snap = _snapshot(learner)
    m = ppo_update(learner, _samples(learner, [[0.0] * 3]),
                   PPOLossConfig(entropy_coef=0.01, kl_coef=0), seed=0, pad_id=0)
    assert (m["train/samples"], m["train/optimizer_steps"]) == (1.0, 1.0)
    assert not torch.equal(next(learner.model.parameters()), next(iter(snap[0].values())))


@pytest.mark.parametrize("temperature", [0.7, 1.0, 1.3])
def test_learner_ratio_is_one_at_the_rollout_temperature(tiny, temperature: float) -> None:
    # the hf backend records log softmax(z / T) of the sampled tokens; the learner computes
    # the same distribution, so the PPO ratio starts at 1 for any T
    from turngym.agents.backend import SamplingParams
    from turngym.agents.hf import HFBackend

    learner = make_learner(tiny, f"rollout.temperature={temperature}")
    assert learner.logprob_temperature == temperature
    backend = HFBackend(str(tiny), dtype="float32", device="cpu")
    prompts = [[1, 17, 300, 4000, 2], [9, 10, 11], [40, 41, 42, 43]]
    gens = backend.generate(prompts, SamplingParams(temperature=temperature, max_tokens=12,
                                                    seed=0))
    responses = [g.ids for g in gens]
    learner.model.eval()
    with torch.no_grad():
        lp_BT, _, mask_BT = response_logprobs(learner.model, prompts, responses, 0,
                                              temperature=learner.logprob_temperature)
    old_BT = torch.zeros_like(lp_BT)
    for i, g in enumerate(gens):
        old_BT[i, :len(g.ids)] = torch.tensor(g.logprobs)
    ratio = torch.exp(lp_BT - old_BT)[mask_BT]
    assert mask_BT.sum() >= 12
    assert (ratio - 1).abs().max().item() < 1e-5
    if temperature != 1.0:  # at T=1 the learner would be off: the bug this guards
        with torch.no_grad():
            raw_BT = response_logprobs(learner.model, prompts, responses, 0)[0]
        assert (torch.exp(raw_BT - old_BT)[mask_BT] - 1).abs().max().item() > 1e-3


def _traj(tid: str, rewards: list[float], stop: str, won: bool):
    from turngym.harness.rollout.trajectory import StopReason, Trajectory

    turns = tuple(Turn(group_id="g", traj_id=tid, task_id="x", turn=k, prompt_ids=[1, 2],
                       response_ids=[5, 6], response_logprobs=[-1.0, -1.0], reward=r,
                       state_key=f"s{k}", action_valid=True, done=k == len(rewards) - 1,
                       won=won and k == len(rewards) - 1) for k, r in enumerate(rewards))
    return Trajectory(group_id="g", traj_id=tid, task_id="x", seed=0, env_id="e",
                      turns=turns, stop_reason=StopReason(stop), won=won)


def test_env_error_episodes_enter_no_statistic_advantage_or_loss() -> None:
    from turngym.algos.grpo import GRPOConfig, grpo_advantage
    from turngym.harness.learn.samples import turn_batch
    from turngym.harness.rollout.summary import summarize as rollout_metrics
    from turngym.harness.rollout.trajectory import Group

    trajs = (_traj("a", [0.0, 1.0], "terminated", True), _traj("b", [0.0, 0.0], "truncated",
                                                              False),
             _traj("c", [0.0], "env_error", False))
    batch, rows = turn_batch([Group(group_id="g", task_id="x", seed=0, trajectories=trajs)])
    assert batch.mask_N.tolist() == [True, True, True, True, False]
    adv_N = grpo_advantage(batch, GRPOConfig(norm="mean")).adv_N
    # returns 1 and 0 over the two healthy episodes: +-0.5; with the crashed one counted as
    # a failure the mean would be 1/3 and a would get +0.667
    assert adv_N.tolist() == pytest.approx([0.5, 0.5, -0.5, -0.5, 0.0])
    assert len(build_samples(rows, batch.mask_N, adv_N, None)) == 4
    m = rollout_metrics(trajs)
    assert m["rollout/env_errors"] == 1.0 and m["rollout/stop/env_error"] == pytest.approx(1 / 3)


def test_signal_metrics_count_groups_with_a_nonzero_advantage() -> None:
    from turngym.algos.batch import TurnBatch
    from turngym.harness.learn.samples import signal_metrics

    # group 0 mixed, group 1 uniform (all 0), group 2 only masked rows
    batch = TurnBatch.from_lists(group=[0, 0, 1, 1, 2], traj=[0, 1, 2, 3, 4],
                                 turn=[0] * 5, reward=[1.0, 0.0, 0.0, 0.0, 1.0],
                                 state=["a"] * 5)
    mask = np.array([True, True, True, True, False])
    m = signal_metrics(batch, mask, np.array([0.5, -0.5, 0.0, 0.0, 0.0]), None)
    assert m == {"algo/signal_groups": 1.0, "algo/signal_groups_frac": 0.5}
    # a per-token term (OPD) gives group 1 signal too
    tok = [np.zeros(2), np.zeros(2), np.array([0.0, 0.1]), np.zeros(1), np.zeros(1)]
    m = signal_metrics(batch, mask, None, tok)
    assert m == {"algo/signal_groups": 1.0, "algo/signal_groups_frac": 0.5}
    m = signal_metrics(batch, mask, np.array([0.5, -0.5, 0.0, 0.0, 0.0]), tok)
    assert m["algo/signal_groups_frac"] == 1.0


def test_policy_kl_measures_the_drift_of_the_update(tiny) -> None:
    # one AdamW step per update: the in-loss approx_kl is 0 (taken before the step); the
    # post-update train/policy_kl is the k3 KL(old || new) over the trained tokens
    from turngym.algos.ppo_loss import PPOLossConfig

    learner = make_learner(tiny, "optim.lr=1e-3")
    samples = _samples(learner, [[1.0, 1.0, 1.0], [-1.0, -1.0], [0.0]])
    m = ppo_update(learner, samples, PPOLossConfig(kl_coef=0), seed=0, pad_id=0)
    assert m["algo/approx_kl"] == pytest.approx(0.0, abs=1e-9)
    learner.model.eval()
    kl, n = 0.0, 0
    with torch.no_grad():
        for s in samples[:2]:  # the zero-advantage sample was not trained on
            new = response_logprobs(learner.model, [s.prompt_ids], [s.response_ids], 0)[0][0]
            log_r = new - torch.tensor(s.old_logprobs)
            kl += float((log_r.exp() - 1 - log_r).sum())
            n += len(s.response_ids)
    assert m["train/policy_kl"] == pytest.approx(kl / n, rel=1e-4)
    assert m["train/policy_kl"] > 1e-6
    skipped = ppo_update(learner, _samples(learner, [[0.0, 0.0]]), PPOLossConfig(kl_coef=0),
                         seed=1, pad_id=0)
    assert "train/policy_kl" not in skipped


def test_update_reports_progress_after_each_micro_batch(tiny) -> None:
    """The CLI's update phase moves while the learner works: ``on_progress(done, total,
    tokens)`` after every micro-batch, counting kept samples over the epochs."""
    from turngym.algos.ppo_loss import PPOLossConfig

    learner = make_learner(tiny, "optim.micro_batch_size=2", "optim.ppo_epochs=2")
    # 5 samples, one without signal (dropped first): 4 kept x 2 epochs, micro-batches of 2
    samples = _samples(learner, [[1.0, 1.0], [0.0, 0.0], [-1.0], [0.5, 0.5, 0.5], [1.0]])
    calls: list[tuple[int, int, int]] = []
    ppo_update(learner, samples, PPOLossConfig(kl_coef=0), seed=0, pad_id=0,
               on_progress=lambda *a: calls.append(a))
    assert [(d, t) for d, t, _ in calls] == [(2, 8), (4, 8), (6, 8), (8, 8)]
    tokens = [tok for *_, tok in calls]
    assert tokens[1] == 2 + 1 + 3 + 1 and tokens[-1] == 2 * tokens[1]  # each epoch sees all
    assert all(a < b for a, b in zip(tokens, tokens[1:]))


def test_an_update_hands_freed_heap_memory_back(tiny, monkeypatch) -> None:
    """``ppo_update`` ends with ``malloc_trim`` (glibc keeps the gigabytes of freed logits
    otherwise, and CPU runs were OOM-killed by the third step; the RSS measurement is in
    ``release_freed_memory``'s docstring)."""
    from turngym.algos.ppo_loss import PPOLossConfig
    from turngym.harness.learn import learner as mod

    assert mod.release_freed_memory() is True  # glibc here: the call is real
    calls: list[int] = []
    real = mod.release_freed_memory
    monkeypatch.setattr(mod, "release_freed_memory", lambda: calls.append(1) or real())
    learner = make_learner(tiny)
    ppo_update(learner, _samples(learner, [[1.0, 1.0]]), PPOLossConfig(kl_coef=0), seed=0,
               pad_id=0)
    assert calls == [1]
