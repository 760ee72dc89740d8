"""``benchmarks/learning.py``: the interval maths on hand-computed cases, and the whole
benchmark (warm start, its eval, runs, control, paired intervals, verdict, JSON, PNG) end to
end on the tiny model, in its CPU, GPU and step-credit (corridor) presets."""

from __future__ import annotations

import json
import math
from pathlib import Path

import pytest

from turngym.benchmarks import _learning_stats as st
from turngym.benchmarks import credit_envs, learning

Z = st.Z95


# ------------------------------------------------------------------------ pure maths
@pytest.mark.parametrize("k, n, lo, hi", [
    # p = 0.5: centre 0.5, half = 1.96 / 1.38415 * sqrt(0.025 + 3.8415 / 400) = 0.26341
    (5, 10, 0.23659, 0.76341),
    # p = 0: centre = half = (3.8415 / 20) / 1.38415 = 0.13877 -> [0, 0.27753]
    (0, 10, 0.0, 0.27753),
    (10, 10, 0.72247, 1.0),
    # 32 / 64: denom 1.060023, half = 1.96 / 1.060023 * sqrt(0.25 / 64 + 3.8415 / 16384)
    #        = 1.848984 * 0.0643484 = 0.118979
    (32, 64, 0.38102, 0.61898),
])
def test_wilson_interval_hand_computed(k: int, n: int, lo: float, hi: float) -> None:
    got = st.wilson_interval(k, n)
    assert got == pytest.approx((lo, hi), abs=1e-5)
    r = st.rate([1] * k + [0] * (n - k))
    assert r["success"] == k / n and (r["lo"], r["hi"]) == pytest.approx((lo, hi), abs=1e-5)


def test_wilson_interval_edges() -> None:
    assert st.wilson_interval(0, 0) == (0.0, 1.0)
    with pytest.raises(ValueError, match="0 <= successes <= n"):
        st.wilson_interval(3, 2)


def test_paired_interval_hand_computed() -> None:
    # mean 2/8 = 0.25; squared deviations sum to 3.5, var = 3.5 / 7 = 0.5,
    # half = z * sqrt(0.5) / sqrt(8) = z * 0.25
    iv = st.paired_interval([1, 0, 0, 1, -1, 1, 0, 0])
    assert iv["mean"] == pytest.approx(0.25)
    assert iv["sd"] == pytest.approx(math.sqrt(0.5))
    assert (iv["lo"], iv["hi"]) == pytest.approx((0.25 - Z * 0.25, 0.25 + Z * 0.25))
    assert iv["n"] == 8
    # no variation: a zero-width interval; one task: unbounded
    flat = st.paired_interval([0, 0, 0])
    assert (flat["lo"], flat["mean"], flat["hi"]) == (0.0, 0.0, 0.0)
    one = st.paired_interval([1])
    assert one["lo"] == -math.inf and one["hi"] == math.inf


def test_seed_mean_diff() -> None:
    got = st.seed_mean_diff([[1, 1, 0, 0], [1, 0, 0, 0]], [[0, 1, 0, 1], [0, 1, 0, 1]])
    assert got.tolist() == [1.0, -0.5, 0.0, -1.0]
    with pytest.raises(ValueError, match="one shape"):
        st.seed_mean_diff([[1, 0]], [[1, 0, 1]])


def test_seed_interval_hand_computed() -> None:
    # [0.1, 0.2, 0.3]: mean 0.2, sd 0.1 (ddof 1), half = t(2) 4.303 * 0.1 / sqrt(3) = 0.248434
    iv = st.seed_interval([0.1, 0.2, 0.3])
    assert (iv["mean"], iv["sd"], iv["k"]) == (pytest.approx(0.2), pytest.approx(0.1), 3)
    assert (iv["lo"], iv["hi"]) == pytest.approx((0.2 - 0.248434, 0.2 + 0.248434), abs=1e-6)
    # 40 seeds use df 30's quantile (2.042): conservative against the true 2.023
    iv = st.seed_interval([0.0, 1.0] * 20)
    assert iv["hi"] - iv["mean"] == pytest.approx(2.042 * iv["sd"] / math.sqrt(40))
    one = st.seed_interval([0.5])
    assert (one["lo"], one["hi"], one["k"]) == (-math.inf, math.inf, 1)
    with pytest.raises(ValueError):
        st.seed_interval([])


