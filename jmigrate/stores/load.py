"""`reindex ... --to URI`: load a finished index's Parquet shards into a NEW collection beside the v2 one.

The shards stay the checkpoint and the source of truth. Each page is an idempotent upsert by id, and
each finished shard is recorded in `store-load.json` in the index folder (atomic write), so a load
stopped anywhere resumes from the first unfinished shard without duplicates or gaps. A target that
exists is resumed only if jmigrate created it for this very index (same fingerprint); anything else is
refused. Before success, the row count and a sample of vectors are checked against the shards.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from jmigrate.errors import CheckpointError, InputError, UsageError
from jmigrate.fileio import atomic_write
from jmigrate.index.manifest import Manifest, now, read_manifest
from jmigrate.stores import Page, Store, StoreURI, create_store, parse_uri
from jmigrate.stores.base import arrow_logical_type

STATE = "store-load.json"
SAMPLE = 200  # vectors compared with the shards after the load
TOLERANCE = 1e-4  # float32 through text/JSON clients; Qdrant normalises cosine vectors itself
CHUNK_FIELDS = ("chunk_index", "chunk_start", "chunk_end")


@dataclass
class LoadResult:
    uri: str
    collection: str
    rows: int
    shards_loaded: int
    shards_skipped: int
    sample_checked: int
    notes: list[str] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        return {
            "uri": self.uri,
            "collection": self.collection,
            "rows": self.rows,
            "shards_loaded": self.shards_loaded,
            "shards_skipped": self.shards_skipped,
            "sample_checked": self.sample_checked,
            "notes": list(self.notes),
        }


def _state(folder: Path) -> dict[str, Any]:
    p = folder / STATE
    if not p.exists():
        return {}
    try:
        data = json.loads(p.read_text(encoding="utf-8"))
    except (OSError, ValueError) as e:
        raise CheckpointError(f"cannot read {p}: {e}; delete it to load the whole index again") from e
    return data if isinstance(data, dict) else {}


def _save_state(folder: Path, state: dict[str, Any]) -> None:
    atomic_write(folder / STATE, (json.dumps(state, indent=2) + "\n").encode())


def check_target(index: Path, uri: str) -> StoreURI:
    """Checks that need no shards, done before any encoding is paid for: a sane URI, not the source."""
    u = parse_uri(uri)
    m = read_manifest(index) if index.exists() else None
    src: dict[str, Any] = m.source if m is not None and isinstance(m.source, dict) else {}
    store = src.get("store") if isinstance(src, dict) else None
    if isinstance(store, dict) and src.get("format") == u.backend and store.get("collection") == u.collection:
        raise UsageError(
            f"--to names the source collection {u.collection!r}: the v3 vectors go into a NEW "
            "collection beside it (the v2 data is never overwritten)"
        )
    return u


def preflight(index: Path, uri: str, *, source: str | None = None) -> StoreURI:
    """Before any encoding is paid for: the URI, the backend installed and reachable, and a target that
    either does not exist yet or is jmigrate's own load of an index."""
    u = check_target(index, uri)
    if source is not None and source.strip() == uri.strip():
        raise UsageError(
            "--to names the source collection: the v3 vectors go into a NEW collection beside it"
        )
    from jmigrate.stores import open_store

    try:
        with open_store(u) as existing:
            mine = existing.describe().info
    except InputError as e:
        if str(e).startswith(("no table", "no collection")):
            return u  # a new collection: what --to is for
        raise
    if mine.get("created_by") != "jmigrate":
        raise InputError(
            f"{u.collection} already exists and was not created by jmigrate; name a new collection "
            "with --to (the v2 data is never overwritten)"
        )
    return u


