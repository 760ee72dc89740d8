"""Learning tests: every advantage estimator really improves a policy, on the tiny model.

The other trainer tests check that updates happen; these check that they *help*. The tasks
are the corridor envs of ``turngym.benchmarks.credit_envs`` (registered under test-only ids for this
module only), the policy is the tiny random Llama after one shared SFT warm start on a
coin-flip demonstrator (module fixture): it writes ``<action>left</action>`` or
``<action>right</action>`` about half the time each.

Success is the trainer's own ``eval/success``: ``eval.num_tasks=32`` held-out tasks (the
``test`` split), one episode each at temperature 1, with the fixed sampling seeds every
eval reuses (``turngym.harness.components.evaluate``), so a curve is deterministic for a seed and
two points differ only because the weights did. ``eval.every=1`` gives one point per
step: ``curve[0]`` is before training, ``curve[k]`` after step ``k``. The curves measured
when the tests were calibrated are in each test's comment (seed 0, CPU).

* ``test_estimator_learns_the_bandit``: one turn, ``right`` wins, ``left`` loses. Each of
  grpo, rloo, reinforce_pp, gigpo, ppo (GAE with a value head) goes from ~0.5 to >= 0.9 in
  5 steps of 16 episodes; ppo's critic also has to track the rising success rate.
* ``test_opd_learns_from_a_teacher``: pure on-policy distillation from a tiny teacher SFT'd
  to say ``right`` (no reward is used).
* ``test_tiny_learning_rate_does_not_learn``: the control: the same GRPO run at
  ``optim.lr=1e-9`` stays at its start, so the targets above cannot be met without learning.
* ``test_gigpo_beats_grpo_on_credit_assignment``: a multi-turn corridor with a trap, where
  GiGPO's step-level credit reaches the target and GRPO's episode-level credit stalls.
* ``test_hgpo_learns_the_credit_task`` / ``test_gigpo_with_a_state_graph_learns_the_credit_task``
  / ``test_graphgpo_learns_the_credit_task`` / ``test_ppo_critic_on_the_credit_task``: HGPO,
  GiGPO with the persistent state graph (``algo.state_graph``), GraphGPO (distance to the
  goal on a transition graph) and the turn-level critic (PPO, GAE), on the same task.

Every run sets the knobs it depends on (lr, mini-batch, group size, tasks per step,
temperature, steps, seed, KL) instead of relying on defaults. About 3 min of CPU for the
whole module (3.5-4 min wall on a 2-core machine shared with other jobs).

Calibration notes: at ``optim.lr=1e-3`` GRPO on the bandit reached 1.0 after one step and
then fell to 0.0 (the format broke); OPD at ``lr=1e-4`` was slower *and* noisier than at
3e-4. Past the last step the curves can dip while the policy keeps stepping (format errors
of the tiny model), so the step counts are fixed, not "train until".
"""

from __future__ import annotations

import math
from pathlib import Path

import pytest

from turngym.benchmarks import credit_envs as le
from turngym.harness.config import load_config
from turngym.harness.train import train

#: Shared by the SFT warm start and every run: short prompts (no history, 77 tokens), short
#: responses (the SFT target ``<action>right</action>`` + EOS is 8 tokens), envs stepped
#: inline (the test ids are registered in this process only).
COMMON = ["rollout.history_length=0", "rollout.max_tokens=16", "rollout.max_prompt_tokens=512",
          "rollout.step_mode=inline", "logging.plot=false", "logging.progress=false",
          "logging.tensorboard=false", "seed=0"]

#: An RL run: 4 tasks x 4 rollouts per step, one AdamW step per RL step (the mini-batch
#: holds every turn sample), the k3 KL to the warm start at 0.01, T=1 sampling, eval at T=1
#: on 32 held-out tasks after every step (the learning benchmark's credit preset runs the
#: same budget on 128, over 5 seeds, with a control: ``benchmarks/learning.py``).
RUN = [*COMMON, "rollout.tasks_per_step=4", "rollout.group_size=4", "rollout.temperature=1.0",
       "optim.mini_batch_size=512", "optim.micro_batch_size=32", "optim.ppo_epochs=1",
       "algo.loss.kl_coef=0.01", "eval.num_tasks=32", "eval.temperature=1.0", "eval.every=1",
       "eval.at_start=true"]

#: The bandit: one turn (an unparseable response uses it up and fails), lr and steps
#: calibrated so that every estimator is >= 0.9 with margin at the last step.
BANDIT = [f"env.id={le.BANDIT_ID}", "rollout.max_turns=1", "optim.lr=3e-4", "steps=5"]


