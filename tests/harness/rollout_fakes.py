"""Test doubles for the rollout tests: a fault-injecting Sokoban and a scripted fake backend.

Each fake stands beside a test of the same path with the real component (the plain
Sokoban env; the hf backend on the tiny model). Importable by name so that spawned worker
processes and Ray actors can unpickle them (the tests put this folder on ``sys.path``).
"""

from __future__ import annotations

import multiprocessing as mp
import os
import time
from typing import Any

from turngym import envs
from turngym.agents.backend import Backend, Generation, SamplingParams
from turngym.envs.sokoban import SokobanEnv

FLAKY_ID = "test/FlakySokoban-v0"


class FlakySokoban(SokobanEnv):
    """Sokoban that raises or hangs on chosen tasks and turns, with optional latency.

    ``explode_task``/``explode_at``: ``step`` raises ``RuntimeError("boom")`` on that task
    at that (0-based) step. ``hang_task``/``hang_at``: ``step`` sleeps ``hang_s`` there.
    ``step_latency_s``/``reset_latency_s``: sleep on every step/reset (a slow env).
    ``die_in_worker_task``: a child process stepping that task exits at once (``os._exit``).
    """

    def __init__(self, explode_task: str | None = None, explode_at: int = 0,
                 hang_task: str | None = None, hang_at: int = 0, hang_s: float = 30.0,
                 step_latency_s: float = 0.0, reset_latency_s: float = 0.0,
                 die_in_worker_task: str | None = None, **kwargs: Any):
        super().__init__(**kwargs)
        self.die_in_worker_task = die_in_worker_task
        self.explode_task, self.explode_at = explode_task, explode_at
        self.hang_task, self.hang_at, self.hang_s = hang_task, hang_at, hang_s
        self.step_latency_s, self.reset_latency_s = step_latency_s, reset_latency_s
        self.steps = 0

    def _reset(self, task_id: str) -> str:
        self.steps = 0
        if self.reset_latency_s:
            time.sleep(self.reset_latency_s)
        return super()._reset(task_id)

    def _step(self, action: str):
        n, self.steps = self.steps, self.steps + 1
        if self.step_latency_s:
            time.sleep(self.step_latency_s)
        if self.task_id == self.explode_task and n == self.explode_at:
            raise RuntimeError("boom")
        if self.task_id == self.hang_task and n == self.hang_at:
            time.sleep(self.hang_s)
        if self.task_id == self.die_in_worker_task and mp.parent_process() is not None:
            os._exit(3)  # a worker process dies hard (segfault-like); the main one never does
        return super()._step(action)


def ensure_registered() -> str:
    """Register :data:`FLAKY_ID` once; return it."""
    if FLAKY_ID not in envs.registry:
        envs.register(FLAKY_ID, "rollout_fakes:FlakySokoban", max_turns=12)
    return FLAKY_ID


class ExpertPolicy:
    """A scripted policy: the env's expert move (``up`` when there is none)."""

    def act(self, env: Any) -> str:
        return env.unwrapped.expert_action() or "up"


class FakeBackend(Backend):
    """Returns scripted responses after ``latency_s + per_seq_s * n`` seconds.

    ``responses``: a callable ``(call_index, row, seed) -> text``. The first ``fail_times``
    calls raise ``ConnectionError``. Log-probs are ``-0.5`` per token.
    """

    def __init__(self, tokenizer: Any, responses: Any, *, latency_s: float = 0.0,
                 per_seq_s: float = 0.0, fail_times: int = 0, max_model_len: int = 4096):
        self.tokenizer, self.responses = tokenizer, responses
        self.latency_s, self.per_seq_s, self.fail_times = latency_s, per_seq_s, fail_times
        self.max_model_len = max_model_len
        self.calls: list[tuple[int, SamplingParams]] = []

    def generate(self, prompts_ids: list[list[int]], sampling: SamplingParams) -> list[Generation]:
        if self.fail_times > 0:
            self.fail_times -= 1
            raise ConnectionError("server unreachable")
        time.sleep(self.latency_s + self.per_seq_s * len(prompts_ids))
        k = len(self.calls)
        self.calls.append((len(prompts_ids), sampling))
        out = []
        for row in range(len(prompts_ids)):
            text = self.responses(k, row, sampling.seed)
            ids = self.tokenizer(text, add_special_tokens=False)["input_ids"]
            out.append(Generation(ids=list(ids), logprobs=[-0.5] * len(ids), text=text,
                                  finish_reason="stop"))
        return out

    def score(self, prompts_ids: list[list[int]], responses_ids: list[list[int]]):
        return [[-0.5] * len(r) for r in responses_ids]
