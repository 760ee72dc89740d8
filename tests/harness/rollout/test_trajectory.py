from __future__ import annotations

from turngym.harness.rollout.trajectory import StopReason, Trajectory, Turn, read_jsonl, write_jsonl


def _traj(i: int, reason: StopReason) -> Trajectory:
    turns = tuple(
        Turn(group_id="g0", traj_id=f"t{i}", task_id="train-00001", turn=k,
             prompt_ids=[1, 2, 3 + k], response_ids=[7, 8], response_logprobs=[-0.5, -1.25],
             reward=1.0 if k == 1 else 0.0, state_key=f"s{k}", action_valid=k != 0,
             done=k == 1, won=k == 1, action="up", response_text="<action>up</action>",
             teacher_logprobs=[-0.1, -0.2] if k else None, info={"task_type": "x"})
        for k in range(2))
    return Trajectory(group_id="g0", traj_id=f"t{i}", task_id="train-00001", seed=3,
                      env_id="turngym/Maze-v0", turns=turns, stop_reason=reason, won=True,
                      task_type="x", metrics={"env_s": 0.5})


def test_jsonl_round_trip(tmp_path) -> None:
    trajs = [_traj(0, StopReason.TERMINATED), _traj(1, StopReason.ENV_ERROR)]
    path = tmp_path / "sub" / "rollouts.jsonl"
    assert write_jsonl(path, trajs) == 2
    assert path.read_text().count("\n") == 2
    back = list(read_jsonl(path))
    assert back == trajs
    assert back[1].stop_reason is StopReason.ENV_ERROR
    assert back[0].total_reward == 1.0 and back[0].num_turns == 2


def test_stop_reasons_are_the_designed_set() -> None:
    assert {r.value for r in StopReason} == {
        "terminated", "truncated", "max_tokens", "parse_error", "env_error", "horizon"}


def test_format_valid_round_trips_and_old_records_derive_it(tmp_path) -> None:
    import dataclasses
    import json

    traj = _traj(0, StopReason.TRUNCATED)
    bad = dataclasses.replace(traj.turns[0], action="", format_valid=False,
                              info={"parse_error": "no action found"})
    traj = dataclasses.replace(traj, turns=(bad, traj.turns[1]))
    assert [u.format_valid for u in traj.turns] == [False, True]
    assert _traj(1, StopReason.TERMINATED).turns[0].format_valid is True  # the default
    path = tmp_path / "r.jsonl"
    write_jsonl(path, [traj])
    assert list(read_jsonl(path)) == [traj]
    # a record written before format_valid existed: a parse error is a format error
    d = json.loads(path.read_text())
    for t in d["turns"]:
        del t["format_valid"]
    old = Trajectory.from_dict(d)
    assert [u.format_valid for u in old.turns] == [False, True]
    assert old == traj
