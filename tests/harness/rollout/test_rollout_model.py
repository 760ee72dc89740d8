"""The engine with a model: the real hf backend on the tiny model, and a scripted fake backend
(same path) for latency, retries, parse errors and exact determinism checks."""

from __future__ import annotations

import dataclasses
import sys
import time
import zlib
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).parents[1]))  # rollout_fakes

import rollout_fakes

from turngym.agents.agent import Agent
from turngym.errors import BackendError
from turngym.harness.rollout.engine import RolloutConfig, RolloutEngine
from turngym.harness.rollout.loop import PARSE_NOTICE
from turngym.harness.rollout.trajectory import StopReason

SOKOBAN = "turngym/Sokoban-v0"
MOVES = ("up", "down", "left", "right")
TASKS = [("train-00000", 0), ("train-00003", 1)]


@pytest.fixture(scope="module")
def tokenizer():
    from turngym.agents.models import load_tokenizer, tiny_model_dir

    return load_tokenizer(tiny_model_dir())


def random_moves(k: int, row: int, seed: int) -> str:
    move = MOVES[zlib.crc32(f"{seed}/{row}".encode()) % 4]
    return f"<think>try</think><action>{move}</action>"


def _engine(tokenizer, responses=random_moves, *, agent_kw=None, backend_kw=None, **cfg_kw):
    cfg = RolloutConfig.build(env_id=cfg_kw.pop("env_id", SOKOBAN), **cfg_kw)
    backend = rollout_fakes.FakeBackend(tokenizer, responses, **(backend_kw or {}))
    agent = Agent(tokenizer=tokenizer, family="sokoban", **(agent_kw or {}))
    return RolloutEngine(cfg.env_id, backend, agent, cfg), backend, agent


def test_fake_backend_records_ids_and_is_deterministic(tokenizer) -> None:
    runs = []
    for _ in range(2):
        eng, backend, agent = _engine(tokenizer, group_size=3, max_turns=5, seed=5)
        runs.append(_untimed([t for g in eng.run(TASKS, progress=False)
                              for t in g.trajectories]))
    assert runs[0] == runs[1]
    eng, _, _ = _engine(tokenizer, group_size=3, max_turns=5, seed=6)
    other = [t for g in eng.run(TASKS, progress=False) for t in g.trajectories]
    assert [t.action for tr in other for t in tr.turns] != [
        t.action for tr in runs[0] for t in tr.turns]
    # inline stepping: one generate call per turn for all 6 live episodes
    assert backend.calls[0][0] == 6
    traj = runs[0][0]
    first = traj.turns[0]
    obs, info = _reset(traj)
    expect = agent.build_prompt(task=obs, history=[], observation=obs,
                                admissible=info["admissible_actions"])
    assert first.prompt_ids == expect.ids
    assert first.response_ids == tokenizer(first.response_text,
                                           add_special_tokens=False)["input_ids"]
    assert first.response_logprobs == [-0.5] * len(first.response_ids)


def _reset(traj):
    from turngym import envs

    return envs.make(SOKOBAN).reset(seed=traj.seed, options={"task_id": traj.task_id})


def _untimed(trajs):
    """Trajectories without their wall-clock metrics (everything else must repeat)."""
    return [dataclasses.replace(t, metrics={k: v for k, v in t.metrics.items()
                                            if not k.endswith("_s")}) for t in trajs]


def test_unparseable_output_is_an_invalid_turn_without_an_env_step(tokenizer) -> None:
    eng, _, _ = _engine(tokenizer, lambda k, r, s: "I like turtles very much", max_turns=3)
    traj = eng.run(TASKS[:1], progress=False)[0].trajectories[0]
    assert len(traj.turns) == 3 and traj.stop_reason is StopReason.TRUNCATED
    assert all(not t.action_valid and t.action == "" for t in traj.turns)
    assert len({t.state_key for t in traj.turns}) == 1
    assert traj.turns[0].observation.startswith(PARSE_NOTICE.split("{")[0])
    assert "parse_error" in traj.turns[0].info
    assert "could not be used" in traj.turns[1].prompt_text  # the model is told
    eng, _, _ = _engine(tokenizer, lambda k, r, s: "no", max_turns=9, max_parse_errors=2)
    traj = eng.run(TASKS[:1], progress=False)[0].trajectories[0]
    assert len(traj.turns) == 2 and traj.stop_reason is StopReason.PARSE_ERROR