def test_summary_and_verdict_hand_computed() -> None:
    before = [0, 0, 0, 0, 1, 1, 1, 1]
    finals = {
        "grpo": {0: [1, 1, 1, 0, 1, 1, 1, 1], 1: [1, 1, 0, 0, 1, 1, 1, 1]},
        "gigpo": {0: [1, 1, 1, 0, 1, 1, 1, 1], 1: [1, 1, 0, 0, 1, 1, 1, 1]},
        "control": {0: [0, 1, 0, 0, 1, 1, 1, 1], 1: [0, 0, 0, 0, 1, 1, 1, 0]},
    }
    s = st.summarize(before, finals)
    # grpo after - before: seed 0 +3/8, seed 1 +2/8, pooled per task [1, 1, .5, 0, 0...]
    assert s["grpo"]["per_seed"][0]["mean"] == pytest.approx(3 / 8)
    assert s["grpo"]["pooled"]["mean"] == pytest.approx(2.5 / 8)
    # grpo - control per task, seed-averaged: [1, .5, .5, 0, 0, 0, 0, .5]: mean 0.3125,
    # squared deviations 0.96875, sd = sqrt(0.96875 / 7), half = z * sd / sqrt(8)
    vs = s["grpo"]["vs_control"]
    half = Z * math.sqrt(0.96875 / 7) / math.sqrt(8)
    assert vs["mean"] == pytest.approx(0.3125)
    assert (vs["lo"], vs["hi"]) == pytest.approx((0.3125 - half, 0.3125 + half))
    assert vs["lo"] > 0 and vs["verdict"] == "lift" and vs["seeds"] == [0, 1]
    assert "vs_control" not in s["control"]
    diff = st.difference(finals, "gigpo", "grpo")
    assert (diff["mean"], diff["lo"], diff["hi"]) == (0.0, 0.0, 0.0)
    assert diff["verdict"] == "no difference shown"
    assert st.difference(finals, "gigpo", "opd") is None
    lines = st.verdict_lines(s, diff, "T=1")
    assert len(lines) == 3
    assert "grpo - control +0.312" in lines[0] and "LIFTS" in lines[0]
    # over seeds: grpo - control is 7/8 - 5/8 = 0.25 (seed 0) and 6/8 - 3/8 = 0.375 (seed 1):
    # mean 0.3125, sd 0.125 / sqrt(2), half = t(1) 12.706 * sd / sqrt(2) = 12.706 * 0.0625
    sv = vs["over_seeds"]
    assert (sv["mean"], sv["k"]) == (pytest.approx(0.3125), 2)
    assert (sv["lo"], sv["hi"]) == pytest.approx((0.3125 - 0.794125, 0.3125 + 0.794125))
    assert ("(2/2 seeds above their control; over seeds (t, k=2) +0.312 [-0.482, +1.107], "
            "includes 0)") in lines[0]
    assert lines[2].startswith("[T=1] gigpo - grpo: +0.000") and "no difference" in lines[2]
    # every other method against GiGPO (here one: grpo - control's numbers are above)
    finals["hgpo"] = {0: [1, 1, 1, 1, 1, 1, 1, 1], 1: [1, 1, 1, 0, 1, 1, 1, 1]}
    runs = [{"method": m, "seed": sd, "curve": [{"step": 1, "t1": {"wins": w},
                                                 "greedy": {"wins": w}}]}
            for m, by in finals.items() for sd, w in by.items()]
    res = st.analyse({"t1": {"wins": before}, "greedy": {"wins": before}}, runs)
    # hgpo - gigpo per task, seed-averaged: [0, 0, .5, .5, 0, 0, 0, 0]: mean 0.125
    vs = res["vs_gigpo"]["t1"]["hgpo"]
    assert vs["mean"] == pytest.approx(0.125) and vs["seeds"] == [0, 1]
    assert sorted(res["vs_gigpo"]["t1"]) == ["hgpo"]  # not grpo (its own line), not control
    assert any(line.startswith("[T=1] hgpo - gigpo: +0.125") for line in res["verdict"])


