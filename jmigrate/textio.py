"""Reading users' text files the same way everywhere: byte order marks, UTF-16/32, lines and TSV rows.

Every line-based reader (JSONL, CSV, TSV, qrels, run files, ids files) goes through here, so a UTF-8
BOM is never part of the first row, a UTF-16 file is a clear error instead of a row of garbage per
line, CRLF is a line ending, and a file that is not a regular file (a FIFO, a device) is never opened
for reading in a way that could block.
"""

from __future__ import annotations

import os
import re
import stat
from collections.abc import Iterator
from pathlib import Path
from typing import BinaryIO

from jmigrate.errors import InputError

UTF8_BOM = b"\xef\xbb\xbf"
# Longest first: the UTF-32-LE mark starts with the UTF-16-LE one.
_OTHER_BOMS = ((b"\xff\xfe\x00\x00", "UTF-32"), (b"\x00\x00\xfe\xff", "UTF-32"),
               (b"\xff\xfe", "UTF-16"), (b"\xfe\xff", "UTF-16"))
_CODECS = {b"\xff\xfe\x00\x00": "utf-32", b"\x00\x00\xfe\xff": "utf-32", b"\xff\xfe": "utf-16",
           b"\xfe\xff": "utf-16"}
WHITESPACE = re.compile(r"\s")  # what str.split() splits on (Unicode whitespace)


def is_unicode(s: str) -> bool:
    """False for a string holding a lone surrogate: JSON can escape one, Arrow, Parquet and UTF-8 cannot."""
    try:
        s.encode("utf-8")
        return True
    except UnicodeEncodeError:
        return False


def foreign_bom(head: bytes) -> str | None:
    """'UTF-16' or 'UTF-32' when `head` starts with that byte order mark."""
    return next((name for bom, name in _OTHER_BOMS if head.startswith(bom)), None)


def require_utf8(path: Path | str, head: bytes) -> None:
    """A one-line error for a file that announces another encoding (its lines cannot be split as UTF-8)."""
    enc = foreign_bom(head)
    if enc:
        raise InputError(f"{path} is {enc} (it starts with a {enc} byte order mark); jmigrate reads "
                         f"UTF-8: convert it, e.g. iconv -f {enc} -t UTF-8")


class NotRegularFile(InputError):
    """A FIFO, device, socket or folder where a file was expected."""

    def __init__(self, path: Path | str, kind: str) -> None:
        super().__init__(f"{path} is not a regular file ({kind})")
        self.kind = kind


def require_regular(path: Path | str, *, folder_ok: bool = False) -> None:
    """Refuse a FIFO, device or socket before a library (numpy, pyarrow) opens it and blocks."""
    try:
        mode = os.stat(path).st_mode
    except OSError:
        return  # missing or unreadable: the caller's own open reports it
    if not (stat.S_ISREG(mode) or (folder_ok and stat.S_ISDIR(mode))):
        raise NotRegularFile(path, file_kind(mode))


def open_regular(path: Path | str) -> BinaryIO:
    """Open a file for reading, refusing anything but a regular file (a FIFO would block forever)."""
    try:
        fd = os.open(path, os.O_RDONLY | getattr(os, "O_NONBLOCK", 0))
    except OSError as e:
        raise InputError(f"cannot read {path}: {e.strerror or e}") from e
    try:
        mode = os.fstat(fd).st_mode
        if not stat.S_ISREG(mode):
            raise NotRegularFile(path, file_kind(mode))
        if hasattr(os, "set_blocking"):
            os.set_blocking(fd, True)
        return os.fdopen(fd, "rb")
    except BaseException:
        os.close(fd)
        raise


def file_kind(mode: int) -> str:
    if stat.S_ISFIFO(mode):
        return "FIFO"
    if stat.S_ISCHR(mode) or stat.S_ISBLK(mode):
        return "device"
    if stat.S_ISSOCK(mode):
        return "socket"
    if stat.S_ISDIR(mode):
        return "folder"
    return "special file"


def lines(fh: BinaryIO, path: Path | str) -> Iterator[tuple[int, bytes]]:
    """(line number, line without its line ending) for every line, blank ones included.

    Lines end at LF or CRLF only: a lone CR, U+2028 or U+0085 is data (JSON keeps them raw inside
    strings, and ids may hold them). A UTF-8 BOM at the start is dropped; a UTF-16/32 one is an error.
    """
    first = fh.readline()
    if not first:
        return
    require_utf8(path, first)
    if first.startswith(UTF8_BOM):
        first = first[len(UTF8_BOM):]
    yield 1, _chomp(first)
    for n, line in enumerate(fh, 2):
        yield n, _chomp(line)


def _chomp(line: bytes) -> bytes:
    if line[-1:] == b"\n":
        return line[:-2] if line[-2:] == b"\r\n" else line[:-1]
    return line


def count_rows(fh: BinaryIO) -> int:
    """Non-blank lines from the current position on (fast: no decoding), as `lines` would yield them."""
    return sum(1 for line in fh if line != b"\n" and line != b"\r\n")


def tsv_rows(fh: BinaryIO, path: Path | str) -> Iterator[tuple[int, list[str]]]:
    """(line number, fields) per non-blank line of a TSV file: fields split at tabs, no quoting, no escapes.

    TSV (IANA text/tab-separated-values, MS MARCO, BEIR) has no quoting, so a field that starts with
    `"` is just text. Undecodable bytes are kept as surrogate escapes (`is_unicode` finds them) so the
    caller can reject that one row rather than the file.
    """
    for n, line in lines(fh, path):
        if line:
            yield n, line.decode("utf-8", "surrogateescape").split("\t")


def decode_utf8_line(line: bytes, where: str) -> str:
    try:
        return line.decode("utf-8")
    except UnicodeDecodeError as e:
        raise InputError(f"{where}: not valid UTF-8 (byte {e.start + 1} of the line)") from None


def decode_document(data: bytes) -> str:
    """A whole text file: UTF-8 (a BOM dropped), or UTF-16/32 when its BOM says so.

    Raises UnicodeDecodeError (the caller rejects that one file)."""
    if data.startswith(UTF8_BOM):
        return data[len(UTF8_BOM):].decode("utf-8")
    for bom, codec in _CODECS.items():
        if data.startswith(bom):
            return data.decode(codec)  # the codec reads the BOM and drops it
    return data.decode("utf-8")
