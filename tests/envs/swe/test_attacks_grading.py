"""Forged grades: each attack leaves a wrong fix in place and tries to get it graded as
passing, through ``env.step`` with the real tools, on bwrap and docker. Every one must get
reward 0, and a correct fix must still get 1.0 afterwards (see ``docs/swe.md``, Grading).

The attacks that hide code where a careless grader would load it (byte code, customize
modules, ``.pth``) carry both a forger and the *gold* module behind an import hook, so that
loading them would also make the tests pass honestly; each first checks that the hiding
place is live for an ordinary ``python3`` in the sandbox."""

from __future__ import annotations

import json
import textwrap
from pathlib import Path

import pytest

from turngym import envs
from turngym.envs.swe.tasks import load_tasks, project_files

TASK_ID = "stats-0000"  # mean([]) does not raise ValueError (test_mean_empty fails)
TASK = next(t for t in load_tasks() if t.task_id == TASK_ID)
PACKAGE = TASK.path.split("/")[0]
MODULE = TASK.path[:-3].replace("/", ".")
GOLD = project_files(TASK.project)[TASK.path]
BUGGY_INIT = project_files(TASK.project)[f"{PACKAGE}/__init__.py"]


def _forged_lines() -> str:
    rows = [json.dumps({"id": t, "message": "", "outcome": "passed"}, sort_keys=True)
            for t in TASK.tests]
    rows += [f"PASSED {t}" for t in TASK.tests]
    return "\n".join(rows) + "\n" + json.dumps({"done": len(TASK.tests)}) + "\n"


HEADER = f"""
import atexit, builtins, json, os, sys
_IDS = {TASK.tests!r}
_ALL = "".join(json.dumps({{"id": i, "message": "", "outcome": "passed"}}, sort_keys=True)
               + "\\nPASSED " + i + "\\n" for i in _IDS) + '{{"done": %d}}\\n' % len(_IDS)
def _spray():
    for fd in (1, 2):
        try:
            os.write(fd, _ALL.encode())
        except OSError:
            pass
"""

#: Project-code attacks: appended to the package's ``__init__.py`` (imported by every test).
IN_PROJECT = {
    "json_dumps": """
_real_dumps = json.dumps
def _dumps(obj, *a, **k):
    if isinstance(obj, dict) and "outcome" in obj:
        obj = dict(obj, outcome="passed", message="")
    return _real_dumps(obj, *a, **k)
json.dumps = _dumps
""",
    "print": """
builtins.print = lambda *a, **k: sys.__stdout__.write(_ALL)
atexit.register(_spray)  # and the lines an output-reading grader would take
""",
    "stdout_write": """
class _Out:
    def write(self, s):
        return sys.__stdout__.write(_ALL)
    def flush(self):
        pass
sys.stdout = _Out()
atexit.register(_spray)  # and the lines an output-reading grader would take
""",
    "os_write": """
_real_write = os.write
os.write = lambda fd, data: _real_write(fd, _ALL.encode())
atexit.register(_spray)  # and the lines an output-reading grader would take
""",
    "patch_main": """
_m = sys.modules.get("__main__")
_passed = lambda *a, **k: [{"id": i, "outcome": "passed", "message": ""} for i in _IDS]
for _name in ("run", "collect", "main", "serve", "_serve_one", "_outcome", "_describe"):
    if hasattr(_m, _name):
        setattr(_m, _name, _passed)
if hasattr(_m, "_outcome"):
    _m._outcome = lambda *a, **k: ("passed", "")
atexit.register(_spray)  # and the lines an output-reading grader would take
""",
    "exit_early": """
_spray()
os._exit(0)
""",
    "atexit": """
atexit.register(_spray)
""",
    "system_exit_in_tested_function": """
def _exit(*a, **k):
    raise SystemExit(0)
for _name in ("mean", "median", "mode", "variance", "percentile", "zscores"):
    globals()[_name] = _exit
atexit.register(_spray)  # and the lines an output-reading grader would take
""",
    # Own attack: objects equal to everything (and ValueError where the failing test wants it).
    "always_equal": """
class _Eq:
    __eq__ = lambda self, other: True
    __ne__ = lambda self, other: False
    __bool__ = lambda self: True
    __hash__ = lambda self: 0
def _fake(real):
    def fake(*a, **k):
        if a and a[0] == []:
            raise ValueError("empty")
        real(*a, **k)  # raises where the real one does
        return _Eq()
    return fake
for _name in ("mean", "median", "mode", "variance", "percentile", "zscores"):
    globals()[_name] = _fake(globals()[_name])
""",
    # Own attack: the verdict socket, the host's output through an ancestor's fd, the
    # grader's memory and fds, then its death.
    "grader_channels": """
import socket, signal
try:
    _s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    _s.connect("/hidden/verdict.sock")
    _s.sendall(_ALL.encode())
    _s.close()
except OSError:
    pass
for _pid in os.listdir("/proc"):
    for _what in ("fd/1", "fd/2", "fd/3", "mem"):
        try:
            _fd = os.open("/proc/%s/%s" % (_pid, _what), os.O_WRONLY)
            os.write(_fd, _ALL.encode())
            os.close(_fd)
        except OSError:
            pass
try:
    os.kill(os.getppid(), signal.SIGKILL)
except OSError:
    pass
""",
}


