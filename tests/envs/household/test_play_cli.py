"""`turngym envs play turngym/Household-v0`: a person can play it in the terminal."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

TURNGYM = str(Path(sys.executable).parent / "turngym")
PLAN = ["go to shelf 1", ":hint", "take plate 1 from shelf 1", "go to microwave 1",
        "heat plate 1 with microwave 1", "go to cabinet 1", "open cabinet 1",
        "put plate 1 in cabinet 1"]


def test_play_household_to_a_win_by_typing_commands() -> None:
    out = subprocess.run([TURNGYM, "envs", "play", "turngym/Household-v0", "--task-id",
                          "valid_seen-00004", "-k", "split=valid_seen"],
                         input="\n".join(PLAN) + "\n", capture_output=True, text=True,
                         timeout=120, env={**os.environ, "COLUMNS": "200", "TERM": "dumb"})
    assert out.returncode == 0, out.stderr
    assert "Your task is to: put a hot plate in cabinet." in out.stdout
    assert "expert: take plate 1 from shelf 1" in out.stdout
    assert "WON: terminated after 7 turns, return +10.00" in out.stdout
