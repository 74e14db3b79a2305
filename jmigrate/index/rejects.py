"""`rejects.jsonl`: one line per source row that could not be embedded, with the reason.

Lines are appended only when the shard holding their rows is committed, and the file's committed
length is recorded in the manifest, so after a crash it is cut back to that length (exactly once).
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
from pathlib import Path
from typing import Any

from jmigrate.fileio import check_regular, open_regular

REJECTS = "rejects.jsonl"


def reject(row: int, rid: Any, reason: str) -> dict[str, Any]:
    return {"row": row, "id": rid if rid is None or isinstance(rid, (str, int)) else str(rid),
            "reason": reason}


class RejectsFile:
    def __init__(self, folder: Path, committed_bytes: int) -> None:
        self.path = folder / REJECTS
        if check_regular(self.path):
            if os.lstat(self.path).st_nlink > 1:
                _unshare(self.path)  # a hard-linked copy (`cp -al` backup) must not change with this file
            if self.path.stat().st_size > committed_bytes:
                with os.fdopen(open_regular(self.path, os.O_RDWR, single_link=True), "r+b") as f:
                    f.truncate(committed_bytes)
        self.size = committed_bytes

    def append(self, records: list[dict[str, Any]]) -> int:
        """Append and fsync; returns the new committed length."""
        if records:
            # backslashreplace: a lone surrogate in an id (JSONL allows one) becomes its JSON escape
            data = "".join(json.dumps(r, ensure_ascii=False) + "\n" for r in records).encode(
                "utf-8", "backslashreplace")
            fd = open_regular(self.path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, single_link=True)
            with os.fdopen(fd, "ab") as f:
                f.write(data)
                f.flush()
                os.fsync(f.fileno())
            self.size += len(data)
        return self.size


def _unshare(path: Path) -> None:
    """Give `path` its own copy of its bytes, so changing it in place leaves its other hard links alone."""
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.tmp-")
    try:
        with os.fdopen(fd, "wb") as dst, open(path, "rb") as src:
            shutil.copyfileobj(src, dst)
            dst.flush()
            os.fsync(dst.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
