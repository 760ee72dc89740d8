"""SWE-bench-style instance files, run with the docker backend on images the user built.

An instance file is JSON (a list) or JSONL with, per instance: ``instance_id``, ``repo``,
``base_commit``, ``patch`` (gold, unified diff), ``test_patch`` (hidden tests, unified
diff), ``FAIL_TO_PASS`` and ``PASS_TO_PASS`` (lists, or JSON strings of lists as in the
SWE-bench release); optional ``problem_statement``, ``image`` and ``test_cmd``.

Each instance needs a local image whose ``repo_dir`` (default ``/testbed``) holds the
repository at ``base_commit`` with its dependencies installed (as the SWE-bench harness
builds them). Nothing is pulled. On reset the repository is copied out of the image into
the sandbox's host workspace and bind-mounted back at ``repo_dir``; on submit the
``test_patch`` is applied on the host side and ``test_cmd`` runs in the container.

``test_cmd`` is a template with ``{tests}`` (the shell-quoted test ids). Its output is read
either as ``pytest -rA`` summary lines (``PASSED id`` / ``FAILED id``) or as the JSON lines
of :mod:`turngym.envs.swe.runner`.
"""

from __future__ import annotations

import io
import json
import logging
import os
import re
import shlex
import tarfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from turngym.envs.core import TurnEnv
from turngym.envs.swe import grading, safe_fs
from turngym.envs.swe import tools as T
from turngym.envs.swe.diffs import MAX_PATCH_FILE_BYTES, PatchError, hunk_edits
from turngym.envs.swe.docker_sandbox import DockerSandbox
from turngym.envs.swe.env import SWEEnv, _fix_action
from turngym.envs.swe.sandbox import SANDBOX_UID, Limits, Sandbox
from turngym.errors import ConfigError

logger = logging.getLogger(__name__)

REQUIRED = ("instance_id", "repo", "base_commit", "patch", "test_patch", "FAIL_TO_PASS",
            "PASS_TO_PASS")
DEFAULT_TEST_CMD = "python -m pytest -rA {tests}"
#: PATH for SWE-bench harness images (conda env ``testbed``) and plain Debian images.
DEFAULT_ENV = {"PATH": "/opt/miniconda3/envs/testbed/bin:/opt/miniconda3/bin:/usr/local/bin:"
                       "/usr/bin:/bin:/usr/sbin:/sbin", "HOME": "/tmp", "LANG": "C.UTF-8",
               "PYTHONDONTWRITEBYTECODE": "1", "GIT_CONFIG_COUNT": "1",
               "GIT_CONFIG_KEY_0": "safe.directory", "GIT_CONFIG_VALUE_0": "*"}
#: Outcomes that count as a pass.
GOOD_OUTCOMES = ("passed", "xfail")
#: The list of files of the original tree that the grading's clean-up keeps (in /hidden).
KEEP_FILE = "keep.txt"
UNTRUSTED_GRADING = (
    "trust_test_process: the SWE-bench-style env grades with the instance's own pytest run, "
    "in the same process as the model's code, which can forge its results; pass "
    "trust_test_process=True to accept that (evaluation of a trusted model), or train on "
    "turngym/SWE-v0, whose grader never shares a process with the model's code")
_PYTEST_LINE = re.compile(r"^(PASSED|FAILED|ERROR|XFAIL|XPASS|SKIPPED)\s+(\S+)")


@dataclass(frozen=True)
class Instance:
    """One SWE-bench-style task."""

    instance_id: str
    repo: str
    base_commit: str
    patch: str
    test_patch: str
    fail_to_pass: list[str] = field(default_factory=list)
    pass_to_pass: list[str] = field(default_factory=list)
    problem_statement: str = ""
    image: str | None = None
    test_cmd: str | None = None


def _as_list(value: Any, key: str, iid: str) -> list[str]:
    if isinstance(value, str):
        try:
            value = json.loads(value)
        except ValueError:
            raise ConfigError(f"instance {iid}: {key} is not a JSON list") from None
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise ConfigError(f"instance {iid}: {key} must be a list of test ids")
    return value