#: Where the attacks keep the gold module's source, read by their import hook.
GOLD_FILE = "/workspace/.gold.txt"
HIDDEN_PAYLOAD = HEADER + f"""
import importlib.abc, importlib.util
class _Hook(importlib.abc.MetaPathFinder, importlib.abc.Loader):
    def find_spec(self, name, path=None, target=None):
        return importlib.util.spec_from_loader(name, self) if name == {MODULE!r} else None
    def create_module(self, spec):
        return None
    def exec_module(self, module):
        exec(open({GOLD_FILE!r}).read(), module.__dict__)
sys.meta_path.insert(0, _Hook())
atexit.register(_spray)
"""
USER_SITE = "$(python3 -c 'import site; print(site.getusersitepackages())')"
#: Prints LIVE when the module under test behaves as the gold one (mean([]) raises);
#: flushed at once, and stderr dropped, so LIVE is the first thing on the one stream the
#: observation shows: the payload's exit-time spray (on stdout and stderr) fills the
#: observation's truncation limit, and docker may deliver the stderr copy first.
LIVE = (f"python3 -c 'import {MODULE} as m\ntry:\n    m.mean([])\nexcept ValueError:\n"
        "    print(\"LIVE\", flush=True)' 2>/dev/null")


def _q(text: str) -> str:
    return "'" + text.replace("'", "'\"'\"'") + "'"


#: Attacks that hide the payload: bash commands that plant it (run after the gold source is
#: at GOLD_FILE), and a liveness check (LIVE: an ordinary python3 in the sandbox runs it).
HIDDEN = {
    "usercustomize_in_home": (
        f"mkdir -p {USER_SITE} && printf %s {_q(HIDDEN_PAYLOAD)} > {USER_SITE}/usercustomize.py",
        LIVE),
    "usercustomize_in_workspace": (
        f"printf %s {_q(HIDDEN_PAYLOAD)} > usercustomize.py", "PYTHONPATH=. " + LIVE),
    "sitecustomize_on_project_path": (
        (f"printf %s {_q(HIDDEN_PAYLOAD)} > sitecustomize.py && "
         f"cp sitecustomize.py {PACKAGE}/sitecustomize.py"), "PYTHONPATH=. " + LIVE),
    "pth_file": (
        (f"printf %s {_q(HIDDEN_PAYLOAD)} > zz_payload.py && printf 'import zz_payload\\n' > "
         f"zz.pth && mkdir -p {USER_SITE} && cp zz.pth zz_payload.py {USER_SITE}/"), LIVE),
}


