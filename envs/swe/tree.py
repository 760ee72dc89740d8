"""Walk, fingerprint and snapshot a sandbox workspace within bounds.

Built on :mod:`turngym.envs.swe.safe_fs`: folders are opened from descriptors without following a
link, links are listed (their target as text) and never entered, and file contents are
read only from regular files with one link. Every walk stops at :data:`MAX_TREE_ENTRIES`
names, :data:`MAX_TREE_DEPTH` levels, and :data:`MAX_TREE_BYTES` bytes of file content,
and contents are hashed in chunks, so the cost of :func:`tree_digest` and the size of
:func:`tar_tree` do not depend on what a model writes beyond those bounds.
"""

from __future__ import annotations

import hashlib
import io
import os
import tarfile
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

from turngym.envs.swe import safe_fs as fs
from turngym.errors import EnvError

#: Most names (files, folders, links, others) a walk lists; past it the walk stops.
MAX_TREE_ENTRIES = 50_000
#: Most bytes of file content a fingerprint hashes or a snapshot holds.
MAX_TREE_BYTES = 256 << 20
#: Deepest folder nesting a walk enters.
MAX_TREE_DEPTH = 64


class OverLimit(Exception):
    """A walk reached one of its bounds; the text names which (``entries``, ``bytes``,
    ``depth``)."""


class WorkspaceTooLargeError(EnvError):
    """A snapshot or restore would go past one of the bounds; the rollout harness ends such
    an episode with ``env_error``."""


@dataclass(frozen=True)
class Entry:
    """One thing found by :func:`walk`. ``dir_fd`` and ``name`` are valid only until the
    walk moves on."""

    rel: str
    """Path relative to the walk's start."""
    kind: str
    """``file``, ``dir``, ``link``, ``fifo``, ``socket`` or ``device``."""
    size: int
    nlink: int
    mode: int
    """Permission bits."""
    target: str
    """A link's target (text, never followed); ``""`` for the rest."""
    dir_fd: int
    name: str

    @property
    def readable(self) -> bool:
        """A regular file with one link: the only kind whose content is read."""
        return self.kind == "file" and self.nlink == 1

    def read(self, limit: int) -> bytes:
        """At most ``limit`` bytes of content (:class:`~turngym.envs.swe.safe_fs.UnsafePathError`
        if the file was swapped meanwhile)."""
        fd = fs.open_file(self.dir_fd, self.name, self.rel)
        try:
            return fs.read_fd(fd, limit)
        finally:
            os.close(fd)

    def hash(self, limit: int) -> tuple[bytes, int]:
        """SHA-256 of at most ``limit`` bytes of content, read in chunks, and their count."""
        fd = fs.open_file(self.dir_fd, self.name, self.rel)
        digest, size = hashlib.sha256(), 0
        try:
            while size < limit:
                chunk = os.read(fd, min(fs.CHUNK, limit - size))
                if not chunk:
                    break
                digest.update(chunk)
                size += len(chunk)
        finally:
            os.close(fd)
        return digest.digest(), size


def walk(root: Path, rel: str = ".", *, max_entries: int | None = None,
         skip: Callable[[str], bool] | None = None) -> Iterator[Entry]:
    """Everything beneath the folder ``rel`` of ``root``: depth first, names sorted, a
    folder before its content; links are listed, never entered. ``skip(name)`` leaves an
    entry out (with its content). Raises :class:`OverLimit` past ``max_entries`` names or
    :data:`MAX_TREE_DEPTH` levels, and :class:`~turngym.envs.swe.safe_fs.UnsafePathError` when
    ``rel`` itself goes through a link."""
    max_entries = MAX_TREE_ENTRIES if max_entries is None else max_entries
    parts = fs.split(rel)
    rfd = fs.open_root(root)
    try:
        dfd = fs.open_dir(rfd, parts, rel)
    finally:
        os.close(rfd)
    try:
        yield from _walk(dfd, "", 0, [max_entries], skip)
    finally:
        os.close(dfd)


def _walk(dfd: int, prefix: str, depth: int, budget: list[int],
          skip: Callable[[str], bool] | None) -> Iterator[Entry]:
    names = []
    with os.scandir(dfd) as it:
        for entry in it:
            budget[0] -= 1
            if budget[0] < 0:
                raise OverLimit("entries")
            names.append(entry.name)
    for name in sorted(names):
        if skip is not None and skip(name):
            continue
        try:
            st = os.stat(name, dir_fd=dfd, follow_symlinks=False)
            kind = fs.kind_of(st.st_mode)
            target = os.readlink(name, dir_fd=dfd) if kind == "link" else ""
        except OSError:  # gone meanwhile
            continue
        yield Entry(prefix + name, kind, st.st_size, st.st_nlink, st.st_mode & 0o777, target,
                    dfd, name)
        if kind != "dir":
            continue
        if depth + 1 >= MAX_TREE_DEPTH:
            raise OverLimit("depth")
        try:
            sub = os.open(name, fs.O_DIR, dir_fd=dfd)
        except OSError:  # swapped for a link or removed meanwhile: not entered
            continue
        try:
            yield from _walk(sub, f"{prefix}{name}/", depth + 1, budget, skip)
        finally:
            os.close(sub)


