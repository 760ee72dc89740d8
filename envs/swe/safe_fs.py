"""Host-side file access beneath a sandbox workspace that never follows a link.

A sandbox shares its workspace folder with the host, and what runs inside may change any
path there at any moment: swap a folder for a symbolic link between a check and an open,
plant a fifo where a source file was, hard-link a file. Every host-side read, write, walk
and snapshot of the workspace goes through this module, which

* opens every path from a descriptor of the workspace folder, one level at a time or with
  ``openat2(RESOLVE_BENEATH | RESOLVE_NO_SYMLINKS | RESOLVE_NO_MAGICLINKS | RESOLVE_NO_XDEV)``
  where the kernel has it, so no component is ever a link and nothing leaves the tree;
  ``..`` is resolved by name before anything is opened, and may not climb above the root;
* opens files only when they are regular files with a single link (``O_NOFOLLOW |
  O_NONBLOCK``, then ``fstat``): symbolic links, fifos, sockets, devices and hard-linked
  files are refused with an :class:`UnsafePathError` whose text is meant for the agent.
  A hard-linked file may be a host file linked in (on one file system), so its content is
  never read; writing never needs that rule, because a write replaces the name (below);
* reads at most ``max_bytes`` (a file over the cap is refused, never truncated silently);
* writes atomically: a new file in the same folder descriptor, then ``rename`` over the
  name, so a write never goes through an existing inode (a hard link or a file swapped in
  meanwhile keeps its content). A new file takes the owner and permission bits of the
  file it replaces (never set-id or sticky bits), else the owner of its folder and 0o666;
  a new folder takes the owner of its parent and 0o777. Nothing this module did not
  create is ever chmod-ed or chown-ed;
* and is used by :mod:`turngym.envs.swe.tree` to walk, hash and snapshot the workspace within
  bounds.
"""

from __future__ import annotations

import ctypes
import errno
import os
import secrets
import stat
import sys
from pathlib import Path

from turngym.errors import TurngymError

#: Bytes read or hashed at a time.
CHUNK = 1 << 16

O_DIR = os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC
_O_READ = os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_NOCTTY | os.O_CLOEXEC
_O_NEW = os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC
# RESOLVE_NO_XDEV | RESOLVE_NO_MAGICLINKS | RESOLVE_NO_SYMLINKS | RESOLVE_BENEATH
_RESOLVE = 0x01 | 0x02 | 0x04 | 0x08
_SYS_OPENAT2 = {"x86_64": 437, "aarch64": 437}.get(os.uname().machine)


class UnsafePathError(TurngymError, OSError):
    """A workspace path the host refuses to open: it leaves the tree, goes through a
    symbolic link, or names something other than a regular file with one link (or a
    folder), or a file over the size cap. The message is written for the agent."""


class _OpenHow(ctypes.Structure):
    _fields_ = [("flags", ctypes.c_uint64), ("mode", ctypes.c_uint64),
                ("resolve", ctypes.c_uint64)]


def _find_syscall():
    if _SYS_OPENAT2 is None or not sys.platform.startswith("linux"):
        return None
    try:
        fn = ctypes.CDLL(None, use_errno=True).syscall
    except (OSError, AttributeError):
        return None
    fn.restype = ctypes.c_long
    return fn


_SYSCALL = _find_syscall()
#: Whether ``openat2`` is used (cleared when the kernel answers ENOSYS); tests clear it to
#: run the component walk.
use_openat2 = _SYSCALL is not None


def _openat2(dir_fd: int, path: str, flags: int) -> int:
    how = _OpenHow(flags, 0, _RESOLVE)
    fd = _SYSCALL(ctypes.c_long(_SYS_OPENAT2), ctypes.c_int(dir_fd), os.fsencode(path),
                  ctypes.byref(how), ctypes.c_size_t(ctypes.sizeof(how)))
    if fd < 0:
        err = ctypes.get_errno()
        raise OSError(err, os.strerror(err), path)
    return int(fd)


