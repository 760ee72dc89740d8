"""Quiet by default: third-party loggers at WARNING, no library progress bars, everything
back under ``-v``."""

from __future__ import annotations

import logging
import os
from pathlib import Path

import pytest

from turngym.harness.ui.quiet import ENV, LOGGERS, quiet_third_party


@pytest.fixture
def clean(monkeypatch: pytest.MonkeyPatch):
    """No quiet-mode variable set by the user; whatever the test quiets is undone after."""
    quiet_third_party(True)  # undo an earlier test's CLI run in this process
    for key in ENV:
        monkeypatch.delenv(key, raising=False)
    for name in LOGGERS:
        monkeypatch.setattr(logging.getLogger(name), "level", logging.NOTSET)
    yield
    quiet_third_party(True)


def test_default_level_quiets_loggers_and_sets_the_env(clean) -> None:
    quiet_third_party(False)
    assert {n: logging.getLogger(n).level for n in LOGGERS} == {
        **dict.fromkeys(LOGGERS, logging.WARNING), "vllm": logging.ERROR}
    assert {k: os.environ.get(k) for k in ENV} == {
        "HF_HUB_DISABLE_PROGRESS_BARS": "1", "HF_DATASETS_DISABLE_PROGRESS_BARS": "1",
        "TQDM_DISABLE": "1", "RAY_LOGGER_LEVEL": "warning", "VLLM_LOGGING_LEVEL": "ERROR",
        "TORCH_CPP_LOG_LEVEL": "ERROR"}


def test_verbose_undoes_it_and_leaves_the_rest_alone(clean) -> None:
    quiet_third_party(False)
    quiet_third_party(True)
    assert {n: logging.getLogger(n).level for n in LOGGERS} == dict.fromkeys(LOGGERS,
                                                                            logging.NOTSET)
    assert {k: os.environ.get(k) for k in ENV} == dict.fromkeys(ENV)
    quiet_third_party(True)  # -v alone changes nothing
    assert {k: os.environ.get(k) for k in ENV} == dict.fromkeys(ENV)


def test_a_users_own_setting_wins(clean, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TQDM_DISABLE", "0")
    quiet_third_party(False)
    quiet_third_party(True)
    assert os.environ["TQDM_DISABLE"] == "0"


def test_a_library_that_sets_its_own_debug_level_stays_quiet(clean) -> None:
    """bm25s sets its logger to DEBUG when imported; its DEBUG lines still stay out."""
    quiet_third_party(False)
    log = logging.getLogger("bm25s")
    log.setLevel(logging.DEBUG)  # what ``import bm25s`` does
    seen: list[str] = []
    handler = logging.Handler()
    handler.emit = lambda record: seen.append(record.getMessage())  # type: ignore[method-assign]
    log.addHandler(handler)
    try:
        log.debug("Building index from IDs")
        log.warning("a real problem")
        quiet_third_party(True)
        log.setLevel(logging.DEBUG)  # as under -v, where bm25s's own level stands
        log.debug("under -v")
    finally:
        log.removeHandler(handler)
    assert seen == ["a real problem", "under -v"]


def test_transformers_bars_go_off_and_come_back(clean, monkeypatch: pytest.MonkeyPatch
                                                ) -> None:
    from transformers.utils import logging as tlog

    monkeypatch.setattr(tlog, "_tqdm_active", True)  # on, as in a fresh process
    quiet_third_party(False)
    assert not tlog.is_progress_bar_enabled()
    quiet_third_party(True)
    assert tlog.is_progress_bar_enabled()


@pytest.mark.slow
@pytest.mark.parametrize("verbose", [False, True], ids=["default", "-v"])
def test_sft_command_prints_no_library_bars_unless_verbose(tmp_path: Path, clean,
                                                           verbose: bool) -> None:
    from typer.testing import CliRunner

    from turngym.harness.cli.main import _register_commands, app

    _register_commands()
    args = ["-v"] if verbose else []
    result = CliRunner().invoke(app, [*args, "sft", "model.path=tiny", "env.id=turngym/Maze-v0",
                                      "env.kwargs={size: 2}", "sft.num_tasks=1", "sft.epochs=1",
                                      "rollout.max_turns=2", "logging.tensorboard=false",
                                      f"out_dir={tmp_path}"])
    text = result.output + (result.stderr if result.stderr_bytes else "")
    assert result.exit_code == 0, text
    assert ("Loading weights" in text) is verbose
    assert ("Writing model shards" in text) is verbose
    assert ("%|" in text) is verbose  # tqdm's bar
    # our own progress: a plain line per phase (the runner's stdout is not a terminal)
    assert [ln for ln in result.stdout.splitlines() if ln.startswith("sft: ")] == [
        "sft: expert data (1 episodes)", "sft: setup", "sft: sft (1 batches)", "sft: save"]
    assert f"model: {tmp_path / 'sft'}" in text


def test_vllm_set_up_warnings_hidden_then_restored(clean) -> None:
    """vLLM's CPU set-up warnings (logged while it is imported, some before it configures its
    own handler) stay out; its errors do not; ``-v`` shows all. The handlers sit on the
    emitting loggers: whether vLLM's records also propagate to the root depends on whether
    an earlier test imported vLLM (it then stops propagation)."""
    seen: list[str] = []
    handler = logging.Handler()
    handler.emit = lambda record: seen.append(record.getMessage())  # type: ignore[method-assign]
    log, other = logging.getLogger("vllm.triton_utils.importing"), logging.getLogger("urllib3.x")
    for lg in (log, other):
        lg.addHandler(handler)
    try:
        quiet_third_party(False)
        log.warning("Triton is installed, but doesn't include CPU backend")
        log.error("a real failure")
        other.warning("a urllib3 warning")  # held at WARNING
        quiet_third_party(True)
        log.warning("under -v")
    finally:
        for lg in (log, other):
            lg.removeHandler(handler)
    assert seen == ["a real failure", "a urllib3 warning", "under -v"]


def test_vllm_future_warnings_hidden_then_restored(clean) -> None:
    """vLLM's FutureWarnings (raised from its own modules when imported) are ignored by
    default; ``-v`` removes exactly that filter again."""
    import warnings

    def shown(module: str) -> int:
        with warnings.catch_warnings(record=True) as got:
            warnings.warn_explicit("deprecated", FutureWarning, "x.py", 1, module=module)
        return len(got)

    quiet_third_party(False)
    assert shown("vllm.triton_utils.dispatcher") == 0
    assert shown("mypkg.vllm_helpers") == 1  # only vLLM's own modules
    before = len(warnings.filters)
    quiet_third_party(True)
    assert len(warnings.filters) == before - 1
    assert shown("vllm.triton_utils.dispatcher") == 1