@pytest.fixture(scope="module", autouse=True)
def learning_envs():
    """The corridor envs, registered for this module only."""
    with le.registered():
        yield


@pytest.fixture(scope="module")
def warm_start(tmp_path_factory) -> str:
    """The tiny model SFT'd on the coin-flip demonstrator: its model dir.

    Full-batch steps (all 22 demo turns in one batch), so every step sees exactly as many
    ``left`` as ``right`` targets in each cell, and the policy ends near 50/50 instead of
    wherever the last mini-batch's noise left it. Measured: log p(right | start) -0.54,
    log p(left | start) -0.90, eval success 0.625 (20 of 32).
    """
    from turngym.harness.sft import run_sft

    out = tmp_path_factory.mktemp("warm")
    # le.WARM_START: the learning benchmark's credit preset starts from the same SFT
    cfg = load_config(None, [*COMMON, "model.path=tiny", *le.WARM_START, f"out_dir={out}"])
    return run_sft(cfg)["model_dir"]


def run(tmp_path: Path, model_dir: str, *overrides: str) -> tuple[list[float], dict]:
    """Train; returns the eval success curve (before, after step 1, ...) and the summary."""
    cfg = load_config(None, [*RUN, f"model.path={model_dir}", f"out_dir={tmp_path / 'run'}",
                             *overrides])
    out = train(cfg)
    hist = out["history"]
    curve = [out["before"]["eval/success"]]
    curve += [h["metrics"]["eval/success"] for h in hist[:-1]] + [out["after"]["eval/success"]]
    print("eval/success curve:", curve)  # shown with -s / on failure: the learning curve
    print("train env/success:", [h["metrics"]["env/success"] for h in hist])
    return curve, out


def steps_to(curve: list[float], target: float) -> float:
    """The first step whose eval reaches ``target`` (inf when none does)."""
    return next((k for k, s in enumerate(curve) if s >= target), float("inf"))


def action_probs(model_dir: str | Path) -> dict[str, float]:
    """Exact probability that the policy answers the bandit's (only) prompt with
    ``<action>left</action>`` / ``<action>right</action>`` (+ EOS): the product of the
    response tokens' probabilities, scored by the ``hf`` backend at temperature 1. The
    success probability at T=1 is ``p["right"]`` plus the small mass of other spellings
    that parse as ``right``."""
    from turngym import envs
    from turngym.agents import make_backend
    from turngym.agents.agent import Agent
    from turngym.agents.models import load_tokenizer
    from turngym.harness.rollout.expert import expert_response
    from turngym.harness.sft import response_ids

    tok = load_tokenizer(model_dir)
    env = envs.make(le.BANDIT_ID)
    obs, info = env.reset(seed=0, options={"task_id": "test-000"})
    agent = Agent(tokenizer=tok, family="corridor", history_length=0, max_prompt_tokens=512)
    prompt = agent.build_prompt(task=obs, history=[], observation=obs,
                                admissible=info["admissible_actions"])
    responses = [response_ids(tok, expert_response(a)) for a in le.ACTIONS]
    backend = make_backend("hf", model=str(model_dir), dtype="float32")
    try:
        scores = backend.score([list(prompt.ids)] * len(responses), responses)
    finally:
        backend.close()
    probs = {a: math.exp(sum(lp)) for a, lp in zip(le.ACTIONS, scores)}
    print("action probs:", probs)
    return probs


def final_model(out: dict) -> Path:
    """The model dir of a run's last checkpoint."""
    ckpt = Path(out["out_dir"]) / "checkpoints"
    return ckpt / (ckpt / "latest").read_text().strip() / "model"


@pytest.mark.slow  # the module's SFT warm start (20-45 s), shared with the tests below
def test_warm_start_flips_a_coin(warm_start: str) -> None:
    # Measured: p(right) 0.58, p(left) 0.41: well-formed, and close to a fair coin.
    p = action_probs(warm_start)
    assert 0.35 <= p["right"] <= 0.65 and p["left"] + p["right"] >= 0.95, p


def test_learning_envs_keep_the_env_contract() -> None:
    from turngym.envs.checker import check_env

    for env_id in le.SPECS:
        report = check_env(env_id)
        assert report.passed, [(r.name, r.message) for r in report.failures()]


