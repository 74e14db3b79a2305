"""Helpers shared by the test files (imported as `from helpers import ...`; fixtures live in conftest.py)."""

from __future__ import annotations

import json
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

ROOT = Path(__file__).resolve().parent.parent
FIXTURES = ROOT / "fixtures"
STUB_KEY = "jina_test_stub_key"


def write_jsonl(path: Path, rows: Iterable[dict[str, Any]]) -> Path:
    """Write rows as JSON Lines (UTF-8, one object a line) and return the path."""
    path.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows), encoding="utf-8")
    return path


def read_shards(out: Path) -> pa.Table:
    """Every row of an index folder's shards, in shard order."""
    return pq.read_table(sorted(out.glob("part-*.parquet")))


def read_index(out: Path) -> tuple[list[dict[str, Any]], np.ndarray, str]:
    """(rows without vectors, the vectors as one matrix, the rejects file's text) of an index folder."""
    t = read_shards(out)
    vectors = np.stack(t.column("vector").to_numpy(zero_copy_only=False))
    rejects = (out / "rejects.jsonl").read_text(encoding="utf-8")
    return t.drop_columns(["vector"]).to_pylist(), vectors, rejects


def read_rejects(out: Path) -> list[dict[str, Any]]:
    return [json.loads(line) for line in (out / "rejects.jsonl").read_text(encoding="utf-8").splitlines()]


def snapshot_tree(root: Path) -> dict[str, bytes]:
    """Every regular file below root (relative path -> bytes): compare before and after."""
    return {str(p.relative_to(root)): p.read_bytes() for p in sorted(root.rglob("*"))
            if p.is_file() and not p.is_symlink()}
