"""The README's "add an environment" example must keep working and pass the checker."""

from __future__ import annotations

import importlib
import re
import sys
from pathlib import Path

from turngym.envs.checker import check_env
from turngym.envs.registration import registry

README = Path(__file__).resolve().parents[1] / "README.md"


def test_readme_env_example_passes_checker(tmp_path, monkeypatch) -> None:
    text = README.read_text()
    block = re.search(r"```python\n(# my_envs/counter.py.*?)```", text, re.S)
    assert block, "README lost its env example"
    # A real module file, as a user would have it (an exec'd class could not be pickled).
    (tmp_path / "readme_counter.py").write_text(block.group(1))
    monkeypatch.syspath_prepend(str(tmp_path))
    try:
        importlib.import_module("readme_counter")
        report = check_env("acme/CountTo-v0")
        assert report.passed, report.failures()
    finally:
        registry.pop("acme/CountTo-v0", None)
        sys.modules.pop("readme_counter", None)


def test_readme_names_exactly_two_setup_commands() -> None:
    text = README.read_text()
    setup = text.split("## Set up and run", 1)[1].split("```bash", 1)[1].split("```", 1)[0]
    commands = [line.split("#")[0].strip() for line in setup.strip().splitlines()]
    assert commands == ["make quickstart", "make test"]
    makefile = (README.parent / "Makefile").read_text()
    assert "quickstart:" in makefile and "test:" in makefile