@pytest.mark.slow
@pytest.mark.parametrize("algo", ["grpo", "rloo", "reinforce_pp", "gigpo", "ppo"])
def test_estimator_learns_the_bandit(tmp_path: Path, warm_start: str, algo: str) -> None:
    # Measured (all five alike at this resolution): 0.625 0.75 0.625 0.906 0.969 0.969.
    # ppo's critic, algo/value_mean per step: 0 0.19 0.38 0.57 0.78 (return_mean 0.625 0.75
    # 0.75 0.875 1.0).
    # ppo: the tiny model's hidden states are small (|h|_1 ~ 100), so its value head needs
    # a larger lr than the default (tuned for SmolLM2) to track the success rate in 5 steps
    critic = ["algo.value.lr=2e-3"] if algo == "ppo" else []
    curve, out = run(tmp_path, warm_start, *BANDIT, f"algo.name={algo}", *critic)
    assert 0.3 <= curve[0] <= 0.7, curve  # the warm start flips a coin
    assert curve[-1] >= 0.9, curve
    assert action_probs(final_model(out))["right"] >= 0.9  # exact, not a 32-sample estimate
    assert all(h["metrics"]["train/optimizer_steps"] >= 1 for h in out["history"][:2])
    if algo == "ppo":  # the critic (V = 0 at first) tracks the rising success rate
        m = [h["metrics"] for h in out["history"]]
        v = [x["algo/value_mean"] for x in m]
        g = [x["algo/return_mean"] for x in m]
        print("value_mean:", v, "return_mean:", g)
        assert v[0] == 0.0 and abs(v[-1] - g[-1]) < 0.5 * abs(v[0] - g[0]), (v, g)


@pytest.fixture(scope="module")
def teacher(tmp_path_factory, warm_start: str) -> str:
    """The warm start SFT'd for one epoch on the bandit's expert (always ``right``).

    Measured: log p(right | start) -0.04, log p(left | start) -6.2, every other token of
    ``<action>right</action>`` as the student's: the teacher disagrees only on the word."""
    from turngym.harness.sft import run_sft

    out = tmp_path_factory.mktemp("teacher")
    cfg = load_config(None, [*COMMON, f"model.path={warm_start}", f"env.id={le.BANDIT_ID}",
                             "rollout.max_turns=1", f"out_dir={out}", "sft.num_tasks=16",
                             "sft.epochs=1", "sft.lr=1e-3", "sft.batch_size=8"])
    return run_sft(cfg)["model_dir"]


@pytest.mark.slow
def test_opd_learns_from_a_teacher(tmp_path: Path, warm_start: str, teacher: str) -> None:
    # Measured: 0.625 0.75 0.625 0.812 0.938 0.969 0.969.
    assert action_probs(teacher)["right"] >= 0.95
    curve, out = run(tmp_path, warm_start, *BANDIT, "algo.name=opd", f"teacher.path={teacher}",
                     "algo.opd.sod=false", "steps=6")
    assert 0.3 <= curve[0] <= 0.7, curve
    assert curve[-1] >= 0.9, curve
    assert action_probs(final_model(out))["right"] >= 0.9
    assert out["history"][0]["metrics"]["algo/opd_gap"] > 0  # the teacher disagrees at first


@pytest.mark.slow
def test_tiny_learning_rate_does_not_learn(tmp_path: Path, warm_start: str) -> None:
    # The control for the tests above: same task, steps and seed, lr 1e-9. The rollouts and
    # the eval seeds are the same, so the curve stays where it started. Measured: 0.625 x 6.
    curve, out = run(tmp_path, warm_start, *BANDIT, "algo.name=grpo", "optim.lr=1e-9")
    assert 0.3 <= curve[0] <= 0.7, curve
    assert max(curve) < 0.9 and abs(curve[-1] - curve[0]) <= 0.1, curve
    assert action_probs(final_model(out))["right"] < 0.7
    assert out["history"][0]["metrics"]["train/optimizer_steps"] >= 1  # it did step


