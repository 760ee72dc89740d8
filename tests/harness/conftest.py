"""Fixtures of the harness tests: the tiny model after an SFT warm start."""

from __future__ import annotations

import pytest

#: Maze 2x2, short episodes, the tiny model. SFT at a high learning rate: the tiny model
#: learns to write ``<action>move</action>`` in a few epochs.
SFT_TINY = ["model.path=tiny", "env.id=turngym/Maze-v0", "env.kwargs={size: 2}",
            "rollout.max_turns=4", "rollout.max_tokens=8", "rollout.history_length=0",
            "rollout.max_prompt_tokens=512", "eval.num_tasks=8", "eval.temperature=0.0",
            "optim.micro_batch_size=8", "logging.plot=false", "logging.progress=false",
            "logging.tensorboard=false"]


@pytest.fixture(scope="session")
def sft_overrides() -> list[str]:
    """:data:`SFT_TINY`: the settings the SFT'd tiny model was trained and is evaluated with."""
    return list(SFT_TINY)


@pytest.fixture(scope="session")
def sft_run(tmp_path_factory) -> dict:
    """``run_sft`` of the tiny model on 16 expert mazes (6 epochs): its result dict."""
    from turngym.harness.config import load_config
    from turngym.harness.sft import run_sft

    out = tmp_path_factory.mktemp("sft")
    cfg = load_config(None, [*SFT_TINY, f"out_dir={out}", "sft.num_tasks=16", "sft.epochs=6",
                             "sft.lr=3e-3", "sft.batch_size=8"])
    return run_sft(cfg)
