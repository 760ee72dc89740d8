"""The expert-informed teacher prompt: replayed expert actions and the hint's placement."""

from __future__ import annotations

import dataclasses
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parents[1]))  # rollout_fakes

import rollout_fakes

from turngym.harness.learn.teacher_hint import (
    HINT,
    expert_actions,
    generation_suffix,
    hinted_prompts,
)
from turngym.harness.rollout.engine import RolloutConfig, RolloutEngine

SOKOBAN = "turngym/Sokoban-v0"


def expert_trajectory():
    cfg = RolloutConfig.build(env_id=SOKOBAN, group_size=1)
    eng = RolloutEngine(SOKOBAN, rollout_fakes.ExpertPolicy(), None, cfg)
    return eng.run([("train-00001", 7)], progress=False)[0].trajectories[0]


def tokenizer():
    from turngym.agents.models import load_tokenizer, resolve_model_dir

    return load_tokenizer(resolve_model_dir("tiny"))


def test_replay_gives_the_expert_action_of_every_state_visited() -> None:
    from turngym import envs
    from turngym.envs.core import unwrapped_turn_env

    traj = expert_trajectory()
    assert [t.action for t in traj.turns] == ["down", "down", "right"]  # hand-checked level
    assert expert_actions(SOKOBAN, {}, traj) == ["down", "down", "right"]

    # the student went "up" first: the hints of the later turns follow the state it reached
    turns = list(traj.turns)
    turns[0] = dataclasses.replace(turns[0], action="up")
    turns[1] = dataclasses.replace(turns[1], action="")  # a response that did not parse
    detour = dataclasses.replace(traj, turns=tuple(turns))
    env = envs.make(SOKOBAN)
    env.reset(seed=7, options={"task_id": "train-00001"})
    env.step("up")
    after_up = unwrapped_turn_env(env).expert_action()
    hints = expert_actions(SOKOBAN, {}, detour)
    assert hints[0] == "down"
    assert hints[1] == hints[2] == after_up  # nothing was stepped for the unparsed turn


def test_hint_goes_at_the_end_of_the_last_user_message() -> None:
    from turngym.agents.agent import Agent

    tok = tokenizer()
    suffix = generation_suffix(tok)
    assert suffix == "<|im_end|>\n<|im_start|>assistant\n"  # ChatML (SmolLM2's template)
    agent = Agent(tokenizer=tok, family="sokoban")
    traj = expert_trajectory()
    prompt = agent.build_prompt(task="push the box", history=[], observation="#@$.#",
                                admissible=None)
    turns = [dataclasses.replace(u, prompt_text=prompt.text, prompt_ids=prompt.ids)
             for u in traj.turns]
    traj = dataclasses.replace(traj, turns=tuple(turns))
    keys = [(traj.traj_id, 0), (traj.traj_id, 2)]
    ids, metrics = hinted_prompts([traj], keys, tok, SOKOBAN, {})
    assert metrics == {"teacher/hinted_frac": 1.0}
    text = tok.decode(ids[1])
    assert text == prompt.text[:-len(suffix)] + HINT.format(action="right") + suffix
    assert "#@$." in text.split("Hint:")[0]  # the observation comes first


def test_unreplayable_turns_keep_the_student_prompt() -> None:
    tok = tokenizer()
    traj = expert_trajectory()
    turns = [dataclasses.replace(u, prompt_text="no chat template here", prompt_ids=[1, 2, 3])
             for u in traj.turns]
    traj = dataclasses.replace(traj, turns=tuple(turns))
    ids, metrics = hinted_prompts([traj], [(traj.traj_id, 1)], tok, SOKOBAN, {})
    assert ids == [[1, 2, 3]] and metrics == {"teacher/hinted_frac": 0.0}
