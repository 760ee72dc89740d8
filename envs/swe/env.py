"""``turngym/SWE-v0``: fix a bug in a small Python project with tools in a sandbox."""

from __future__ import annotations

import hashlib
import logging
import shutil
from pathlib import Path
from typing import Any

from turngym.envs.core import MAX_ACTION_CHARS, TurnEnv
from turngym.envs.swe import grading, safe_fs, tree
from turngym.envs.swe import tools as T
from turngym.envs.swe.backends import default_backend, resolve_backend
from turngym.envs.swe.docker_sandbox import image_exists
from turngym.envs.swe.injector import gold_edit
from turngym.envs.swe.pool import SandboxPool
from turngym.envs.swe.sandbox import RUNNER_INSIDE, UNSAFE, Limits, Sandbox
from turngym.envs.swe.tasks import (
    PROJECTS_DIR,
    Task,
    buggy_files,
    load_tasks,
    project_files,
    write_files,
)
from turngym.errors import ConfigError

logger = logging.getLogger(__name__)
RUNNER = Path(__file__).resolve().parent / "runner.py"
MAX_BASH_TIMEOUT = 60.0
#: The command that runs a project's visible tests inside the sandbox.
TEST_COMMAND = f"python3 {RUNNER_INSIDE} --root . --tests tests"


