"""Parquet shards with a fixed schema, written to a temporary name, fsynced and renamed into place.

Columns: `id` string, `chunk_index` int32 / `chunk_start` / `chunk_end` int64 when chunking, `text`
(optional), the carried metadata columns, `vector` fixed_size_list<float32>[dimensions]. Each shard's
key-value metadata holds the manifest settings under `jmigrate.manifest` and the shard's own record
under `jmigrate.shard`, so a lone shard still says what it is.
"""

from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from jmigrate.fileio import create_new, fsync_dir
from jmigrate.index.manifest import Shard

CHUNK_FIELDS = (pa.field("chunk_index", pa.int32()), pa.field("chunk_start", pa.int64()),
                pa.field("chunk_end", pa.int64()))


def output_schema(dimensions: int, *, chunked: bool, store_text: bool, metadata: pa.Schema) -> pa.Schema:
    fields = [pa.field("id", pa.string(), nullable=False)]
    if chunked:
        fields += list(CHUNK_FIELDS)
    if store_text:
        fields.append(pa.field("text", pa.string()))
    fields += list(metadata)
    fields.append(pa.field("vector", pa.list_(pa.float32(), dimensions), nullable=False))
    return pa.schema(fields)


def vector_array(m: np.ndarray) -> pa.FixedSizeListArray:
    m = np.ascontiguousarray(m, dtype=np.float32)
    return pa.FixedSizeListArray.from_arrays(pa.array(m.reshape(-1)), m.shape[1])


def vectors_of(table: pa.Table) -> np.ndarray:
    """The `vector` column as an (n, d) float32 matrix."""
    col = table.column("vector").combine_chunks()
    dims = col.type.list_size
    return col.flatten().to_numpy(zero_copy_only=False).reshape(-1, dims)


class ShardWriter:
    """One shard being written: row groups go to a temp file; `commit` fsyncs, renames and hashes it."""

    def __init__(self, folder: Path, name: str, schema: pa.Schema, kv: dict[str, Any]) -> None:
        self.folder = folder
        self.name = name
        self.tmp = folder / f".{name}.tmp-{os.getpid()}"
        self.rows = 0
        self.schema = schema.with_metadata({k: json.dumps(v) for k, v in kv.items()})
        self.tmp.unlink(missing_ok=True)  # a leftover, or a planted link: removed, never written through
        create_new(self.tmp)
        try:
            self._writer = pq.ParquetWriter(
                self.tmp, self.schema,
                # Float vectors do not compress (MEASURED.md): keep them plain and cheap to write.
                compression={f.name: ("none" if f.name == "vector" else "zstd") for f in schema},
                use_dictionary=[f.name for f in schema if f.name != "vector"],
                write_statistics=[f.name for f in schema if f.name != "vector"],
            )
        except BaseException:
            self.tmp.unlink(missing_ok=True)  # created, then the disk was full
            raise

    def write(self, table: pa.Table) -> None:
        if table.num_rows:
            self._writer.write_table(table, row_group_size=table.num_rows)
            self.rows += table.num_rows

    def commit(self) -> Shard:
        """Finish the file and move it into place; returns its manifest record."""
        self._writer.close()
        with open(self.tmp, "rb+") as f:
            os.fsync(f.fileno())
        final = self.folder / self.name
        os.replace(self.tmp, final)
        fsync_dir(self.folder)
        return Shard(file=self.name, rows=self.rows, sha256=sha256_file(final))

    def abort(self) -> None:
        try:
            self._writer.close()
        finally:
            self.tmp.unlink(missing_ok=True)


def sha256_file(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()
