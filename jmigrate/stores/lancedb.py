"""LanceDB (embedded, a local folder): a table read with `to_batches`, written with `merge_insert` on the id.

Every `merge_insert` is one Lance commit, so a page is written wholly or not at all, and writing it again
after a crash updates the same rows instead of adding copies. LanceDB OSS has no aliases and no
`rename_table`: cutover writes the chosen table's rows into the alias table with
`create_table(mode="overwrite")`, one commit, so readers of the alias see the old rows or the new rows,
never a mix; it is a copy (time and disk in proportion to the table). The previous version stays in the
alias table's history (`checkout(version)` + `restore()` also rolls back).
"""

from __future__ import annotations

import builtins
import json
import os
from collections.abc import Iterator, Sequence
from typing import Any

import lancedb
import numpy as np
import pyarrow as pa

from jmigrate.errors import InputError, UsageError
from jmigrate.stores import StoreURI
from jmigrate.stores.base import (
    ID_CANDIDATES,
    INFO_KEY,
    TEXT_CANDIDATES,
    VECTOR_CANDIDATES,
    Description,
    Page,
    Store,
    arrow_logical_type,
    check_field_types,
    likely_models,
    pick_field,
    scrub,
)

_ARROW = {
    "text": pa.string(),
    "int": pa.int64(),
    "float": pa.float64(),
    "bool": pa.bool_(),
    "json": pa.string(),
}
_KEY = INFO_KEY.encode()


def _quote(name: str) -> str:
    return "`" + name.replace("`", "``") + "`"


def _literal(v: Any) -> str:
    if isinstance(v, bool):
        return "TRUE" if v else "FALSE"
    if isinstance(v, int):
        return str(v)
    return "'" + str(v).replace("'", "''") + "'"


def _vector_fields(schema: pa.Schema) -> dict[str, int | None]:
    out: dict[str, int | None] = {}
    for f in schema:
        t = f.type
        if pa.types.is_fixed_size_list(t) and pa.types.is_floating(t.value_type):
            out[f.name] = t.list_size
        elif pa.types.is_list(t) and pa.types.is_floating(t.value_type):
            out[f.name] = None
    return out


def _info(schema: pa.Schema) -> dict[str, Any]:
    raw = (schema.metadata or {}).get(_KEY)
    try:
        return dict(json.loads(raw)) if raw else {}
    except ValueError:
        return {}


