"""Rollout overlap: wall time per turn with a slow env and a slow model, vs sum() and max().

The env is Sokoban with a fake latency of 50 ms per step (a sleep, like an env waiting on
I/O: a container, a browser, an HTTP shop); the model is a fake backend whose latency is
100 ms per turn for the whole batch of live episodes, proportional to the number of
sequences in a call (a throughput-bound engine, as vLLM is at saturation). Responses are
real text through the real Agent (prompt built with the real tokenizer, action parsed).

Measured side by side in one run, on the same episodes:

* ``sequential``: threads pool, no pipelining (``pipeline_splits=1``): generate, then step;
  expected about sum() = 150 ms per turn.
* ``pipelined``: the engine's default with a concurrent pool (``pipeline_splits=2``): half
  A's env steps overlap half B's generation; expected close to max() = 100 ms per turn.
* ``fixed-latency model`` rows: the same two settings with a model that costs 100 ms per
  *call* whatever the batch (latency-bound); pipelining cannot help there (two calls per
  turn), which is why ``pipeline_splits=1`` is the setting for such backends.

    python -m turngym.benchmarks.rollout_overlap
"""

from __future__ import annotations

import argparse
import time
import zlib

from turngym import envs
from turngym.agents.agent import Agent
from turngym.agents.backend import Backend, Generation, SamplingParams
from turngym.agents.models import load_tokenizer, tiny_model_dir
from turngym.envs.sokoban import SokobanEnv
from turngym.harness.eval.results import write_result
from turngym.harness.rollout.engine import RolloutConfig, RolloutEngine

ENV_ID = "bench/SlowSokoban-v0"
MOVES = ("up", "down", "left", "right")


class SlowSokoban(SokobanEnv):
    """Sokoban whose every step sleeps ``step_latency_s`` first (a fake slow env)."""

    def __init__(self, step_latency_s: float = 0.05, **kwargs):
        super().__init__(**kwargs)
        self.step_latency_s = step_latency_s

    def _step(self, action: str):
        time.sleep(self.step_latency_s)
        return super()._step(action)


class LatencyBackend(Backend):
    """Random moves after ``turn_s * n / batch`` (throughput) or ``call_s`` (fixed) seconds."""

    def __init__(self, tokenizer, *, turn_s: float = 0.0, batch: int = 1, call_s: float = 0.0):
        self.tokenizer, self.turn_s, self.batch, self.call_s = tokenizer, turn_s, batch, call_s

    def generate(self, prompts_ids: list[list[int]], sampling: SamplingParams) -> list[Generation]:
        time.sleep(self.call_s + self.turn_s * len(prompts_ids) / self.batch)
        out = []
        for row in range(len(prompts_ids)):
            move = MOVES[zlib.crc32(f"{sampling.seed}/{row}".encode()) % 4]
            text = f"<think>go</think><action>{move}</action>"
            ids = self.tokenizer(text, add_special_tokens=False)["input_ids"]
            out.append(Generation(list(ids), [-1.0] * len(ids), text, "stop"))
        return out

    def score(self, prompts_ids, responses_ids):
        return [[-1.0] * len(r) for r in responses_ids]


def measure(tokenizer, agent, tasks, group: int, turns: int, splits: int, backend) -> dict:
    cfg = RolloutConfig.build(env_id=ENV_ID, group_size=group, max_turns=turns,
                              step_mode="threads", num_workers=len(tasks) * group,
                              pipeline_splits=splits, env_timeout_s=30.0)
    engine = RolloutEngine(ENV_ID, backend, agent, cfg)
    engine.run(tasks[:1], progress=False)  # warm the pool's threads
    engine.close()
    t0 = time.perf_counter()
    groups = engine.run(tasks, progress=False)
    wall = time.perf_counter() - t0
    engine.close()
    trajs = [t for g in groups for t in g.trajectories]
    max_turns = max(t.num_turns for t in trajs)
    return {"wall_s": round(wall, 3), "turns": max_turns,
            "ms_per_turn": round(1000 * wall / max_turns, 1),
            "model_wall_s": round(engine.last_metrics["rollout/model_wall_s"], 3),
            "agent_ms_per_turn": round(1000 * engine.last_metrics["rollout/agent_wall_s"]
                                       / max_turns, 1)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tasks", type=int, default=4)
    parser.add_argument("--group", type=int, default=2)
    parser.add_argument("--turns", type=int, default=10)
    parser.add_argument("--env-ms", type=float, default=50.0)
    parser.add_argument("--model-ms", type=float, default=100.0)
    parser.add_argument("--no-write", action="store_true")
    args = parser.parse_args()
    if ENV_ID not in envs.registry:
        envs.register(ENV_ID, "turngym.benchmarks.rollout_overlap:SlowSokoban",
                      max_turns=args.turns, kwargs={"step_latency_s": args.env_ms / 1000})
    tokenizer = load_tokenizer(tiny_model_dir())
    agent = Agent(tokenizer=tokenizer, family="sokoban")
    tasks = [(f"train-{i:05d}", i) for i in range(args.tasks)]
    n = args.tasks * args.group
    env_s, model_s = args.env_ms / 1000, args.model_ms / 1000
    rows = {}
    for name, splits, backend in [
        ("sequential", 1, LatencyBackend(tokenizer, turn_s=model_s, batch=n)),
        ("pipelined", 2, LatencyBackend(tokenizer, turn_s=model_s, batch=n)),
        ("fixed-latency model, sequential", 1, LatencyBackend(tokenizer, call_s=model_s)),
        ("fixed-latency model, pipelined", 2, LatencyBackend(tokenizer, call_s=model_s)),
    ]:
        rows[name] = measure(tokenizer, agent, tasks, args.group, args.turns, splits, backend)
    # The real Agent (chat template + tokenizer, in this process) also costs time per turn;
    # it is measured, and it runs on the CPU next to generation, not under the env's sleep.
    agent_ms = rows["sequential"]["agent_ms_per_turn"]
    ref = {"sum_ms": 1000 * (env_s + model_s), "max_ms": 1000 * max(env_s, model_s),
           "agent_ms": agent_ms, "sum_with_agent_ms": 1000 * (env_s + model_s) + agent_ms,
           "max_with_agent_ms": max(1000 * env_s, 1000 * model_s + agent_ms)}
    print(f"{n} episodes, env {args.env_ms:g} ms/step, model {args.model_ms:g} ms/turn: "
          f"sum() = {ref['sum_ms']:.0f} ms, max() = {ref['max_ms']:.0f} ms per turn")
    print(f"agent (prompt + parse, measured) {agent_ms:.1f} ms/turn: sum() with agent = "
          f"{ref['sum_with_agent_ms']:.0f} ms, max() with agent = "
          f"{ref['max_with_agent_ms']:.0f} ms per turn")
    for name, row in rows.items():
        print(f"  {name:34s} {row['ms_per_turn']:7.1f} ms/turn  ({row['turns']} turns, "
              f"{row['wall_s']:.2f} s, agent {row['agent_ms_per_turn']:.1f} ms/turn)")
    if not args.no_write:
        path = write_result("rollout_overlap", {"reference": ref, "rows": rows},
                            config=vars(args), seeds=[0])
        print(f"wrote {path}")


if __name__ == "__main__":
    main()
