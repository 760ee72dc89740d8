"""``turngym envs list | check ID | play ID``."""

from __future__ import annotations

import sys
from collections.abc import Callable
from typing import TYPE_CHECKING

import typer
from rich.console import Console
from rich.panel import Panel
from rich.text import Text

from turngym.harness.cli.kwargs import parse_kwargs
from turngym.harness.cli.output import emit_table, json_option

if TYPE_CHECKING:
    import gymnasium as gym

envs_app = typer.Typer(help="List, check and play the registered environments.",
                       no_args_is_help=True)
console = Console()


@envs_app.command("list")
def list_envs(all_: bool = typer.Option(False, "--all", help="Include envs whose optional "
                                         "packages are not installed."),
              json_out: bool = json_option()) -> None:
    """A table of every registered env: id, family, tools, max turns."""
    from turngym.envs.registration import list_ids, spec

    rows = []
    for env_id in list_ids(include_unavailable=all_):
        s = spec(env_id)
        tools: list[str] | str = []
        if s.available():
            try:
                cls = s.load()
                tools = [t["function"]["name"] if "function" in t else t.get("name", "?")
                         for t in (getattr(cls, "tools", None) or [])]
            except Exception as exc:  # a broken env must not break the listing
                tools = f"import failed: {exc}"
        needs = None if s.available() else f"pip install turngym[{s.extra}]"
        rows.append([env_id, s.family, tools, s.max_turns, needs])
    emit_table(["id", "family", "tools", "max_turns", "needs"], rows,
               title="turngym environments", json_out=json_out, console=console,
               right=["max_turns"], formats={"tools": _tool_names})


def _tool_names(tools: list[str] | str) -> str:
    return tools if isinstance(tools, str) else ", ".join(tools) or "-"


@envs_app.command("check")
def check(env_id: str = typer.Argument(..., help="Env id, e.g. turngym/Sokoban-v0."),
          kwarg: list[str] = typer.Option([], "--kwarg", "-k", help="KEY=VALUE env kwargs."),
          json_out: bool = json_option()) -> None:
    """Run the contract checker and print a pass/fail table. Exit 1 on any failure."""
    from turngym.envs.checker import check_env
    from turngym.envs.registration import spec

    spec(env_id)  # unknown ids fail here with a "did you mean"
    report = check_env(env_id, **parse_kwargs(kwarg))
    rows = [[r.name, "pass" if r.passed else "FAIL", r.seconds, r.message]
            for r in report.results]
    emit_table(["check", "result", "seconds", "details"], rows, title=f"env check: {env_id}",
               json_out=json_out, console=console, right=["seconds"],
               formats={"seconds": "{:.2f}"},
               styles={"result": {"pass": "green", "FAIL": "bold red"}})
    if not report.passed:
        raise typer.Exit(1)


# Meta-commands of `envs play`: handled here, never sent to the env.
META_COMMANDS: tuple[tuple[str, str], ...] = (
    (":help", "list these commands"),
    (":actions", "the actions the env accepts now (when it lists them)"),
    (":hint", "the expert's next action"),
    (":reset", "start the episode again (same task and seed)"),
    (":undo", "take back the last action (replays the others from a reset)"),
    (":quit", "stop (end of input and Ctrl-C stop too)"),
)


def _line_reader(out: Console) -> Callable[[], str | None]:
    """The next input line without its newline, or ``None`` at the end of input.

    On a terminal: ``input()`` with line editing and history (``readline``, when Python has
    it). On a pipe: ``sys.stdin.readline``, so scripted input works line by line."""
    if sys.stdin.isatty():
        try:
            import readline  # noqa: F401  (importing it gives input() editing and history)
        except ImportError:
            pass

        def read_tty() -> str | None:
            try:
                return input("> ")
            except (EOFError, KeyboardInterrupt):
                out.print()
                return None
        return read_tty

    def read_pipe() -> str | None:
        out.print("> ", end="")
        try:
            line = sys.stdin.readline()
        except KeyboardInterrupt:
            line = ""
        line = line.rstrip("\r\n") if line else None
        out.print(Text(line or ""))  # echo: the transcript shows what was typed
        return line
    return read_pipe


