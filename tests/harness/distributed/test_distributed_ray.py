"""A local Ray cluster (2 CPUs): rollouts through engine actors + env-worker actors, weight
sync into the engines, and a training step with ``distributed.mode=ray``."""

from __future__ import annotations

from pathlib import Path

import pytest

pytestmark = [pytest.mark.ray, pytest.mark.slow]

TASKS_N = 2


@pytest.fixture(scope="module")
def ray_cluster():
    ray = pytest.importorskip("ray")
    from turngym.harness.distributed.ray_engines import ensure_ray

    ensure_ray(num_cpus=2)
    yield ray
    ray.shutdown()


def _agent(model_dir: Path, family: str):
    from turngym.agents.agent import Agent
    from turngym.agents.models import load_tokenizer

    return Agent(tokenizer=load_tokenizer(model_dir), family=family, history_length=1)


def _rollout_cfg():
    from turngym.harness.rollout.config import RolloutConfig

    return RolloutConfig.build(env_id="turngym/Maze-v0", env_kwargs={"size": 2}, group_size=2,
                               max_turns=2, max_tokens=6, seed=3,
                               pipeline_splits=1)  # same generate batches as the local engine


def test_ray_rollout_matches_local_and_weights_sync(ray_cluster, tiny_model_dir: Path,
                                                    hf_backend) -> None:
    """One engine actor + 2 env-worker actors give exactly the local engine's trajectories
    (same seeds); then load_weights through the router reaches the engine."""
    from turngym.agents.hf import HFBackend
    from turngym.agents.models import tiny_model_dir as build_tiny
    from turngym.harness.distributed.ray_engines import start_engines
    from turngym.harness.distributed.router import RouterBackend
    from turngym.harness.distributed.runtime import RayRolloutEngine
    from turngym.harness.learn.tasks import split_task_ids
    from turngym.harness.rollout.engine import RolloutEngine

    ids, family = split_task_ids("turngym/Maze-v0", {"size": 2}, "train")
    tasks = [(t, 0) for t in ids[:TASKS_N]]
    engines = start_engines(1, "hf", {"model": str(tiny_model_dir), "dtype": "float32"},
                            num_cpus=0.5)
    router = RouterBackend(engines, hf_backend.tokenizer)
    remote = RayRolloutEngine("turngym/Maze-v0", router, _agent(tiny_model_dir, family),
                              _rollout_cfg(),
                              num_env_workers=2, resources={"num_cpus": 0.5})
    local = RolloutEngine("turngym/Maze-v0", hf_backend, _agent(tiny_model_dir, family),
                          _rollout_cfg())
    try:
        got = remote.run(tasks, progress=False)
        want = local.run(tasks, progress=False)
        assert remote._pool.W == 2 and remote._pool.sizes == [2, 2]  # 4 episodes, 2 workers
        flat = lambda gs: [(t.traj_id, [(list(u.response_ids), u.reward, u.state_key)
                            for u in t.turns], t.stop_reason) for g in gs for t in g.trajectories]
        assert flat(got) == flat(want)
        assert sum(len(t.turns) for g in got for t in g.trajectories) >= 4
        assert remote.last_metrics["rollout/env_errors"] == 0

        # ---- weight sync: load another model's weights, scores must follow
        other = HFBackend(build_tiny(seed=1), dtype="float32")
        prompts, resp = [[1, 2, 3, 4]], [[5, 6, 7]]
        before = router.score(prompts, resp)
        router.load_weights(other.model.state_dict())
        after = router.score(prompts, resp)
        assert after[0] == pytest.approx(other.score(prompts, resp)[0], abs=1e-5)
        assert after[0] != pytest.approx(before[0], abs=1e-3)
        assert router.sync_s > 0

        # ---- the same through the trainer-engines gloo group (weight_sync=broadcast on CPU)
        group = RouterBackend(engines, hf_backend.tokenizer, weight_sync="gloo")
        group.load_weights(hf_backend.model.state_dict())  # back to the original weights
        assert group.score(prompts, resp)[0] == pytest.approx(before[0], abs=1e-5)
        group.load_weights(other.model.state_dict())
        assert group.score(prompts, resp)[0] == pytest.approx(other.score(prompts, resp)[0],
                                                              abs=1e-5)
        assert group._group.syncs == 2 and group.sync_s > 0
    finally:
        remote.close()
        local.close()
        router.close()


def test_ray_train_step(ray_cluster, tmp_path: Path) -> None:
    """``distributed.mode=ray``: the trainer's loop, unchanged, on 2 engine actors and 2
    env-worker actors; the router splits every generate call over both engines."""
    from turngym.harness.config import load_config
    from turngym.harness.train import train

    cfg = load_config(None, [
        "model.path=tiny", "env.id=turngym/Maze-v0", "env.kwargs={size: 2}", "steps=1",
        "rollout.tasks_per_step=2", "rollout.group_size=2", "rollout.max_turns=2",
        "rollout.max_tokens=6", "rollout.history_length=1", "eval.num_tasks=2",
        "eval.at_start=false", "optim.mini_batch_size=4", "optim.micro_batch_size=2",
        "optim.lr=1e-3", "logging.plot=false", "logging.progress=false",
        "logging.tensorboard=false", "algo.name=grpo", "algo.loss.entropy_coef=0.01",
        "distributed.mode=ray", "distributed.num_engines=2", "distributed.num_env_workers=2",
        # 2 CPUs: 2 x 0.5 (engines) + 2 x 0.25 (train env workers) + 2 x 0.25 (eval ones)
        "distributed.engine_num_cpus=0.5", "distributed.resources_per_worker={num_cpus: 0.25}",
        f"out_dir={tmp_path / 'run'}"])
    out = train(cfg)
    (h,) = out["history"]
    m = h["metrics"]
    assert m["rollout/trajectories"] == 4
    assert m["train/optimizer_steps"] >= 1 and m["train/grad_norm"] > 0
    assert m["time/sync_s"] > 0
    assert "eval/success" in out["after"]
    assert (Path(out["out_dir"]) / "checkpoints" / "latest").read_text() == "step-000001"
