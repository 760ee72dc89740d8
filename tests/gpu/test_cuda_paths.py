"""The CUDA paths: the hf backend, the learner and ``turngym train`` on a GPU.

Marked ``gpu``: CI (no GPU) deselects them with ``-m "not gpu"``. Run them on a GPU machine
with ``pytest -m gpu tests/gpu``. Each compares the GPU result with the same computation on
the CPU, so a device mix-up (a tensor left on the CPU, a dtype change) fails here.
"""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from turngym.agents import backend_checker as checks
from turngym.agents.backend import SamplingParams

pytestmark = [pytest.mark.gpu, pytest.mark.skipif(not torch.cuda.is_available(),
                                                  reason="needs a CUDA GPU")]

TINY = ["model.path=tiny", "env.id=turngym/Maze-v0", "env.kwargs={size: 2}", "steps=2",
        "rollout.tasks_per_step=2", "rollout.group_size=2", "rollout.max_turns=2",
        "rollout.max_tokens=6", "rollout.history_length=1", "eval.num_tasks=2",
        "eval.at_start=false", "optim.mini_batch_size=4", "optim.micro_batch_size=2",
        "optim.lr=1e-3", "logging.plot=false", "logging.progress=false",
        "algo.loss.entropy_coef=0.01"]


@pytest.fixture(scope="module")
def cuda_backend(tiny_model_dir):
    from turngym.agents.hf import HFBackend

    backend = HFBackend(tiny_model_dir, device="cuda", dtype="float32", max_model_len=2048)
    yield backend
    backend.close()


def test_hf_backend_runs_on_the_gpu(cuda_backend, tiny_model_dir):
    assert next(cuda_backend.model.parameters()).device.type == "cuda"
    checks.check_generate_logprobs(cuda_backend)
    checks.check_greedy_is_argmax(cuda_backend)
    checks.check_load_weights(cuda_backend, tiny_model_dir)


def test_gpu_and_cpu_backends_agree(cuda_backend, tiny_model_dir):
    from turngym.agents.hf import HFBackend

    cpu = HFBackend(tiny_model_dir, device="cpu", dtype="float32", max_model_len=2048)
    try:
        ids = checks.prompt_ids(cpu.tokenizer)
        greedy = SamplingParams(temperature=0.0, max_tokens=8)
        g_cpu, g_gpu = cpu.generate(ids, greedy), cuda_backend.generate(ids, greedy)
        assert [g.ids for g in g_cpu] == [g.ids for g in g_gpu]
        s_cpu = cpu.score(ids, [g.ids for g in g_cpu])
        s_gpu = cuda_backend.score(ids, [g.ids for g in g_cpu])
        for a, b in zip(s_cpu, s_gpu):
            assert b == pytest.approx(a, abs=2e-3)  # TF32 matmuls on the GPU
    finally:
        cpu.close()


def _samples():
    from turngym.harness.learn.learner import Sample

    gen = torch.Generator().manual_seed(0)
    out = []
    for k in range(4):
        prompt = torch.randint(5, 1000, (6 + k,), generator=gen).tolist()
        resp = torch.randint(5, 1000, (3 + k,), generator=gen).tolist()
        out.append(Sample(prompt_ids=prompt, response_ids=resp,
                          old_logprobs=[-5.0] * len(resp), adv=[1.0 - k * 0.5] * len(resp),
                          ref_logprobs=None))
    return out


def test_learner_update_on_gpu_matches_cpu(tmp_path: Path):
    from turngym.agents.models import resolve_model_dir
    from turngym.harness.components import build_loss_config
    from turngym.harness.config import load_config
    from turngym.harness.learn.learner import Learner

    params = {}
    for device in ("cpu", "cuda"):
        cfg = load_config(None, [*TINY, f"model.device={device}", f"out_dir={tmp_path}"])
        learner = Learner(resolve_model_dir("tiny"), cfg)
        assert next(learner.model.parameters()).device.type == device
        m = learner.update(_samples(), build_loss_config(cfg), seed=0, pad_id=0)
        assert m["train/grad_norm"] > 0
        params[device] = {k: v.detach().float().cpu()
                          for k, v in learner.model.named_parameters()}
    for k, v in params["cpu"].items():
        assert torch.allclose(params["cuda"][k], v, atol=1e-4, rtol=1e-3), k


def test_train_two_steps_on_gpu(tmp_path: Path):
    from turngym.harness.config import load_config
    from turngym.harness.train import train

    out = train(load_config(None, [*TINY, "model.device=cuda", "algo.name=gigpo",
                                   f"out_dir={tmp_path / 'run'}"]))
    assert [h["step"] for h in out["history"]] == [1, 2]
    for h in out["history"]:
        assert h["metrics"]["train/grad_norm"] > 0
    assert "eval/success" in out["after"]
    assert (tmp_path / "run" / "checkpoints" / "latest").read_text() == "step-000002"


def test_bfloat16_learner_on_gpu(tmp_path: Path):
    from turngym.agents.models import resolve_model_dir
    from turngym.harness.components import build_loss_config
    from turngym.harness.config import load_config
    from turngym.harness.learn.learner import Learner

    cfg = load_config(None, [*TINY, "model.device=cuda", "model.dtype=bfloat16",
                             f"out_dir={tmp_path}"])
    learner = Learner(resolve_model_dir("tiny"), cfg)
    assert next(learner.model.parameters()).dtype == torch.bfloat16
    m = learner.update(_samples(), build_loss_config(cfg), seed=0, pad_id=0)
    assert m["train/grad_norm"] > 0 and torch.isfinite(torch.tensor(m["train/grad_norm"]))


def test_nccl_weight_group_api():
    """The NCCL variant of the weight group: constructor and broadcast API on one rank (NCCL
    refuses two ranks on one GPU, so the two-rank path is tested with gloo on CPU)."""
    from turngym.harness.distributed.weight_sync import free_port, open_group, pack, unpack

    sd = {"w": torch.randn(3, 4), "b": torch.randn(2).to(torch.bfloat16)}
    meta, bufs = pack(sd, "cuda")
    assert all(b.device.type == "cuda" for b in bufs)
    group = open_group("127.0.0.1", free_port("127.0.0.1"), 0, 1, "nccl", timeout_s=60)
    for b in bufs:
        group.broadcast(b, 0).wait()
    torch.cuda.synchronize()
    back = unpack(meta, bufs)
    assert torch.equal(back["w"].cpu(), sd["w"]) and torch.equal(back["b"].cpu(), sd["b"])