def load_index(
    index: Path,
    uri: str,
    *,
    restart: bool = False,
    page_rows: int = 1000,
    stop: threading.Event | None = None,
    on_progress: Callable[[int, int], None] | None = None,
    into: bool = False,
) -> LoadResult:
    """Load the complete index in `index` into the new collection `uri` (see the module docstring).

    `into` (for `--sync`): upsert into the existing collection jmigrate made for another index of the
    same model and width; its row count is then checked by the caller, the sampled vectors here."""
    u = check_target(index, uri)
    m = read_manifest(index)
    if m is None or not m.complete:
        raise CheckpointError(f"{index} is not a complete index; finish the reindex before loading it")
    width = int(m.dimensions)
    shards = [index / s.file for s in m.shards]
    schema = pq.read_schema(shards[0]) if shards else None
    chunked = bool(schema and "chunk_index" in schema.names)
    has_text = bool(schema and "text" in schema.names)
    fields: dict[str, str] = {}
    if schema is not None:
        for f in schema:
            if f.name in ("id", "text", "vector"):
                continue
            fields[f.name] = arrow_logical_type(f.type)
    src = m.source if isinstance(m.source, dict) else {}
    store_src = src.get("store") if isinstance(src.get("store"), dict) else {}
    id_type = "int" if (store_src or {}).get("id_type") == "int" and not chunked else "text"
    if chunked:
        fields = {"source_id": "text", **fields}  # the document id; the row id is "<id>#<chunk_index>"
    info = {
        "model": m.model,
        "task": m.task,
        "dimensions": width,
        "index_fingerprint": m.fingerprint,
        "source": src.get("path"),
        "loaded_from": str(index),
    }
    state = _state(index)
    if restart or state.get("uri") != str(u) or state.get("fingerprint") != m.fingerprint:
        state = {}
    store = _open_target(u, width, fields, id_type, has_text, info, m, restart=restart, into=into)
    notes: list[str] = []
    try:
        done = set(state.get("shards", []))
        state = {
            "uri": str(u),
            "fingerprint": m.fingerprint,
            "started_at": state.get("started_at", now()),
            "shards": sorted(done),
        }
        _save_state(index, state)
        loaded = skipped = rows = 0
        for n, shard in enumerate(shards):
            if stop is not None and stop.is_set():
                raise KeyboardInterrupt
            if shard.name in done:
                skipped += 1
                rows += pq.ParquetFile(shard).metadata.num_rows
                continue
            for page in _pages(shard, page_rows, chunked, has_text):
                store.write(page)
                rows += len(page)
                if on_progress:
                    on_progress(rows, int(m.rows.written))
                if stop is not None and stop.is_set():
                    raise KeyboardInterrupt
            done.add(shard.name)
            state["shards"] = sorted(done)
            _save_state(index, state)  # this shard is in the store: a rerun skips it
            loaded += 1
            del n
        notes += store.finish()
        checked = _check(store, shards, None if into else int(m.rows.written), chunked, str(u))
        state["finished_at"] = now()
        state["rows"] = int(m.rows.written)
        state["sample_checked"] = checked
        _save_state(index, state)
        return LoadResult(str(u), u.collection, int(m.rows.written), loaded, skipped, checked, notes)
    finally:
        store.close()


