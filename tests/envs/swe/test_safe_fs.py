"""Host-side workspace file access (:mod:`turngym.envs.swe.safe_fs`,
:mod:`turngym.envs.swe.tree`): no link is followed at any component, special and hard-linked
files are refused, writes are atomic, and walks, fingerprints and snapshots stay within
their bounds. Every test runs with ``openat2`` and with the component walk that replaces it
on older kernels."""

from __future__ import annotations

import os
import shutil
import socket
import stat
import sys
import threading
import time
from pathlib import Path

import pytest

from turngym.envs.swe import safe_fs as fs
from turngym.envs.swe import tree


@pytest.fixture(params=["openat2", "walk"])
def work(request, tmp_path, monkeypatch) -> Path:
    """A workspace folder beside an ``outside`` folder holding a secret."""
    if request.param == "openat2" and not fs.use_openat2:
        pytest.skip("optional: this kernel has no openat2; the walk runs instead")
    monkeypatch.setattr(fs, "use_openat2", request.param == "openat2")
    w = tmp_path / "work"
    (w / "pkg").mkdir(parents=True)
    (w / "pkg" / "m.py").write_text("a = 1\n")
    outside = tmp_path / "outside"
    outside.mkdir()
    (outside / "secret.py").write_text("SECRET\n")
    return w


def outside_of(work: Path) -> Path:
    return work.parent / "outside"


def assert_outside_untouched(work: Path) -> None:
    out = outside_of(work)
    assert sorted(p.name for p in out.iterdir()) == ["secret.py"]
    assert (out / "secret.py").read_text() == "SECRET\n"


def test_read_write_round_trip(work):
    assert fs.read_bytes(work, "pkg/m.py", 100) == b"a = 1\n"
    assert fs.read_bytes(work, "./pkg/../pkg/m.py", 100) == b"a = 1\n"
    assert fs.write_bytes(work, "pkg/m.py", b"a = 2\n") is True
    assert fs.write_bytes(work, "new/deep/x.py", b"x\n", parents=True) is False
    assert (work / "new" / "deep" / "x.py").read_bytes() == b"x\n"
    assert stat.S_IMODE((work / "new" / "deep").stat().st_mode) == 0o777
    assert stat.S_IMODE((work / "new" / "deep" / "x.py").stat().st_mode) == 0o666
    assert fs.kind(work, "new") == "dir" and fs.kind(work, "nope") == "missing"
    assert fs.remove_file(work, "new/deep/x.py") is True
    assert fs.remove_file(work, "new/deep/x.py") is False
    assert sorted(p.name for p in work.rglob("*")) == ["deep", "m.py", "new", "pkg"]


def test_write_keeps_permission_bits_but_never_set_id_bits(work):
    target = work / "pkg" / "m.py"
    target.chmod(0o4750)
    fs.write_bytes(work, "pkg/m.py", b"b = 1\n")
    assert stat.S_IMODE(target.stat().st_mode) == 0o750


def test_nothing_it_did_not_make_is_chmod_ed(work):
    (work / "pkg").chmod(0o750)
    fs.write_bytes(work, "pkg/sub/x.py", b"x\n", parents=True)
    assert stat.S_IMODE((work / "pkg").stat().st_mode) == 0o750
    assert stat.S_IMODE((work / "pkg" / "sub").stat().st_mode) == 0o777


@pytest.mark.skipif(os.geteuid() != 0, reason="optional: chown needs root")
def test_new_files_take_the_owner_of_their_folder(work):
    (work / "pkg").chmod(0o777)
    os.chown(work / "pkg", 65534, 65534)
    fs.write_bytes(work, "pkg/new.py", b"x\n")
    fs.write_bytes(work, "pkg/d/e.py", b"x\n", parents=True)
    for path in (work / "pkg" / "new.py", work / "pkg" / "d", work / "pkg" / "d" / "e.py"):
        assert (path.stat().st_uid, path.stat().st_gid) == (65534, 65534), path


@pytest.mark.parametrize("rel, message", [
    ("../outside/secret.py", "refused: '../outside/secret.py' is outside /workspace"),
    ("/etc/passwd", "refused: '/etc/passwd' is outside /workspace"),
    ("ln/secret.py", ("refused: 'ln/secret.py' goes through the symbolic link 'ln'; the "
                      "file tools never follow links")),
    ("pkg/ln2/secret.py", ("refused: 'pkg/ln2/secret.py' goes through the symbolic link "
                           "'pkg/ln2'; the file tools never follow links")),
    ("lf.py", "refused: 'lf.py' is a symbolic link; the file tools never follow links"),
    ("pkg/m.py/x", "refused: 'pkg/m.py' in 'pkg/m.py/x' is a file, not a folder"),
])
def test_links_and_escapes_are_refused(work, rel, message):
    out = outside_of(work)
    os.symlink(out, work / "ln")
    os.symlink("../../outside", work / "pkg" / "ln2")
    os.symlink(out / "secret.py", work / "lf.py")
    for call in (lambda: fs.read_bytes(work, rel, 100),
                 lambda: fs.write_bytes(work, rel, b"pwned", parents=True),
                 lambda: fs.write_bytes(work, rel, b"pwned"),
                 lambda: fs.remove_file(work, rel)):
        with pytest.raises(fs.UnsafePathError) as err:
            call()
        assert str(err.value) == message
    assert_outside_untouched(work)


