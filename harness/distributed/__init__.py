"""Scale-out: Ray actors for env workers and generation engines, a torchrun/FSDP2 learner.

* :mod:`harness.distributed.ray_engines`: engine actors (``hf`` or ``vllm`` backend inside,
  vLLM tensor parallelism on GPU) and env-worker actors (:class:`RayEnvWorkerPool`).
* :mod:`harness.distributed.router`: :class:`RouterBackend`, a :class:`agents.backend.Backend`
  that balances ``generate``/``score`` over engine actors (least outstanding requests).
* :mod:`harness.distributed.runtime`: what ``distributed.mode: ray`` builds for the trainer.
* :mod:`harness.distributed.fsdp`: the learner under ``torchrun`` with FSDP2
  (``fully_shard``), gradient accumulation across ranks, sharded checkpoints (DCP).
* :mod:`harness.distributed.weight_sync`: learner -> engines after each update.
* :mod:`harness.distributed.async_loop`: rollouts for step n+1 while step n trains, with a
  staleness bound and a truncated importance-ratio correction.

Nothing here is imported unless ``distributed.*`` asks for it; Ray stays optional.
"""