def test_prompt_that_cannot_fit_stops_with_max_tokens(tokenizer) -> None:
    eng, backend, _ = _engine(tokenizer, agent_kw={"max_prompt_tokens": 16})
    trajs = eng.run(TASKS, progress=False)
    assert [t.trajectories[0].stop_reason for t in trajs] == [StopReason.MAX_TOKENS] * 2
    assert all(t.trajectories[0].turns == () for t in trajs) and backend.calls == []


def test_backend_retries_then_fails_clearly(tokenizer) -> None:
    eng, _, _ = _engine(tokenizer, max_turns=2, backend_backoff_s=0.0,
                        backend_kw={"fail_times": 2})
    eng.run(TASKS[:1], progress=False)
    assert eng.last_metrics["rollout/backend_retries"] == 2.0
    eng, _, _ = _engine(tokenizer, max_turns=2, backend_retries=1, backend_backoff_s=0.0,
                        backend_kw={"fail_times": 99})
    with pytest.raises(BackendError, match="failed 2 time.*ConnectionError: server unreachable"
                       ) as info:
        eng.run(TASKS, progress=False)
    assert info.value.partial_trajectories == []


def test_pipelining_overlaps_env_and_model(tokenizer) -> None:
    env_id = rollout_fakes.ensure_registered()
    walls = {}
    for splits in (1, 2):
        eng, _, _ = _engine(tokenizer, env_id=env_id, group_size=4, max_turns=4,
                            step_mode="threads", num_workers=8, pipeline_splits=splits,
                            env_kwargs={"step_latency_s": 0.06},
                            backend_kw={"per_seq_s": 0.0125})  # 100 ms for all 8 episodes
        t0 = time.perf_counter()
        eng.run(TASKS, progress=False)
        walls[splits] = time.perf_counter() - t0
        eng.close()
    # sum = 160 ms/turn, max = 100 ms/turn (plus the real Agent's prompt building): two
    # splits hide up to 60 ms of sleeping env latency per turn, 240 ms over 4 turns. The
    # saving is sleep, so CPU load does not shrink it; a ratio of the walls would be diluted
    # by the prompt-building CPU time a loaded machine stretches. Half of it must show.
    assert walls[1] - walls[2] > 0.12, walls


@pytest.mark.slow
def test_real_hf_backend_on_tiny_model(tokenizer) -> None:
    from turngym.agents.hf import HFBackend
    from turngym.agents.models import tiny_model_dir

    backend = HFBackend(tiny_model_dir(), device="cpu")
    agent = Agent(tokenizer=backend.tokenizer, family="sokoban", max_prompt_tokens=512)
    cfg = RolloutConfig.build(env_id=SOKOBAN, group_size=2, max_turns=2, max_tokens=12, seed=3)
    runs = []
    for _ in range(2):
        eng = RolloutEngine(SOKOBAN, backend, agent, cfg)
        runs.append([t for g in eng.run(TASKS[:1], progress=False) for t in g.trajectories])
    # same seeds -> same trajectories (ids exactly; log-probs up to float noise)
    for a, b in zip(*runs):
        assert [(t.prompt_ids, t.response_ids, t.action) for t in a.turns] == [
            (t.prompt_ids, t.response_ids, t.action) for t in b.turns]
        for ta, tb in zip(a.turns, b.turns):
            assert ta.response_logprobs == pytest.approx(tb.response_logprobs, abs=1e-4)
    for traj in runs[0]:
        assert traj.stop_reason in (StopReason.TRUNCATED, StopReason.TERMINATED)
        for t in traj.turns:
            assert 0 < len(t.response_ids) <= 12
            assert len(t.response_logprobs) == len(t.response_ids)
            assert all(lp <= 0.0 for lp in t.response_logprobs)
            assert t.prompt_ids and t.trainable
    # the ids trained on are exactly the ids the backend scores for that prompt
    t = runs[0][0].turns[0]
    scored = backend.score([t.prompt_ids], [t.response_ids])[0]
    assert scored == pytest.approx(t.response_logprobs, abs=1e-3)
