"""Fair scheduling for the policy server (:mod:`turngym.agents.serve_hf`): no request holds the
backend for long.

One worker thread owns the backend. Each request becomes a job; the worker serves jobs
round-robin, one *work unit* at a time, then puts the job at the back of the line:

* a score unit: prompt log-probs (``echo``) for up to ``chunk_prompts`` prompts;
* a generate unit: up to ``slice_tokens`` more tokens for up to ``chunk_prompts`` prompts
  (the prompt plus the tokens so far go back in as the prompt: same distribution, the
  prefix is re-read once per slice).

So a request that arrives while a maximum-size one runs waits for at most one unit of each
job ahead of it, about ``chunk_prompts x slice_tokens`` tokens of work, instead of the
whole request. Stop strings are matched here, on the decoded tokens after each slice (the
backend gets none): transformers' ``StopStringCriteria`` preprocesses the vocabulary for
each stop string on every call (about 1 s per string on the tiny model's 49k vocabulary),
which made 100 stop strings cost 36 s. The response is cut where ``decode(ids[:i])`` first
contains a stop string (kept), as the backends do; EOS ends a row and is kept in ``ids``.

Seeds: the first slice of the first prompt group uses ``seed``; slice ``j`` of the group
starting at row ``r`` otherwise uses ``(seed + 1_000_003 j + 7_919 r) mod 2**63``, so a
request is reproducible and one that fits one unit samples exactly as the backend would
with ``seed``.
"""

from __future__ import annotations

import concurrent.futures as cf
import logging
import threading
from collections import deque
from dataclasses import dataclass, field, replace
from typing import Any

from turngym.agents.backend import Backend, Generation, SamplingParams

logger = logging.getLogger(__name__)

CHUNK_PROMPTS = 8
SLICE_TOKENS = 64
_SEED_MOD = 2 ** 63


@dataclass
class _Row:
    prompt: list[int]
    limit: int
    """Most tokens this row may generate (``max_tokens`` within ``max_model_len``)."""
    ids: list[int] = field(default_factory=list)
    logprobs: list[float] = field(default_factory=list)
    finish: str | None = None
    prompt_lp: list[float] | None = None


@dataclass
class Job:
    """One request in the scheduler."""

    rows: list[_Row]
    sampling: SamplingParams
    score_prompts: bool
    future: cf.Future = field(default_factory=cf.Future)
    scored: int = 0
    slices: int = 0