def load_instances(path: str | Path) -> list[Instance]:
    """Read a JSON or JSONL instance file; a missing key fails naming it."""
    file = Path(path)
    if not file.is_file():
        raise ConfigError(f"instances_file {str(file)!r} does not exist")
    text = file.read_text()
    try:
        rows = json.loads(text) if text.lstrip().startswith("[") else \
            [json.loads(line) for line in text.splitlines() if line.strip()]
    except ValueError as exc:
        raise ConfigError(f"instances_file {str(file)!r} is not JSON/JSONL: {exc}") from exc
    out = []
    for n, row in enumerate(rows, 1):
        missing = [k for k in REQUIRED if not isinstance(row, dict) or k not in row]
        if missing:
            raise ConfigError(f"instances_file {file.name} instance {n}: missing key(s) "
                              f"{', '.join(missing)}")
        iid = str(row["instance_id"])
        out.append(Instance(iid, str(row["repo"]), str(row["base_commit"]), str(row["patch"]),
                            str(row["test_patch"]),
                            _as_list(row["FAIL_TO_PASS"], "FAIL_TO_PASS", iid),
                            _as_list(row["PASS_TO_PASS"], "PASS_TO_PASS", iid),
                            str(row.get("problem_statement", "")), row.get("image"),
                            row.get("test_cmd")))
    if not out:
        raise ConfigError(f"instances_file {str(file)!r} has no instances")
    return out


def parse_test_output(output: str) -> dict[str, str]:
    """``test id -> outcome`` from pytest ``-rA`` lines or runner JSON lines. When lines
    disagree about a test, a failing outcome wins: a ``PASSED`` line printed by the code
    under test (after pytest's own ``FAILED`` line, from an exit hook) does not pass it."""
    out: dict[str, str] = {}

    def record(test: str, outcome: str) -> None:
        if out.get(test) in (None, *GOOD_OUTCOMES):
            out[test] = outcome

    for line in output.splitlines():
        if line.startswith("{"):
            try:
                row = json.loads(line)
                record(str(row["id"]), str(row["outcome"]).lower())
                continue
            except (ValueError, KeyError, TypeError, AttributeError):
                pass
        match = _PYTEST_LINE.match(line)
        if match:
            record(match.group(2), match.group(1).lower())
    return out