def test_eval_seeds_pair_runs_and_differ_from_the_warm_start() -> None:
    # the same (seed, step) for every method; the warm start and other steps differ
    assert learning.eval_seed(0, 3) == learning.eval_seed(0, 3)
    seeds = {learning.eval_seed(-1, 0), learning.eval_seed(0, 3), learning.eval_seed(1, 3),
             learning.eval_seed(0, 6)}
    assert len(seeds) == 4


def test_presets_and_defaults() -> None:
    cpu = learning.parse_args([])
    assert cpu.methods == ["grpo", "gigpo", "control"] and cpu.seeds == [0, 1, 2]
    assert (cpu.steps, cpu.tasks, cpu.group, cpu.eval_tasks, cpu.eval_every) == (3, 4, 8, 64, 0)
    over = learning.shared(cpu)
    for item in ("rollout.max_turns=20", "eval.max_turns=20", "rollout.history_length=0",
                 "rollout.max_tokens=16", "eval.temperature=1.0", "optim.mini_batch_size=512",
                 "optim.micro_batch_size=32", "optim.lr=1e-05", "algo.loss.kl_coef=0.0",
                 "algo.mismatch.mode='off'"):
        assert item in over
    # training rollouts explore more (T=1.3) under a tighter budget (14 turns); the SFT and
    # every held-out eval keep T=1 and 20 turns (shared), the runs add train_rollout last
    assert learning.train_rollout(cpu) == ["rollout.temperature=1.3", "rollout.max_turns=14"]
    assert "rollout.temperature=1.0" in over
    short = learning.parse_args(["--max-turns", "4"])
    assert learning.train_rollout(short) == ["rollout.temperature=1.3", "rollout.max_turns=4"]
    mine = learning.parse_args(["--train-temperature", "1.0", "--train-max-turns", "20"])
    assert learning.train_rollout(mine) == ["rollout.temperature=1.0", "rollout.max_turns=20"]
    sok = learning.parse_args(["--env", "sokoban"])
    assert learning.train_rollout(sok) == ["rollout.temperature=1.0", "rollout.max_turns=15"]
    gpu = learning.parse_args(["--preset", "gpu", "--steps", "3"])
    assert gpu.backend == "hf" and gpu.parallel and gpu.name == "learning_gpu"
    assert (gpu.steps, gpu.tasks, gpu.group, gpu.eval_tasks, gpu.eval_every) == (3, 8, 8, 128, 6)
    assert gpu.max_minutes == 8.0 and "model.device=cuda" in learning.shared(gpu)
    assert "algo.loss.kl_coef=0.01" in learning.shared(gpu)
    hh = learning.parse_args(["--env", "household", "--no-control"])
    assert "env.eval_split=valid_unseen" in learning.shared(hh) and hh.methods == ["grpo", "gigpo"]
    with pytest.raises(SystemExit):
        learning.parse_args(["--methods", "control"])  # the control is not a method


def test_control_cannot_learn() -> None:
    from turngym.harness.config import load_config

    args = learning.parse_args(["--model", "tiny"])
    cfg = load_config(None, [*learning.shared(args), *learning.METHODS["control"]])
    assert cfg.optim.lr == 1e-12 and cfg.algo.name == "grpo" and not cfg.ref.enabled
    gpu = learning.parse_args(["--preset", "gpu", "--model", "tiny"])
    cfg = load_config(None, [*learning.shared(gpu), *learning.METHODS["control"]])
    assert cfg.ref.enabled  # the control runs the same loop as the methods: with the KL


# ------------------------------------------------------------------------ end to end
TINY = ["--model", "tiny", "--size", "2", "--max-turns", "4", "--steps", "2", "--tasks", "2",
        "--group", "2", "--eval-tasks", "4", "--seeds", "0", "--methods", "grpo",
        "--sft-tasks", "4", "--backend", "hf", "--device", "cpu"]


