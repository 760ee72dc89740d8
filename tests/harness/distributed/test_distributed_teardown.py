"""The torchrun worker's exit path (``turngym.harness.distributed.fsdp.end_worker``)."""

from __future__ import annotations

import os
import socket
import subprocess
import sys


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def test_no_gloo_threads_outside_torchrun_and_end_worker_returns() -> None:
    # in a fresh interpreter: earlier tests in this process may have left gloo threads (and
    # end_worker would then end the test process itself)
    code = """
from turngym.harness.distributed.fsdp import end_worker, gloo_threads
assert gloo_threads() == []
assert end_worker(3) is None  # nothing to protect: the process exits normally
print("returned", end="")
"""
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          timeout=120, check=False, env={**os.environ, "OMP_NUM_THREADS": "1"})
    assert (proc.returncode, proc.stdout) == (0, "returned"), proc.stderr[-2000:]


def test_end_worker_flushes_and_exits_with_the_code_after_a_process_group() -> None:
    code = """
import torch, torch.distributed as dist
from turngym.harness.distributed.fsdp import end_worker, finish_distributed, init_distributed
assert init_distributed(1.0)[1] == 1
t = torch.ones(2)
dist.all_reduce(t)
finish_distributed()
print("flushed", end="")  # no newline: stays in the buffer unless end_worker flushes it
end_worker(7)
raise SystemExit("not reached")
"""
    env = {**os.environ, "RANK": "0", "LOCAL_RANK": "0", "WORLD_SIZE": "1",
           "MASTER_ADDR": "127.0.0.1", "MASTER_PORT": str(_free_port()), "OMP_NUM_THREADS": "1"}
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          timeout=120, check=False, env=env)
    assert proc.returncode == 7, proc.stderr[-2000:]
    assert proc.stdout == "flushed" and "not reached" not in proc.stderr
