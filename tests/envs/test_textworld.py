"""TextWorld games generated offline and played by TextWorld's own engine."""

from __future__ import annotations

import pytest

from turngym import envs

pytest.importorskip("textworld", reason="install turngym[classic] for TextWorld")
pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def tw():
    env = envs.make("turngym/TextWorld-v0", max_turns=100)
    yield env
    env.close()


@pytest.mark.parametrize("task_id", ["custom-L2-10000", "coin_collector-L2-10000",
                                     "treasure_hunter-L1-10000"])
def test_expert_walkthrough_wins(tw, task_id: str) -> None:
    obs, info = tw.reset(seed=0, options={"task_id": task_id})
    assert obs and info["score"] == 0 and info["task_type"] == task_id.split("-L")[0]
    turns = 0
    while (action := tw.unwrapped.expert_action()) is not None:
        assert action in info["admissible_actions"]
        obs, reward, term, trunc, info = tw.step(action)
        turns += 1
        if term or trunc:
            break
    assert info["won"] and term and not trunc and turns >= 1


def test_non_admissible_command_is_invalid_and_not_sent(tw) -> None:
    _, info = tw.reset(seed=0, options={"task_id": "coin_collector-L2-10000"})
    obs, reward, term, _, info2 = tw.step("dance wildly")
    assert not info2["action_valid"] and "not an admissible command" in obs
    assert info2["state_key"] == info["state_key"] and reward == 0.0 and not term
    obs, _, _, _, info3 = tw.step("  GO   North ")  # case and spacing are normalised
    assert info3["action_valid"] and info3["state_key"] != info["state_key"]


def test_splits_do_not_overlap() -> None:
    from turngym.envs.textworld_games import TextWorldEnv

    env = TextWorldEnv()
    train, test = set(env.task_ids("train")), set(env.task_ids("test"))
    assert len(train) == 900 and len(test) == 180 and not train & test


def test_games_generate_concurrently_and_unlucky_seeds_fall_back(tmp_path, monkeypatch) -> None:
    """Threads generating at once used to crash TextWorld's generator; and seed 10000 has no
    level-2 treasure-hunter quest, so the next deterministic seed is used."""
    from concurrent.futures import ThreadPoolExecutor

    from turngym.envs.textworld_games.games import game_file

    monkeypatch.setenv("TURNGYM_CACHE", str(tmp_path))
    ids = ["treasure_hunter-L2-10000", "custom-L1-10001", "coin_collector-L1-10001"]
    with ThreadPoolExecutor(3) as pool:
        files = list(pool.map(game_file, ids))
    assert [f.name for f in files] == [f"{i}.z8" for i in ids]
    assert all(f.stat().st_size > 1000 and f.with_suffix(".json").exists() for f in files)
    assert game_file(ids[0]) == files[0]  # cached: the same file, not regenerated


def test_resets_in_threads_all_succeed() -> None:
    """Starting a game parses its logic with tatsu, which is not thread-safe: resets that
    overlap in threads used to fail ("pop from empty list"); the eval suites step TextWorld
    in threads."""
    from concurrent.futures import ThreadPoolExecutor

    from turngym import envs

    ids = ["custom-L1-10000", "custom-L1-10001", "coin_collector-L1-10000",
           "treasure_hunter-L1-10000"] * 3

    def play(task_id: str) -> bool:
        env = envs.make("turngym/TextWorld-v0")
        try:
            obs, info = env.reset(seed=0, options={"task_id": task_id})
            for _ in range(30):
                _, _, term, trunc, info = env.step(env.unwrapped.expert_action())
                if term or trunc:
                    break
            return bool(info["won"])
        finally:
            env.close()

    with ThreadPoolExecutor(6) as pool:
        assert list(pool.map(play, ids)) == [True] * len(ids)


def test_pickled_mid_episode_steps_on_from_the_same_state(tw) -> None:
    """A pickled copy used to crash on its next step (its engine was dropped); now it
    replays the episode's commands into its own game when unpickled."""
    import pickle

    env = tw.unwrapped
    tw.reset(seed=0, options={"task_id": "custom-L2-10000"})
    _, _, _, _, info = tw.step(env.expert_action())
    clone = pickle.loads(pickle.dumps(env))
    try:
        assert clone.state_key() == info["state_key"] and clone.render() == env.render()
        assert clone.admissible_actions() == info["admissible_actions"]
        action = env.expert_action()
        assert clone.expert_action() == action
        mine, theirs = env.step(action), clone.step(action)
        assert mine[0] == theirs[0] and mine[1:4] == theirs[1:4]
        assert mine[4]["state_key"] == theirs[4]["state_key"]
    finally:
        clone.close()
    fresh = pickle.loads(pickle.dumps(type(env)()))  # never reset: nothing to replay
    assert fresh.task_id is None
