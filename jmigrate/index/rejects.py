"""`rejects.jsonl`: one line per source row that could not be embedded, with the reason.

Lines are appended only when the shard holding their rows is committed, and the file's committed
length is recorded in the manifest, so after a crash it is cut back to that length (exactly once).
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

REJECTS = "rejects.jsonl"


def reject(row: int, rid: Any, reason: str) -> dict[str, Any]:
    return {"row": row, "id": rid if rid is None or isinstance(rid, (str, int)) else str(rid),
            "reason": reason}


class RejectsFile:
    def __init__(self, folder: Path, committed_bytes: int) -> None:
        self.path = folder / REJECTS
        if self.path.exists() and self.path.stat().st_size > committed_bytes:
            with open(self.path, "r+b") as f:
                f.truncate(committed_bytes)
        self.size = committed_bytes

    def append(self, records: list[dict[str, Any]]) -> int:
        """Append and fsync; returns the new committed length."""
        if records:
            # backslashreplace: a lone surrogate in an id (JSONL allows one) becomes its JSON escape
            data = "".join(json.dumps(r, ensure_ascii=False) + "\n" for r in records).encode(
                "utf-8", "backslashreplace")
            with open(self.path, "ab") as f:
                f.write(data)
                f.flush()
                os.fsync(f.fileno())
            self.size += len(data)
        return self.size
