"""Every ``turngym serve`` command prints ``serving WHAT on URL  (Ctrl-C to stop)`` once it
listens, with the port it really got for ``--port 0``; the URL answers a real request."""

from __future__ import annotations

import json
import os
import queue
import re
import subprocess
import sys
import threading
import time
from pathlib import Path

import httpx
import pytest

BANNER = re.compile(r"^serving (.+) on (http://127\.0\.0\.1:(\d+)(\S*))  \(Ctrl-C to stop\)$")
#: Startup limit; each server measured here starts in a few seconds (the tiny model ~10 s).
START_S = 60.0


def _lines(stream, out: queue.Queue) -> None:
    for line in stream:
        out.put(line.rstrip("\n"))
    out.put(None)


def serve(*args: str) -> tuple[subprocess.Popen, re.Match, list[str]]:
    """Start ``turngym serve ARGS``; return it, its banner match and the stderr lines before
    the banner. Fails when it exits or prints no banner within :data:`START_S`."""
    proc = subprocess.Popen([sys.executable, "-m", "turngym.harness.cli.main", "serve", *args],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            env={**os.environ, "PYTHONUNBUFFERED": "1"})
    errs: queue.Queue = queue.Queue()
    threading.Thread(target=_lines, args=(proc.stderr, errs), daemon=True).start()
    before: list[str] = []
    deadline = time.monotonic() + START_S
    try:
        while True:
            line = errs.get(timeout=max(deadline - time.monotonic(), 0.01))
            assert line is not None, f"exited {proc.wait()} without a banner: {before}"
            if (m := BANNER.match(line)) is not None:
                return proc, m, before
            before.append(line)
    except BaseException:
        stop(proc)
        raise


def stop(proc: subprocess.Popen) -> None:
    proc.terminate()
    try:
        proc.wait(timeout=20)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()


def test_serve_webshop_banner() -> None:
    proc, m, _ = serve("webshop", "--port", "0")
    try:
        assert m.group(1) == "the WebShop (2400 products)"
        assert int(m.group(3)) > 0 and m.group(4) == ""
        assert proc.stdout.readline().strip() == m.group(2)  # stdout's URL line is unchanged
        health = httpx.get(m.group(2) + "/healthz", timeout=10).json()
        assert (health["ok"], health["products"]) == (True, 2400)
    finally:
        stop(proc)


def test_serve_retriever_banner(tmp_path: Path) -> None:
    corpus = tmp_path / "corpus.jsonl"
    corpus.write_text("".join(json.dumps({"id": f"p{i}", "title": t, "text": f"{t} is here."})
                              + "\n" for i, t in enumerate(["Alpha", "Beta", "Gamma"])))
    proc, m, _ = serve("retriever", "--corpus", str(corpus), "--port", "0")
    try:
        assert m.group(1) == "the BM25 retriever (3 passages)"
        assert int(m.group(3)) > 0 and m.group(4) == ""
        assert proc.stdout.readline().strip() == f"retriever: 3 passages at {m.group(2)}"
        health = httpx.get(m.group(2) + "/health", timeout=10).json()
        assert (health["status"], health["passages"]) == ("ok", 3)
    finally:
        stop(proc)


@pytest.mark.slow
def test_serve_policy_banner() -> None:
    proc, m, _ = serve("--model", "tiny", "--port", "0")
    try:
        assert m.group(1) == "model tiny (hf backend)"
        assert int(m.group(3)) > 0 and m.group(4) == "/v1"
        models = httpx.get(m.group(2) + "/models", timeout=10).json()
        assert [d["id"] for d in models["data"]] == ["tiny"]
    finally:
        stop(proc)