class SWEBenchEnv(SWEEnv):
    """SWE-bench-style instances in Docker; same tools, rewards and info keys as
    :class:`~turngym.envs.swe.env.SWEEnv` (``task_type`` is the instance's ``repo``).

    **Arguments.** ``instances_file`` (JSON/JSONL), ``image_template`` (used when an
    instance has no ``image``; ``{instance_id}`` is filled in), ``repo_dir``, ``test_cmd``
    (default ``python -m pytest -rA {tests}``), ``bash_timeout``, ``test_timeout``,
    ``memory_mb``, ``pids``, ``environment`` (container env vars), ``trust_test_process``
    (must be True: pytest runs the tests in the process that imports the model's code, so
    that code can forge its own results; see docs/swe.md, "Threat model").
    Info keys: ``state_key``, ``action_valid``, ``won``, ``task_id``,
    ``admissible_actions``, ``task_type``, ``backend``, ``submitted``, ``tests_passed``,
    ``tests_total``, ``pass_fraction``.
    """

    def __init__(self, instances_file: str, image_template: str = "sweb.eval.x86_64.{instance_id}",
                 repo_dir: str = "/testbed", test_cmd: str = DEFAULT_TEST_CMD,
                 bash_timeout: float = 30.0, test_timeout: float = 600.0, memory_mb: int = 4096,
                 pids: int = 512, environment: dict[str, str] | None = None,
                 trust_test_process: bool = False, render_mode: str | None = None):
        TurnEnv.__init__(self, render_mode)
        if trust_test_process is not True:
            raise ConfigError(UNTRUSTED_GRADING)
        for key, value in (("bash_timeout", bash_timeout), ("test_timeout", test_timeout),
                           ("memory_mb", memory_mb), ("pids", pids)):
            if not value > 0:
                raise ConfigError(f"{key} must be > 0, got {value!r}")
        if "{tests}" not in test_cmd:
            raise ConfigError(f"test_cmd {test_cmd!r} must contain {{tests}}")
        self.instances = {i.instance_id: i for i in load_instances(instances_file)}
        self._ids = list(self.instances)
        self.backend, self.pool_size, self.split = "docker", 0, None
        self.image_template, self.repo_dir, self.test_cmd = image_template, repo_dir, test_cmd
        self.environment = dict(DEFAULT_ENV if environment is None else environment)
        self.bash_timeout, self.test_timeout = float(bash_timeout), float(test_timeout)
        self.limits = Limits(memory_mb=int(memory_mb), pids=int(pids), cpu_s=int(test_timeout))
        self._sandbox: Sandbox | None = None
        self._pool = None
        self._dirty = False
        self._targets: dict[str, str | None] = {}
        self._clear_progress()

    def task_ids(self, split: str | None = None) -> list[str]:
        return list(self._ids)

    @property
    def instance(self) -> Instance:
        """The current instance."""
        assert self.task_id is not None, "reset() first"
        return self.instances[self.task_id]

    def image_of(self, inst: Instance) -> str:
        """The local image tag of ``inst``."""
        return inst.image or self.image_template.format(instance_id=inst.instance_id,
                                                        instance_id_lower=inst.instance_id.lower())

    def _box(self, fresh: bool = False) -> Sandbox:
        if self._sandbox is not None and not self._sandbox.closed and not fresh:
            return self._sandbox
        if self._sandbox is not None:
            self._sandbox.close()
        self._sandbox = DockerSandbox(self.limits, image=self.image_of(self.instance),
                                      workspace=self.repo_dir, environment=self.environment)
        self._dirty = False
        return self._sandbox

    def _reset(self, task_id: str) -> str:
        self._clear_progress()
        box = self._box(fresh=True)
        _copy_out(box, self.image_of(self.instance), self.repo_dir)
        self._targets = _gold_targets(box.work, self.instance.patch)
        files = sorted(p.name + ("/" if p.is_dir() else "") for p in box.work.iterdir())
        return (f"Repository `{self.instance.repo}` is checked out in {self.repo_dir}.\n"
                f"Top level: {' '.join(files)}\n\nIssue:\n{self.instance.problem_statement}\n\n"
                "Use the tools to find and fix the bug, then call submit.")

    def _submit(self) -> tuple[str, float, bool, bool, bool]:
        inst, box = self.instance, self._box()
        tests = sorted(set(inst.fail_to_pass + inst.pass_to_pass))
        lines = []
        try:  # pristine tests and config, planted files removed: see _restore_tests
            _restore_tests(box, self.image_of(inst), self.repo_dir, inst, tests)
            cmd = (inst.test_cmd or self.test_cmd).format(
                tests=" ".join(shlex.quote(t) for t in tests))
            prep = grading.clean_command(self.repo_dir, f"/hidden/{KEEP_FILE}")
            res = box.exec(f"{prep} && {grading.CLEAN_ENV}{cmd}", timeout=self.test_timeout,
                           hidden=True)
            outcome = parse_test_output(res.output)
            if res.timed_out:
                lines.append(f"The test run timed out after {self.test_timeout:g}s.")
        except PatchError as exc:
            outcome = {}
            lines.append(f"The hidden test patch did not apply: {exc}")
        except OSError as exc:  # safe_fs refused a path (a link where a test file goes)
            outcome = {}
            lines.append(f"The hidden tests could not be restored: {exc}")
        failed = [t for t in tests if outcome.get(t) not in GOOD_OUTCOMES]
        self.tests_total, self.tests_passed = len(tests), len(tests) - len(failed)
        self.submitted = True
        self.last_outcome = "fail:" + ",".join(failed) if failed else "pass"
        head = f"Submitted. Hidden tests: {self.tests_passed}/{self.tests_total} passed."
        lines = [head, *lines, *(f"FAILED {t}" for t in failed[:10])]
        return "\n".join(lines), float(not failed), True, True, not failed

    def expert_action(self) -> str | None:
        """The gold patch, one ``edit`` per changed file (``create``/``bash rm`` for new or
        removed files), then ``submit``."""
        if self.task_id is None or self.submitted or self._sandbox is None:
            return None
        work = self._sandbox.work
        for path, target in sorted(self._targets.items()):
            if target is None:
                if safe_fs.kind(work, path) != "missing":
                    return T.tool_call("bash", command=f"rm -f {shlex.quote(path)}")
                continue
            action = _fix_action(work, path, target)
            if action:
                return action
        return T.tool_call("submit")

    def _state(self) -> Any:
        return (super()._state(), self._targets)

    def _set_state(self, state: Any) -> None:
        inner, self._targets = state
        super()._set_state(inner)

    def extra_info(self) -> dict[str, Any]:
        frac = self.tests_passed / self.tests_total if self.tests_total else 0.0
        return {"task_type": self.instances[self.task_id].repo if self.task_id else "",
                "backend": self.backend, "submitted": self.submitted,
                "tests_passed": self.tests_passed, "tests_total": self.tests_total,
                "pass_fraction": float(frac)}