@pytest.mark.slow
def test_gigpo_beats_grpo_on_credit_assignment(tmp_path: Path, warm_start: str) -> None:
    """pit <- start -> hall -> goal: two ``right`` moves win, ``left`` at the start is a trap.

    Training episodes get 8 turns, so most of them reach the goal however much they
    wander: a group's episode returns soon are all 1 and GRPO (one advantage per episode)
    has nothing left to learn from, and its steps are skipped. The target is efficiency:
    eval success with 2 turns, i.e. ``right`` at the start *and* in the hall. GiGPO's
    step groups (``state_key`` = the cell; states recur within and across episodes)
    compare the discounted returns (gamma 0.95) of ``left`` and ``right`` from the same
    cell, a signal that remains while every episode succeeds.

    Measured (2-turn eval success after each step): GRPO 0.25 0.562 0.562 0.562 0.812
    0.812 (train success 1.0 at steps 2 and 5: no advantage, no optimizer step); GiGPO
    0.25 0.562 0.531 0.781 0.969 0.969. The margin: GiGPO is past 0.9 from step 4, GRPO
    never gets there in 5 (nor in 6).
    """
    credit = [f"env.id={le.CORRIDOR_ID}", "rollout.max_turns=8", "eval.max_turns=2",
              "optim.lr=3e-4", "steps=5"]
    target = 0.9
    grpo, g_out = run(tmp_path / "grpo", warm_start, *credit, "algo.name=grpo")
    gigpo, s_out = run(tmp_path / "gigpo", warm_start, *credit, "algo.name=gigpo",
                       "algo.advantage={mode: mean_std_norm, gamma: 0.95, step_weight: 1.0}")
    assert grpo[0] == gigpo[0] <= 0.5, (grpo, gigpo)  # same warm start, same eval seeds
    assert steps_to(gigpo, target) <= 5, gigpo
    assert steps_to(gigpo, target) < steps_to(grpo, target), (grpo, gigpo)
    # The mechanism: on a step where every episode won, GRPO's advantages are all 0 while
    # GiGPO's step advantages still rank left against right in the shared cells.
    won_all = [[h["metrics"] for h in o["history"] if h["metrics"]["env/success"] == 1.0]
               for o in (g_out, s_out)]
    assert won_all[0] and all(m["algo/adv_abs_max"] == 0 for m in won_all[0]), won_all[0]
    assert won_all[1] and all(m["algo/step_adv_std"] > 0 for m in won_all[1]), won_all[1]


@pytest.mark.slow
def test_hgpo_learns_the_credit_task(tmp_path: Path, warm_start: str) -> None:
    """HGPO (``turngym.algos.hgpo``: GiGPO's step groups split by the previous ``history_levels``
    states, levels weighted ``(k + 2)^alpha``) on the corridor of the test above: its
    level-0 groups are GiGPO's, so it keeps the step signal GRPO lacks once every episode
    wins, and it reaches the 2-turn target in as few steps as GiGPO's bound."""
    credit = [f"env.id={le.CORRIDOR_ID}", "rollout.max_turns=8", "eval.max_turns=2",
              "optim.lr=3e-4", "steps=5"]
    curve, out = run(tmp_path, warm_start, *credit, "algo.name=hgpo",
                     "algo.advantage={mode: mean_std_norm, gamma: 0.95, step_weight: 1.0, "
                     "history_levels: 2}")
    assert curve[0] <= 0.5, curve
    assert steps_to(curve, 0.9) <= 5, curve
    m = [h["metrics"] for h in out["history"]]
    # deeper levels are more specific: at least as many groups as level 0, and they are used
    assert all(x["algo/step_level2_groups"] >= x["algo/step_level0_groups"] for x in m), m
    assert any(x["algo/step_levels_used_mean"] > 1 for x in m), m


@pytest.mark.slow
def test_gigpo_with_a_state_graph_learns_the_credit_task(tmp_path: Path, warm_start: str) -> None:
    """GiGPO plus the persistent state graph (``algo.state_graph``, singleton mode) on the
    corridor of the tests above, same budget: turns alone in their step group are scored
    against the mean discounted return earned from their cell in earlier batches. All tasks
    play the same corridor, so the graph keys by the cell alone (``per_task: false``) and
    the three cells recur from the second batch on. It must still reach the 2-turn target
    within GiGPO's bound (the graph may only add signal where ``A_S`` is 0).

    Measured: 0.25 0.562 0.531 0.781 0.969 1.0 (GiGPO alone: ... 0.969 0.969). Here the
    test checks the wiring, not a gain: with 4 episodes of up to 8 turns in 3 cells a step
    group is almost never a singleton (kept rows alone in theirs: 0, 2.6%, 0, 0, 0), so the
    graph scored 1 row of 38 at step 2 (|term| 0.71) and none after; hit rate 1.0 from
    step 2."""
    credit = [f"env.id={le.CORRIDOR_ID}", "rollout.max_turns=8", "eval.max_turns=2",
              "optim.lr=3e-4", "steps=5"]
    curve, out = run(tmp_path, warm_start, *credit, "algo.name=gigpo",
                     "algo.advantage={mode: mean_std_norm, gamma: 0.95, step_weight: 1.0}",
                     "algo.state_graph={enabled: true, mode: singleton, per_task: false}")
    m = [h["metrics"] for h in out["history"]]
    print("graph:", [{k.removeprefix("algo/graph_"): round(v, 3) for k, v in x.items()
                      if "graph" in k} for x in m])
    assert curve[0] <= 0.5, curve
    assert steps_to(curve, 0.9) <= 5, curve
    assert m[0]["algo/graph_hit_frac"] == 0.0 and m[0]["algo/graph_states"] >= 2, m[0]
    assert all(x["algo/graph_hit_frac"] > 0.9 for x in m[1:]), m  # the cells recur
    assert any(x["algo/graph_baselined_frac"] > 0 for x in m), m  # it scored a singleton


