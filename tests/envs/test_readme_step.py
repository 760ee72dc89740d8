"""The README names the five values ``_step`` returns, as ``TurnEnv._step`` defines them,
and each lands where the README says."""

from __future__ import annotations

import re
from pathlib import Path

from turngym.envs.core import TurnEnv

README = Path(__file__).resolve().parents[2] / "README.md"


def _readme_values() -> list[str]:
    section = README.read_text().split("**What `_step` returns.**", 1)[1]
    section = section.split("\n\n", 2)[1]  # the list after the lead sentence
    return re.findall(r"^- `(\w+)` \(", section, re.MULTILINE)


def test_readme_lists_the_five_step_values_of_the_contract() -> None:
    doc = TurnEnv._step.__doc__ or ""
    contract = re.search(r"return ``\(([^)]*)\)``", doc).group(1).split(", ")
    assert contract == ["obs", "reward", "terminated", "action_valid", "won"]
    assert _readme_values() == contract


class _Fixed(TurnEnv):
    """Returns a fixed ``_step`` tuple. Info keys: state_key, action_valid, won, task_id,
    admissible_actions."""

    def __init__(self, result: tuple) -> None:
        super().__init__()
        self.result = result

    def task_ids(self, split=None):
        return ["t"]

    def _reset(self, task_id):
        return "start"

    def _step(self, action):
        return self.result

    def state_key(self):
        return "s"

    def expert_action(self):
        return None


def test_step_maps_the_five_values_as_the_readme_says() -> None:
    env = _Fixed(("next", 1, 1, 0, True))  # ints, and a `won` that disagrees with won()
    env.reset(seed=0)
    obs, reward, term, trunc, info = env.step("a")
    assert (obs, reward, term, trunc) == ("next", 1.0, True, False)
    assert type(reward) is float and type(term) is bool
    assert (info["action_valid"], info["won"]) == (False, False)  # won() decides info["won"]