def check_doc(path: Path, steps_done: int, eval_steps: list[int]) -> dict:
    doc = json.loads(path.read_text())
    assert {"machine", "commit", "load_avg_1m", "seeds", "config", "results"} <= set(doc)
    assert doc["seeds"] == [0] and doc["config"]["methods"] == ["grpo", "control"]
    res = doc["results"]
    warm = res["warm_start"]["eval"]
    assert warm["step"] == 0 and len(warm["t1"]["wins"]) == 4
    assert 0 <= warm["t1"]["lo"] <= warm["t1"]["success"] <= warm["t1"]["hi"] <= 1
    for method in ("grpo", "control"):
        run = res["runs"][method]["0"]
        assert run["steps_done"] == steps_done
        assert [p["step"] for p in run["curve"]] == eval_steps
        for p in run["curve"]:
            for key in ("t1", "greedy"):
                assert len(p[key]["wins"]) == 4 and set(p[key]["wins"]) <= {0.0, 1.0}
                assert p[key]["lo"] <= p[key]["success"] <= p[key]["hi"]
        assert len(run["train"]) == steps_done
        assert set(run["train"][0]) == {"step", *learning.TRAIN_KEYS}
    assert res["diagnostics"]["grpo"]["steps"] == steps_done
    for key in ("t1", "greedy"):
        summ = res["summary"][key]
        assert set(summ) == {"grpo", "control"}
        pooled = summ["grpo"]["pooled"]
        assert pooled["lo"] <= pooled["mean"] <= pooled["hi"] and pooled["n"] == 4
        assert summ["grpo"]["vs_control"]["verdict"] in {"lift", "drop", "no difference shown"}
        assert "0" in summ["control"]["per_seed"]
    assert any(line.startswith("[T=1] grpo: after - before") and "control" in line
               for line in res["verdict"])
    assert path.with_suffix(".png").stat().st_size > 1000
    return res


@pytest.mark.slow
def test_benchmark_end_to_end_cpu(tmp_path: Path) -> None:
    doc = learning.main([*TINY, "--eval-every", "1", "--out", str(tmp_path / "runs"),
                         "--results-dir", str(tmp_path / "results")])
    res = check_doc(tmp_path / "results" / "learning.json", 2, [1, 2])
    assert res["stopped_early"] == [] and doc["verdict"] == res["verdict"]
    # no checkpoint: every run ended from progress_cb after its last eval
    assert not list((tmp_path / "runs").glob("*/seed0/checkpoints"))
    # a second (or killed and restarted) benchmark reuses the warm start, its eval and every
    # finished run: the same numbers, and no training
    again = learning.main([*TINY, "--eval-every", "1", "--out", str(tmp_path / "runs"),
                           "--results-dir", str(tmp_path / "again")])
    assert again["runs"] == doc["runs"] and again["verdict"] == doc["verdict"]
    assert again["warm_start"]["eval"] == doc["warm_start"]["eval"]
    assert again["rl_wall_s"] < 5


@pytest.mark.slow
def test_gpu_preset_on_cpu_with_the_wall_clock_guard(tmp_path: Path) -> None:
    # --max-minutes 0: each run (one process each) stops after its first step and evaluates
    learning.main(["--preset", "gpu", *TINY, "--max-minutes", "0",
                   "--out", str(tmp_path / "runs"), "--results-dir", str(tmp_path / "results")])
    res = check_doc(tmp_path / "results" / "learning_gpu.json", 1, [1])
    assert sorted(res["stopped_early"]) == ["control/seed0", "grpo/seed0"]
    assert res["verdict"][-1].startswith("Stopped by --max-minutes before step 2: ")


def test_curves_hand_computed() -> None:
    def run(method: str, seed: int, points: list[float]) -> dict:
        return {"method": method, "seed": seed,
                "curve": [{"step": i + 1, "t1": {"success": p}} for i, p in enumerate(points)]}

    runs = [run("gigpo", 0, [0.5, 0.9, 1.0]), run("gigpo", 1, [0.7, 0.8, 0.9]),
            run("grpo", 0, [0.5, 0.6, 0.7])]
    got = st.curves(runs)
    # gigpo: seed means 0.8 and 0.8 -> mean 0.8, sd 0 (a zero-width interval)
    g = got["gigpo"]
    assert g["mean_over_evals"]["mean"] == pytest.approx(0.8)
    assert g["mean_over_evals"]["lo"] == pytest.approx(0.8) and g["mean_over_evals"]["k"] == 2
    assert g["steps_to_target"] == {0: 2, 1: 3} and g["evals"] == 3
    # grpo: one seed (unbounded interval), never reaches 0.9
    assert got["grpo"]["steps_to_target"] == {0: None}
    assert got["grpo"]["mean_over_evals"]["mean"] == pytest.approx(0.6)
    assert got["grpo"]["mean_over_evals"]["hi"] == math.inf


