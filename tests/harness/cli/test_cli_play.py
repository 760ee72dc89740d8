"""``turngym envs play`` through typer's runner with piped input: env texts verbatim (no rich
markup), meta-commands handled locally, and an empty line that is no turn."""

from __future__ import annotations

from typing import Any

import pytest
from typer.testing import CliRunner

from turngym import envs
from turngym.envs import TurnEnv
from turngym.harness.cli.cmd_envs import META_COMMANDS, envs_app

#: Wide enough that no observation line wraps inside the panel.
WIDE = {"COLUMNS": "500"}


def play(*args: str, stdin: str) -> str:
    """The output of ``turngym envs play ARGS`` fed ``stdin``; it must exit 0."""
    result = CliRunner().invoke(envs_app, ["play", *args], input=stdin, env=WIDE)
    assert result.exit_code == 0, f"{result.output}\n{result.exception!r}"
    return result.output


def panels(output: str) -> list[tuple[str, str]]:
    """``(title, text)`` of every panel printed, the text's lines right-stripped."""
    found, lines = [], output.splitlines()
    for i, line in enumerate(lines):
        if line.startswith("╭"):
            title = line.strip("╭╮─").strip()
            body = []
            for inner in lines[i + 1:]:
                if inner.startswith("╰"):
                    break
                body.append(inner[2:-2].rstrip())  # "│ " ... " │"
            found.append((title, "\n".join(body)))
    return found


def plain(obs: str) -> str:
    """``obs`` as a panel shows it: each line right-stripped."""
    return "\n".join(line.rstrip() for line in obs.splitlines())


def expert_run(env_id: str, n: int, seed: int = 0, **options: Any) -> tuple[list[str], list[str]]:
    """The first ``n`` expert actions from ``reset(seed, options)`` and the observations
    (reset's first, then one per action)."""
    env = envs.make(env_id)
    obs, _ = env.reset(seed=seed, options=options or None)
    actions, observations = [], [obs]
    for _ in range(n):
        actions.append(env.unwrapped.expert_action())
        observations.append(env.step(actions[-1])[0])
    env.close()
    return actions, observations


def test_webshop_page_and_hint_are_verbatim() -> None:
    (search, click), (first, results, _) = expert_run("turngym/WebShop-v0", 2)
    # The fixture has what markup used to eat: [next >], a bracketed product id, click[...].
    assert "[next >]" in results and f"[{click[len('click['):-1]}]" in results
    assert search.startswith("search[") and click.startswith("click[")
    out = play("turngym/WebShop-v0", stdin=f"{search}\n:hint\n:quit\n")
    assert panels(out) == [("turn 0", plain(first)), ("turn 1", plain(results))]
    assert f"\nexpert: {click}\n" in out


def test_household_help_keeps_its_placeholders() -> None:
    env = envs.make("turngym/Household-v0")
    env.reset(seed=0)
    help_text = env.step("help")[0]
    env.close()
    assert "go to [receptacle]" in help_text and "put [object] in/on [receptacle]" in help_text
    out = play("turngym/Household-v0", stdin="help\n:quit\n")
    assert panels(out)[1] == ("turn 1", plain(help_text))


@pytest.mark.parametrize("env_id, task_id", [("turngym/Maze-v0", "train-00000"),
                                             ("turngym/Sokoban-v0", "train-00007")])
def test_hint_prints_the_expert_action_and_is_no_turn(env_id: str, task_id: str) -> None:
    (move,), _ = expert_run(env_id, 1, task_id=task_id)
    out = play(env_id, "--task-id", task_id, stdin=":hint\n:quit\n")
    assert f"\nexpert: {move}\n" in out
    assert [title for title, _ in panels(out)] == ["turn 0"]


def test_empty_lines_do_not_burn_a_turn() -> None:
    out = play("turngym/Maze-v0", "--task-id", "train-00000", stdin="\n   \nright\n\n:quit\n")
    assert [title for title, _ in panels(out)] == ["turn 0", "turn 1"]
    assert out.count("reward ") == 1


def test_undo_returns_to_the_previous_observation_exactly() -> None:
    (m1, m2), (_, after_m1, after_m2) = expert_run("turngym/Sokoban-v0", 2, task_id="train-00007")
    out = play("turngym/Sokoban-v0", "--task-id", "train-00007",
               stdin=f"{m1}\n{m2}\n:undo\n{m2}\n:quit\n")
    assert panels(out) == [panels(out)[0], ("turn 1", plain(after_m1)),
                           ("turn 2", plain(after_m2)), ("turn 1", plain(after_m1)),
                           ("turn 2", plain(after_m2))]
    assert f"undid {m2!r}" in out
    totals = [line.split("total ")[1] for line in out.splitlines() if "total " in line]
    assert totals[1] == totals[2]  # the replay restored the return of turn 1 too


