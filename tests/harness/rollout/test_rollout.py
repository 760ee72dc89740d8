"""The rollout engine on real envs: groups, records, JSONL, TCOD hooks, forking, summary."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).parents[1]))  # rollout_fakes

import rollout_fakes

from turngym.errors import ConfigError, UnknownEnvError
from turngym.harness.rollout.engine import RolloutConfig, RolloutEngine
from turngym.harness.rollout.summary import summarize
from turngym.harness.rollout.trajectory import StopReason, Trajectory, Turn, read_jsonl, write_jsonl

SOKOBAN = "turngym/Sokoban-v0"


def _engine(group: int = 2, **kw) -> RolloutEngine:
    cfg = RolloutConfig.build(env_id=SOKOBAN, group_size=group, **kw)
    return RolloutEngine(SOKOBAN, rollout_fakes.ExpertPolicy(), None, cfg)


def test_groups_ids_and_hand_computed_rewards() -> None:
    eng = _engine(group=2)
    groups = eng.run([("train-00001", 7), ("train-00000", 3)], progress=False)
    assert [g.group_id for g in groups] == ["g0000:train-00001@7", "g0001:train-00000@3"]
    assert [g.seed for g in groups] == [7, 3]
    g = groups[0]
    assert [t.traj_id for t in g.trajectories] == ["g0000:train-00001@7/0",
                                                  "g0000:train-00001@7/1"]
    traj = g.trajectories[0]
    # train-00001 is solved by down, down, right: two -0.1 steps, then -0.1 + 1 + 10.
    assert [t.action for t in traj.turns] == ["down", "down", "right"]
    assert [t.reward for t in traj.turns] == pytest.approx([-0.1, -0.1, 10.9])
    assert traj.total_reward == pytest.approx(10.7)
    assert traj.stop_reason is StopReason.TERMINATED and traj.won
    assert [t.turn for t in traj.turns] == [0, 1, 2]
    assert [t.done for t in traj.turns] == [False, False, True]
    assert all(t.trainable and t.action_valid for t in traj.turns)
    # scripted policy: no model, so no ids
    assert traj.turns[0].prompt_ids == [] and traj.turns[0].response_ids == []
    assert eng.mode == "inline"


def test_state_key_is_the_state_acted_from() -> None:
    from turngym import envs

    eng = _engine(group=1)
    traj = eng.run([("train-00001", 0)], progress=False)[0].trajectories[0]
    env = envs.make(SOKOBAN)
    obs, info = env.reset(seed=0, options={"task_id": "train-00001"})
    for turn in traj.turns:
        assert turn.state_key == info["state_key"]
        obs, _, _, _, info = env.step(turn.action)
        assert turn.observation == obs
        assert turn.info == {"boxes_on_target": info["boxes_on_target"]}


def test_group_members_start_from_the_same_state() -> None:
    eng = _engine(group=3)
    (g,) = eng.run([("train-00005", 11)], progress=False)
    keys = {t.turns[0].state_key for t in g.trajectories}
    assert len(keys) == 1 and len(g.trajectories) == 3


def test_jsonl_round_trip(tmp_path: Path) -> None:
    eng = _engine(group=2)
    trajs = [t for g in eng.run([("train-00001", 0), ("train-00002", 1)], progress=False)
             for t in g.trajectories]
    path = tmp_path / "r.jsonl"
    assert write_jsonl(path, trajs) == 4
    back = list(read_jsonl(path))
    assert back == trajs
    assert len(path.read_text().splitlines()) == 4


def test_expert_prefix_and_horizon() -> None:
    eng = _engine(group=2)
    (g,) = eng.run([("train-00000", 0)], expert_prefix=2, horizon=3, progress=False)
    for traj in g.trajectories:
        assert [t.trainable for t in traj.turns] == [False, False, True, True, True]
        assert traj.turns[0].response_text == "<action>down</action>"
        assert traj.turns[0].prompt_ids == [] and traj.turns[0].response_ids == []
        assert traj.stop_reason is StopReason.HORIZON
        assert traj.metrics["student_turns"] == 3.0


def test_horizon_zero_and_prefix_that_solves_the_task() -> None:
    eng = _engine(group=1)
    (g,) = eng.run([("train-00001", 0)], horizon=0, progress=False)
    assert g.trajectories[0].turns == () and g.trajectories[0].stop_reason is StopReason.HORIZON
    (g,) = eng.run([("train-00001", 0)], expert_prefix=10, progress=False)
    traj = g.trajectories[0]  # the 3-move expert solves it inside the prefix
    assert traj.won and traj.stop_reason is StopReason.TERMINATED and len(traj.turns) == 3
    assert not any(t.trainable for t in traj.turns)


def test_turn_limit_truncates() -> None:
    class Wall:
        def act(self, env):
            return "dance"

    cfg = RolloutConfig.build(env_id=SOKOBAN, max_turns=4)
    eng = RolloutEngine(SOKOBAN, Wall(), None, cfg)
    traj = eng.run([("train-00001", 0)], progress=False)[0].trajectories[0]
    assert len(traj.turns) == 4 and traj.stop_reason is StopReason.TRUNCATED
    assert not any(t.action_valid for t in traj.turns)
    assert len({t.state_key for t in traj.turns}) == 1  # invalid moves leave the state alone


def test_fork_trajectory_continues_from_turn_t() -> None:
    eng = _engine(group=1)
    parent = eng.run([("train-00000", 0)], progress=False)[0].trajectories[0]
    fork = eng.fork_trajectory(parent, 4, n=3)
    assert fork.task_id == parent.task_id and len(fork.trajectories) == 3
    for child in fork.trajectories:
        assert child.turns[0].turn == 4
        assert child.turns[0].state_key == parent.turns[4].state_key
        assert [t.action for t in child.turns] == [t.action for t in parent.turns[4:]]
        assert child.won
    with pytest.raises(ConfigError, match="at_turn"):
        eng.fork_trajectory(parent, 99)


def test_fork_from_raw_snapshot() -> None:
    from turngym import envs

    env = envs.make(SOKOBAN)
    env.reset(seed=0, options={"task_id": "train-00001"})
    env.step("down")
    blob = env.snapshot()
    eng = _engine(group=2)
    g = eng.fork(blob, task_id="train-00001", seed=0)
    assert [len(t.turns) for t in g.trajectories] == [2, 2]
    assert all(t.won for t in g.trajectories)


def test_bad_input_fails_before_work() -> None:
    with pytest.raises(ConfigError, match="rollout.group_size"):
        RolloutConfig.build(env_id=SOKOBAN, group_size=0)
    with pytest.raises(ConfigError, match="rollout.bogus"):
        RolloutConfig.build(env_id=SOKOBAN, bogus=1)
    with pytest.raises(ConfigError, match="env_timeout_s"):
        RolloutConfig.build(env_id=SOKOBAN, step_mode="inline", env_timeout_s=1.0)
    with pytest.raises(ConfigError, match="expected \\(task_id, seed\\)"):
        _engine().run(["train-00001"], progress=False)
    with pytest.raises(ConfigError, match="neither a Backend"):
        RolloutEngine(SOKOBAN, object(), None, RolloutConfig.build(env_id=SOKOBAN))
    with pytest.raises(UnknownEnvError, match="Did you mean"):
        RolloutEngine("turngym/Sokobn-v0", rollout_fakes.ExpertPolicy())


def _turn(valid: bool, reward: float, trainable: bool = True, info=None,
          format_valid: bool = True) -> Turn:
    return Turn("g", "t", "x", 0, [], [], [], reward, "k", valid, False, False,
                trainable=trainable, info=info or {}, format_valid=format_valid)


def test_summary_hand_computed() -> None:
    a = Trajectory("g", "a", "x", 0, "e", (_turn(True, 1.0), _turn(False, 0.0)),
                   StopReason.TERMINATED, True, metrics={"env_s": 1.0, "model_s": 3.0})
    b = Trajectory("g", "b", "x", 0, "e", (_turn(True, 0.0, trainable=False),
                                          _turn(False, -1.0, info={"parse_error": "x"},
                                                format_valid=False)),
                   StopReason.ENV_ERROR, False, error="boom", metrics={"env_s": 0.5})
    m = summarize([a, b], detail=True)
    assert m["env/success"] == 0.5
    assert m["env/return"] == 0.0
    assert m["rollout/turns"] == 2.0
    assert m["rollout/student_turns"] == 3.0
    assert m["rollout/invalid_rate"] == pytest.approx(2 / 3)
    assert m["rollout/format_error_rate"] == pytest.approx(1 / 3)
    assert m["rollout/stop/terminated"] == 0.5 and m["rollout/stop/env_error"] == 0.5
    assert m["rollout/env_s"] == 1.5 and m["rollout/model_s"] == 3.0
    assert m["rollout/env_errors"] == 1.0
    assert "rollout/env_s" not in summarize([a, b])  # the detail keys only on request
    assert summarize([]) == {}
    ev = summarize([a, b], "eval/")
    assert ev["eval/success"] == 0.5 and ev["eval/format_error_rate"] == pytest.approx(1 / 3)
    assert not [k for k in ev if not k.startswith("eval/")]


def test_gc_state_restored_and_progress_bar_runs() -> None:
    import gc

    assert gc.isenabled()
    eng = _engine(group=2)
    groups = eng.run([("train-00001", 0)], progress=True)
    assert gc.isenabled() and len(groups[0].trajectories) == 2
    gc.disable()
    try:
        eng.run([("train-00001", 0)], progress=False)
        assert not gc.isenabled()  # a caller's choice is kept
    finally:
        gc.enable()


@pytest.mark.parametrize("env_id", [SOKOBAN, "turngym/Household-v0"])
def test_inline_scripted_fast_path_matches_threads(env_id: str) -> None:
    from dataclasses import fields

    from turngym.agents.scripted import ScriptedPolicy

    runs = {}
    for mode in ("inline", "threads"):  # threads take the generic submit/collect path
        cfg = RolloutConfig.build(env_id=env_id, group_size=3, step_mode=mode, seed=5,
                                  max_turns=12)
        eng = RolloutEngine(env_id, ScriptedPolicy("random", seed=1), None, cfg)
        groups = eng.run([("train-00000", 0), ("train-00003", 4)], progress=False)
        runs[mode] = [tr.to_dict() for g in groups for tr in g.trajectories]
        turn = groups[0].trajectories[0].turns[0]
        assert set(vars(turn)) == {f.name for f in fields(Turn)}  # every field, no extra
        eng.close()
    for traj in runs["inline"] + runs["threads"]:
        del traj["metrics"]  # timings
    assert runs["inline"] == runs["threads"]
    assert sum(len(t["turns"]) for t in runs["inline"]) > 6
