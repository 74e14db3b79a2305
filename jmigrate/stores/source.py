"""A vector store collection as a `reindex` source: the same `Source` interface as the file readers.

Rows stream out of the store in pages (keyset pages in PostgreSQL, scroll in Qdrant, get in Chroma,
to_batches in LanceDB) in a stable order, so a rerun sees the rows in the same order and resumes exactly
once like a file source. The old vectors are not read (only ids, texts and the carried fields). What
was read and when is recorded in the index manifest's source entry (rows, collection, time).
"""

from __future__ import annotations

import datetime
import hashlib
import json
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any

import pyarrow as pa

from jmigrate.errors import UsageError
from jmigrate.index.sources import RESERVED, RawBatch, Source, empty_table
from jmigrate.stores import Store, open_store, parse_uri
from jmigrate.stores.base import Description

_ARROW = {
    "text": pa.string(),
    "int": pa.int64(),
    "float": pa.float64(),
    "bool": pa.bool_(),
    "json": pa.string(),
}


@dataclass
class StoreSource(Source):
    """A collection opened for reading. `store` is kept open for the run (closed by `close`)."""

    store: Store | None = None
    info: Description | None = None
    field_types: dict[str, str] = field(default_factory=dict)
    read_at: str = ""

    def describe(self) -> dict[str, Any]:
        assert self.info is not None
        return {
            "path": self.path,
            "format": self.format,
            "id_column": self.id_column,
            "text_column": self.text_column,
            "metadata_columns": list(self.metadata_columns),
            "store": {
                "backend": self.info.backend,
                "collection": self.info.collection,
                "rows": self.info.rows,
                "width": self.info.width,
                "id_type": "int" if self.id_type() == "int" else "text",
                "vector_field": self.info.vector_field,
            },
        }

    def id_type(self) -> str:
        assert self.store is not None
        return str(getattr(self.store, "id_type", "text"))

    def fingerprint(self) -> str:
        # A store has no files to hash: the collection, its fields and its row count identify what is
        # read. Edited rows already committed are caught on resume by the per-unit digests; rows added
        # or deleted change the count (refused unless --restart).
        assert self.info is not None
        d = self.info
        key = {
            "backend": d.backend,
            "collection": d.collection,
            "rows": d.rows,
            "id": d.id_field,
            "text": d.text_field,
            "fields": d.fields,
        }
        return hashlib.sha256(json.dumps(key, sort_keys=True, default=str).encode()).hexdigest()

    def batches(self, batch_rows: int = 1024) -> Iterator[RawBatch]:
        assert self.store is not None
        schema = self.metadata_schema
        for page in self.store.pages(batch_rows, vectors=False):
            texts: list[Any] = list(page.texts) if page.texts is not None else [None] * len(page)
            rows = page.metadata or [{} for _ in page.ids]
            cols = {}
            for f in schema:
                kind = self.field_types.get(f.name, "text")
                vals = [r.get(f.name) for r in rows]
                if kind == "json":
                    vals = [
                        None if v is None else json.dumps(v, ensure_ascii=False, default=str) for v in vals
                    ]
                elif kind == "text":
                    vals = [
                        None if v is None else v if isinstance(v, str) else json.dumps(v, default=str)
                        for v in vals
                    ]
                cols[f.name] = _column(vals, f.type)
            meta = pa.table(cols, schema=schema) if len(schema) else empty_table(len(page))
            yield RawBatch(list(page.ids), texts, meta, [None] * len(page))

    def close(self) -> None:
        if self.store is not None:
            self.store.close()


def _column(values: list[Any], t: pa.DataType) -> pa.Array:
    try:
        return pa.array(values, type=t)
    except (pa.ArrowInvalid, pa.ArrowTypeError, OverflowError):
        # a payload field whose type varies between rows: carried as its JSON text
        return pa.array([None if v is None else json.dumps(v, default=str) for v in values], type=pa.string())


def open_store_source(
    uri: str,
    *,
    id_column: str | None = None,
    text_column: str | None = None,
    metadata_columns: Sequence[str] | None = None,
) -> StoreSource:
    """Open `uri` for reindexing; refuse before anything is spent if its texts are not all there."""
    u = parse_uri(uri)
    store = open_store(u, text_field=text_column, id_field=id_column)
    try:
        d = store.describe()
        d.require_text()
        fields = dict(d.fields)
        skipped: list[str] = []
        if metadata_columns is None:
            skipped = [f for f in fields if f in RESERVED]
            meta = [f for f in fields if f not in RESERVED]
        else:
            missing = [c for c in metadata_columns if c not in fields]
            if missing:
                raise UsageError(
                    f"metadata field(s) not in {d.collection}: {', '.join(missing)}; fields: "
                    f"{', '.join(fields) or 'none'}"
                )
            clash = [c for c in metadata_columns if c in RESERVED]
            if clash:
                raise UsageError(
                    f"metadata field(s) {', '.join(clash)} clash with index columns "
                    f"({', '.join(sorted(RESERVED))})"
                )
            meta = list(metadata_columns)
        schema = pa.schema([pa.field(f, _ARROW.get(fields[f], pa.string())) for f in meta])
        read_at = datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds")
        assert d.text_field is not None
        return StoreSource(
            str(u),
            d.backend,
            [],
            d.id_field or "id",
            d.text_field,
            meta,
            schema,
            d.rows,
            [d.vector_field or "vector"],
            skipped,
            store=store,
            info=d,
            field_types={f: fields[f] for f in meta},
            read_at=read_at,
        )
    except BaseException:
        store.close()
        raise