# ---------------------------------------------------------------------- paths and errors
def split(rel: str) -> tuple[str, ...]:
    """The components of a workspace-relative path, ``.`` and ``..`` resolved by name;
    ``()`` is the workspace itself. Raises :class:`UnsafePathError` for an absolute path,
    a NUL byte, or ``..`` above the root."""
    if "\x00" in rel:
        raise UnsafePathError(f"refused: {rel!r} contains a NUL byte")
    if rel.startswith("/"):
        raise UnsafePathError(f"refused: {rel!r} is outside /workspace")
    parts: list[str] = []
    for part in rel.split("/"):
        if part == "..":
            if not parts:
                raise UnsafePathError(f"refused: {rel!r} is outside /workspace")
            parts.pop()
        elif part not in ("", "."):
            parts.append(part)
    return tuple(parts)


def _refusal(exc: OSError, rel: str) -> OSError:
    """The error to raise for a failed open of ``rel``."""
    if exc.errno == errno.ELOOP:
        return UnsafePathError(f"refused: {rel!r} is or goes through a symbolic link; the "
                               "file tools never follow links")
    if exc.errno == errno.EXDEV:
        return UnsafePathError(f"refused: {rel!r} leaves the workspace")
    if exc.errno == errno.ENOTDIR:
        return UnsafePathError(f"refused: a part of {rel!r} is not a folder")
    if exc.errno == errno.EEXIST:
        return UnsafePathError(f"refused: {rel!r} already exists")
    if exc.errno == errno.ENOENT:
        return FileNotFoundError(errno.ENOENT, "No such file or directory", rel)
    if exc.errno in (errno.ENXIO, errno.ENODEV):
        return UnsafePathError(f"refused: {rel!r} is not a regular file")
    return exc


def kind_of(mode: int) -> str:
    """``file``, ``dir``, ``link``, ``fifo``, ``socket`` or ``device`` for an ``st_mode``."""
    if stat.S_ISREG(mode):
        return "file"
    if stat.S_ISDIR(mode):
        return "dir"
    if stat.S_ISLNK(mode):
        return "link"
    if stat.S_ISFIFO(mode):
        return "fifo"
    if stat.S_ISSOCK(mode):
        return "socket"
    return "device"


def _check_regular(st: os.stat_result, rel: str) -> None:
    kind = kind_of(st.st_mode)
    if kind == "link":
        raise UnsafePathError(f"refused: {rel!r} is a symbolic link; the file tools never "
                              "follow links")
    if kind == "dir":
        raise UnsafePathError(f"refused: {rel!r} is a folder, not a file")
    if kind != "file":
        raise UnsafePathError(f"refused: {rel!r} is a {kind}, not a regular file")
    if st.st_nlink > 1:
        raise UnsafePathError(f"refused: {rel!r} has {st.st_nlink} hard links; the file "
                              "tools only read files with one link")


# ---------------------------------------------------------------------- opening
def open_root(root: Path) -> int:
    """The workspace folder itself: a host path the sandbox cannot change."""
    return os.open(root, O_DIR)


def open_dir(root_fd: int, parts: tuple[str, ...], rel: str, create: bool = False) -> int:
    """A descriptor of the folder ``parts`` beneath ``root_fd``, opened without following
    a link; ``create``: make missing folders on the way (``mkdirat`` one level at a time)."""
    global use_openat2
    if not create and use_openat2 and parts:
        try:
            return _openat2(root_fd, "/".join(parts), O_DIR)
        except OSError as exc:
            if exc.errno == errno.ENOSYS:
                use_openat2 = False
            elif exc.errno != errno.EPERM:  # EPERM: a seccomp filter; walk instead
                raise _why(root_fd, parts, rel, exc) from None
    fd = os.dup(root_fd)
    for part in parts:
        try:
            fd = _step_into(fd, part, create)  # closes the old fd, also when it fails
        except OSError as exc:
            raise _why(root_fd, parts, rel, exc) from None
    return fd


