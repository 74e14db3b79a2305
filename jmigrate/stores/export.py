"""Read a store collection out into a temporary Parquet index (id, vector), page by page.

`verify --v2 URI` searches the result as it does any index, and `bridge` fingerprints it; this module
sits below both (it imports neither), so each can use it without an import cycle.
"""

from __future__ import annotations

import shutil
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from jmigrate.errors import UsageError
from jmigrate.stores import StoreURI, is_store_uri, open_store, parse_uri

PAGE_ROWS = 2000


@dataclass
class ExportedSide:
    uri: StoreURI
    path: Path
    rows: int
    width: int
    model: str | None
    task: str | None


@dataclass
class Exports:
    folder: Path
    sides: dict[str, ExportedSide] = field(default_factory=dict)

    def cleanup(self) -> None:
        shutil.rmtree(self.folder, ignore_errors=True)


def export(uri: str, side: str, folder: Path, *, model: str | None = None) -> ExportedSide:
    """Write the collection's ids and vectors to `folder/<side>.parquet`, page by page."""
    u = parse_uri(uri)
    with open_store(u) as store:
        d = store.describe()
        if not d.width:
            raise UsageError(f"{d.collection} holds no vectors to verify")
        path = folder / f"{side}.parquet"
        schema = pa.schema([pa.field("id", pa.string()), pa.field("vector", pa.list_(pa.float32(), d.width))])
        rows = 0
        with pq.ParquetWriter(path, schema) as w:
            for page in store.pages(PAGE_ROWS):
                m = np.ascontiguousarray(page.vectors, dtype=np.float32)
                vec = pa.FixedSizeListArray.from_arrays(pa.array(m.reshape(-1)), d.width)
                w.write_table(
                    pa.table({"id": pa.array([str(i) for i in page.ids]), "vector": vec}, schema=schema)
                )
                rows += len(page)
        info = d.info
        name = model or info.get("model") or (d.likely_models[0] if len(d.likely_models) == 1 else None)
        task = info.get("task") if not model or model == info.get("model") else None
        return ExportedSide(u, path, rows, d.width, name, task)


def export_sides(v2: str, v3: str, *, v2_model: str | None, v3_model: str | None) -> Exports:
    """Export whichever sides are store URIs into one temporary folder (removed by `cleanup`)."""
    ex = Exports(Path(tempfile.mkdtemp(prefix="jmigrate-verify-")))
    try:
        for side, uri, model in (("v2", v2, v2_model), ("v3", v3, v3_model)):
            if is_store_uri(uri):
                ex.sides[side] = export(uri, side, ex.folder, model=model)
    except BaseException:
        ex.cleanup()
        raise
    return ex
