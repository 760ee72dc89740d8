"""SWE tasks: the shipped projects, the task file, and turning a task into a workspace.

A task is stored as a mutation *relative to a shipped project* (``envs/swe/projects/NAME``),
not as a copy of it: ``path``, ``buggy`` and ``fixed`` snippets, where ``fixed`` occurs once
in the original file. The buggy workspace is the project with ``fixed`` replaced by
``buggy``; the gold patch is the reverse edit. ``turngym swe build-tasks`` writes the file
(:func:`build_tasks`), keeping only mutants verified by :func:`turngym.envs.swe.injector.verify`.
"""

from __future__ import annotations

import hashlib
import json
import logging
from collections import Counter, defaultdict
from dataclasses import asdict, dataclass, field
from functools import lru_cache
from pathlib import Path

from turngym.envs.swe.injector import gold_edit, mutate_file, run_tests, verify
from turngym.errors import ConfigError

logger = logging.getLogger(__name__)

HERE = Path(__file__).resolve().parent
PROJECTS_DIR = HERE / "projects"
TASKS_FILE = HERE / "data" / "tasks.jsonl"
#: Fraction of tasks in the ``test`` split (chosen by a hash of the task id).
TEST_FRACTION = 0.2


@dataclass(frozen=True)
class Task:
    """One bug-fix task."""

    task_id: str
    """``<project>-<NNNN>``."""
    project: str
    """Name of the shipped project (a folder of :data:`PROJECTS_DIR`)."""
    split: str
    """``train`` or ``test``."""
    operator: str
    """The mutation operator; reported as info ``task_type``."""
    function: str
    """The mutated function (not shown to the agent)."""
    path: str
    """File that holds the bug, relative to the workspace root."""
    buggy: str
    """Snippet of the buggy file around the bug (unique in it)."""
    fixed: str
    """The same snippet in the original file (unique in it)."""
    issue: str
    """Issue text: the observable failure, not the fix."""
    fail_to_pass: list[str] = field(default_factory=list)
    """Tests that fail on the bug and must pass after the fix."""
    pass_to_pass: list[str] = field(default_factory=list)
    """Tests that pass on the bug and must keep passing."""

    @property
    def tests(self) -> list[str]:
        """All graded tests."""
        return sorted(self.fail_to_pass + self.pass_to_pass)


def project_names() -> list[str]:
    """The shipped projects, sorted."""
    return sorted(p.name for p in PROJECTS_DIR.iterdir() if (p / "tests").is_dir())


def project_files(project: str) -> dict[str, str]:
    """``relative path -> text`` of every file of a shipped project (no caches)."""
    root = PROJECTS_DIR / project
    return {str(p.relative_to(root)): p.read_text() for p in sorted(root.rglob("*"))
            if p.is_file() and "__pycache__" not in p.parts and p.suffix != ".pyc"}


@lru_cache(maxsize=8)
def load_tasks(path: str | None = None) -> tuple[Task, ...]:
    """Read a task JSONL file (default: the shipped one)."""
    file = Path(path) if path else TASKS_FILE
    if not file.exists():
        raise ConfigError(f"tasks_file {str(file)!r} does not exist; "
                          "build it with `turngym swe build-tasks`")
    tasks = []
    for n, line in enumerate(file.read_text().splitlines(), 1):
        if not line.strip():
            continue
        try:
            tasks.append(Task(**json.loads(line)))
        except (TypeError, ValueError) as exc:
            raise ConfigError(f"tasks_file {str(file)!r} line {n}: {exc}") from exc
    return tuple(tasks)


def buggy_files(task: Task) -> dict[str, str]:
    """The workspace files of ``task``: the project with the bug injected."""
    files = project_files(task.project)
    original = files[task.path]
    if original.count(task.fixed) != 1:
        raise ConfigError(f"task {task.task_id}: its 'fixed' snippet is not unique in "
                          f"{task.path}; the task file does not match the shipped project")
    files[task.path] = original.replace(task.fixed, task.buggy)
    return files


def write_files(files: dict[str, str], dest: Path) -> None:
    """Write ``files`` under ``dest`` (world-writable, so a sandbox user can edit them)."""
    for rel, text in files.items():
        target = dest / rel
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text(text)
        target.chmod(0o666)
    for d in [dest, *(p for p in dest.rglob("*") if p.is_dir())]:
        d.chmod(0o777)


def _split(task_id: str) -> str:
    h = int(hashlib.sha256(task_id.encode()).hexdigest()[:8], 16) / 0xFFFFFFFF
    return "test" if h < TEST_FRACTION else "train"


def issue_text(project: str, results: dict[str, dict], failing: list[str]) -> str:
    """An issue that describes the observable failure of the first failing test."""
    first = results[failing[0]]
    more = f" and {len(failing) - 1} other test(s)" if len(failing) > 1 else ""
    return (
        f"Bug report: `{project}` misbehaves.\n\n"
        f"After a recent change, `{failing[0]}`{more} fail. The first failure is:\n\n"
        f"    {first['message'] or first['outcome']}\n\n"
        "The other tests still pass. Find the bug in the library code and fix it so that "
        "the whole test suite passes. The tests themselves are correct."
    )


def _select(cands: list, per_project: int) -> list:
    """Up to ``per_project`` candidates, round-robin over operators for balance."""
    by_op: dict[str, list] = defaultdict(list)
    for c in cands:
        by_op[c[0].operator].append(c)
    out: list = []
    while len(out) < per_project and any(by_op.values()):
        for op in sorted(by_op):
            if by_op[op] and len(out) < per_project:
                out.append(by_op[op].pop(0))
    return sorted(out, key=lambda c: (c[0].path, c[1]))


def build_tasks(out: Path = TASKS_FILE, per_project: int = 45, progress=None) -> list[Task]:
    """Mutate every shipped project, verify each mutant, and write the task JSONL."""
    tasks: list[Task] = []
    for project in project_names():
        root = PROJECTS_DIR / project
        base = run_tests(root)
        if not base or any(r["outcome"] != "passed" for r in base.values()):
            raise ConfigError(f"project {project}: the original does not pass all its tests")
        cands = []
        for rel in sorted(project_files(project)):
            if rel.startswith("tests/") or not rel.endswith(".py") or rel.endswith("__init__.py"):
                continue
            for i, mutant in enumerate(mutate_file(root, rel)):
                results = verify(root, mutant)
                if progress:
                    progress(project, rel, i)
                if results is not None:
                    cands.append((mutant, i, results))
        for n, (mutant, _, results) in enumerate(_select(cands, per_project)):
            original = (root / mutant.path).read_text()
            old, new = gold_edit(original, mutant.source)
            failing = sorted(k for k, r in results.items() if r["outcome"] != "passed")
            passing = sorted(k for k, r in results.items() if r["outcome"] == "passed")
            task_id = f"{project}-{n:04d}"
            tasks.append(Task(task_id, project, _split(task_id), mutant.operator,
                              mutant.function, mutant.path, old, new,
                              issue_text(project, results, failing), failing, passing))
        logger.info("%s: %d verified mutants, kept %d", project, len(cands),
                    min(len(cands), per_project))
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text("".join(json.dumps(asdict(t), sort_keys=True) + "\n" for t in tasks))
    load_tasks.cache_clear()
    return tasks


def summary(tasks: tuple[Task, ...] | list[Task]) -> dict[str, dict[str, int]]:
    """Counts by split, project and operator."""
    return {"split": dict(Counter(t.split for t in tasks)),
            "project": dict(Counter(t.project for t in tasks)),
            "operator": dict(Counter(t.operator for t in tasks))}
