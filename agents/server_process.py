"""Start an OpenAI-compatible server as a child process and wait until it answers.

Used by the tests and the backend benchmark to run ``turngym serve`` (hf) or vLLM's
server on 127.0.0.1 on a free port. Readiness is checked by polling ``/v1/models``; a
server that exits or does not answer within ``timeout_s`` raises with its log tail.
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx

from turngym.errors import BackendError


def free_port() -> int:
    """A TCP port that was free on 127.0.0.1 a moment ago."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class ServerProcess:
    """A server child process; use as a context manager (``with ServerProcess(...) as s``)."""

    def __init__(self, argv: list[str], port: int, *, env: dict[str, str] | None = None,
                 timeout_s: float = 300.0) -> None:
        self.port = port
        self.base_url = f"http://127.0.0.1:{port}/v1"
        self.log = tempfile.NamedTemporaryFile(prefix="turngym-server-", suffix=".log",
                                               delete=False)
        self.proc = subprocess.Popen(argv, stdout=self.log, stderr=subprocess.STDOUT,
                                     env={**os.environ, **(env or {})})
        self.start_s = self._wait(timeout_s)

    def _wait(self, timeout_s: float) -> float:
        start = time.perf_counter()
        while time.perf_counter() - start < timeout_s:
            if self.proc.poll() is not None:
                tail = self.tail()
                self.close()
                raise BackendError(f"server exited with {self.proc.returncode}:\n{tail}")
            try:
                if httpx.get(f"{self.base_url}/models", timeout=2.0).status_code == 200:
                    return time.perf_counter() - start
            except httpx.HTTPError:
                pass
            time.sleep(0.25)  # poll interval; readiness is the HTTP answer above
        tail = self.tail()
        self.close()
        raise BackendError(f"server not ready after {timeout_s:.0f} s:\n{tail}")

    def tail(self, n: int = 3000) -> str:
        """The end of the server's log."""
        return Path(self.log.name).read_text(errors="replace")[-n:]

    def close(self) -> None:
        """Stop the server (SIGTERM, then SIGKILL after 20 s). Safe to call twice."""
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        if not self.log.closed:
            self.log.close()
            Path(self.log.name).unlink(missing_ok=True)

    def __enter__(self) -> ServerProcess:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def hf_server(model_dir: str | Path, *, dtype: str = "float32", timeout_s: float = 180.0
              ) -> ServerProcess:
    """``turngym serve`` (the hf backend) on a free port."""
    port = free_port()
    argv = [sys.executable, "-m", "turngym.agents.serve_hf", "--model", str(model_dir), "--port",
            str(port), "--dtype", dtype]
    return ServerProcess(argv, port, env={"HF_HUB_OFFLINE": "1"}, timeout_s=timeout_s)


def vllm_server(model_dir: str | Path, *, dtype: str = "float32", max_model_len: int = 2048,
                timeout_s: float = 400.0) -> ServerProcess:
    """vLLM's OpenAI-compatible server (``--enforce-eager``) on a free port."""
    port = free_port()
    argv = [sys.executable, "-m", "vllm.entrypoints.openai.api_server", "--model",
            str(model_dir), "--host", "127.0.0.1", "--port", str(port), "--dtype", dtype,
            "--enforce-eager", "--max-model-len", str(max_model_len),
            "--logprobs-mode", "processed_logprobs", "--disable-log-stats"]
    env = {"HF_HUB_OFFLINE": "1", "VLLM_CPU_KVCACHE_SPACE": "1"}
    return ServerProcess(argv, port, env=env, timeout_s=timeout_s)