def _why(root_fd: int, parts: tuple[str, ...], rel: str, exc: OSError) -> OSError:
    """The error to raise when opening the folder ``parts`` failed with ``exc``: names the
    first component that is a link or not a folder (looked at again, for the message only)."""
    if exc.errno not in (errno.ELOOP, errno.ENOTDIR):
        return _refusal(exc, rel)
    fd = os.dup(root_fd)
    try:
        for n, part in enumerate(parts, 1):
            prefix = "/".join(parts[:n])
            try:
                what = kind_of(os.stat(part, dir_fd=fd, follow_symlinks=False).st_mode)
                if what == "link":
                    return UnsafePathError(f"refused: {rel!r} goes through the symbolic link "
                                           f"{prefix!r}; the file tools never follow links")
                if what != "dir":
                    return UnsafePathError(f"refused: {prefix!r} in {rel!r} is a {what}, "
                                           "not a folder")
                new = os.open(part, O_DIR, dir_fd=fd)
            except OSError:
                break
            os.close(fd)
            fd = new
    finally:
        os.close(fd)
    return _refusal(exc, rel)  # changed meanwhile


def _step_into(fd: int, name: str, create: bool) -> int:
    """Open the folder ``name`` in ``fd`` (closed here), making it if ``create``."""
    try:
        try:
            return os.open(name, O_DIR, dir_fd=fd)
        except FileNotFoundError:
            if not create:
                raise
        try:
            os.mkdir(name, 0o777, dir_fd=fd)
            made = True
        except FileExistsError:  # made by someone else meanwhile: not ours to change
            made = False
        new = os.open(name, O_DIR, dir_fd=fd)
        if made:
            _adopt(new, os.fstat(fd), 0o777)
        return new
    finally:
        os.close(fd)


def _adopt(fd: int, owner: os.stat_result, mode: int) -> None:
    """Give a file or folder this process just made (``fd``) the mode ``mode`` and the
    owner of ``owner``. Something another user made (the sandbox swapped it in) is left
    alone: only what this process owns is changed."""
    st = os.fstat(fd)
    if st.st_uid != os.geteuid():
        return
    os.fchmod(fd, mode)
    if os.geteuid() == 0 and (st.st_uid, st.st_gid) != (owner.st_uid, owner.st_gid):
        os.fchown(fd, owner.st_uid, owner.st_gid)


def open_file(dir_fd: int, name: str, rel: str) -> int:
    """A read descriptor of the regular, singly linked file ``name`` in ``dir_fd``."""
    try:
        _check_regular(os.stat(name, dir_fd=dir_fd, follow_symlinks=False), rel)
        fd = os.open(name, _O_READ, dir_fd=dir_fd)
    except UnsafePathError:
        raise
    except OSError as exc:
        raise _refusal(exc, rel) from None
    try:
        _check_regular(os.fstat(fd), rel)  # swapped between the stat and the open
    except BaseException:
        os.close(fd)
        raise
    return fd


def read_fd(fd: int, limit: int) -> bytes:
    """At most ``limit`` bytes from ``fd``."""
    chunks, size = [], 0
    while size < limit:
        chunk = os.read(fd, min(CHUNK, limit - size))
        if not chunk:
            break
        chunks.append(chunk)
        size += len(chunk)
    return b"".join(chunks)


# ---------------------------------------------------------------------- file operations
def kind(root: Path, rel: str) -> str:
    """What ``rel`` is: ``missing``, ``file``, ``dir``, ``link``, ``fifo``, ``socket`` or
    ``device`` (never following a link). A link or a non-folder on the way raises."""
    parts = split(rel)
    rfd = open_root(root)
    try:
        if not parts:
            return "dir"
        try:
            dfd = open_dir(rfd, parts[:-1], rel)
        except FileNotFoundError:
            return "missing"
        try:
            return kind_of(os.stat(parts[-1], dir_fd=dfd, follow_symlinks=False).st_mode)
        except FileNotFoundError:
            return "missing"
        finally:
            os.close(dfd)
    finally:
        os.close(rfd)


