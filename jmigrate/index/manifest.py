"""The index manifest (`manifest.json`): what an index folder holds and how it was made.

The format is a contract: `verify` and users' own code read it. Keys may be added, never renamed.
"""

from __future__ import annotations

import json
import re
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from jmigrate.errors import InputError
from jmigrate.fileio import atomic_write

FORMAT = "jmigrate-index"
FORMAT_VERSION = 1
MANIFEST = "manifest.json"
SHARD_PATTERN = "part-{:05d}.parquet"
# What a shard record's `file` may be: a plain name inside the index folder, never a path. jmigrate
# deletes and replaces shards, so a manifest naming anything else would point that at the user's files.
SHARD_NAME = re.compile(r"part-[0-9]{5,}\.parquet")


def now() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="seconds")


def write_manifest(folder: Path, manifest: dict[str, Any]) -> None:
    atomic_write(folder / MANIFEST, (json.dumps(manifest, indent=2, ensure_ascii=False) + "\n").encode())


def read_manifest(folder: Path) -> dict[str, Any] | None:
    """The manifest of `folder`, None when there is none; InputError when it is not ours or unreadable."""
    path = folder / MANIFEST
    if not path.exists():
        return None
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as e:
        raise InputError(f"cannot read {path}: {e}") from e
    if not isinstance(data, dict) or data.get("format") != FORMAT:
        raise InputError(f"{path} is not a jmigrate index manifest")
    if data.get("format_version") != FORMAT_VERSION:
        raise InputError(f"{path} has format_version {data.get('format_version')}; this jmigrate reads "
                         f"{FORMAT_VERSION}")
    # A manifest edited by hand or damaged on disk must be an error here, not a KeyError later.
    for key, kind in (("shards", list), ("rows", dict), ("checkpoint", dict), ("usage", dict)):
        if not isinstance(data.get(key), kind):
            raise InputError(f"{path} is damaged: '{key}' is missing or not a {kind.__name__}")
    check_shard_files(data["shards"], path)
    return data


def check_shard_files(shards: list[Any], path: Path) -> None:
    """Every shard record names a distinct `part-NNNNN.parquet` file in the folder; else the manifest was
    damaged or tampered with, and nothing it names may be read, replaced or deleted."""
    seen: set[str] = set()
    for i, rec in enumerate(shards):
        name = rec.get("file") if isinstance(rec, dict) else None
        if not isinstance(name, str) or not SHARD_NAME.fullmatch(name):
            raise InputError(f"{path} is damaged or was tampered with: shard {i} names {name!r}, not a "
                             "part-NNNNN.parquet file inside the index folder; jmigrate will not touch it")
        if name in seen:
            raise InputError(f"{path} is damaged or was tampered with: shard {name} is listed twice")
        seen.add(name)


def new_manifest(*, tool_version: str, model: str, task: str | None, dimensions: int, late_chunking: bool,
                 chunking: dict[str, Any] | None, encoder: str, source: dict[str, Any],
                 settings: dict[str, Any], fingerprint: str) -> dict[str, Any]:
    return {
        "format": FORMAT,
        "format_version": FORMAT_VERSION,
        "tool_version": tool_version,
        "model": model,
        "task": task,
        "dimensions": dimensions,
        "normalized": True,
        "late_chunking": late_chunking,
        "chunking": chunking,
        "encoder": encoder,
        "source": source,
        "rows": {"source": 0, "written": 0, "rejected": 0},
        "shards": [],
        "started_at": now(),
        "finished_at": None,
        "status": "running",
        # Additions beyond the contract: the settings that decide the output, their fingerprint, the
        # resume point and what was spent.
        "settings": settings,
        "fingerprint": fingerprint,
        "checkpoint": {"next_unit": 0, "rejects_bytes": 0},
        "usage": {"requests": 0, "tokens": 0, "retries": 0},
    }
