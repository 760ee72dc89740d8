"""``turngym rollout`` end to end with the real scripted policy (turngym.agents.scripted)."""

from __future__ import annotations

from pathlib import Path

import pytest

from turngym.harness.cli.main import main
from turngym.harness.rollout.engine import RolloutConfig, RolloutEngine
from turngym.harness.rollout.trajectory import StopReason, read_jsonl


def test_cli_scripted_expert_writes_jsonl(tmp_path: Path, capsys) -> None:
    out = tmp_path / "r.jsonl"
    code = main(["rollout", "--env", "turngym/Maze-v0", "--policy", "scripted", "--expert",
                 "--tasks", "3", "--group", "2", "--out", str(out), "--split", "test",
                 "--seed", "4", "--no-progress"])
    assert code == 0
    trajs = list(read_jsonl(out))
    assert len(trajs) == 6
    assert [t.seed for t in trajs] == [4, 4, 5, 5, 6, 6]
    assert all(t.task_id.startswith("test") for t in trajs)
    assert all(t.won and t.stop_reason is StopReason.TERMINATED for t in trajs)
    text = capsys.readouterr().out
    for word in ("success", "100.0%", "mean turns", "invalid rate", "stop reasons",
                 "time env / model", "wrote 6 trajectories"):
        assert word in text


@pytest.mark.parametrize("argv, message", [
    (["--env", "turngym/Sokobn-v0"], "Did you mean"),
    (["--env", "turngym/Maze-v0", "--policy", "gpt"], "--policy 'gpt'"),
    (["--env", "turngym/Maze-v0", "--step-mode", "fast"], "rollout.step_mode"),
    (["--env", "turngym/Maze-v0", "--expert", "--random"], "exclude each other"),
    (["--env", "turngym/Maze-v0", "--tasks", "100000"], "more than the"),
])
def test_cli_bad_input_exits_2_with_a_clear_message(argv, message, tmp_path, capsys) -> None:
    code = main(["rollout", *argv, "--out", str(tmp_path / "x.jsonl"), "--no-progress"])
    assert code == 2
    assert message in capsys.readouterr().err.replace("\n", "")
    assert not (tmp_path / "x.jsonl").exists()


def test_scripted_random_policy_differs_per_episode_and_repeats_per_seed() -> None:
    from turngym.agents.scripted import ScriptedPolicy

    def actions(seed: int, mode: str = "inline"):
        cfg = RolloutConfig.build(env_id="turngym/Sokoban-v0", group_size=3, max_turns=6,
                                  seed=seed, step_mode=mode)
        eng = RolloutEngine(cfg.env_id, ScriptedPolicy("random", seed=1), None, cfg)
        groups = eng.run([("train-00004", 0)], progress=False)
        eng.close()
        return [[t.action for t in tr.turns] for tr in groups[0].trajectories]

    a = actions(0)
    assert len({tuple(x) for x in a}) > 1  # group members explore differently
    assert a == actions(0) == actions(0, "threads")
    assert a != actions(1)
