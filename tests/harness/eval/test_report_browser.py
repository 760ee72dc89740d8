"""The HTML report in headless Chromium: it renders, logs no console errors, and the
trajectory viewer's next button steps to the next turn."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from turngym.harness.eval.evaluate import EvalSettings, evaluate
from turngym.harness.eval.report import write_report
from turngym.harness.eval.suite import Suite
from turngym.harness.learn.metrics_log import MetricsLogger
from turngym.harness.rollout.trajectory import read_jsonl

CHROMIUM = "/usr/bin/chromium"
ARGS = ["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
        "--disable-background-networking", "--disable-component-update", "--disable-sync",
        "--disable-dev-shm-usage"]

pytestmark = [pytest.mark.browser,
              pytest.mark.skipif(shutil.which(CHROMIUM) is None, reason="needs Debian chromium")]


@pytest.fixture(scope="module")
def report_path(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("report")
    suite = Suite(name="mini", entries=[
        {"name": "sokoban", "env_id": "turngym/Sokoban-v0", "split": "test", "num_tasks": 2},
        {"name": "household", "env_id": "turngym/Household-v0",
         "env_kwargs": {"split": "valid_seen"}, "split": "valid_seen", "num_tasks": 3}])
    evaluate(suite, EvalSettings(policy="scripted", model="expert")).write(root / "eval")
    log = MetricsLogger(root / "train", tensorboard=False)  # a real training-run metrics file
    for step in range(5):
        log.log(step, {"env/success": step / 4, "algo/loss": 1.0 / (step + 1)})
    log.close()
    return write_report([root / "eval", root / "train"], root / "report.html")


def test_report_renders_in_chromium_and_viewer_steps(report_path: Path, tmp_path: Path) -> None:
    from playwright.sync_api import sync_playwright

    first_traj = next(read_jsonl(report_path.parent / "eval" / "trajectories.jsonl"))
    n = first_traj.num_turns
    assert n >= 2
    errors: list[str] = []
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, headless=True, args=ARGS)
        try:
            page = browser.new_page(viewport={"width": 1200, "height": 900})
            page.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
            page.on("pageerror", lambda e: errors.append(str(e)))
            page.goto(report_path.resolve().as_uri())
            page.wait_for_selector("#episode option", state="attached")
            assert page.locator("table").count() >= 3  # entries, types, training metrics
            assert page.locator("img.plot").count() == 3  # types, turn histogram, curves
            assert page.locator("#episode option").count() == 5
            assert page.text_content("#position") == f"turn 1 / {n}"
            first = page.text_content("#state_key")
            page.click("#next")
            assert page.text_content("#position") == f"turn 2 / {n}"
            assert page.text_content("#state_key") != first
            assert page.text_content("#action")  # the expert's second move
            page.select_option("#episode", "2")  # a household episode
            assert page.text_content("#position").startswith("turn 1 / ")
            shot = tmp_path / "report.png"
            page.screenshot(path=str(shot), full_page=True)
        finally:
            browser.close()
    assert errors == []
    data = shot.read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n" and len(data) > 20_000
