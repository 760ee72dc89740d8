"""``check-template``: append-only multi-turn rendering and env-text masking."""

from __future__ import annotations

import copy

import pytest

from turngym.agents.template_check import DEFAULT_CONVERSATION
from turngym.harness.cli.main import main as cli

# A Qwen3-style template that strips <think> blocks from earlier assistant turns.
THINK_STRIPPING = (
    "{% for m in messages %}<|im_start|>{{ m['role'] }}\n"
    "{% if m['role'] == 'assistant' and not loop.last %}"
    "{{ m['content'].split('</think>')[-1] }}{% else %}{{ m['content'] }}{% endif %}"
    "<|im_end|>\n{% endfor %}{% if add_generation_prompt %}<|im_start|>assistant\n{% endif %}")


def test_smollm2_template_is_append_only(tiny_tokenizer, check_template):
    report = check_template(tiny_tokenizer)
    assert report.ok and report.append_only and report.mask_ok
    assert report.divergence is None and report.turns == len(DEFAULT_CONVERSATION)
    assert report.window_break_turn == 3  # window 2: turn 3 drops turn 0 from the prompt


@pytest.mark.parametrize("history_length,expected", [(0, 1), (1, 2), (4, None)])
def test_window_break_turn(tiny_tokenizer, check_template, history_length, expected):
    assert check_template(tiny_tokenizer, history_length=history_length).window_break_turn \
        == expected


def test_think_stripping_template_diverges(tiny_tokenizer, check_template):
    tok = copy.deepcopy(tiny_tokenizer)
    tok.chat_template = THINK_STRIPPING
    report = check_template(tok)
    assert not report.ok and not report.append_only
    d = report.divergence
    assert d.turn == 1
    assert d.expected_text.startswith("think>")  # what the model generated (after "<") ...
    assert d.got_text.startswith("action>")  # ... is not what turn 1 prompt holds
    assert "NOT append-only" in report.format() and "turn 1" in report.format()


def test_cli_ok_and_failure(tiny_model_dir, tmp_path, capsys):
    assert cli(["check-template", str(tiny_model_dir)]) == 0
    out = capsys.readouterr().out
    assert "OK" in out and "append-only" in out and "env-text mask: ok" in out
    bad = tmp_path / "bad"
    bad.mkdir()
    for f in tiny_model_dir.iterdir():
        if f.name.startswith("tokenizer") or f.name in ("config.json", "special_tokens_map.json",
                                                        "chat_template.jinja"):
            (bad / f.name).write_bytes(f.read_bytes())
    (bad / "chat_template.jinja").write_text(THINK_STRIPPING)
    assert cli(["check-template", str(bad)]) == 1
    out = capsys.readouterr().out
    assert "FAILED" in out and "first divergence at turn 1" in out


def test_cli_bad_model_names_it(capsys):
    assert cli(["check-template", "/no/such/model"]) == 2
    assert "/no/such/model" in capsys.readouterr().err