class LanceStore(Store):
    backend = "lancedb"

    def __init__(self, uri: StoreURI, db: Any) -> None:
        super().__init__(uri)
        self.db = db
        self.where = f"table {uri.collection!r}"
        self.table: Any = None
        self.width: int | None = None
        self.id: str = "id"
        self.text: str | None = None
        self.vector: str = "vector"
        self.meta: list[str] = []
        self.info: dict[str, Any] = {}
        self.schema: pa.Schema | None = None

    def _call(self, what: str, fn: Any, *args: Any, **kwargs: Any) -> Any:
        try:
            return fn(*args, **kwargs)
        except (UsageError, InputError):
            raise
        except Exception as e:
            raise InputError(f"LanceDB {what} failed for {self.where}: {scrub(str(e))}") from None

    def _tables(self) -> list[str]:
        res = self._call("listing", self.db.list_tables)
        names = list(res.tables)
        while getattr(res, "page_token", None):
            res = self._call("listing", self.db.list_tables, page_token=res.page_token)
            names += list(res.tables)
        return names

    def _load(self, id_field: str | None, text_field: str | None, vector_field: str | None) -> None:
        if self.uri.collection not in self._tables():
            raise InputError(
                f"no table {self.uri.collection!r} in LanceDB {self.uri.path}; tables: "
                f"{', '.join(sorted(self._tables())[:20]) or 'none'}"
            )
        self.table = self._call("open", self.db.open_table, self.uri.collection)
        schema: pa.Schema = self.table.schema
        self.schema = schema
        self.info = _info(schema)
        vectors = _vector_fields(schema)
        if not vectors:
            raise InputError(f"{self.where} has no vector column; columns: {', '.join(schema.names)}")
        vf = vector_field or self.uri.params.get("vector")
        if vf and vf not in vectors:
            raise InputError(
                f"{self.where} has no vector column {vf!r}; vector columns: {', '.join(vectors)}"
            )
        if not vf:
            vf = (
                next(iter(vectors))
                if len(vectors) == 1
                else pick_field(None, VECTOR_CANDIDATES, list(vectors), "vector", self.where, hint="?vector=")
            )
        if not vf:
            raise InputError(
                f"{self.where} has several vector columns ({', '.join(vectors)}); choose one with ?vector="
            )
        self.vector = vf
        self.width = vectors[vf]
        others = [n for n in schema.names if n not in vectors]
        idc = pick_field(
            id_field or self.uri.params.get("id"),
            ID_CANDIDATES,
            others,
            "id",
            self.where,
            hint="?id= or --id-column",
        )
        if idc is None:
            raise InputError(f"{self.where} has no id column; name it with ?id= or --id-column")
        self.id = idc
        strings = [n for n in others if n != idc and arrow_logical_type(schema.field(n).type) == "text"]
        tf = text_field or self.uri.params.get("text")
        self.text = pick_field(
            tf, TEXT_CANDIDATES, others if tf else strings, "text", self.where, hint="?text= or --text-column"
        )
        self.meta = [n for n in others if n not in (self.id, self.text)]
        if self.width is None:
            first = self._call("read", self.table.search().select([self.vector]).limit(1).to_arrow)
            if first.num_rows:
                self.width = len(first.column(0)[0].as_py() or [])

    # ------------------------------------------------------------------ read
    def describe(self) -> Description:
        rows = int(self._call("count", self.table.count_rows))
        missing = None
        if self.text:
            t = _quote(self.text)
            missing = int(self._call("count", self.table.count_rows, f"{t} IS NULL OR {t} = ''"))
        notes = []
        if self.text is None:
            notes.append("the text is not stored in this table: re-embedding needs the original documents")
        assert self.schema is not None
        fields = {n: arrow_logical_type(self.schema.field(n).type) for n in self.meta}
        models, evidence = likely_models(self.width, json.dumps(self.info), self.uri.collection)
        return Description(
            str(self.uri),
            self.backend,
            self.uri.collection,
            rows,
            self.width,
            self.id,
            self.vector,
            self.text,
            missing,
            fields,
            None,
            models,
            evidence,
            dict(self.info),
            notes,
        )

    def count(self) -> int:
        return int(self._call("count", self.table.count_rows))

    def _page(self, batch: pa.RecordBatch, vectors: bool, *, rest: bool = True) -> Page:
        ids = batch.column(self.id).to_pylist()
        texts = batch.column(self.text).to_pylist() if self.text and rest else None
        if vectors:
            col = batch.column(self.vector)
            if col.null_count:
                raise InputError(f"{self.where}: some rows have no vector (null)")
            if pa.types.is_fixed_size_list(col.type):
                m = col.flatten().to_numpy(zero_copy_only=False).reshape(len(ids), -1).astype(np.float32)
            else:
                from jmigrate.stores.base import as_matrix

                m = as_matrix(col.to_pylist(), self.width, self.where)
        else:
            m = np.zeros((len(ids), 0), dtype=np.float32)
        meta = batch.select(self.meta).to_pylist() if self.meta and rest else None
        return Page(ids, m, texts, meta)

    def pages(self, page_rows: int = 1000, after: Any = None, *, vectors: bool = True) -> Iterator[Page]:
        cols = [self.id] + ([self.text] if self.text else []) + self.meta + ([self.vector] if vectors else [])
        q = self.table.search().select(cols).limit(None)
        offset = int(after or 0)
        if offset:
            q = q.offset(offset)
        reader = self._call("read", q.to_batches, page_rows)
        for batch in reader:
            # a batch can be larger or smaller than asked: cut it so pages stay bounded
            for s in range(0, batch.num_rows, page_rows):
                page = self._page(batch.slice(s, page_rows), vectors)
                offset += len(page)
                page.cursor = offset
                yield page

    def fetch(self, ids: Sequence[Any]) -> dict[str, np.ndarray]:
        if not ids:
            return {}
        assert self.schema is not None
        is_int = pa.types.is_integer(self.schema.field(self.id).type)
        vals = ", ".join(_literal(int(i) if is_int else str(i)) for i in ids)
        tbl = self._call(
            "read",
            self.table.search()
            .where(f"{_quote(self.id)} IN ({vals})")
            .select([self.id, self.vector])
            .limit(len(ids))
            .to_arrow,
        )
        page = self._page(tbl.combine_chunks().to_batches()[0], True, rest=False) if tbl.num_rows else None
        return {str(i): page.vectors[n] for n, i in enumerate(page.ids)} if page else {}

    def search(self, queries: np.ndarray, k: int) -> tuple[list[list[str]], np.ndarray]:
        ids: list[list[str]] = []
        scores = np.full((len(queries), k), np.nan, dtype=np.float32)
        for n, q in enumerate(np.asarray(queries, dtype=np.float32)):
            res = self._call(
                "search",
                self.table.search(q, vector_column_name=self.vector)
                .distance_type("cosine")
                .select([self.id])
                .limit(k)
                .to_arrow,
            )
            ids.append([str(i) for i in res.column(self.id).to_pylist()])
            d = res.column("_distance").to_numpy()
            scores[n, : len(d)] = 1.0 - d
        return ids, scores

    # ------------------------------------------------------------------ write
    def _create(
        self,
        width: int,
        fields: dict[str, str],
        id_type: str,
        store_text: bool,
        resume: bool,
        info: dict[str, Any],
    ) -> None:
        p = self.uri.params
        self.id, self.vector = p.get("id", "id"), p.get("vector", "vector")
        self.text = p.get("text", "text") if store_text else None
        self.meta = list(fields)
        self.width = width
        taken = [self.id, self.vector] + ([self.text] if self.text else [])
        clash = [f for f in fields if f in taken]
        if clash or len(set(taken)) != len(taken):
            raise UsageError(f"{self.where}: field name(s) {', '.join(clash or taken)} used twice")
        cols = [pa.field(self.id, pa.int64() if id_type == "int" else pa.string(), nullable=False)]
        if self.text:
            cols.append(pa.field(self.text, pa.string()))
        cols += [pa.field(f, _ARROW[t]) for f, t in fields.items()]
        cols.append(pa.field(self.vector, pa.list_(pa.float32(), width), nullable=False))
        self.fields = dict(fields)
        if self.uri.collection in self._tables():
            if not resume:
                raise InputError(
                    f"{self.where} already exists in {self.uri.path}; name a new table (the v2 data "
                    "is never overwritten) or resume the load that created it"
                )
            self.table = self._call("open", self.db.open_table, self.uri.collection)
            have = _info(self.table.schema)
            if have.get("created_by") != "jmigrate":
                raise InputError(f"{self.where} was not created by jmigrate; refusing to write into it")
            if _vector_fields(self.table.schema).get(self.vector) != width:
                raise InputError(f"{self.where} does not hold {width}-dimensional vectors in {self.vector!r}")
            self.schema = self.table.schema
            self.info = have
            return
        self.info = {**info, "created_by": "jmigrate"}
        schema = pa.schema(cols, metadata={_KEY: json.dumps(self.info, sort_keys=True).encode()})
        self.table = self._call("create", self.db.create_table, self.uri.collection, schema=schema)
        self.schema = self.table.schema

    def write(self, page: Page) -> None:
        if len(page) == 0:
            return
        assert self.schema is not None and self.width is not None
        m = np.ascontiguousarray(page.vectors, dtype=np.float32)
        if m.ndim != 2 or m.shape[0] != len(page) or m.shape[1] != self.width:
            raise InputError(
                f"{self.where}: vectors to write are {m.shape[-1]}-dimensional, expected {self.width}"
            )
        if not np.isfinite(m).all():
            raise InputError(f"{self.where}: a vector to write holds NaN or infinity")
        if len(set(page.ids)) != len(page.ids):
            raise InputError(f"{self.where}: a page to write holds the same id twice")
        is_int = pa.types.is_integer(self.schema.field(self.id).type)
        arrays: dict[str, Any] = {self.id: [int(i) if is_int else str(i) for i in page.ids]}
        if self.text:
            arrays[self.text] = list(page.texts) if page.texts is not None else [None] * len(page)
        for f in self.meta:
            vals = [(r or {}).get(f) for r in (page.metadata or [{}] * len(page))]
            if self.fields.get(f) == "json":
                vals = [None if v is None else json.dumps(v) for v in vals]
            arrays[f] = vals
        arrays[self.vector] = pa.FixedSizeListArray.from_arrays(pa.array(m.reshape(-1)), self.width)
        try:
            table = pa.table(arrays, schema=self.schema.remove_metadata())
        except (pa.ArrowInvalid, pa.ArrowTypeError) as e:
            raise InputError(f"{self.where}: rows do not fit the table's columns: {scrub(str(e))}") from None
        self._call(
            "write",
            self.table.merge_insert(self.id).when_matched_update_all().when_not_matched_insert_all().execute,
            table,
        )

    def finish(self) -> list[str]:
        # Many small commits leave many small fragments; compacting them is what LanceDB recommends.
        self._call("compact", self.table.optimize)
        return [
            "no ANN index was built on the LanceDB table: searches scan it exactly (create one with "
            "table.create_index() for large tables)"
        ]

    def delete(self, ids: Sequence[Any]) -> None:
        if not ids:
            return
        assert self.schema is not None
        is_int = pa.types.is_integer(self.schema.field(self.id).type)
        for s in range(0, len(ids), 1000):
            vals = ", ".join(_literal(int(i) if is_int else str(i)) for i in ids[s : s + 1000])
            self._call("delete", self.table.delete, f"{_quote(self.id)} IN ({vals})")

    def drop(self) -> None:
        if self.uri.collection not in self._tables():
            return
        if _info(self.db.open_table(self.uri.collection).schema).get("created_by") != "jmigrate":
            raise InputError(f"{self.where} was not created by jmigrate; refusing to drop it")
        self._call("drop", self.db.drop_table, self.uri.collection)

    # ------------------------------------------------------------------ records
    def _record_path(self) -> str:
        return os.path.join(self.uri.path or "", ".jmigrate", f"{self.uri.collection}.json")

    def read_record(self, key: str) -> Any:
        try:
            with builtins.open(self._record_path(), encoding="utf-8") as f:
                data = json.load(f)
        except (OSError, ValueError):
            return None
        return data.get(key) if isinstance(data, dict) else None

    def write_record(self, key: str, value: Any) -> str | None:
        from pathlib import Path

        from jmigrate.fileio import atomic_write

        path = Path(self._record_path())
        data: dict[str, Any] = {}
        try:
            with builtins.open(path, encoding="utf-8") as f:
                loaded = json.load(f)
            data = loaded if isinstance(loaded, dict) else {}
        except (OSError, ValueError):
            pass
        data[key] = value
        try:
            path.parent.mkdir(exist_ok=True)
            atomic_write(path, (json.dumps(data, indent=2, sort_keys=True) + "\n").encode())
        except OSError as e:
            return f"could not keep the record beside {self.uri.collection}: {e.strerror or e}"
        return None

    # ------------------------------------------------------------------ cutover
    def alias_target(self, alias: str) -> str | None:
        if alias not in self._tables():
            return None
        info = _info(self.db.open_table(alias).schema)
        if not info.get("alias_of"):
            raise InputError(
                f"{alias!r} is a table, not an alias jmigrate made: choose a new name for the alias "
                "the application will read"
            )
        return str(info["alias_of"])

    def point_alias(self, alias: str, collection: str) -> str | None:
        previous = self.alias_target(alias)
        if collection not in self._tables():
            raise InputError(f"no table {collection!r} to point {alias!r} at")
        src = self._call("open", self.db.open_table, collection)
        schema = src.schema
        meta = dict(schema.metadata or {})
        meta[_KEY] = json.dumps({**_info(schema), "alias_of": collection}, sort_keys=True).encode()
        schema = schema.with_metadata(meta)
        reader = pa.RecordBatchReader.from_batches(
            schema,
            (b.cast(schema) if b.schema != schema else b for b in src.search().limit(None).to_batches(8192)),
        )
        # one commit: readers of the alias see the previous rows until this returns, then the new ones
        self._call("alias switch", self.db.create_table, alias, data=reader, mode="overwrite")
        return previous


def _connect(uri: StoreURI, *, create: bool) -> Any:
    if not create and not os.path.isdir(uri.path or ""):
        raise InputError(f"no LanceDB folder at {uri.path}")
    try:
        return lancedb.connect(uri.path or "")
    except Exception as e:
        raise InputError(f"cannot open LanceDB at {uri.path}: {scrub(str(e))}") from None


def open(
    uri: StoreURI,
    *,
    text_field: str | None = None,
    id_field: str | None = None,  # noqa: A001
    vector_field: str | None = None,
) -> LanceStore:
    store = LanceStore(uri, _connect(uri, create=False))
    store._load(id_field, text_field, vector_field)
    return store


def create(
    uri: StoreURI,
    *,
    width: int,
    fields: dict[str, str],
    id_type: str,
    store_text: bool,
    resume: bool,
    info: dict[str, Any],
) -> LanceStore:
    check_field_types(fields)
    store = LanceStore(uri, _connect(uri, create=True))
    store._create(width, fields, id_type, store_text, resume, info)
    return store