def _open_target(
    u: StoreURI,
    width: int,
    fields: dict[str, str],
    id_type: str,
    has_text: bool,
    info: dict[str, Any],
    m: Manifest,
    *,
    restart: bool,
    into: bool = False,
) -> Store:
    try:
        return create_store(u, width=width, fields=fields, id_type=id_type, store_text=has_text, info=info)
    except InputError as e:
        if "already exists" not in str(e):
            raise
    # It exists. Resume only what jmigrate created for this same index; --restart drops it first.
    from jmigrate.stores import open_store

    with open_store(u) as existing:
        mine = existing.describe().info
        existing_ids = str(getattr(existing, "id_type", id_type))
    if mine.get("created_by") != "jmigrate":
        raise InputError(
            f"{u.collection} already exists and was not created by jmigrate; name a new collection "
            "with --to (the v2 data is never overwritten)"
        )
    if into:
        if mine.get("model") != m.model or mine.get("dimensions") != width:
            raise InputError(
                f"{u.collection} holds {mine.get('model')} vectors of {mine.get('dimensions')} "
                f"dims, the changes {m.model} of {width}: sync with the same settings"
            )
        # the collection's own ids decide (a delta index from JSONL has text ids for int-keyed rows)
        return create_store(
            u, width=width, fields=fields, id_type=existing_ids, store_text=has_text, info=info, resume=True
        )
    if mine.get("index_fingerprint") != m.fingerprint:
        if not restart:
            raise InputError(
                f"{u.collection} already exists and holds another index's vectors; name a new "
                "collection, or pass --restart to replace it"
            )
    if restart:
        with open_store(u) as existing:
            existing.drop()
        return create_store(u, width=width, fields=fields, id_type=id_type, store_text=has_text, info=info)
    return create_store(
        u, width=width, fields=fields, id_type=id_type, store_text=has_text, info=info, resume=True
    )


def _pages(shard: Path, page_rows: int, chunked: bool, has_text: bool) -> Any:
    pf = pq.ParquetFile(shard)
    for batch in pf.iter_batches(batch_size=page_rows):
        ids = batch.column("id").to_pylist()
        vec = batch.column("vector")
        m = vec.flatten().to_numpy(zero_copy_only=False).reshape(len(ids), -1)
        texts = batch.column("text").to_pylist() if has_text else None
        meta_cols = [n for n in batch.schema.names if n not in ("id", "text", "vector")]
        meta = batch.select(meta_cols).to_pylist() if meta_cols else None
        if chunked:
            assert meta is not None
            for r, i in zip(meta, ids, strict=True):
                r["source_id"] = i
            ids = [f"{i}#{r['chunk_index']}" for i, r in zip(ids, meta, strict=True)]
        yield Page(ids, np.asarray(m, dtype=np.float32), texts, meta)


def _unit(m: np.ndarray) -> np.ndarray:
    n = np.linalg.norm(m, axis=-1, keepdims=True)
    return m / np.where(n == 0, 1, n)


def _check(store: Store, shards: list[Path], expected: int | None, chunked: bool, where: str) -> int:
    """The store holds exactly the shards' rows, and a sample of its vectors equals theirs."""
    got = store.count()
    if expected is not None and got != expected:
        raise CheckpointError(
            f"{where} holds {got:,} rows after the load, the index {expected:,}; run the "
            "same command again to resume the load"
        )
    if not shards:
        return 0
    rng = np.random.default_rng(0)
    per = max(1, SAMPLE // len(shards))
    checked = 0
    for shard in shards:
        t = pq.read_table(shard, columns=["id", "vector"] + (["chunk_index"] if chunked else []))
        if t.num_rows == 0:
            continue
        pick = np.sort(rng.choice(t.num_rows, size=min(per, t.num_rows), replace=False))
        sub = t.take(pa.array(pick))
        ids = sub.column("id").to_pylist()
        if chunked:
            ids = [f"{i}#{c}" for i, c in zip(ids, sub.column("chunk_index").to_pylist(), strict=True)]
        want = (
            sub.column("vector")
            .combine_chunks()
            .flatten()
            .to_numpy(zero_copy_only=False)
            .reshape(len(ids), -1)
        )
        have = store.fetch(ids)
        missing = [i for i in ids if str(i) not in have]
        if missing:
            raise CheckpointError(
                f"{where} lacks id {missing[0]!r} of the index after the load; run the same "
                "command again to resume the load"
            )
        for i, w in zip(ids, want, strict=True):
            if not np.allclose(_unit(have[str(i)]), _unit(w.astype(np.float32)), atol=TOLERANCE):
                raise CheckpointError(
                    f"{where}: the vector of id {i!r} differs from the index shard; the "
                    "store changed it or the load was damaged"
                )
        checked += len(ids)
        if checked >= SAMPLE:
            break
    return checked