def tree_digest(root: Path, *, max_entries: int | None = None,
                max_bytes: int | None = None) -> str:
    """SHA-256 (hex) of the tree: each entry's path and kind, a file's content, a link's
    target; hard-linked and special files by kind, link count and size only (their content
    is never read). Past a bound it is the digest of ``over limit: <bound>``: the cost stays
    bounded, and every tree over the same bound gets the same fingerprint."""
    max_entries, max_bytes = _bounds(max_entries, max_bytes)
    digest, left = hashlib.sha256(), max_bytes
    try:
        for e in walk(root, max_entries=max_entries):
            digest.update(os.fsencode(e.rel) + b"\0" + e.kind.encode() + b"\0")
            if e.kind == "link":
                digest.update(os.fsencode(e.target))
            elif e.readable:
                if e.size > left:
                    raise OverLimit("bytes")
                try:
                    inner, size = e.hash(left + 1)
                except (fs.UnsafePathError, OSError):  # swapped or gone meanwhile
                    inner, size = b"<unreadable>", 0
                left -= size
                if left < 0:
                    raise OverLimit("bytes")
                digest.update(inner)
            elif e.kind != "dir":
                digest.update(f"<{e.kind} nlink={e.nlink} size={e.size}>".encode())
            digest.update(b"\n")
    except OverLimit as over:
        return hashlib.sha256(f"over limit: {over}".encode()).hexdigest()
    return digest.hexdigest()


def tar_tree(root: Path, *, max_entries: int | None = None,
             max_bytes: int | None = None) -> bytes:
    """A gzip tar of the tree: folders (mode 0o777), regular files with one link (0o666,
    0o777 when executable) and links (their target); hard-linked and special files are
    left out. :class:`WorkspaceTooLargeError` past a bound."""
    max_entries, max_bytes = _bounds(max_entries, max_bytes)
    buf, left = io.BytesIO(), max_bytes
    with tarfile.open(fileobj=buf, mode="w:gz") as tar:
        try:
            for e in walk(root, max_entries=max_entries):
                info = tarfile.TarInfo(e.rel)
                if e.kind == "dir":
                    info.type, info.mode = tarfile.DIRTYPE, 0o777
                elif e.kind == "link":
                    info.type, info.linkname = tarfile.SYMTYPE, e.target
                elif not e.readable:
                    continue
                elif e.size > left:
                    raise OverLimit("bytes")
                else:
                    try:
                        data = e.read(left + 1)
                    except (fs.UnsafePathError, OSError):  # swapped or gone meanwhile
                        continue
                    left -= len(data)
                    if left < 0:
                        raise OverLimit("bytes")
                    info.size, info.mode = len(data), 0o777 if e.mode & 0o111 else 0o666
                    tar.addfile(info, io.BytesIO(data))
                    continue
                tar.addfile(info)
        except OverLimit as over:
            raise _too_large("snapshot", over, max_entries, max_bytes) from None
    return buf.getvalue()


def untar_tree(blob: bytes, root: Path, *, max_entries: int | None = None,
               max_bytes: int | None = None) -> None:
    """Unpack a :func:`tar_tree` blob into the (emptied) folder ``root`` through the same
    link-refusing calls; other member types are skipped."""
    max_entries, max_bytes = _bounds(max_entries, max_bytes)
    entries, left = 0, max_bytes
    with tarfile.open(fileobj=io.BytesIO(blob), mode="r:gz") as tar:
        for member in tar:
            entries += 1
            left -= max(member.size, 0)
            if entries > max_entries or left < 0:
                raise _too_large("restore", "entries" if left >= 0 else "bytes",
                                 max_entries, max_bytes)
            if member.isdir():
                fs.make_dirs(root, member.name)
            elif member.issym():
                fs.make_symlink(root, member.name, member.linkname)
            elif member.isfile():
                data = tar.extractfile(member).read()
                fs.write_bytes(root, member.name, data, parents=True,
                               mode=0o777 if member.mode & 0o111 else 0o666)


def _bounds(max_entries: int | None, max_bytes: int | None) -> tuple[int, int]:
    """The given bounds, or the module's (read at call time, so tests can lower them)."""
    return (MAX_TREE_ENTRIES if max_entries is None else max_entries,
            MAX_TREE_BYTES if max_bytes is None else max_bytes)


def _too_large(what: str, over: object, max_entries: int, max_bytes: int) -> Exception:
    return WorkspaceTooLargeError(
        f"the workspace is too large to {what}: past {max_entries} entries, {max_bytes} "
        f"bytes of files or {MAX_TREE_DEPTH} folder levels ({over} bound hit)")
