"""Scale-out: Ray actors for env workers and generation engines, a torchrun/FSDP2 learner.

* :mod:`turngym.harness.distributed.ray_engines`: engine actors (``hf`` or ``vllm`` backend
  inside, vLLM tensor parallelism on GPU) and env-worker actors
  (:class:`turngym.harness.rollout.ray_pool.RayPool`).
* :mod:`turngym.harness.distributed.router`: :class:`RouterBackend`, a
  :class:`turngym.agents.backend.Backend` that balances ``generate``/``score`` over engine
  actors (least outstanding requests).
* :mod:`turngym.harness.distributed.runtime`: what ``distributed.mode: ray`` builds for the trainer.
* :mod:`turngym.harness.distributed.fsdp`: the learner under ``torchrun`` with FSDP2
  (``fully_shard``), gradient accumulation across ranks, sharded checkpoints (DCP).
* :mod:`turngym.harness.distributed.weight_sync`: learner -> engines after each update.
* :mod:`turngym.harness.distributed.async_loop`: rollouts for step n+1 while step n trains, with a
  staleness bound and a truncated importance-ratio correction.

Nothing here is imported unless ``distributed.*`` asks for it; Ray stays optional.
"""