class SWEEnv(TurnEnv):
    """Fix a bug in a small Python repository, using tools inside a sandbox.

    **Description.** Each task is one of the shipped projects (``envs/swe/projects``) with
    one injected bug (a verified mutant, see :mod:`turngym.envs.swe.injector`). The agent reads the
    issue, explores ``/workspace`` and edits files; ``submit`` runs the hidden tests.

    **Actions.** One tool call as JSON: ``{"name": "bash", "arguments": {"command": "ls"}}``
    (``arguments`` may be a JSON string; ``<tool_call>...</tool_call>`` around it is
    accepted). Anything else, an unknown tool, bad arguments, or a failing ``view``/``edit``
    /``create`` is invalid (``action_valid=False``) and changes nothing.

    **Tools** (:data:`tools`, OpenAI schemas): ``bash(command, timeout=10)``,
    ``view(path, start, end)``, ``edit(path, old, new)`` (``old`` must occur exactly once),
    ``create(path, content)``, ``submit()``. Outputs longer than 4000 characters are cut
    with a ``[... N characters truncated ...]`` marker.

    **Observations.** The first one holds the issue and the file list; later ones are the
    tool's output (``bash``: exit code and output).

    **Rewards.** After ``submit``: 1.0 if every FAIL_TO_PASS and PASS_TO_PASS test passes,
    else 0.0. Other steps: 0.0.

    **Episode end.** ``terminated`` after ``submit``. The turn budget (``max_turns``) is
    the :class:`~turngym.envs.core.TurnLimit` wrapper's.

    **Info keys.** ``state_key`` (hash of the workspace files plus the last test outcome),
    ``action_valid``, ``won``, ``task_id``, ``admissible_actions`` (always ``None``), and:
    ``task_type`` (the mutation operator), ``backend`` (``docker``, ``bwrap`` or
    ``local-unsafe``), ``submitted`` (bool), ``tests_passed`` and ``tests_total`` (ints, from the
    last hidden-test run; 0 before it) and ``pass_fraction`` (their ratio, 0.0 before).

    **Arguments.** ``backend`` (``auto``: docker if an engine answers and the image exists,
    else bwrap if installed; never ``local-unsafe`` on its own), ``split``
    (``train``/``test``/``None``), ``tasks_file`` (a task JSONL; default the shipped one),
    ``pool_size`` (warm sandboxes kept ready), ``bash_timeout`` (s), ``test_timeout`` (s),
    ``memory_mb``, ``pids``, ``image`` (docker image tag), ``unsafe_local`` (must be True to
    use ``backend="local-unsafe"``, alias ``local``, which is NOT isolated: docs/swe.md).
    """

    family = "swe"
    slow_steps = True
    splits = ("train", "test")
    tools = T.TOOLS
    extra_info_keys = ("task_type", "backend", "submitted", "tests_passed", "tests_total",
                       "pass_fraction")

    def __init__(self, backend: str = "auto", split: str | None = None,
                 tasks_file: str | None = None, pool_size: int = 0, bash_timeout: float = 10.0,
                 test_timeout: float = 60.0, memory_mb: int = 1024, pids: int = 128,
                 image: str = "turngym-swe:bookworm", unsafe_local: bool = False,
                 render_mode: str | None = None):
        super().__init__(render_mode)
        if split not in (None, "train", "test"):
            raise ConfigError(f"split={split!r}: use 'train', 'test' or None")
        for key, value in (("bash_timeout", bash_timeout), ("test_timeout", test_timeout),
                           ("memory_mb", memory_mb), ("pids", pids)):
            if not value > 0:
                raise ConfigError(f"{key} must be > 0, got {value!r}")
        if pool_size < 0:
            raise ConfigError(f"pool_size must be >= 0, got {pool_size!r}")
        self.backend = _pick_backend(image, backend, unsafe_local)
        self.split, self.tasks_file = split, tasks_file
        self.pool_size, self.image = pool_size, image
        self.bash_timeout, self.test_timeout = float(bash_timeout), float(test_timeout)
        self.limits = Limits(memory_mb=int(memory_mb), pids=int(pids))
        tasks = load_tasks(tasks_file)
        self._tasks: dict[str, Task] = {t.task_id: t for t in tasks}
        self._ids = [t.task_id for t in tasks if split is None or t.split == split]
        if not self._ids:
            raise ConfigError(f"split={split!r} has no tasks in {tasks_file or 'the shipped file'}")
        self._sandbox: Sandbox | None = None
        self._pool: SandboxPool | None = None
        self._dirty = False
        self._clear_progress()

    # ------------------------------------------------------------------ contract
    def task_ids(self, split: str | None = None) -> list[str]:
        if split is None:  # this env's own split (all tasks when it was built with None)
            return list(self._ids)
        return [i for i, t in self._tasks.items() if t.split == split]

    @property
    def task(self) -> Task:
        """The current task."""
        assert self.task_id is not None, "reset() first"
        return self._tasks[self.task_id]

    def _reset(self, task_id: str) -> str:
        self._clear_progress()
        box = self._box(fresh=True)
        box.reset_workspace()
        files = buggy_files(self._tasks[task_id])
        write_files(files, box.work)
        return _first_observation(self._tasks[task_id], files)

    def _step(self, action: str) -> tuple[str, float, bool, bool, bool]:
        if self.submitted:
            return "The task was already submitted; call reset() to start again.", 0.0, True, \
                False, self.won()
        try:
            call = T.parse_action(action)
            if call.name == "submit":
                return self._submit()
            return self._run_tool(call), 0.0, False, True, False
        except T.ToolError as exc:
            return str(exc), 0.0, False, False, False

    def _run_tool(self, call: T.ToolCall) -> str:
        args, work = call.arguments, self._box().work
        if call.name == "bash":
            timeout = float(args.get("timeout", self.bash_timeout))
            if not 0 < timeout < float("inf"):
                raise T.ToolError("bash: timeout must be a positive number of seconds.")
            timeout = min(timeout, MAX_BASH_TIMEOUT)
            self._dirty = True
            res = self._box().exec(args["command"], timeout=timeout)
            if res.timed_out:
                head = f"[timed out after {timeout:g}s; every process it started was killed]"
            else:
                head = f"[exit code {res.exit_code}]"
            return f"{head}\n{T.truncate(res.output)}"
        try:
            if call.name == "view":
                return T.truncate(T.view(work, args["path"], args.get("start"), args.get("end")))
            if call.name == "edit":
                return T.edit(work, args["path"], args["old"], args["new"])
            return T.create(work, args["path"], args["content"])
        except OSError as exc:
            raise T.ToolError(f"{call.name}: {exc.strerror or exc}") from None

    def _submit(self) -> tuple[str, float, bool, bool, bool]:
        """Grade with :func:`turngym.envs.swe.grading.grade`: the runner and the hidden tests are
        copied in now, after the model's last command, and the verdict comes from the clean
        grader's socket, never from the command's output."""
        task, box = self.task, self._box()
        verdict = grading.grade(box, PROJECTS_DIR / task.project / "tests", task.tests,
                                grading.project_modules(project_files(task.project)),
                                timeout=self.test_timeout)
        outcome = verdict.results
        failed = [t for t in task.tests if outcome.get(t, ("error", ""))[0] != "passed"]
        self.tests_total = len(task.tests)
        self.tests_passed = self.tests_total - len(failed)
        self.submitted = True
        self.last_outcome = "fail:" + ",".join(failed) if failed else "pass"
        lines = [f"Submitted. Hidden tests: {self.tests_passed}/{self.tests_total} passed."]
        if verdict.timed_out:
            lines.append(f"The test run timed out after {self.test_timeout:g}s.")
        elif not verdict.verdict:
            lines.append("The grader sent no verdict (the test run crashed).")
        for t in failed[:10]:
            status, message = outcome.get(t, ("error", "no result (the test run crashed)"))
            lines.append(f"{status.upper()} {t}: {message}")
        return "\n".join(lines), float(not failed), True, True, not failed

    def state_key(self) -> str:
        """Hash of the workspace tree (streamed and bounded, :func:`_workspace_digest`) and
        the task and test outcome."""
        digest = hashlib.sha256()
        if self._sandbox is not None and not self._sandbox.closed:
            digest.update(_workspace_digest(self._sandbox.work).encode())
        digest.update(f"|{self.task_id}|{self.submitted}|{self.last_outcome}".encode())
        return digest.hexdigest()[:32]

    def expert_action(self) -> str | None:
        """The gold patch as one ``edit`` (while the file differs from the original), then
        ``submit``."""
        if self.task_id is None or self.submitted or self._sandbox is None:
            return None
        task = self.task
        target = project_files(task.project)[task.path]
        return _fix_action(self._sandbox.work, task.path, target) or T.tool_call("submit")

    def random_action(self, rng: Any) -> str | None:
        """A random well-formed tool call: view a random project file, run the tests, list
        the workspace, or (one time in eight) submit."""
        if self.task_id is None or self.submitted:
            return None
        files = sorted(project_files(self.task.project))
        choice = int(rng.integers(8))
        if choice == 0:
            return T.tool_call("submit")
        if choice <= 4:
            return T.tool_call("view", path=files[int(rng.integers(len(files)))])
        if choice <= 6:
            return T.tool_call("bash", command=TEST_COMMAND)
        return T.tool_call("bash", command="ls -R")

    def won(self) -> bool:
        return self.submitted and self.tests_total > 0 and self.tests_passed == self.tests_total

    def extra_info(self) -> dict[str, Any]:
        frac = self.tests_passed / self.tests_total if self.tests_total else 0.0
        return {"task_type": self._tasks[self.task_id].operator if self.task_id else "",
                "backend": self.backend, "submitted": self.submitted,
                "tests_passed": self.tests_passed, "tests_total": self.tests_total,
                "pass_fraction": float(frac)}

    # ------------------------------------------------------------------ state copy
    def _state(self) -> Any:
        """The workspace as a bounded tar (:func:`~turngym.envs.swe.tree.tar_tree`; past the bound,
        :class:`~turngym.envs.swe.tree.WorkspaceTooLargeError`) and the episode's progress."""
        return (tree.tar_tree(self._box().work), self.submitted, self.last_outcome,
                self.tests_passed, self.tests_total)

    def _set_state(self, state: Any) -> None:
        blob, self.submitted, self.last_outcome, self.tests_passed, self.tests_total = state
        box = self._box()
        box.reset_workspace()
        tree.untar_tree(blob, box.work)

    # ------------------------------------------------------------------ resources
    def _clear_progress(self) -> None:
        self.submitted = False
        self.last_outcome = "none"
        self.tests_passed = 0
        self.tests_total = 0

    def _box(self, fresh: bool = False) -> Sandbox:
        """The current sandbox; a new one when there is none, or when ``fresh`` and the old
        one may hold processes from earlier commands (docker)."""
        box = self._sandbox
        if box is not None and not box.closed and not (fresh and self._dirty
                                                        and self.backend == "docker"):
            return box
        if box is not None:
            box.close()
        if self._pool is None:
            extra = ({"image": self.image} if self.backend == "docker"
                     else {"allow_unsafe": True} if self.backend == UNSAFE else {})
            self._pool = SandboxPool(self.backend, self.pool_size, self.limits, **extra)
        self._sandbox, self._dirty = self._pool.acquire(), False
        return self._sandbox

    def close(self) -> None:
        if self._sandbox is not None:
            self._sandbox.close()
            self._sandbox = None
        if self._pool is not None:
            self._pool.close()
            self._pool = None
        super().close()

    def __getstate__(self) -> dict[str, Any]:
        """A sandbox does not travel: mid-episode, the pickle carries a :meth:`snapshot`
        instead, which :meth:`__setstate__` restores into a new sandbox."""
        state = self.__dict__.copy()
        live = self._ready and self._sandbox is not None and not self._sandbox.closed
        state["_resume"] = self.snapshot() if live else None
        state["_sandbox"], state["_pool"], state["_ready"] = None, None, False
        return state

    def __setstate__(self, state: dict[str, Any]) -> None:
        resume = state.pop("_resume", None)
        self.__dict__.update(state)
        if resume is not None:
            self.restore(resume)


