"""The registry and the configs: defaults, bounds, discriminator, unknown keys."""

import numpy as np
import pytest
from pydantic import TypeAdapter, ValidationError

from turngym.algos.batch import TurnBatch
from turngym.algos.dynamic_sampling import DynamicSamplingConfig
from turngym.algos.gae import GAEConfig
from turngym.algos.gigpo import GiGPOConfig
from turngym.algos.graphgpo import GraphGPOConfig
from turngym.algos.grpo import GRPOConfig
from turngym.algos.hgpo import HGPOConfig
from turngym.algos.opd import OPDConfig
from turngym.algos.ppo_loss import PPOLossConfig
from turngym.algos.registry import ADVANTAGES, AdvantageConfig, compute_advantages, make_config
from turngym.algos.reinforce_pp import ReinforcePPConfig
from turngym.algos.rloo import RLOOConfig
from turngym.algos.sod import SODConfig
from turngym.algos.task_sampler import TaskSamplerConfig
from turngym.algos.tcod import TCODConfig
from turngym.errors import ConfigError

DEFAULTS = [
    (GRPOConfig, {"name": "grpo", "norm": "mean_std", "stats": "trajectory", "eps": 1e-6,
                  "unbiased_std": True, "singleton": "zero"}),
    (RLOOConfig, {"name": "rloo"}),
    (ReinforcePPConfig, {"name": "reinforce_pp", "gamma": 1.0, "eps": 1e-8, "kl_coef": 0.0,
                         "kl_estimator": "k1"}),
    (GiGPOConfig, {"name": "gigpo", "mode": "mean_std_norm", "gamma": 0.95, "step_weight": 1.0,
                   "invalid_penalty": 0.1, "penalize": "format", "penalty_stage": "advantage",
                   "eps": 1e-6, "episode_stats": "trajectory",
                   "unbiased_std": True}),
    (HGPOConfig, {"name": "hgpo", "mode": "mean_std_norm", "gamma": 0.95, "step_weight": 1.0,
                  "invalid_penalty": 0.1, "penalize": "format", "penalty_stage": "advantage",
                  "eps": 1e-6, "episode_stats": "trajectory", "unbiased_std": True,
                  "history_levels": 2, "level_alpha": 1.0, "skip_zero_levels": False,
                  "episode_weight": 1.0}),
    (GraphGPOConfig, {"name": "graphgpo", "mode": "mean_std_norm", "omega": 0.2,
                      "step_weight": 1.0, "episode_weight": 1.0, "success_threshold": 0.0,
                      "failed_end": "skip", "invalid_penalty": 0.1, "penalize": "format",
                      "penalty_stage": "advantage", "eps": 1e-6, "episode_stats": "trajectory",
                      "unbiased_std": True}),
    (PPOLossConfig, {"name": "ppo", "clip_low": 0.2, "clip_high": 0.28, "dual_clip": None,
                     "agg": "token-mean", "kl_coef": 0.01, "kl_estimator": "k3",
                     "entropy_coef": 0.0}),
    (OPDConfig, {"name": "opd", "beta": 1.0, "rl_coef": 1.0, "sod": True, "sod_delta": 0.2,
                 "sod_eps": 1e-6}),
    (SODConfig, {"name": "sod", "beta": 1.0, "delta": 0.2, "eps": 1e-6}),
    (TCODConfig, {"name": "tcod", "mode": "f2b", "delta": 1, "t_max": None, "k0": 1}),
    (DynamicSamplingConfig, {"name": "dynamic_sampling", "atol": 0.0}),
    (TaskSamplerConfig, {"name": "difficulty", "ema": 0.9, "prior": 0.5, "min_weight": 0.01}),
    (GAEConfig, {"name": "gae", "gamma": 1.0, "lam": 0.95, "whiten": True, "eps": 1e-8}),
]


@pytest.mark.parametrize("model, defaults", DEFAULTS)
def test_config_defaults_and_unknown_keys(model, defaults):
    assert model().model_dump() == defaults
    with pytest.raises(ValidationError, match="extra_forbidden|Extra inputs"):
        model(not_a_field=1)


@pytest.mark.parametrize("model, bad", [
    (GRPOConfig, {"eps": 0.0}), (GRPOConfig, {"norm": "std"}), (ReinforcePPConfig, {"gamma": 2}),
    (PPOLossConfig, {"clip_low": 1.5}), (PPOLossConfig, {"dual_clip": 1.0}),
    (PPOLossConfig, {"agg": "sum"}), (SODConfig, {"delta": -0.1}), (TCODConfig, {"delta": 0}),
    (TaskSamplerConfig, {"ema": 1.0}), (OPDConfig, {"beta": 0.0}), (GAEConfig, {"lam": 1.1}),
    (HGPOConfig, {"history_levels": -1}), (HGPOConfig, {"level_alpha": -1.0}),
    (GraphGPOConfig, {"omega": 1.0}), (GraphGPOConfig, {"omega": 0.0}),
    (GraphGPOConfig, {"failed_end": "goal"}),
])
def test_config_bounds(model, bad):
    with pytest.raises(ValidationError, match=next(iter(bad))):
        model(**bad)


def test_registry_dispatch_by_name():
    assert sorted(ADVANTAGES) == ["gae", "gigpo", "graphgpo", "grpo", "hgpo", "reinforce_pp",
                                "rloo"]
    b = TurnBatch.from_lists(group=[0, 0], traj=[0, 1], turn=[0, 0], reward=[1, 0],
                             state=["s", "s"], value=[0.0, 0.0])  # gae reads the values
    adapter = TypeAdapter(AdvantageConfig)
    for name in ADVANTAGES:
        cfg = adapter.validate_python({"name": name})
        assert type(cfg) is ADVANTAGES[name][0]
        res = compute_advantages(b, cfg)
        assert res.adv_N.shape == (2,) and res.adv_N[0] > 0 > res.adv_N[1]
        assert all(k.startswith("algo/") for k in res.metrics)
    assert make_config("gigpo", gamma=0.5).gamma == 0.5
    with pytest.raises(ConfigError, match="unknown advantage estimator 'ppo2'"):
        make_config("ppo2")
    with pytest.raises(ConfigError, match="gama"):
        make_config("gigpo", gama=0.5)
    with pytest.raises(ConfigError, match="unknown advantage estimator"):
        compute_advantages(b, PPOLossConfig())
    np.testing.assert_array_equal(
        compute_advantages(b, GiGPOConfig()).adv_N, ADVANTAGES["gigpo"][1](b, GiGPOConfig()).adv_N)
