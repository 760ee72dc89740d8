"""The training loop end to end on the tiny random Llama: every algorithm and curriculum
runs 2 real update steps (hf backend rollouts on small mazes, real PPO updates, weight sync,
eval, checkpoint, logs)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch

from turngym.harness.config import load_config
from turngym.harness.train import train

#: Small everything: 2 tasks x 2 rollouts x <= 2 turns x 6 tokens per step.
TINY = ["model.path=tiny", "env.id=turngym/Maze-v0", "env.kwargs={size: 2}", "steps=2",
        "rollout.tasks_per_step=2", "rollout.group_size=2", "rollout.max_turns=2",
        "rollout.max_tokens=6", "rollout.history_length=1", "eval.num_tasks=2",
        "eval.at_start=false", "optim.mini_batch_size=4", "optim.micro_batch_size=2",
        "optim.lr=1e-3", "logging.plot=false", "logging.progress=false",
        "algo.loss.entropy_coef=0.01"]  # all-zero rewards still give a gradient


@pytest.fixture(scope="module")
def teacher_dir() -> str:
    """A second tiny model (other init seed) as the OPD teacher."""
    from turngym.agents.models import tiny_model_dir

    return str(tiny_model_dir(seed=1))


def run(tmp_path: Path, *overrides: str) -> dict:
    cfg = load_config(None, [*TINY, f"out_dir={tmp_path / 'run'}", *overrides])
    return train(cfg)


def assert_trained(out: dict, steps: int = 2) -> None:
    hist = out["history"]
    assert [h["step"] for h in hist] == list(range(1, steps + 1))
    for h in hist:
        m = h["metrics"]
        assert m["train/optimizer_steps"] >= 1, m
        assert m["train/samples"] >= 1
        assert m["train/grad_norm"] > 0  # gradients really flowed into the model
        assert h["loss"] is not None
    run_dir = Path(out["out_dir"])
    rows = [json.loads(line) for line in (run_dir / "metrics.jsonl").read_text().splitlines()]
    assert [r["step"] for r in rows][:steps] == list(range(1, steps + 1))
    assert (run_dir / "checkpoints" / "latest").read_text() == f"step-{steps:06d}"
    assert "eval/success" in out["after"]


@pytest.mark.slow
@pytest.mark.parametrize("algo", ["grpo", "rloo", "reinforce_pp", "gigpo", "ppo"])
def test_rl_algorithms_update(tmp_path: Path, algo: str, sft_run: dict) -> None:
    # From the SFT'd tiny model, which wins some mazes and loses others at temperature 1:
    # the groups' rewards differ, so the policy-gradient term itself is non-zero.
    out = run(tmp_path, f"algo.name={algo}", f"model.path={sft_run['model_dir']}",
              "rollout.max_tokens=8", "rollout.max_turns=4", "rollout.history_length=0",
              "rollout.tasks_per_step=4", "rollout.group_size=4", "rollout.temperature=1.5",
              "optim.lr=1e-4", "optim.mini_batch_size=16", "optim.micro_batch_size=8")
    assert_trained(out)
    steps = [h["metrics"] for h in out["history"]]
    assert max(m["algo/adv_abs_max"] for m in steps) > 0.1, steps
    assert max(m["env/success"] for m in steps) > 0  # the warm start wins some episodes
    if algo == "gigpo":
        assert steps[0]["algo/step_group_size_mean"] >= 1
    if algo == "ppo":  # the critic starts at V = 0 and regresses on the GAE returns
        assert steps[0]["algo/value_mean"] == 0.0
        assert max(m["algo/value_loss"] for m in steps) > 0
        assert all(-1e9 < m["algo/explained_variance"] <= 1 for m in steps)
        state = torch.load(Path(out["out_dir"]) / "checkpoints" / "step-000002" /
                           "trainer_state.pt", weights_only=False)
        assert state["value_head"]["weight"].abs().sum() > 0  # saved, and it learned


@pytest.mark.slow
def test_opd_distills_from_teacher(tmp_path: Path, teacher_dir: str) -> None:
    out = run(tmp_path, "algo.name=opd", f"teacher.path={teacher_dir}", "algo.opd.sod=false")
    assert_trained(out)
    m = out["history"][0]["metrics"]
    assert m["algo/opd_gap"] > 0  # two different random models disagree


@pytest.mark.slow
def test_opd_from_the_same_model_with_an_expert_informed_prompt(tmp_path: Path) -> None:
    out = run(tmp_path, "algo.name=opd", "teacher.expert_hint=true", "algo.opd.sod=false")
    assert_trained(out)
    m = out["history"][0]["metrics"]
    assert m["teacher/hinted_frac"] == 1.0  # every trained turn was scored with a hint
    assert m["algo/opd_gap"] != 0  # the hint changes the (same) model's log-probs


@pytest.mark.slow
def test_gigpo_opd_sod_with_reference_kl(tmp_path: Path, teacher_dir: str) -> None:
    out = run(tmp_path, "algo.name=gigpo+opd", f"teacher.path={teacher_dir}",
              "algo.opd.sod=true", "ref.enabled=true", "algo.loss.kl_coef=0.1")
    assert_trained(out)
    m = out["history"][1]["metrics"]
    assert 0 < m["algo/sod_weight_mean"] <= 1.2 + 1e-9
    assert m["algo/kl_ref"] >= 0  # k3 is non-negative; > 0 once the policy moved


@pytest.mark.slow
def test_difficulty_sampler_drives_task_choice(tmp_path: Path) -> None:
    out = run(tmp_path, "sampler.name=difficulty", "env.num_train_tasks=4", "algo.name=grpo")
    assert_trained(out)
    m = out["history"][0]["metrics"]
    assert 0 <= m["algo/task_success_est_mean"] <= 1
    import torch

    state = torch.load(Path(out["out_dir"]) / "checkpoints" / "step-000002" /
                       "trainer_state.pt", weights_only=False)
    assert len(state["sampler"]["difficulty"]["success"]) == 4  # saved for exact resume


@pytest.mark.slow
def test_tcod_f2b_cuts_episodes_at_the_horizon(tmp_path: Path) -> None:
    out = run(tmp_path, "curriculum.name=tcod", "curriculum.mode=f2b", "curriculum.delta=1",
              "rollout.max_turns=3")
    assert_trained(out)
    h1, h2 = (h["metrics"] for h in out["history"])
    assert (h1["curriculum/horizon"], h2["curriculum/horizon"]) == (1.0, 2.0)
    assert h1["rollout/turns"] <= 1.0  # k(0) = 1 student turn


@pytest.mark.slow
def test_tcod_b2f_replays_expert_prefix(tmp_path: Path) -> None:
    out = run(tmp_path, "curriculum.name=tcod", "curriculum.mode=b2f", "curriculum.delta=1",
              "rollout.max_turns=4", "env.num_train_tasks=1")  # same task both steps
    assert_trained(out)
    h1, h2 = (h["metrics"] for h in out["history"])
    # c(n) = max(0, L - 1 - n): step 0 replays L-1 expert moves, step 1 one fewer
    assert h1["curriculum/expert_turns"] > 0
    assert h2["curriculum/expert_turns"] == h1["curriculum/expert_turns"] - 1


@pytest.mark.slow
def test_lora(tmp_path: Path) -> None:
    out = run(tmp_path, "lora.enabled=true", "lora.r=2", "algo.name=grpo",
              "algo.dynamic_sampling=false")
    assert_trained(out)
    ck = Path(out["out_dir"]) / "checkpoints" / "step-000002"
    assert (ck / "model" / "config.json").is_file()
    assert (ck / "model" / "adapter").is_dir()


@pytest.mark.slow
def test_reinforce_pp_with_the_kl_penalty_in_the_reward(tmp_path: Path) -> None:
    out = run(tmp_path, "algo.name=reinforce_pp", "algo.advantage={kl_coef: 0.1}",
              "ref.enabled=true")
    assert_trained(out)
    m1, m2 = (h["metrics"] for h in out["history"])
    assert abs(m1["algo/kl_reward_mean"]) < 1e-4  # step 1: policy == reference
    assert m2["algo/kl_reward_mean"] > 1e-4  # after one update the policy has moved (k1 > 0
    assert m2["algo/token_adv_abs_mean"] > 0  # on its own samples): per-token advantages


def test_reinforce_pp_kl_needs_the_reference_model(tmp_path: Path) -> None:
    from turngym.errors import ConfigError

    with pytest.raises(ConfigError, match="algo.advantage.kl_coef > 0"):
        load_config(None, [*TINY, "algo.name=reinforce_pp", "algo.advantage={kl_coef: 0.1}",
                           "algo.loss.kl_coef=0", "ref.enabled=false", f"out_dir={tmp_path}"])


def test_ppo_without_signal_keeps_samples_for_the_critic_only(tmp_path: Path) -> None:
    # As below, with PPO: all rewards 0, so V = 0 = G and every (whitened) advantage is 0.
    # The samples are kept for the critic (they carry a value target), but the policy sees
    # none of them, the head gets a zero gradient, and nothing steps.
    out = run(tmp_path, "algo.name=ppo", "algo.loss.entropy_coef=0", "algo.loss.kl_coef=0.01")
    for h in out["history"]:
        m = h["metrics"]
        assert m["env/success"] == 0.0 and m["algo/adv_abs_max"] == 0.0
        assert m["train/samples"] > 0 and m["train/value_only_samples"] == m["train/samples"]
        assert (m["train/optimizer_steps"], m["train/skipped"]) == (0, 1)
        assert m["algo/value_loss"] == 0.0 and m["train/value_grad_norm"] == 0.0
        assert "algo/explained_variance" in m and "algo/return_mean" in m


def test_a_run_without_signal_leaves_the_policy_bit_identical(tmp_path: Path,
                                                              monkeypatch) -> None:
    # The tiny random model never writes an <action>: every episode fails, every GRPO group
    # is uniform, every advantage is 0. No step may move the weights (AdamW's moments and
    # weight decay would), even with the default KL to the reference on; and the reference
    # scores nothing (it scores only the samples that enter the update).
    from safetensors.torch import load_file

    from turngym.agents.hf import HFBackend
    from turngym.agents.models import tiny_model_dir

    scored: list[int] = []
    real_score = HFBackend.score

    def spy(self, prompts, responses, **kw):
        scored.append(len(prompts))
        return real_score(self, prompts, responses, **kw)

    monkeypatch.setattr(HFBackend, "score", spy)

    out = run(tmp_path, "algo.name=grpo", "algo.loss.entropy_coef=0", "optim.weight_decay=0.1",
              "algo.loss.kl_coef=0.01", "checkpoint.every=1")
    for h in out["history"]:
        m = h["metrics"]
        assert m["algo/signal_groups"] == 0.0 and m["env/success"] == 0.0
        assert (m["train/optimizer_steps"], m["train/skipped"], m["train/samples"]) == (0, 1, 0)
        assert m["train/zero_adv_samples"] > 0
    assert sum(scored) == 0
    start = load_file(str(next(Path(tiny_model_dir()).glob("*.safetensors"))))
    ck = Path(out["out_dir"]) / "checkpoints" / "step-000002" / "model"
    end = load_file(str(next(ck.glob("*.safetensors"))))
    assert set(start) <= set(end)
    for k, v in start.items():
        assert v.equal(end[k]), k