def test_special_files_are_refused_without_blocking(work):
    os.mkfifo(work / "fifo.py")
    sock = socket.socket(socket.AF_UNIX)
    sock.bind(str(work / "sock.py"))
    try:
        start = time.monotonic()
        for name, what in (("fifo.py", "fifo"), ("sock.py", "socket")):
            with pytest.raises(fs.UnsafePathError, match=f"'{name}' is a {what}, not a regular"):
                fs.read_bytes(work, name, 100)
            with pytest.raises(fs.UnsafePathError, match=f"is a {what}"):
                fs.write_bytes(work, name, b"x")
            assert fs.kind(work, name) == what
        assert time.monotonic() - start < 5
    finally:
        sock.close()


def test_hard_links_are_not_read_and_writes_replace_the_name(work):
    host = outside_of(work) / "secret.py"
    os.link(host, work / "hl.py")
    with pytest.raises(fs.UnsafePathError, match="'hl.py' has 2 hard links"):
        fs.read_bytes(work, "hl.py", 100)
    fs.write_bytes(work, "hl.py", b"mine\n")  # a new inode: the host file keeps its content
    assert (work / "hl.py").read_bytes() == b"mine\n" and host.read_text() == "SECRET\n"
    assert host.stat().st_nlink == 1


def test_size_cap(work):
    (work / "big.py").write_bytes(b"x" * 101)
    with pytest.raises(fs.UnsafePathError, match="'big.py' is larger than 100 bytes"):
        fs.read_bytes(work, "big.py", 100)
    assert fs.read_bytes(work, "big.py", 101) == b"x" * 101


def test_a_failed_write_leaves_the_file_and_no_temporary(work, monkeypatch):
    def boom(*args, **kwargs):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(fs.os, "rename", boom)
    with pytest.raises(OSError, match="No space"):
        fs.write_bytes(work, "pkg/m.py", b"new\n")
    assert sorted(p.name for p in (work / "pkg").iterdir()) == ["m.py"]
    assert (work / "pkg" / "m.py").read_text() == "a = 1\n"


def test_openat2_missing_falls_back_to_the_walk(work, monkeypatch):
    def enosys(*args):
        raise OSError(38, "Function not implemented")

    monkeypatch.setattr(fs, "use_openat2", True)
    monkeypatch.setattr(fs, "_openat2", enosys)
    assert fs.read_bytes(work, "pkg/m.py", 100) == b"a = 1\n"
    assert fs.use_openat2 is False


def test_race_swapping_a_folder_for_a_link(work):
    """A thread swaps ``d`` between a folder and a link to ``outside`` while the host
    writes, reads and deletes in it: nothing outside is read or changed."""
    out = outside_of(work)
    (work / "d").mkdir()
    stop, swaps = threading.Event(), [0]

    def swapper():
        d, real = work / "d", work / "d.real"
        while not stop.is_set():
            try:
                if real.exists():  # the host made "d" while it was gone: put it back
                    if d.is_symlink():
                        d.unlink()
                    else:
                        shutil.rmtree(d, ignore_errors=True)
                    os.rename(real, d)
                    continue
                os.rename(d, real)
                os.symlink(out, d)
                time.sleep(0.0002)
                os.unlink(d)
                os.rename(real, d)
                swaps[0] += 1
                time.sleep(0.0002)
            except OSError:  # the host is writing in it: try again
                continue

    thread = threading.Thread(target=swapper)
    outcomes: dict[str, int] = {}
    interval = sys.getswitchinterval()
    sys.setswitchinterval(1e-5)  # let the two threads interleave finely
    thread.start()
    try:
        deadline, tries = time.monotonic() + 30, 0
        while (tries < 600 or swaps[0] < 100 or not outcomes.get("UnsafePathError")) \
                and time.monotonic() < deadline:
            tries += 1
            for call in (lambda: fs.write_bytes(work, "d/secret.py", b"pwned", parents=True),
                         lambda: fs.read_bytes(work, "d/secret.py", 100),
                         lambda: fs.remove_file(work, "d/secret.py")):
                try:
                    data = call()
                    assert data != b"SECRET\n"
                    outcomes["done"] = outcomes.get("done", 0) + 1
                except (fs.UnsafePathError, FileNotFoundError) as exc:
                    outcomes[type(exc).__name__] = outcomes.get(type(exc).__name__, 0) + 1
    finally:
        stop.set()
        thread.join()
        sys.setswitchinterval(interval)
    assert swaps[0] >= 20 and tries >= 600, (swaps, outcomes)
    assert outcomes.get("done", 0) > 0 and outcomes.get("UnsafePathError", 0) > 0, outcomes
    assert_outside_untouched(work)


