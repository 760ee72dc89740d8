"""``turngym serve webshop`` (the real CLI) as a subprocess, used by an env via ``server_url``."""

from __future__ import annotations

import subprocess
import sys

import pytest

from turngym.envs.webshop import WebShopEnv
from turngym.envs.webshop.server import wait_ready

SERVE = [sys.executable, "-m", "turngym.harness.cli.main", "serve", "webshop", "--port", "0"]


@pytest.mark.slow
def test_serve_webshop_subprocess() -> None:
    proc = subprocess.Popen(SERVE,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        url = proc.stdout.readline().strip()
        assert url.startswith("http://127.0.0.1:"), proc.stderr.read()
        assert wait_ready(url)["products"] == 2400
        env = WebShopEnv(split="all", server_url=url)
        env.reset(seed=0, options={"task_id": "goal-00100"})
        reward = 0.0
        for _ in range(15):
            _, reward, term, _, _ = env.step(env.expert_action())
            if term:
                break
        env.close()
        assert reward == 1.0
    finally:
        proc.terminate()
        proc.wait(timeout=20)


def test_serve_webshop_help() -> None:
    from typer.testing import CliRunner

    import turngym.harness.cli.cmd_serve_webshop  # noqa: F401  (adds the command)
    from turngym.harness.cli.serve_group import serve_app

    result = CliRunner().invoke(serve_app, ["webshop", "--help"])
    assert result.exit_code == 0 and "--catalog" in result.output and "--port" in result.output