def test_undo_with_nothing_to_undo() -> None:
    out = play("turngym/Maze-v0", "--task-id", "train-00000", stdin=":undo\n:quit\n")
    assert "> :undo\nnothing to undo\n" in out
    assert [title for title, _ in panels(out)] == ["turn 0"]


def test_reset_restarts_the_episode() -> None:
    _, (first, *_) = expert_run("turngym/Maze-v0", 0, task_id="train-00000")
    out = play("turngym/Maze-v0", "--task-id", "train-00000", stdin="right\n:reset\nright\n")
    assert [title for title, _ in panels(out)] == ["turn 0", "turn 1", "turn 0", "turn 1"]
    assert panels(out)[0] == panels(out)[2] == ("turn 0", plain(first))
    assert "new episode (same task and seed)" in out
    assert out.endswith("> \nbye\n")  # end of input ends cleanly


def test_help_actions_and_unknown_commands() -> None:
    out = play("turngym/Maze-v0", "--task-id", "train-00000", stdin=":actions\n:xyz\n:help\n")
    assert "> :actions\nactions: right\n" in out
    assert "> :xyz\nunknown command ':xyz', :help lists them\n" in out
    listing = "".join(f"  {name:<9} {what}\n" for name, what in META_COMMANDS)
    assert f"> :help\n{listing}" in out
    assert {name for name, _ in META_COMMANDS} == {":help", ":actions", ":hint", ":reset",
                                                   ":undo", ":quit"}


class _Bare(TurnEnv):
    """A one-state env without admissible actions whose texts look like rich markup."""

    family = "bare"
    resets = 0

    def task_ids(self, split: str | None = None) -> list[str]:
        return ["[t]-0"]

    def _reset(self, task_id: str) -> str:
        return "[bold]start[/bold] [next >] [b0x]"

    def _step(self, action: str) -> tuple[str, float, bool, bool, bool]:
        return f"you said [{action}]", 0.0, False, True, False

    def state_key(self) -> str:
        return "s"

    def expert_action(self) -> str | None:
        return None


class _NoExpert(_Bare):
    def expert_action(self) -> str | None:
        raise NotImplementedError


class _Drifting(_Bare):
    """Each reset shows a new number: a replay cannot reproduce the episode."""

    def _reset(self, task_id: str) -> str:
        type(self).resets += 1
        return f"reset number {type(self).resets}"

    def _step(self, action: str) -> tuple[str, float, bool, bool, bool]:
        return f"{action} after reset number {type(self).resets}", 0.0, False, True, False


@pytest.mark.parametrize("cls, hint", [(_Bare, "the expert has no move from here"),
                                       (_NoExpert, "this env has no expert")])
def test_env_without_actions_or_expert(monkeypatch, cls: type, hint: str) -> None:
    monkeypatch.setattr("turngym.envs.registration.make", lambda env_id, **kw: cls())
    out = play("fake/Bare-v0", stdin="[i]\n:actions\n:hint\n:quit\n")
    assert "fake/Bare-v0 task [t]-0  (:help lists the commands, :quit stops)" in out
    assert panels(out) == [("turn 0", "[bold]start[/bold] [next >] [b0x]"),
                           ("turn 1", "you said [[i]]")]
    assert "> :actions\nthis env does not list its actions; :hint shows the expert's\n" in out
    assert f"> :hint\n{hint}\n" in out


def test_undo_warns_when_the_replay_differs(monkeypatch) -> None:
    monkeypatch.setattr("turngym.envs.registration.make", lambda env_id, **kw: _Drifting())
    out = play("fake/Drifting-v0", stdin="a\nb\n:undo\n:quit\n")
    assert "the replay did not reproduce the earlier observation" in out
    assert [title for title, _ in panels(out)] == ["turn 0", "turn 1", "turn 2", "turn 1"]


@pytest.mark.parametrize("stop", [EOFError, KeyboardInterrupt])
def test_a_terminal_reads_with_input_and_readline(monkeypatch, stop: type) -> None:
    import io
    import sys

    from rich.console import Console

    from turngym.harness.cli.cmd_envs import _line_reader

    pytest.importorskip("readline")
    typed, prompts = iter(["right", ""]), []

    def fake_input(prompt: str) -> str:
        prompts.append(prompt)
        line = next(typed, None)
        if line is None:
            raise stop
        return line

    monkeypatch.setattr("sys.stdin", type("Tty", (), {"isatty": lambda self: True})())
    monkeypatch.setattr("builtins.input", fake_input)
    monkeypatch.delitem(sys.modules, "readline", raising=False)
    read = _line_reader(Console(file=io.StringIO()))
    assert "readline" in sys.modules  # imported for input()'s line editing and history
    assert [read(), read(), read()] == ["right", "", None]
    assert prompts == ["> ", "> ", "> "]