def read_bytes(root: Path, rel: str, max_bytes: int) -> bytes:
    """The content of the regular file ``rel``; :class:`UnsafePathError` if it is over
    ``max_bytes``, not a regular file, hard-linked, or reached through a link."""
    parts = split(rel)
    if not parts:
        raise UnsafePathError("refused: '.' is a folder, not a file")
    rfd = open_root(root)
    try:
        dfd = open_dir(rfd, parts[:-1], rel)
    finally:
        os.close(rfd)
    try:
        fd = open_file(dfd, parts[-1], rel)
    finally:
        os.close(dfd)
    try:
        data = read_fd(fd, max_bytes + 1)
    finally:
        os.close(fd)
    if len(data) > max_bytes:
        raise UnsafePathError(f"refused: {rel!r} is larger than {max_bytes} bytes")
    return data


def write_bytes(root: Path, rel: str, data: bytes, *, parents: bool = False,
                mode: int | None = None) -> bool:
    """Replace (or create) the file ``rel`` by ``data`` atomically; returns whether it
    existed. ``parents``: make missing folders. ``mode``: the new file's permission bits
    (default: the old file's, else 0o666; set-id and sticky bits are never kept). An
    existing link, folder or special file at ``rel`` is refused, never replaced."""
    dfd, name = _parent(root, rel, parents, "refused: '.' is a folder, not a file")
    try:
        return _replace(dfd, name, data, rel, mode)
    finally:
        os.close(dfd)


def _parent(root: Path, rel: str, create: bool, empty: str) -> tuple[int, str]:
    """An fd of ``rel``'s folder (made when ``create``), opened beneath ``root`` without
    following links, and ``rel``'s last name; ``empty`` is the refusal for ``'.'``."""
    parts = split(rel)
    if not parts:
        raise UnsafePathError(empty)
    rfd = open_root(root)
    try:
        return open_dir(rfd, parts[:-1], rel, create=create), parts[-1]
    finally:
        os.close(rfd)


def _replace(dfd: int, name: str, data: bytes, rel: str, mode: int | None) -> bool:
    try:
        old = os.stat(name, dir_fd=dfd, follow_symlinks=False)
    except FileNotFoundError:
        old = None
    if old is not None and kind_of(old.st_mode) != "file":
        _check_regular(old, rel)  # raises: link, folder or special file
    if mode is None:
        mode = old.st_mode & 0o777 if old is not None else 0o666
    owner = old if old is not None else os.fstat(dfd)
    tmp = f".{name[:60]}.{secrets.token_hex(6)}.tmp"
    fd = os.open(tmp, _O_NEW, 0o600, dir_fd=dfd)
    try:
        try:
            view = memoryview(data)
            while view:
                view = view[os.write(fd, view):]
            _adopt(fd, owner, mode & 0o777)
        finally:
            os.close(fd)
        os.rename(tmp, name, src_dir_fd=dfd, dst_dir_fd=dfd)
    except BaseException:
        try:
            os.unlink(tmp, dir_fd=dfd)
        except OSError:
            pass
        raise
    return old is not None


def remove_file(root: Path, rel: str) -> bool:
    """Delete the regular file ``rel``; returns whether it existed. A link, folder or
    special file is refused."""
    parts = split(rel)
    if not parts:
        raise UnsafePathError("refused: '.' is a folder, not a file")
    rfd = open_root(root)
    try:
        dfd = open_dir(rfd, parts[:-1], rel)
    except FileNotFoundError:
        return False
    finally:
        os.close(rfd)
    try:
        try:
            st = os.stat(parts[-1], dir_fd=dfd, follow_symlinks=False)
        except FileNotFoundError:
            return False
        if kind_of(st.st_mode) != "file":
            _check_regular(st, rel)
        os.unlink(parts[-1], dir_fd=dfd)
        return True
    finally:
        os.close(dfd)


def make_dirs(root: Path, rel: str) -> None:
    """Make the folder ``rel`` and its missing parents (never through a link)."""
    rfd = open_root(root)
    try:
        os.close(open_dir(rfd, split(rel), rel, create=True))
    finally:
        os.close(rfd)


def make_symlink(root: Path, rel: str, target: str) -> None:
    """Make the symbolic link ``rel -> target`` (making a link never follows one)."""
    dfd, name = _parent(root, rel, True, "refused: '.' is the workspace")
    try:
        os.symlink(target, name, dir_fd=dfd)
    finally:
        os.close(dfd)
