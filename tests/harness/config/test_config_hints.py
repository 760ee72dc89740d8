"""Config errors that suggest the fix: a misspelt key gets "did you mean", a value given to
a whole section names the section's main key."""

from __future__ import annotations

import pytest

from turngym.errors import ConfigError
from turngym.harness.config import load_config


@pytest.mark.parametrize(("override", "message"), [
    ("algo.nme=grpo", "algo.nme: unknown key (got 'grpo') (did you mean algo.name?)"),
    ("stps=3", "stps: unknown key (got 3) (did you mean steps?)"),
    ("algo.loss.kl_coeff=0", ("algo.loss.kl_coeff: unknown key (got 0) (did you mean "
                              "algo.loss.kl_coef?)")),
    ("algo.advantage.gama=1", ("algo.advantage.gama: unknown key (got 1) (did you mean "
                               "algo.advantage.gamma?)")),
    ("algo.adv.gamma=1", ("algo.adv was renamed algo.advantage (the estimator's typed settings, "
                          "e.g. algo.advantage.gamma; algo.name picks the estimator)")),
    ("model=tiny", "model: a section, not a value (got 'tiny') (did you mean model.path=tiny?)"),
    ("env=turngym/Maze-v0", ("env: a section, not a value (got 'turngym/Maze-v0') (did you "
                             "mean env.id=turngym/Maze-v0?)")),
    ("zzz=1", "zzz: unknown key (got 1)"),  # nothing close: no suggestion
])
def test_config_error_suggests_the_key(override: str, message: str) -> None:
    with pytest.raises(ConfigError) as err:
        load_config(None, [override])
    assert str(err.value) == f"bad config: {message}"
