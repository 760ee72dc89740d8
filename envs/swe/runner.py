"""A dependency-free test runner that runs inside the sandbox (stdlib only, Python >= 3.8).

It imports every ``test_*.py`` under ``--tests`` and calls its ``test_*`` functions with the
project root (``--root``) first on ``sys.path``. Each test gets ``--per-test`` seconds of
CPU time (SIGPROF), and ten times that of wall time (SIGALRM, for a test that sleeps), so a
mutant that loops forever fails that test instead of hanging the run, and a loaded machine
does not fail a correct test. The result is one JSON object per test on stdout::

    {"id": "tests/test_x.py::test_y", "outcome": "passed" | "failed" | "error",
     "message": "AssertionError at `assert f(1) == 2`"}

``ids`` on the command line restrict the run to those tests. Messages hold no timings or
addresses, so the same code gives the same output (observations stay deterministic).
"""

import importlib.util
import json
import os
import signal
import sys
import traceback


class TestTimeout(BaseException):
    """Raised by the alarm; a BaseException so ``except Exception`` in code under test
    cannot swallow it."""


def _on_alarm(signum, frame):
    raise TestTimeout()


def _describe(exc, test_file):
    """``Type: message`` plus the failing line of the test file (not of the project code)."""
    line = ""
    for frame in reversed(traceback.extract_tb(exc.__traceback__)):
        if os.path.abspath(frame.filename) == os.path.abspath(test_file):
            line = (frame.line or "").strip()
            break
    text = type(exc).__name__
    detail = str(exc).strip().splitlines()[0] if str(exc).strip() else ""
    if detail:
        text += ": " + detail[:200]
    if line:
        text += " at `" + line[:200] + "`"
    return text


def _load(path, name):
    spec = importlib.util.spec_from_file_location(name, path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def collect(tests_dir):
    """``(test_id, file_path, function_name)`` for every test, sorted by file then source order."""
    found = []
    for fname in sorted(os.listdir(tests_dir)):
        if fname.startswith("test_") and fname.endswith(".py"):
            path = os.path.join(tests_dir, fname)
            with open(path) as fh:
                for raw in fh:
                    if raw.startswith("def test_"):
                        func = raw[4:].split("(")[0]
                        found.append(("tests/" + fname + "::" + func, path, func))
    return found


def run(root, tests_dir, ids=None, per_test=2.0):
    """Run the tests; returns a list of result dicts (see the module docstring)."""
    root, tests_dir = os.path.abspath(root), os.path.abspath(tests_dir)
    sys.path.insert(0, root)
    os.chdir(root)
    signal.signal(signal.SIGALRM, _on_alarm)
    signal.signal(signal.SIGPROF, _on_alarm)
    wanted = set(ids) if ids else None
    modules = {}
    results = []
    for test_id, path, func in collect(tests_dir):
        if wanted is not None and test_id not in wanted:
            continue
        outcome, message = "passed", ""
        signal.setitimer(signal.ITIMER_PROF, per_test)  # CPU time: the load does not count
        signal.setitimer(signal.ITIMER_REAL, 10 * per_test)
        try:
            if path not in modules:
                modules[path] = _load(path, "swe_test_" + os.path.basename(path)[:-3])
            getattr(modules[path], func)()
        except TestTimeout:
            outcome, message = "error", "Timeout: the test ran longer than %gs" % per_test
        except AssertionError as exc:
            outcome, message = "failed", _describe(exc, path)
        except BaseException as exc:  # the code under test may raise anything
            outcome, message = "error", _describe(exc, path)
        finally:
            signal.setitimer(signal.ITIMER_PROF, 0)
            signal.setitimer(signal.ITIMER_REAL, 0)
        results.append({"id": test_id, "outcome": outcome, "message": message})
    if wanted is not None:
        seen = {r["id"] for r in results}
        for test_id in sorted(wanted - seen):
            results.append({"id": test_id, "outcome": "error", "message": "test not found"})
    return results


def main(argv):
    import argparse

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--root", required=True)
    parser.add_argument("--tests", required=True)
    parser.add_argument("--per-test", type=float, default=2.0)
    parser.add_argument("ids", nargs="*")
    args = parser.parse_args(argv)
    # Results go to a private copy of stdout; what the code under test prints goes to
    # stderr, so it cannot be mistaken for (or forge) a result line by accident.
    results_fd = os.dup(1)
    os.dup2(2, 1)
    results = run(args.root, args.tests, args.ids or None, args.per_test)
    sys.stdout.flush()
    with os.fdopen(results_fd, "w") as out:
        for result in results:
            out.write(json.dumps(result, sort_keys=True) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