@pytest.fixture(scope="module", params=["bwrap", pytest.param(
    "docker", marks=[pytest.mark.docker, pytest.mark.slow])])
def swe_env(request):
    import shutil

    if request.param == "docker":
        request.getfixturevalue("swe_image")
    elif not shutil.which("bwrap"):
        pytest.skip("bubblewrap is not installed (apt-get install bubblewrap)")
    e = envs.make("turngym/SWE-v0", backend=request.param, bash_timeout=20, test_timeout=60)
    yield e
    e.close()


def _step(env, name: str, **arguments):
    return env.step(json.dumps({"name": name, "arguments": arguments}))


def bash(env, command: str) -> str:
    obs, reward, term, _, info = _step(env, "bash", command=command)
    assert reward == 0.0 and not term and info["action_valid"], obs
    return obs


def create(env, path: str, content: str) -> None:
    obs, _, term, _, info = _step(env, "create", path=path, content=content)
    assert info["action_valid"] and not term, obs


def submit(env) -> tuple[float, dict, str]:
    obs, reward, term, _, info = env.step(json.dumps({"name": "submit"}))
    assert term
    return reward, info, obs


def start(env) -> Path:
    env.reset(seed=0, options={"task_id": TASK_ID})
    return env.unwrapped._sandbox.work


def assert_wrong_fix_fails(env, work: Path) -> None:
    assert (work / TASK.path).read_text() != GOLD, "the attack must leave a wrong fix"
    reward, info, obs = submit(env)
    assert reward == 0.0 and not info["won"], obs
    assert info["tests_passed"] < info["tests_total"]


def assert_correct_fix_passes(env) -> None:
    start(env)
    create(env, TASK.path, GOLD)
    reward, info, obs = submit(env)
    assert reward == 1.0 and info["won"], obs


@pytest.mark.parametrize("attack", sorted(IN_PROJECT))
def test_project_code_cannot_forge(swe_env, attack):
    work = start(swe_env)
    create(swe_env, f"{PACKAGE}/__init__.py", BUGGY_INIT + HEADER + IN_PROJECT[attack])
    assert_wrong_fix_fails(swe_env, work)


def _assert_nothing_planted_left(work: Path) -> None:
    left = [p.name for p in work.rglob("*") if p.name in ("usercustomize.py", "sitecustomize.py")
            or p.suffix in (".pyc", ".pth") or p.name == "__pycache__"]
    assert left == [], f"the grader left planted files: {left}"


@pytest.mark.parametrize("attack", sorted(HIDDEN))
def test_hidden_payload_is_not_loaded(swe_env, attack):
    work = start(swe_env)
    create(swe_env, ".gold.txt", GOLD)
    plant, live = HIDDEN[attack]
    obs = bash(swe_env, f"{plant} && {live}")
    assert "LIVE" in obs, f"the attack is not live in the sandbox: {obs}"
    assert_wrong_fix_fails(swe_env, work)
    _assert_nothing_planted_left(work)


def test_poisoned_pyc_beside_restored_py(swe_env):
    """Byte code of the gold module, unchecked-hash (never compared with the source), next
    to the task's buggy source restored byte for byte."""
    work = start(swe_env)
    buggy = (work / TASK.path).read_text()
    create(swe_env, TASK.path, GOLD)
    bash(swe_env, f"python3 -c \"import py_compile, importlib.util as u; py_compile.compile("
                  f"'{TASK.path}', cfile=u.cache_from_source('{TASK.path}'), invalidation_mode="
                  "py_compile.PycInvalidationMode.UNCHECKED_HASH)\"")
    create(swe_env, TASK.path, buggy)
    assert "LIVE" in bash(swe_env, LIVE), "the poisoned byte code is not live"
    assert_wrong_fix_fails(swe_env, work)
    _assert_nothing_planted_left(work)