class FairScheduler:
    """Round-robin work units over the jobs in flight, on one worker thread."""

    def __init__(self, backend: Backend, *, max_model_len: int, chunk_prompts: int = CHUNK_PROMPTS,
                 slice_tokens: int = SLICE_TOKENS, max_jobs: int = 64):
        self.backend, self.max_model_len = backend, int(max_model_len)
        self.chunk, self.slice = max(1, chunk_prompts), max(1, slice_tokens)
        self.max_jobs = max_jobs
        self.units = 0
        """Work units run so far (for tests and ``/health``-style checks)."""
        self._jobs: deque[Job] = deque()
        self._cv = threading.Condition()
        self._stop = False
        self._thread = threading.Thread(target=self._run, daemon=True, name="serve-scheduler")
        self._thread.start()

    # ------------------------------------------------------------------ API
    def submit(self, prompts: list[list[int]], sampling: SamplingParams,
               score_prompts: bool) -> cf.Future | None:
        """Queue a request; a future of ``(generations, prompt_logprobs)``, or ``None`` when
        ``max_jobs`` requests are already in flight (the caller answers 503)."""
        rows = [_Row(list(p), max(0, min(sampling.max_tokens, self.max_model_len - len(p))))
                for p in prompts]
        for row in rows:
            if row.limit == 0:
                row.finish = "length"
        job = Job(rows, sampling, score_prompts)
        with self._cv:
            if len(self._jobs) >= self.max_jobs:
                return None
            self._jobs.append(job)
            self._cv.notify()
        return job.future

    def pending(self) -> int:
        """Requests in flight."""
        with self._cv:
            return len(self._jobs)

    def close(self) -> None:
        """Stop the worker after its current unit; queued requests fail."""
        with self._cv:
            self._stop = True
            jobs, self._jobs = list(self._jobs), deque()
            self._cv.notify()
        for job in jobs:
            job.future.set_exception(RuntimeError("the server is shutting down"))
        self._thread.join(timeout=60)

    # ------------------------------------------------------------------ worker
    def _run(self) -> None:
        while True:
            with self._cv:
                while not self._jobs and not self._stop:
                    self._cv.wait()
                if self._stop:
                    return
                job = self._jobs.popleft()
            try:
                finished = self._unit(job)
            except Exception as exc:  # the request fails, the server stays up
                logger.exception("policy server request failed")
                job.future.set_exception(exc)
                continue
            self.units += 1
            if finished:
                job.future.set_result(self._result(job))
            else:
                with self._cv:
                    self._jobs.append(job)  # back of the line: the others go first

    def _unit(self, job: Job) -> bool:
        """Run one work unit of ``job``; ``True`` when the job is complete."""
        if job.score_prompts and job.scored < len(job.rows):
            group = job.rows[job.scored:job.scored + self.chunk]
            lps = self.backend.score([r.prompt[:1] for r in group], [r.prompt[1:] for r in group])
            for row, lp in zip(group, lps):
                row.prompt_lp = list(lp)
            job.scored += len(group)
            return job.scored == len(job.rows) and all(r.finish for r in job.rows)
        first = next((i for i, r in enumerate(job.rows) if r.finish is None), None)
        if first is None:
            return True
        group = [r for r in job.rows[first:] if r.finish is None][:self.chunk]
        n = min(self.slice, *(r.limit - len(r.ids) for r in group))
        sampling = replace(job.sampling, max_tokens=n, stop=(),
                           seed=_slice_seed(job.sampling.seed, job.slices, first))
        gens = self.backend.generate([r.prompt + r.ids for r in group], sampling)
        job.slices += 1
        for row, gen in zip(group, gens):
            self._extend(row, gen, job.sampling.stop)
        return all(r.finish for r in job.rows)

    def _extend(self, row: _Row, gen: Generation, stop: tuple[str, ...]) -> None:
        start = len(row.ids)
        row.ids += list(gen.ids)
        row.logprobs += list(gen.logprobs)
        eos = gen.finish_reason == "stop"  # no stop strings were passed: EOS
        if stop:
            tok = self.backend.tokenizer
            end = _first_stop(tok, row.ids, stop, start)
            if end is not None:
                del row.ids[end:], row.logprobs[end:]
                row.finish = "stop"
                return
        if eos:
            row.finish = "stop"
        elif len(row.ids) >= row.limit or not gen.ids:
            row.finish = "length"

    def _result(self, job: Job) -> tuple[list[Generation], list[list[float] | None]]:
        tok = self.backend.tokenizer
        gens = [Generation(ids=r.ids, logprobs=r.logprobs, finish_reason=r.finish or "length",
                           text=tok.decode(r.ids, skip_special_tokens=True)) for r in job.rows]
        return gens, [r.prompt_lp for r in job.rows]


def _slice_seed(seed: int | None, slice_no: int, first_row: int) -> int | None:
    if seed is None or (slice_no == 0 and first_row == 0):
        return seed
    return (seed + 1_000_003 * slice_no + 7_919 * first_row) % _SEED_MOD


def _first_stop(tok: Any, ids: list[int], stop: tuple[str, ...], start: int) -> int | None:
    """The smallest ``i`` with a stop string in ``decode(ids[:i])``, or ``None``. Tokens
    before ``start`` were checked by earlier slices (a stop string was not complete there)."""
    if not any(s in tok.decode(ids) for s in stop):
        return None
    lo, hi = max(start, 1), len(ids)  # decode(ids[:hi]) holds a stop; find the first such
    while lo < hi:
        mid = (lo + hi) // 2
        if any(s in tok.decode(ids[:mid]) for s in stop):
            hi = mid
        else:
            lo = mid + 1
    return hi