def test_diagnostics_hand_computed() -> None:
    runs = [{"method": "grpo", "train": [
                {"step": 1, "success": 0.5, "signal_groups": 1, "skipped": 0.0,
                 "grad_norm": 2.0, "policy_kl": None},
                {"step": 2, "success": 0.25, "signal_groups": 0, "skipped": 1.0,
                 "grad_norm": 0.0, "policy_kl": None}]},
            {"method": "grpo", "train": [
                {"step": 1, "success": 0.75, "signal_groups": 3, "skipped": 0.0,
                 "grad_norm": 4.0, "policy_kl": 1e-3}]},
            {"method": "gigpo", "train": []}]
    d = st.diagnostics(runs)
    assert d["grpo"]["steps"] == 3 and d["grpo"]["signal_groups"] == 4
    assert d["grpo"]["skipped_steps"] == 1 and d["grpo"]["train_success"] == pytest.approx(0.5)
    assert d["grpo"]["mean"]["grad_norm"] == pytest.approx(2.0)  # (2 + 0 + 4) / 3
    assert d["grpo"]["mean"]["policy_kl"] == pytest.approx(1e-3)  # Nones are left out
    assert d["gigpo"] == {"steps": 0, "signal_groups": 0, "skipped_steps": 0,
                          "train_success": None, "mean": {}}


# ------------------------------------------------------------------------ step credit
def test_credit_preset_is_the_learning_tests_credit_budget() -> None:
    args = learning.parse_args(["--preset", "credit"])
    assert args.methods == ["grpo", "gigpo", "hgpo", "gigpo+graph", "gigpo+graph_value",
                            "graphgpo", "ppo", "control"]
    assert args.seeds == [0, 1, 2, 3, 4] and args.name == "learning_credit"
    assert (args.model, args.backend, args.env) == ("tiny", "hf", "corridor")
    assert (args.steps, args.tasks, args.group, args.eval_every) == (5, 4, 4, 1)
    over = learning.shared(args)
    for item in (f"env.id={credit_envs.CORRIDOR_ID}", "env.eval_split=test",
                 "eval.max_turns=2", "eval.temperature=1.0", "optim.lr=0.0003",
                 "algo.loss.kl_coef=0.01", "rollout.history_length=0", "rollout.max_tokens=16",
                 "rollout.step_mode=inline", "algo.state_graph.per_task=false",
                 "algo.value.lr=2e-3"):
        assert item in over
    # training episodes get 8 turns, the held-out evals 2 (the corridor's budget is looser
    # in training, unlike the maze's)
    assert learning.train_rollout(args) == ["rollout.temperature=1.0", "rollout.max_turns=8"]
    with pytest.raises(SystemExit):  # the corridor's demonstrator is no OPD teacher
        learning.parse_args(["--preset", "credit", "--methods", "opd"])


@pytest.mark.parametrize("argv", [[], ["--preset", "credit"]], ids=["maze", "corridor"])
def test_every_method_loads_on_each_setting(argv: list[str]) -> None:
    from turngym.harness.config import load_config

    args = learning.parse_args(argv)
    with learning.env_registered(args.env):
        for method, extra in learning.METHODS.items():
            cfg = load_config(None, [*learning.shared(args), *learning.train_rollout(args),
                                     *extra, "teacher.path=tiny"])
            assert cfg.algo.name == extra[0].split("=")[1], method
        graph = load_config(None, [*learning.shared(args), *learning.METHODS["gigpo+graph"]])
        ppo = load_config(None, [*learning.shared(args), *learning.METHODS["ppo"]])
    assert graph.algo.state_graph.enabled and graph.algo.state_graph.mode == "singleton"
    assert graph.algo.state_graph.per_task == (args.env != "corridor")  # one corridor
    assert ppo.algo.uses_critic and ppo.algo.advantage.name == "gae"