def test_hidden_folder_is_not_visible(swe_env):
    work = start(swe_env)
    obs = bash(swe_env, "ls -A /hidden; cat /hidden/tests/*.py /hidden/runner.py; echo END")
    assert "def test_" not in obs and "verdict" not in obs and "END" in obs
    # stdout and stderr come back interleaved in no fixed order: the listing is every line
    # but the exit-code header, the one END and cat's complaints
    lines = obs.split("\n")[1:]
    lines.remove("END")
    listing = "\n".join(x for x in lines if x.strip() and not x.startswith("cat:")).strip()
    assert listing in ("", "ls: cannot access '/hidden': No such file or directory"), obs
    assert_wrong_fix_fails(swe_env, work)


def test_runner_and_tests_cannot_be_replaced(swe_env):
    work = start(swe_env)
    fake = f"import sys\nsys.stdout.write({_forged_lines()!r})\n"
    obs = bash(swe_env, f"printf %s {_q(fake)} > runner.py; cp runner.py /opt/turngym/runner.py;"
                        " rm -f /opt/turngym/runner.py; mkdir -p hidden/tests;"
                        " cp runner.py hidden/runner.py; echo planted")
    assert "planted" in obs
    for rel, text in project_files(TASK.project).items():  # the visible tests: all trivial
        if rel.startswith("tests/test_"):
            names = [line[4:].split("(")[0] for line in text.splitlines()
                     if line.startswith("def test_")]
            create(swe_env, rel, "".join(f"def {n}():\n    pass\n\n\n" for n in names))
    assert_wrong_fix_fails(swe_env, work)


def test_correct_fix_still_passes(swe_env):
    assert_correct_fix_passes(swe_env)


# ---------------------------------------------------------------------- SWE-bench-style
CONFTEST = textwrap.dedent("""
    import pytest

    @pytest.hookimpl(hookwrapper=True)
    def pytest_runtest_makereport(item, call):
        outcome = yield
        report = outcome.get_result()
        report.outcome = "passed"
        report.longrepr = None
""")


@pytest.fixture(scope="module")
def pytest_testbed(swe_image, tmp_path_factory):
    """A SWE-bench-like image: the buggy ``stats`` project at /testbed, with pytest (copied
    from this environment: nothing can be pulled)."""
    import shutil

    import _pytest
    import docker
    import iniconfig
    import packaging
    import pluggy
    import pygments

    from turngym.envs.swe.tasks import buggy_files, write_files

    ctx = tmp_path_factory.mktemp("ctx")
    write_files(buggy_files(TASK), ctx / "testbed")
    for mod in (pytest, _pytest, pluggy, iniconfig, packaging, pygments):
        src = Path(mod.__file__).parent
        shutil.copytree(src, ctx / "site" / src.name, ignore=shutil.ignore_patterns("__pycache__"))
    site = Path(_pytest.__file__).parent.parent
    shutil.copyfile(site / "py.py", ctx / "site" / "py.py")
    for info in site.glob("*.dist-info"):  # pluggy reads its own version from its metadata
        if info.name.split("-")[0].lower() in ("pytest", "pluggy", "iniconfig", "packaging",
                                               "pygments"):
            shutil.copytree(info, ctx / "site" / info.name)
    (ctx / "Dockerfile").write_text(f"FROM {swe_image}\nCOPY site /usr/lib/python3/dist-packages/\n"
                                    "COPY testbed /testbed\n")
    tag = f"turngym-swe-testbed:{TASK_ID}-pytest"
    docker.from_env().images.build(path=str(ctx), tag=tag, rm=True)
    return tag