def _gold_targets(work: Path, patch: str) -> dict[str, str | None]:
    """``path -> content after the gold patch`` (``None``: the patch deletes it)."""
    texts: dict[str, str | None] = {}
    for kind, path, old, new in hunk_edits(patch):
        if path not in texts:
            texts[path] = _current_text(work, path)
        if kind == "delete":
            texts[path] = None
        elif kind == "create":
            texts[path] = new
        elif texts[path] is not None and texts[path].count(old) == 1:
            texts[path] = texts[path].replace(old, new, 1)
        else:
            raise PatchError(f"the gold patch does not apply to {path}")
    return texts


def _current_text(work: Path, path: str) -> str:
    """The text of ``path`` in the workspace (``""`` when missing), read through
    :mod:`turngym.envs.swe.safe_fs`; a link, special file or non-text file is a
    :class:`PatchError`."""
    try:
        return safe_fs.read_bytes(work, path, MAX_PATCH_FILE_BYTES).decode()
    except FileNotFoundError:
        return ""
    except (OSError, UnicodeDecodeError) as exc:
        raise PatchError(f"the gold patch cannot read {path}: {exc}") from None


def _restore_tests(box: Sandbox, image: str, repo_dir: str, inst: Instance,
                   tests: list[str]) -> None:
    """Before grading: put back, from the image (not from what the model left), every file
    the graded tests live in, every ``conftest.py`` and the top-level pytest config files,
    with the hidden test patch applied to the pristine text (a graded test file the
    original lacks is deleted). The runner's ``--clean-only``, run next inside the sandbox,
    deletes every ``conftest.py``, byte code, ``.pth`` and customize module that the
    original tree does not have. Writes go through :mod:`turngym.envs.swe.safe_fs`."""
    wanted = grading.test_files(tests) | {path for _, path, _, _ in hunk_edits(inst.test_patch)}
    client = box.client  # type: ignore[attr-defined]
    tmp = client.containers.create(image, ["true"])
    try:
        stream, _ = tmp.get_archive(repo_dir)
        pristine, owned = grading.pristine_files(grading.ChunkReader(stream), wanted)
    finally:
        tmp.remove(force=True)
    plan = grading.restore_plan(pristine, wanted, inst.test_patch)
    grading.stage(box.hidden)
    (box.hidden / KEEP_FILE).write_text("".join(f"{rel}\n" for rel in sorted(owned)))
    for rel, data in sorted(plan.items()):
        if data is None:
            safe_fs.remove_file(box.work, rel)
        else:
            safe_fs.write_bytes(box.work, rel, data, parents=True)


def _copy_out(box: Sandbox, image: str, repo_dir: str) -> None:
    """Copy ``repo_dir`` of ``image`` into the sandbox's host workspace, owned by the
    sandbox user."""
    client = box.client  # type: ignore[attr-defined]
    tmp = client.containers.create(image, ["true"])
    try:
        stream, _ = tmp.get_archive(repo_dir)
        data = io.BytesIO(b"".join(stream))
    finally:
        tmp.remove(force=True)
    prefix = Path(repo_dir).name + "/"
    with tarfile.open(fileobj=data) as tar:
        members = []
        for m in tar.getmembers():
            if m.name.startswith(prefix):
                m.name = m.name[len(prefix):]
                members.append(m)
        tar.extractall(box.work, members=members, filter="tar")
    for dirpath, dirnames, filenames in os.walk(box.work):
        for name in [*dirnames, *filenames]:
            os.lchown(os.path.join(dirpath, name), SANDBOX_UID, SANDBOX_UID)
    os.chown(box.work, SANDBOX_UID, SANDBOX_UID)
