"""Durable, link-safe file writes shared by every command.

A reader (or a crash) sees the old file or the new one. Nothing here writes through a symbolic link:
temporary files are created exclusively (`O_EXCL | O_NOFOLLOW`), and files that are changed in place
(a lock, an append-only log) are opened with `O_NOFOLLOW` and must be a regular file with one name, so
a link planted in an output folder can never make jmigrate truncate or write a file outside it.
"""

from __future__ import annotations

import errno
import os
import stat
import tempfile
from pathlib import Path

from jmigrate.errors import CheckpointError

O_NOFOLLOW = getattr(os, "O_NOFOLLOW", 0)
O_CLOEXEC = getattr(os, "O_CLOEXEC", 0)
O_NONBLOCK = getattr(os, "O_NONBLOCK", 0)  # a FIFO planted under one of our names must not hang open()


def link_error(path: Path) -> CheckpointError:
    return CheckpointError(f"{path} is a symbolic link: jmigrate never follows links inside its output "
                           "folder; remove it or choose another folder")


def check_regular(path: Path, *, single_link: bool = False) -> bool:
    """True when `path` is a regular file, False when it does not exist; a link, a folder, a device or
    (with `single_link`) a file with another hard link is refused with a one-line CheckpointError."""
    try:
        st = os.lstat(path)
    except FileNotFoundError:
        return False
    _check_stat(path, st, single_link)
    return True


def check_folder(path: Path) -> bool:
    """True when `path` is a real folder (not a link to one), False when it does not exist."""
    try:
        st = os.lstat(path)
    except FileNotFoundError:
        return False
    if stat.S_ISLNK(st.st_mode):
        raise link_error(path)
    if not stat.S_ISDIR(st.st_mode):
        raise CheckpointError(f"{path} is not a folder; remove it or choose another output folder")
    return True


def _check_stat(path: Path, st: os.stat_result, single_link: bool) -> None:
    if stat.S_ISLNK(st.st_mode):
        raise link_error(path)
    if not stat.S_ISREG(st.st_mode):
        raise CheckpointError(f"{path} is not a regular file; remove it or choose another output folder")
    if single_link and st.st_nlink > 1:
        raise CheckpointError(f"{path} has another hard link (jmigrate changes this file in place, which "
                              "would change the other name too); remove it or choose another folder")


def open_regular(path: Path, flags: int, *, single_link: bool = False) -> int:
    """`os.open` that never follows a link and only opens a regular file (created with mode 0666 &
    ~umask when `flags` has O_CREAT). Returns the file descriptor."""
    try:
        fd = os.open(path, flags | O_NOFOLLOW | O_CLOEXEC | O_NONBLOCK, 0o666)
    except OSError as e:
        if e.errno == errno.ELOOP or os.path.islink(path):
            raise link_error(path) from None
        raise
    try:
        _check_stat(path, os.fstat(fd), single_link)
        if O_NONBLOCK:
            os.set_blocking(fd, True)
    except BaseException:
        os.close(fd)
        raise
    return fd


def create_new(path: Path) -> None:
    """Create `path` as a new empty regular file, failing if anything (a link included) is there, so a
    writer that then opens it by name (pyarrow) writes into a file jmigrate made."""
    os.close(os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0o666))


def atomic_write(path: Path, data: bytes) -> None:
    """Write `data` to `path` through a new temporary file in the same folder, fsync, `os.replace`.

    A link at `path` is replaced by the new file, never written through; an existing file's
    permissions are kept, a new file gets the ones a plain open() would give it.
    """
    try:
        st = os.lstat(path)
        mode = stat.S_IMODE(st.st_mode) if stat.S_ISREG(st.st_mode) else None
    except FileNotFoundError:
        mode = None
    else:
        if not (stat.S_ISREG(st.st_mode) or stat.S_ISLNK(st.st_mode)):
            # os.replace would swap the node itself: `-o /dev/null` as root once left a regular file there
            raise CheckpointError(f"{path} is not a regular file (a device, FIFO, socket or folder); "
                                  "name a file to write")
    if mode is None:
        umask = os.umask(0)
        os.umask(umask)
        mode = 0o666 & ~umask
    # mkstemp: a fresh random name opened with O_EXCL | O_NOFOLLOW, never someone else's file
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.tmp-")
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            f.flush()
            os.fchmod(f.fileno(), mode) if hasattr(os, "fchmod") else os.chmod(tmp, mode)
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)  # a full disk: don't keep a half copy in the way
        raise
    fsync_dir(path.parent)


def fsync_dir(folder: Path) -> None:
    # A rename is only durable once the directory entry is on disk (POSIX; Windows cannot open folders).
    try:
        fd = os.open(folder, os.O_RDONLY)
    except OSError:
        if os.name == "nt":
            return
        raise
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def require_utf8_name(path: str | os.PathLike[str], what: str) -> None:
    """Refuse a path whose name is not UTF-8 (Python holds such bytes as lone surrogates): Parquet files
    (pyarrow) and the JSON manifest can only name UTF-8 paths, so stop before anything is written."""
    text = os.fspath(path)
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        from jmigrate.errors import UsageError

        shown = text.encode("utf-8", "backslashreplace").decode("ascii", "backslashreplace")
        raise UsageError(f"{what} {shown}: the name is not valid UTF-8; rename it (or use a link with "
                         "a UTF-8 name)") from None


def write_output(path: Path, data: bytes) -> None:
    """Write a file the user named (`-o`, `--report`). A stream (`/dev/null`, a FIFO, a terminal, or a
    link to one, as `/dev/stdout` is) is written as a stream: atomic_write would swap the device node or
    the link itself for a regular file. Anything else goes through atomic_write (a link to a regular
    file is replaced, not written through)."""
    try:
        st = os.stat(path)  # follows links: what a stream name leads to
    except (FileNotFoundError, NotADirectoryError):
        st = None
    if st is not None and (stat.S_ISCHR(st.st_mode) or stat.S_ISFIFO(st.st_mode)):
        with open(path, "wb") as f:
            f.write(data)
        return
    atomic_write(path, data)