def _pick_backend(image: str, backend: str = "auto", unsafe_local: bool = False) -> str:
    """The backend to use: ``backend`` checked (``local`` -> ``local-unsafe``, which needs
    ``unsafe_local=True``), or for ``auto`` docker when the image exists, else bwrap."""
    name = resolve_backend(backend, unsafe_local, key="unsafe_local")
    if name != "auto":
        return name
    name = default_backend()
    if name == "docker" and not image_exists(image):
        if not shutil.which("bwrap"):
            raise ConfigError(f"Docker answers but image {image} is missing and bubblewrap "
                              "is not installed: run `turngym swe build-image`, or install "
                              "bubblewrap")
        logger.warning("Docker answers but image %s is missing (`turngym swe build-image`);"
                       " using bwrap", image)
        name = "bwrap"
    logger.info("SWE sandbox backend: %s", name)
    return name


def _first_observation(task: Task, files: dict[str, str]) -> str:
    listing = "\n".join(f"  {p}" for p in sorted(files))
    return (f"Repository `{task.project}` is checked out in /workspace.\nFiles:\n{listing}\n\n"
            f"Issue:\n{task.issue}\n\nRun the tests with `{TEST_COMMAND}`. Use the tools to find "
            "and fix the bug, then call submit.")


def _fix_action(work: Path, rel: str, target: str) -> str | None:
    """An ``edit`` (or, failing that, a ``create``) that turns ``rel`` into ``target``;
    ``None`` when it already is. The edit covers the smallest changed region, with context
    until ``old`` is unique, so it is correct even when ``new`` contains ``old``."""
    try:
        current: str | None = safe_fs.read_bytes(work, rel, T.MAX_FILE_BYTES).decode()
    except (OSError, UnicodeDecodeError):  # missing, refused (a link, ...) or not text
        current = None
    if current == target:
        return None
    if current is not None:
        try:
            old, new = gold_edit(target, current)
            action = T.tool_call("edit", path=rel, old=old, new=new)
            if len(action) <= MAX_ACTION_CHARS:
                return action
        except ValueError:
            pass
    return T.tool_call("create", path=rel, content=target)


def _workspace_digest(work: Path) -> str:
    """Fingerprint of the workspace tree: every path and kind, file contents, link targets
    (byte-code caches included, since they change what runs), hashed in chunks within the
    bounds of :mod:`turngym.envs.swe.tree`; a tree past them gets the ``over limit`` fingerprint."""
    try:
        return tree.tree_digest(work)
    except OSError as exc:  # the workspace folder itself is gone
        return f"unreadable: {exc.errno}"