class _Session:
    """One ``envs play`` episode: the env, the actions typed so far and their returns.

    Every text from the env (observations, actions, the expert's move, the task id) is
    printed as a rich ``Text``, never parsed as markup: ``[next >]`` stays ``[next >]``."""

    def __init__(self, env: gym.Env, seed: int, options: dict | None, out: Console):
        self.env, self.seed, self.options, self.out = env, seed, options, out
        self.actions: list[str] = []
        self.observations: list[str] = []  # the observation at each turn, 0 = after reset
        self.total = 0.0
        self.ended = False
        self.obs, self.info = "", {}

    def reset(self) -> None:
        self.obs, self.info = self.env.reset(seed=self.seed, options=self.options)
        self.actions, self.observations, self.total = [], [self.obs], 0.0

    def step(self, action: str) -> tuple[float, bool, bool]:
        """Send ``action`` to the env; returns ``(reward, terminated, truncated)``."""
        self.obs, reward, term, trunc, self.info = self.env.step(action)
        self.actions.append(action)
        self.observations.append(self.obs)
        self.total += float(reward)
        return float(reward), term, trunc

    def show(self) -> None:
        self.out.print(Panel(Text(self.obs), title=f"turn {len(self.actions)}"))
        if self.info.get("admissible_actions"):
            self.out.print(Text("actions: " + " | ".join(self.info["admissible_actions"])))

    def play(self, action: str) -> None:
        """One turn; prints the reward, and the outcome when the episode ends."""
        reward, term, trunc = self.step(action)
        line = Text(f"reward {reward:+.2f}  total {self.total:+.2f}")
        if not self.info["action_valid"]:
            line.append("  (invalid action)", style="yellow")
        self.out.print(line)
        if term or trunc:
            self.ended = True
            self.out.print(Panel(Text(self.obs), title="final"))
            outcome = Text("WON", style="green") if self.info["won"] else Text("not won", "red")
            why = "terminated" if term else "truncated (turn limit)"
            self.out.print(outcome + Text(f": {why} after {len(self.actions)} turns, "
                                          f"return {self.total:+.2f}"))
        else:
            self.show()

    def meta(self, command: str) -> None:
        """Run one meta-command (``:quit`` is the caller's)."""
        if command == ":help":
            for name, what in META_COMMANDS:
                self.out.print(Text(f"  {name:<9} {what}"))
            self.out.print(Text("  anything else is an action for the env; an empty line "
                                "does nothing"))
        elif command == ":actions":
            acts = self.info.get("admissible_actions")
            if acts is None:
                self.out.print("this env does not list its actions; :hint shows the expert's")
            else:
                self.out.print(Text("actions: " + (" | ".join(acts) if acts else "(none now)")))
        elif command == ":hint":
            self.hint()
        elif command == ":reset":
            self.reset()
            self.out.print("new episode (same task and seed)")
            self.show()
        elif command == ":undo":
            self.undo()
        else:
            self.out.print(Text(f"unknown command {command!r}, :help lists them"))

    def hint(self) -> None:
        try:
            move = self.env.unwrapped.expert_action()
        except NotImplementedError:
            self.out.print("this env has no expert")
            return
        if move is None:
            self.out.print("the expert has no move from here")
        else:
            self.out.print(Text("expert: ") + Text(move, style="green"))

    def undo(self) -> None:
        """Reset with the same seed and options and replay every action but the last."""
        if not self.actions:
            self.out.print("nothing to undo")
            return
        *keep, last = self.actions
        expected = self.observations[len(keep)]
        self.reset()
        for action in keep:
            self.step(action)
        self.out.print(Text(f"undid {last!r}"))
        if self.obs != expected:
            self.out.print(Text("the replay did not reproduce the earlier observation: this "
                                "env is not deterministic from a seed", style="yellow"))
        self.show()


@envs_app.command("play")
def play(env_id: str = typer.Argument(..., help="Env id, e.g. turngym/Sokoban-v0."),
         task_id: str | None = typer.Option(None, "--task-id", help="Task to play."),
         seed: int = typer.Option(0, help="Reset seed."),
         kwarg: list[str] = typer.Option([], "--kwarg", "-k",
                                         help="KEY=VALUE env kwargs.")) -> None:
    """Play an env in the terminal. Type an action; `:help` lists the commands (`:hint`,
    `:actions`, `:undo`, `:reset`, `:quit`)."""
    from turngym.envs.registration import make

    out = Console(highlight=False, emoji=False)
    env = make(env_id, **parse_kwargs(kwarg))
    try:
        session = _Session(env, seed, {"task_id": task_id} if task_id else None, out)
        session.reset()
        out.print(Text(env_id, style="bold") + Text(" task ")
                  + Text(str(session.info["task_id"]), style="cyan")
                  + Text("  (:help lists the commands, :quit stops)"))
        session.show()
        read = _line_reader(out)
        while not session.ended:
            line = read()
            if line is None or line.strip() == ":quit":
                out.print("bye")
                break
            if not line.strip():
                continue  # an empty line is no action: re-prompt, same turn
            if line.strip().startswith(":"):
                session.meta(line.strip())
            else:
                session.play(line)
    finally:
        env.close()


def register(app: typer.Typer) -> None:
    app.add_typer(envs_app, name="envs")
