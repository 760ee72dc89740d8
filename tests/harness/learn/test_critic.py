"""PPO's critic: the value loss, the GAE registry entry and the learner's value head."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from turngym.algos.batch import TurnBatch
from turngym.algos.gae import GAEConfig, gae_advantage_result
from turngym.algos.value_loss import value_loss
from turngym.errors import CheckpointError, ConfigError
from turngym.harness.config import load_config
from turngym.harness.learn.learner import Learner, Sample, ppo_update


def test_value_loss_by_hand() -> None:
    v = torch.tensor([0.5, 0.0])
    g = torch.tensor([1.0, 0.0])
    loss, m = value_loss(v, g, torch.zeros(2), coef=0.5, clip=None)
    assert loss.item() == pytest.approx(0.5 * (0.25 + 0.0) / 2)  # 0.0625
    assert m == {"algo/value_loss": pytest.approx(0.0625)}
    # clip 0.2 around V_old = [0, 0]: V_clipped = [0.2, 0], errors max(0.25, 0.64) and 0
    loss, m = value_loss(v, g, torch.zeros(2), coef=0.5, clip=0.2)
    assert loss.item() == pytest.approx(0.5 * (0.64 + 0.0) / 2)
    assert m["algo/value_clip_frac"] == 0.5


def test_gae_entry_whitens_and_reports_the_critic() -> None:
    # two one-turn episodes, rewards 1 and 0, values 0.5 each: A = [0.5, -0.5], G = [1, 0]
    b = TurnBatch.from_lists(group=[0, 0], traj=[0, 1], turn=[0, 0], reward=[1, 0],
                             state=["s", "s"], value=[0.5, 0.5])
    raw = gae_advantage_result(b, GAEConfig(whiten=False))
    np.testing.assert_allclose(raw.adv_N, [0.5, -0.5])
    np.testing.assert_allclose(raw.return_N, [1.0, 0.0])
    assert raw.metrics["algo/value_mean"] == 0.5 and raw.metrics["algo/return_mean"] == 0.5
    # Var(G) = 0.25, Var(G - V) = Var([0.5, -0.5]) = 0.25: the constant critic explains 0
    assert raw.metrics["algo/explained_variance"] == pytest.approx(0.0)
    white = gae_advantage_result(b, GAEConfig())  # the default whitens: [1, -1]
    np.testing.assert_allclose(white.adv_N, [1.0, -1.0], atol=1e-7)
    np.testing.assert_allclose(white.return_N, [1.0, 0.0])  # returns are never whitened
    perfect = TurnBatch.from_lists(group=[0, 0], traj=[0, 1], turn=[0, 0], reward=[1, 0],
                                   state=["s", "s"], value=[1.0, 0.0])
    assert gae_advantage_result(perfect, GAEConfig()).metrics[
        "algo/explained_variance"] == 1.0
    no_values = TurnBatch.from_lists(group=[0], traj=[0], turn=[0], reward=[1], state=["s"])
    with pytest.raises(ConfigError, match="value_N"):
        gae_advantage_result(no_values, GAEConfig())


def test_ppo_config() -> None:
    cfg = load_config(None, ["algo.name=ppo", "algo.advantage={lam: 0.9, whiten: false}",
                             "algo.value.clip=0.2"])
    assert cfg.algo.rl_name == "gae" and cfg.algo.uses_critic
    assert (cfg.algo.value.coef, cfg.algo.value.clip) == (0.5, 0.2)
    with pytest.raises(ConfigError, match="algo.value.coef"):
        load_config(None, ["algo.name=ppo", "algo.value.coef=0"])
    with pytest.raises(ConfigError, match="algo.advantage.lam"):
        load_config(None, ["algo.name=ppo", "algo.advantage={lam: 2}"])


def _learner(*overrides: str) -> Learner:
    from turngym.agents.models import tiny_model_dir

    cfg = load_config(None, ["model.path=tiny", "model.device=cpu", "algo.name=ppo",
                             "optim.micro_batch_size=2", "algo.loss.kl_coef=0", *overrides])
    return Learner(tiny_model_dir(), cfg)


def test_value_only_samples_train_the_head_not_the_policy(tmp_path: Path) -> None:
    from turngym.algos.ppo_loss import PPOLossConfig

    learner = _learner()
    prompts = [[1, 5, 7, 9], [1, 5, 8], [1, 6, 7, 9, 4]]
    np.testing.assert_array_equal(learner.values(prompts, [True] * 3, 0), [0.0] * 3)
    before = {k: v.clone() for k, v in learner.model.state_dict().items()}
    # all-zero advantages, critic targets 1: the critic's signal only
    samples = [Sample(prompt_ids=p, response_ids=[3, 4], old_logprobs=[-1.0, -1.0],
                      adv=[0.0, 0.0], value_target=1.0, old_value=0.0) for p in prompts]
    m = ppo_update(learner, samples, PPOLossConfig(kl_coef=0), seed=0, pad_id=0)
    assert m["train/value_only_samples"] == 3 and m["train/optimizer_steps"] == 1
    assert m["algo/value_loss"] == pytest.approx(0.5)  # coef 0.5 * (0 - 1)^2
    assert "algo/pg_loss" not in m  # no policy loss was computed
    for k, v in learner.model.state_dict().items():
        assert v.equal(before[k]), k  # the policy did not move
    v_N = learner.values(prompts, [True, False, True], 0)
    assert v_N[1] == 0.0 and (v_N[[0, 2]] > 0).all()  # the head moved towards G = 1

    # the head and its optimizer state ride in the train state: exact resume
    state = learner.save_train_state(tmp_path)
    fresh = _learner()
    fresh.load_train_state(tmp_path, state)
    np.testing.assert_array_equal(fresh.values(prompts, [True] * 3, 0),
                                  learner.values(prompts, [True] * 3, 0))
    state.pop("value_head")
    with pytest.raises(CheckpointError, match="value head"):
        _learner().load_train_state(tmp_path, state)


def test_ppo_refused_under_torchrun() -> None:
    from turngym.harness.distributed.leader import check_torchrun_config

    with pytest.raises(ConfigError, match="algo.name=ppo"):
        check_torchrun_config(load_config(None, ["algo.name=ppo"]))