def test_corridor_ids_are_registered_only_inside_the_block() -> None:
    from turngym.envs import registry

    assert credit_envs.CORRIDOR_ID not in registry
    with learning.env_registered("corridor"):
        assert credit_envs.CORRIDOR_ID in registry
        with learning.env_registered("corridor"):  # nested (a --parallel run): no duplicate
            assert learning.in_env("corridor", lambda: credit_envs.DEMO_ID in registry)
        assert credit_envs.CORRIDOR_ID in registry
    assert credit_envs.CORRIDOR_ID not in registry
    with learning.env_registered("maze"):  # built in: nothing to register
        assert credit_envs.CORRIDOR_ID not in registry


@pytest.mark.slow
def test_credit_preset_end_to_end(tmp_path: Path) -> None:
    # the two new methods and the control, one step each; every run trains in a spawned
    # process, which registers the corridor again (the run would fail on an unknown id)
    from turngym.envs import registry

    learning.main(["--preset", "credit", "--seeds", "0", "--steps", "1", "--eval-tasks", "8",
                   "--methods", "gigpo+graph,ppo", "--out", str(tmp_path / "runs"),
                   "--results-dir", str(tmp_path / "results")])
    assert credit_envs.CORRIDOR_ID not in registry  # nothing leaks out of main
    doc = json.loads((tmp_path / "results" / "learning_credit.json").read_text())
    res = doc["results"]
    assert doc["config"]["env"] == "corridor" and doc["seeds"] == [0]
    assert res["warm_start"]["sft_overrides"] == credit_envs.WARM_START
    assert res["warm_start"]["samples"] == 22  # every demo move of the 8 sequences
    assert len(res["warm_start"]["eval"]["t1"]["wins"]) == 8
    methods = ["gigpo+graph", "ppo", "control"]
    assert list(res["runs"]) == methods
    for method in methods:
        run = res["runs"][method]["0"]
        assert run["steps_done"] == 1 and [p["step"] for p in run["curve"]] == [1]
        assert run["commit"] == doc["commit"] and len(run["commit"]) == 40  # made here, now
        assert len(run["curve"][0]["t1"]["wins"]) == 8
        assert run["curve"][0]["t1"]["turns"] <= 2  # held-out episodes get 2 turns
        assert run["train"][0]["turns"] > 2 or run["train"][0]["success"] == 1.0  # up to 8
    for key in ("t1", "greedy"):
        summ = res["summary"][key]
        assert set(summ) == set(methods)
        for method in ("gigpo+graph", "ppo"):
            vs = summ[method]["vs_control"]
            assert vs["lo"] <= vs["mean"] <= vs["hi"] and vs["seeds"] == [0]
            assert vs["verdict"] in {"lift", "drop", "no difference shown"}
    verdict = res["verdict"]
    for label in ("T=1", "greedy"):
        for method in ("gigpo+graph", "ppo"):
            assert any(line.startswith(f"[{label}] {method}: after - before") and
                       f"{method} - control" in line for line in verdict), verdict
    assert verdict[-1].startswith("[greedy] ") and "one outcome per seed" in verdict[-1]
    assert (tmp_path / "results" / "learning_credit.png").stat().st_size > 1000


def test_micro_batch_is_the_envs_unless_given() -> None:
    """The update's memory peak is set per env (Sokoban's prompts OOM-killed a micro-batch of
    32 at 20 GB); ``--micro-batch`` wins."""
    def micro(argv: list[str]) -> list[str]:
        return [o for o in learning.shared(learning.parse_args(argv))
                if o.startswith("optim.micro_batch_size=")]

    assert micro([]) == ["optim.micro_batch_size=32"]
    assert micro(["--env", "sokoban"]) == ["optim.micro_batch_size=8"]
    assert micro(["--env", "household"]) == ["optim.micro_batch_size=4"]
    assert micro(["--env", "sokoban", "--micro-batch", "16"]) == ["optim.micro_batch_size=16"]
