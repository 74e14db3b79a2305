"""`reindex URI --out DIR --to URI3 --sync`: bring a v3 collection up to date with a live v2 collection.

Only rows that are new, or whose text changed, are re-embedded; rows deleted from v2 are deleted from v3.
A row's content hash is the sha256 of its text, compared with the text the v3 collection keeps (so v3
must store the text: reindex without --no-text). The changed rows are written to `DIR-sync/<hash>/`
(`delta.jsonl`, then a normal crash-safe index of them in `index/`): the delta's hash names the folder,
so a sync stopped anywhere resumes in the same folder when run again, and finished work is not paid
again. The main index in DIR is not modified.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from jmigrate.errors import InputError, UsageError
from jmigrate.fileio import atomic_write
from jmigrate.stores import open_store, parse_uri

PAGE_ROWS = 2000
DONE = "done"  # in a sync folder once its rows are all in the v3 collection


def content_hash(text: Any) -> str:
    return hashlib.sha256(str(text).encode("utf-8", "surrogatepass")).hexdigest()


@dataclass
class SyncPlan:
    v2_rows: int
    new: int
    changed: int
    deleted: list[str] = field(default_factory=list)
    folder: Path | None = None  # DIR-sync/<hash> holding delta.jsonl (None: nothing to embed)

    @property
    def delta(self) -> Path | None:
        return self.folder / "delta.jsonl" if self.folder else None


def plan_sync(
    v2: str, v3: str, out: Path, *, id_column: str | None = None, text_column: str | None = None
) -> SyncPlan:
    """Compare the two collections row by row (one pass over each, pages of PAGE_ROWS)."""
    u3 = parse_uri(v3)
    with open_store(u3) as target:
        d3 = target.describe()
        if d3.info.get("created_by") != "jmigrate":
            raise InputError(
                f"{u3.collection} was not created by jmigrate: --sync updates only the collection "
                "an earlier `reindex --to` made"
            )
        if not d3.text_field:
            raise UsageError(
                f"{u3.collection} does not keep the text, which --sync compares: reindex it without --no-text"
            )
        have: dict[str, str] = {}
        for page in target.pages(PAGE_ROWS, vectors=False):
            for i, t in zip(page.ids, page.texts or [], strict=True):
                have[str(i)] = content_hash(t)
    lines: list[bytes] = []
    new = changed = rows = 0
    with open_store(parse_uri(v2), text_field=text_column, id_field=id_column) as source:
        d2 = source.describe()
        d2.require_text()
        for page in source.pages(PAGE_ROWS, vectors=False):
            metas = page.metadata or [{} for _ in page.ids]
            for i, t, meta in zip(page.ids, page.texts or [], metas, strict=True):
                rows += 1
                old = have.pop(str(i), None)
                if old == content_hash(t):
                    continue
                if old is None:
                    new += 1
                else:
                    changed += 1
                rec = {k: v for k, v in meta.items() if k not in ("id", "text")}
                rec.update(id=i, text=t)
                lines.append(json.dumps(rec, ensure_ascii=False, sort_keys=True, default=str).encode("utf-8"))
    plan = SyncPlan(rows, new, changed, sorted(have))
    unfinished = [
        f
        for f in sorted(Path(f"{out}-sync").glob("*"))
        if (f / "delta.jsonl").exists() and not (f / DONE).exists()
    ]
    if unfinished:
        # A sync stopped after part of its rows reached v3: the rest of the same delta is still needed, and
        # resuming its folder re-pays nothing (its index is the checkpoint); rows changed since are caught
        # by the count check at the end and the next sync.
        plan.folder = unfinished[-1]
    elif lines:
        body = b"\n".join(lines) + b"\n"
        folder = Path(f"{out}-sync") / hashlib.sha256(body).hexdigest()[:16]
        folder.mkdir(parents=True, exist_ok=True)
        if not (folder / "delta.jsonl").exists():
            atomic_write(folder / "delta.jsonl", body)
        plan.folder = folder
    return plan


def mark_done(plan: SyncPlan) -> None:
    if plan.folder is not None:
        atomic_write(plan.folder / DONE, b"")


def delete_rows(v3: str, ids: list[str]) -> None:
    with open_store(parse_uri(v3)) as target:
        for s in range(0, len(ids), 1000):
            target.delete(ids[s : s + 1000])


def check_synced(v3: str, expected: int) -> None:
    with open_store(parse_uri(v3)) as target:
        got = target.count()
    if got != expected:
        raise InputError(
            f"{parse_uri(v3).collection} holds {got:,} rows after the sync, v2 {expected:,} (rows were "
            "added or deleted meanwhile, or some were rejected): run the same command again"
        )


def record_sync(v3: str, plan: SyncPlan) -> None:
    from jmigrate.index.manifest import now

    with open_store(parse_uri(v3)) as target:
        syncs = target.read_record("syncs") or []
        syncs = (syncs if isinstance(syncs, list) else [])[-19:]
        syncs.append(
            {
                "at": now(),
                "v2_rows": plan.v2_rows,
                "new": plan.new,
                "changed": plan.changed,
                "deleted": len(plan.deleted),
                "folder": str(plan.folder) if plan.folder else None,
            }
        )
        target.write_record("syncs", syncs)