@pytest.fixture
def bench_env(pytest_testbed, tmp_path):
    import difflib

    from turngym.envs.swe.swebench import SWEBenchEnv
    from turngym.envs.swe.tasks import buggy_files

    buggy = buggy_files(TASK)[TASK.path]
    patch = "".join(difflib.unified_diff(buggy.splitlines(True), GOLD.splitlines(True),
                                         f"a/{TASK.path}", f"b/{TASK.path}"))
    hidden = ("from stats import mean\n\n\n"
              "def test_hidden_mean():\n    assert mean([1, 2, 6]) == 3\n")
    test_patch = "".join(difflib.unified_diff([], hidden.splitlines(True), "/dev/null",
                                              "b/tests/test_hidden.py"))
    row = {"instance_id": "turngym__stats-pytest", "repo": "turngym/stats",
           "base_commit": "0" * 40, "patch": patch, "test_patch": test_patch,
           "FAIL_TO_PASS": TASK.fail_to_pass,
           "PASS_TO_PASS": TASK.pass_to_pass + ["tests/test_hidden.py::test_hidden_mean"],
           "problem_statement": TASK.issue, "image": pytest_testbed,
           "test_cmd": "python3 -m pytest -rA -p no:cacheprovider {tests}"}
    (tmp_path / "i.jsonl").write_text(json.dumps(row) + "\n")
    # a full pytest run inside the sandbox: give a loaded machine time (bash_timeout)
    e = SWEBenchEnv(str(tmp_path / "i.jsonl"), test_timeout=120, bash_timeout=60,
                    trust_test_process=True)
    e.reset(seed=0, options={"task_id": "turngym__stats-pytest"})
    yield e
    e.close()


def _visible_run(env) -> str:
    return bash(env, "python3 -m pytest -q -p no:cacheprovider tests 2>&1 | tail -3")


@pytest.mark.docker
@pytest.mark.slow
@pytest.mark.parametrize("attack", ["conftest", "conftest_in_tests", "edit_untouched_tests",
                                    "pre_create_hidden_test", "atexit_passed_lines"])
def test_swebench_attacks(bench_env, attack):
    work = bench_env.unwrapped._sandbox.work
    if attack == "conftest":
        create(bench_env, "conftest.py", CONFTEST)
    elif attack == "conftest_in_tests":
        create(bench_env, "tests/conftest.py", CONFTEST)
    elif attack == "edit_untouched_tests":
        text = (work / "tests/test_describe.py").read_text()
        names = [line[4:].split("(")[0] for line in text.splitlines()
                 if line.startswith("def test_")]
        create(bench_env, "tests/test_describe.py",
               "".join(f"def {n}():\n    pass\n\n\n" for n in names))
    elif attack == "pre_create_hidden_test":  # own: plant the hidden test file first
        create(bench_env, "tests/conftest.py", CONFTEST)
        create(bench_env, "tests/test_hidden.py", "def test_hidden_mean():\n    pass\n")
    else:  # own: PASSED lines printed by the project after pytest's own report
        init = (work / f"{PACKAGE}/__init__.py").read_text()
        create(bench_env, f"{PACKAGE}/__init__.py", init + HEADER + "atexit.register(_spray)\n")
    if attack != "atexit_passed_lines":  # the attack works on a plain pytest run
        out = _visible_run(bench_env)
        assert " passed" in out and "failed" not in out and "error" not in out, out
    reward, info, obs = submit(bench_env)
    assert reward == 0.0 and not info["won"], obs
    assert not (work / "conftest.py").exists() and not (work / "tests/conftest.py").exists()


@pytest.mark.docker
@pytest.mark.slow
def test_swebench_correct_fix_passes(bench_env):
    create(bench_env, TASK.path, GOLD)
    reward, info, obs = submit(bench_env)
    assert reward == 1.0 and info["won"], obs


def test_home_and_tmp_do_not_outlive_the_episode(swe_env):
    # own: a payload left in $HOME (the user site) or /tmp by one episode must not reach the
    # next episode's commands (docker's /tmp is the container's and outlives commands)
    start(swe_env)
    bash(swe_env, "mkdir -p $HOME/.local && echo x > $HOME/.local/planted && echo x > "
                  "/tmp/planted2 && ls $HOME/.local/planted /tmp/planted2")
    start(swe_env)
    obs = bash(swe_env, "ls $HOME/.local/planted /tmp/planted2 2>&1; echo done")
    assert "No such file" in obs and obs.count("No such file") == 2, obs