def test_walk_lists_links_and_never_enters_them(work):
    os.symlink(outside_of(work), work / "ln")
    os.mkfifo(work / "pkg" / "f")
    rows = [(e.rel, e.kind, e.target) for e in tree.walk(work)]
    assert rows == [("ln", "link", str(outside_of(work))), ("pkg", "dir", ""),
                    ("pkg/f", "fifo", ""), ("pkg/m.py", "file", "")]


def test_digest_tracks_content_and_stops_at_its_bounds(work, monkeypatch):
    key = tree.tree_digest(work)
    assert tree.tree_digest(work) == key
    (work / "pkg" / "m.py").write_text("a = 2\n")
    assert tree.tree_digest(work) != key
    over = tree.tree_digest(work, max_bytes=3)
    (work / "pkg" / "m.py").write_text("a = 2\n" * 1000)
    assert tree.tree_digest(work, max_bytes=3) == over  # the cost ends at the bound
    for i in range(20):
        (work / f"f{i}").write_text("x")
    assert tree.tree_digest(work, max_entries=10) == tree.tree_digest(work, max_entries=5)
    deep = work.joinpath(*["d"] * 8)
    deep.mkdir(parents=True)
    monkeypatch.setattr(tree, "MAX_TREE_DEPTH", 5)
    assert tree.tree_digest(work).startswith(
        __import__("hashlib").sha256(b"over limit: depth").hexdigest()[:8])


def test_snapshot_round_trip_and_bound(work, tmp_path):
    os.symlink("pkg/m.py", work / "ln")
    (work / "run.sh").write_text("echo hi\n")
    (work / "run.sh").chmod(0o755)
    (work / "empty").mkdir()
    os.link(outside_of(work) / "secret.py", work / "hl.py")
    os.mkfifo(work / "fifo")
    blob = tree.tar_tree(work)
    dest = tmp_path / "dest"
    dest.mkdir()
    tree.untar_tree(blob, dest)
    assert sorted(str(p.relative_to(dest)) for p in dest.rglob("*")) == \
        ["empty", "ln", "pkg", "pkg/m.py", "run.sh"]  # hard link and fifo left out
    assert os.readlink(dest / "ln") == "pkg/m.py"
    assert stat.S_IMODE((dest / "run.sh").stat().st_mode) == 0o777
    assert b"SECRET" not in __import__("gzip").decompress(blob)
    for name in ("hl.py", "fifo"):
        (work / name).unlink()
    assert tree.tree_digest(dest) == tree.tree_digest(work)
    with pytest.raises(tree.WorkspaceTooLargeError, match="too large to snapshot.*bytes"):
        tree.tar_tree(work, max_bytes=5)
    with pytest.raises(tree.WorkspaceTooLargeError, match="too large to restore"):
        tree.untar_tree(blob, tmp_path, max_entries=2)


@pytest.mark.parametrize("plant, message", [
    (lambda w, out: os.symlink(out / "planted.py", w / "tests" / "test_hidden.py"),
     ("tests/test_hidden.py: refused: 'tests/test_hidden.py' is a symbolic link; the file "
     "tools never follow links")),
    (lambda w, out: (shutil.rmtree(w / "tests"), os.symlink(out, w / "tests")),
     ("tests/test_hidden.py: refused: 'tests/test_hidden.py' goes through the symbolic link "
     "'tests'; the file tools never follow links")),
    (lambda w, out: os.mkfifo(w / "tests" / "test_hidden.py"),
     "tests/test_hidden.py: refused: 'tests/test_hidden.py' is a fifo, not a regular file"),
])
def test_a_patch_through_a_link_is_refused(work, plant, message):
    from turngym.envs.swe.diffs import PatchError, apply_diff

    (work / "tests").mkdir()
    plant(work, outside_of(work))
    diff = "--- /dev/null\n+++ b/tests/test_hidden.py\n@@ -0,0 +1 @@\n+def test(): pass\n"
    with pytest.raises(PatchError) as err:
        apply_diff(work, diff)
    assert str(err.value) == message
    assert_outside_untouched(work)