@pytest.mark.slow
def test_graphgpo_learns_the_credit_task(tmp_path: Path, warm_start: str) -> None:
    """GraphGPO (``turngym.algos.graphgpo``: each task group's episodes merged into a
    state-transition graph, a step scored ``omega^d`` by its successor's distance to the
    goal, normalised among the steps from the same state) on the corridor of the tests
    above, same budget. The graph is start, hall, pit and the goal: ``right`` from the start
    (to d 1) beats ``left`` (to the pit, d 3) in every group with a win, whatever the episode
    that took it went on to do, so the signal stays when every episode wins.

    Measured (seed 0, CPU; 2-turn eval success after each step): 0.25 0.562 0.5 0.781 0.938
    0.938 (GiGPO and HGPO: 0.25 0.562 0.531 0.781 0.969 0.969; one eval episode of 32 apart);
    train success 0.625 1.0 0.875 1.0 1.0; every group had a win (``algo/goal_groups_frac``
    1.0 at every step); ``A_G`` std 0.89 0.49 0.78 0.63 0.0 (0 at step 5: every episode went
    straight, so the steps from a state all led alike). The target is met at step 4, as
    GiGPO meets it; this checks that GraphGPO learns, not that it beats GiGPO."""
    credit = [f"env.id={le.CORRIDOR_ID}", "rollout.max_turns=8", "eval.max_turns=2",
              "optim.lr=3e-4", "steps=5"]
    curve, out = run(tmp_path, warm_start, *credit, "algo.name=graphgpo",
                     "algo.advantage={mode: mean_std_norm, omega: 0.2, step_weight: 1.0}")
    m = [h["metrics"] for h in out["history"]]
    assert curve[0] <= 0.5, curve
    assert steps_to(curve, 0.9) <= 5, curve
    assert m[0]["algo/goal_groups_frac"] > 0 and m[0]["algo/goal_graph_nodes_mean"] >= 3, m[0]
    # the mechanism: on a step where every episode won (GRPO's advantages are all 0 there),
    # the graph still ranks the moves out of a shared state
    won_all = [x for x in m if x["env/success"] == 1.0]
    assert any(x["algo/step_adv_std"] > 0 for x in won_all), m


@pytest.mark.slow
def test_ppo_critic_on_the_credit_task(tmp_path: Path, warm_start: str) -> None:
    """The turn-level critic (``algo.name=ppo``: GAE over turns, a value head on the last
    prompt token) on the corridor of the tests above, same budget: the non-group baseline
    of the step-credit family. Its advantage ``delta_t = r_t + gamma V(s_{t+1}) - V(s_t)``
    ranks ``left`` against ``right`` in a cell once ``V`` has learned the cells' values, so
    it does not need the group to have a loss; while ``V`` is still near 0 its advantages
    are the discounted returns themselves.

    Measured (seed 0, CPU; 2-turn eval success after each step): 0.25 0.562 0.531 0.875
    0.969 1.0, the target met at step 4 as GiGPO meets it; train success 0.625 1.0 0.875
    1.0 1.0; the critic's ``algo/value_mean`` 0 0.20 0.39 0.57 0.77 climbing towards
    ``algo/return_mean`` (0.39 0.97 0.68 0.98 0.99)."""
    credit = [f"env.id={le.CORRIDOR_ID}", "rollout.max_turns=8", "eval.max_turns=2",
              "optim.lr=3e-4", "steps=5"]
    curve, out = run(tmp_path, warm_start, *credit, "algo.name=ppo", "algo.value.lr=2e-3")
    m = [h["metrics"] for h in out["history"]]
    print("curve:", curve, "value_mean:", [x["algo/value_mean"] for x in m],
          "return_mean:", [x["algo/return_mean"] for x in m],
          "success:", [x["env/success"] for x in m])
    assert curve[0] <= 0.5, curve
    assert steps_to(curve, 0.9) <= 5, curve
    v = [x["algo/value_mean"] for x in m]
    assert v[0] == 0.0 and v[-1] > 0.5, v  # the value head learns the cells' values
