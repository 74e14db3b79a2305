"""PostgreSQL + pgvector: a table (or view) with a `vector(d)` column, read by keyset pages on its key.

Reads never use OFFSET: each page is `WHERE id > last ORDER BY id LIMIT n` on the primary key (or a
single-column unique index), so a page costs the same at row 10 and at row 10 million. Writes go into a
NEW table: each page is one transaction, binary COPY into a temporary staging table, then
`INSERT ... ON CONFLICT (id) DO UPDATE` (a page written twice after a crash leaves one copy of each row).
The HNSW index is built once after the bulk load. Cutover is a view swapped in one transaction (drop and
create: `CREATE OR REPLACE VIEW` fails when the vector width changes). The password is never in the URI:
libpq reads PGPASSWORD, ~/.pgpass or a service file itself.
"""

from __future__ import annotations

import datetime
import decimal
import json
import uuid
from collections.abc import Iterator, Sequence
from typing import Any

import numpy as np
import psycopg
from psycopg import sql
from psycopg.adapt import Loader
from psycopg.pq import Format
from psycopg.types import TypeInfo
from psycopg.types.json import Jsonb

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
    check_field_types,
    likely_models,
    pick_field,
    scrub,
)

HNSW_MAX_DIMS = 2000  # pgvector's HNSW limit for `vector`
_INT_TYPES = {"int2", "int4", "int8"}
_FLOAT_TYPES = {"float4", "float8", "numeric"}
_TEXT_TYPES = {"text", "varchar", "bpchar", "name", "citext"}
_SQL_TYPES = {
    "text": "text",
    "int": "bigint",
    "float": "double precision",
    "bool": "boolean",
    "json": "jsonb",
}
_COPY_TYPES = {"text": "text", "int": "int8", "float": "float8", "bool": "bool", "json": "jsonb"}


class _RawVectorLoader(Loader):
    """Binary `vector` values as raw bytes: a page becomes one matrix without a Python object per row."""

    format = Format.BINARY

    def load(self, data: Any) -> bytes:
        return bytes(data)


def _where(uri: StoreURI) -> str:
    host = uri.host or "the default socket"
    return (
        f"PostgreSQL {uri.user + '@' if uri.user else ''}{host}{':' + str(uri.port) if uri.port else ''}"
        f"/{uri.path or ''}"
    )


def connect(uri: StoreURI) -> psycopg.Connection[Any]:
    kwargs: dict[str, Any] = {
        k: v for k, v in uri.params.items() if k not in ("table", "vector", "text", "id")
    }
    if uri.host:
        kwargs["host"] = uri.host
    if uri.port:
        kwargs["port"] = uri.port
    if uri.user:
        kwargs["user"] = uri.user
    if uri.path:
        kwargs["dbname"] = uri.path
    kwargs.setdefault("connect_timeout", "10")
    kwargs.setdefault("application_name", "jmigrate")
    try:
        conn = psycopg.connect(**kwargs)
    except psycopg.Error as e:
        raise InputError(f"cannot connect to {_where(uri)}: {scrub(str(e))}") from None
    return conn


def _split_table(name: str) -> sql.Composable:
    schema, dot, table = name.partition(".")
    if not dot:
        return sql.Identifier(name)
    return sql.Identifier(schema, table)


def _vector_oid(conn: psycopg.Connection[Any], uri: StoreURI) -> int:
    info = TypeInfo.fetch(conn, "vector")
    if info is None:
        raise InputError(
            f"the pgvector extension is not installed in {_where(uri)} (CREATE EXTENSION vector)"
        )
    from pgvector.psycopg import register_vector

    register_vector(conn)
    conn.adapters.register_loader(info.oid, _RawVectorLoader)
    return int(info.oid)


def _plain(v: Any) -> Any:
    """A database value as a JSON-able Python value (carried as metadata)."""
    if isinstance(v, (datetime.date, datetime.time, datetime.datetime)):
        return v.isoformat()
    if isinstance(v, decimal.Decimal):
        return float(v)
    if isinstance(v, uuid.UUID):
        return str(v)
    if isinstance(v, (bytes, memoryview)):
        return bytes(v).hex()
    return v


def _matrix(raw: Sequence[bytes | None], width: int | None, where: str) -> np.ndarray:
    if not raw:
        return np.zeros((0, width or 0), dtype=np.float32)
    if any(r is None for r in raw):
        raise InputError(f"{where}: some rows have no vector (NULL)")
    lens = {len(r) for r in raw if r is not None}
    if len(lens) != 1:
        raise InputError(f"{where}: vectors of different widths")
    size = lens.pop()
    d = (size - 4) // 4
    if width is not None and d != width:
        raise InputError(f"{where}: found a {d}-dimensional vector, expected {width}")
    buf = np.frombuffer(b"".join(r for r in raw if r is not None), dtype=np.uint8).reshape(len(raw), size)
    return buf[:, 4:].copy().view(">f4").astype(np.float32)


class PgVectorStore(Store):
    backend = "pgvector"

    def __init__(
        self,
        uri: StoreURI,
        conn: psycopg.Connection[Any],
        *,
        id_field: str | None,
        text_field: str | None,
        vector_field: str | None,
        creating: bool = False,
    ) -> None:
        super().__init__(uri)
        self.conn = conn
        self.table = _split_table(uri.collection)
        self.where = f"table {uri.collection!r}"
        self._oid = _vector_oid(conn, uri)
        self.width: int | None = None
        self.columns: dict[str, str] = {}
        self.id_type = "text"
        self.info: dict[str, Any] = {}
        self.relkind = "r"
        if not creating:
            self._load_schema(id_field, text_field, vector_field)

    # ------------------------------------------------------------------ schema
    def _relation(self) -> tuple[int, str] | None:
        row = self.conn.execute(
            "SELECT c.oid::int, c.relkind::text FROM pg_class c WHERE c.oid = to_regclass(%s)",
            [self.table.as_string(self.conn)],
        ).fetchone()
        self.conn.rollback()
        return (int(row[0]), str(row[1])) if row else None

    def _load_schema(self, id_field: str | None, text_field: str | None, vector_field: str | None) -> None:
        rel = self._relation()
        if rel is None:
            names = [
                r[0]
                for r in self.conn.execute(
                    "SELECT table_schema || '.' || table_name FROM information_schema.columns "
                    "WHERE udt_name = 'vector' AND table_schema NOT IN ('pg_catalog', 'information_schema') "
                    "GROUP BY 1 ORDER BY 1 LIMIT 20"
                ).fetchall()
            ]
            self.conn.rollback()
            raise InputError(
                f"no table {self.uri.collection!r} in {_where(self.uri)}; tables with vectors: "
                f"{', '.join(names) or 'none'}"
            )
        oid, self.relkind = rel
        rows = self.conn.execute(
            "SELECT a.attname, t.typname, a.atttypmod FROM pg_attribute a "
            "JOIN pg_type t ON t.oid = a.atttypid WHERE a.attrelid = %s AND a.attnum > 0 "
            "AND NOT a.attisdropped ORDER BY a.attnum",
            [oid],
        ).fetchall()
        self.columns = {r[0]: r[1] for r in rows}
        typmods = {r[0]: int(r[2]) for r in rows}
        unique = [
            r[0]
            for r in self.conn.execute(
                "SELECT a.attname FROM pg_index i JOIN pg_attribute a ON a.attrelid = i.indrelid AND "
                "a.attnum = i.indkey[0] WHERE i.indrelid = %s AND (i.indisprimary OR i.indisunique) AND "
                "i.indnkeyatts = 1 ORDER BY i.indisprimary DESC",
                [oid],
            ).fetchall()
        ]
        comment = self.conn.execute("SELECT obj_description(%s::oid, 'pg_class')", [oid]).fetchone()
        self.conn.rollback()
        self.comment = str(comment[0]) if comment and comment[0] else ""
        try:
            self.info = (
                dict(json.loads(self.comment).get(INFO_KEY, {})) if self.comment.startswith("{") else {}
            )
        except (ValueError, AttributeError):
            self.info = {}
        names = list(self.columns)
        vectors = [c for c in names if self.columns[c] == "vector"]
        p = self.uri.params
        if not vectors:
            raise InputError(f"{self.where} has no vector column; columns: {', '.join(names)}")
        vector_given = vector_field or p.get("vector")
        if vector_given:
            if vector_given not in vectors:
                raise InputError(
                    f"{self.where} has no vector column {vector_given!r}; vector columns: "
                    f"{', '.join(vectors)}"
                )
            self.vector = vector_given
        elif len(vectors) == 1:
            self.vector = vectors[0]
        else:
            picked = pick_field(None, VECTOR_CANDIDATES, vectors, "vector", self.where, hint="?vector=")
            if picked is None:
                raise InputError(
                    f"{self.where} has several vector columns ({', '.join(vectors)}); choose one "
                    "with ?vector="
                )
            self.vector = picked
        self.width = typmods[self.vector] if typmods[self.vector] > 0 else None
        others = [c for c in names if c not in vectors]
        idc = pick_field(id_field or p.get("id"), (), others, "id", self.where, hint="?id= or --id-column")
        if idc is None:
            idc = (
                unique[0]
                if unique
                else pick_field(None, ID_CANDIDATES, others, "id", self.where, hint="?id= or --id-column")
            )
        if idc is None:
            raise InputError(f"{self.where} has no primary key; name the id column with ?id= or --id-column")
        if self.relkind == "r" and idc not in unique:
            raise InputError(
                f"{self.where}: id column {idc!r} has no primary key or unique index (keyset "
                "paging needs one; add it or name another column with ?id=)"
            )
        self.id = idc
        self.id_type = "int" if self.columns[idc] in _INT_TYPES else "text"
        textish = [c for c in others if c != idc and self.columns[c] in _TEXT_TYPES]
        self.text = pick_field(
            text_field or p.get("text"),
            TEXT_CANDIDATES,
            textish if not (text_field or p.get("text")) else others,
            "text",
            self.where,
            hint="?text= or --text-column",
        )
        self.meta = [c for c in others if c not in (idc, self.text)]

    def _field_types(self) -> dict[str, str]:
        out = {}
        for c in self.meta:
            t = self.columns[c]
            out[c] = (
                "int"
                if t in _INT_TYPES
                else "float"
                if t in _FLOAT_TYPES
                else "bool"
                if t == "bool"
                else "json"
                if t in ("json", "jsonb")
                else "text"
            )
        return out

    # ------------------------------------------------------------------ read
    def describe(self) -> Description:
        v, t = sql.Identifier(self.vector), sql.Identifier(self.text) if self.text else None
        q = sql.SQL("SELECT count(*), count(*) FILTER (WHERE {v} IS NULL){missing} FROM {tbl}").format(
            v=v,
            tbl=self.table,
            missing=sql.SQL(", count(*) FILTER (WHERE {t} IS NULL OR {t} = '')").format(t=t)
            if t
            else sql.SQL(""),
        )
        try:
            row = self.conn.execute(q).fetchone()
            width = self.width
            if width is None:
                w = self.conn.execute(
                    sql.SQL("SELECT vector_dims({v}) FROM {tbl} WHERE {v} IS NOT NULL LIMIT 1").format(
                        v=v, tbl=self.table
                    )
                ).fetchone()
                width = int(w[0]) if w else None
        except psycopg.Error as e:
            self.conn.rollback()
            raise InputError(f"cannot read {self.where}: {scrub(str(e))}") from None
        self.conn.rollback()
        assert row is not None
        notes = []
        if row[1]:
            notes.append(f"{row[1]:,} rows have no vector (NULL)")
        if self.text is None:
            notes.append("the text is not stored in this table: re-embedding needs the original documents")
        models, evidence = likely_models(width, self.comment, self.uri.collection, self.vector)
        return Description(
            str(self.uri),
            self.backend,
            self.uri.collection,
            int(row[0]),
            width,
            self.id,
            self.vector,
            self.text,
            int(row[2]) if self.text else None,
            self._field_types(),
            "cosine",
            models,
            evidence,
            self.info,
            notes,
        )

    def count(self) -> int:
        n = self.conn.execute(sql.SQL("SELECT count(*) FROM {}").format(self.table)).fetchone()
        self.conn.rollback()
        return int(n[0]) if n else 0

    def _select(self, vectors: bool) -> tuple[sql.Composable, list[str]]:
        cols = [self.id] + ([self.text] if self.text else []) + ([self.vector] if vectors else []) + self.meta
        return sql.SQL(", ").join(sql.Identifier(c) for c in cols), cols

    def pages(self, page_rows: int = 1000, after: Any = None, *, vectors: bool = True) -> Iterator[Page]:
        cols_sql, cols = self._select(vectors)
        idc = sql.Identifier(self.id)
        first = sql.SQL("SELECT {c} FROM {t} ORDER BY {i} LIMIT %s").format(c=cols_sql, t=self.table, i=idc)
        nxt = sql.SQL("SELECT {c} FROM {t} WHERE {i} > %s ORDER BY {i} LIMIT %s").format(
            c=cols_sql, t=self.table, i=idc
        )
        last = after
        while True:
            try:
                with self.conn.cursor(binary=True) as cur:
                    if last is None:
                        cur.execute(first, [page_rows])
                    else:
                        cur.execute(nxt, [last, page_rows])
                    rows = cur.fetchall()
            except psycopg.Error as e:
                self.conn.rollback()
                raise InputError(f"cannot read {self.where}: {scrub(str(e))}") from None
            self.conn.rollback()  # no transaction stays open between pages (no long-held snapshot)
            if not rows:
                return
            pos = {c: i for i, c in enumerate(cols)}
            ids = [r[0] for r in rows]
            texts = [r[pos[self.text]] for r in rows] if self.text else None
            m = (
                _matrix([r[pos[self.vector]] for r in rows], self.width, self.where)
                if vectors
                else np.zeros((len(rows), 0), dtype=np.float32)
            )
            meta = [{c: _plain(r[pos[c]]) for c in self.meta} for r in rows] if self.meta else None
            last = ids[-1]
            yield Page(ids, m, texts, meta, cursor=last)
            if len(rows) < page_rows:
                return

    def fetch(self, ids: Sequence[Any]) -> dict[str, np.ndarray]:
        q = sql.SQL("SELECT {i}::text, {v} FROM {t} WHERE {i}::text = ANY(%s)").format(
            i=sql.Identifier(self.id), v=sql.Identifier(self.vector), t=self.table
        )
        with self.conn.cursor(binary=True) as cur:
            rows = cur.execute(q, [[str(i) for i in ids]]).fetchall()
        self.conn.rollback()
        if not rows:
            return {}
        m = _matrix([r[1] for r in rows], self.width, self.where)
        return {str(r[0]): m[k] for k, r in enumerate(rows)}

    def search(self, queries: np.ndarray, k: int) -> tuple[list[list[str]], np.ndarray]:
        v = sql.Identifier(self.vector)
        q = sql.SQL("SELECT {i}::text, 1 - ({v} <=> %s) FROM {t} ORDER BY {v} <=> %s LIMIT %s").format(
            i=sql.Identifier(self.id), v=v, t=self.table
        )
        ids: list[list[str]] = []
        scores = np.full((len(queries), k), np.nan, dtype=np.float32)
        with self.conn.transaction():
            # the HNSW candidate list must hold at least k rows, or the index returns fewer than k
            self.conn.execute(sql.SQL("SET LOCAL hnsw.ef_search = {}").format(sql.Literal(max(40, k))))
            for n, vec in enumerate(np.asarray(queries, dtype=np.float32)):
                rows = self.conn.execute(q, [vec, vec, k]).fetchall()
                ids.append([r[0] for r in rows])
                scores[n, : len(rows)] = [float(r[1]) for r in rows]
        return ids, scores

    # ------------------------------------------------------------------ write
    def _create(
        self,
        width: int,
        fields: dict[str, str],
        id_type: str,
        store_text: bool,
        info: dict[str, Any],
        resume: bool,
    ) -> None:
        p = self.uri.params
        self.id, self.vector = p.get("id", "id"), p.get("vector", "embedding")
        self.text = p.get("text", "text") if store_text else None
        self.meta = list(fields)
        self.width = width
        self.id_type = id_type
        taken = [self.id, self.vector] + ([self.text] if self.text else [])
        clash = [f for f in fields if f in taken]
        if clash or len(set(taken)) != len(taken):
            raise UsageError(f"{self.where}: field name(s) {', '.join(clash or taken)} used twice")
        rel = self._relation()
        if rel is not None:
            if not resume:
                raise InputError(
                    f"{self.where} already exists in {_where(self.uri)}; name a new table (the "
                    "v2 data is never overwritten) or resume the load that created it"
                )
            if "created_by" not in str(self._comment(rel[0])):
                raise InputError(f"{self.where} was not created by jmigrate; refusing to write into it")
            self._load_schema(self.id, self.text, self.vector)
            if self.width != width:
                raise InputError(f"{self.where} holds {self.width}-dimensional vectors, expected {width}")
            missing = [f for f in fields if f not in self.columns]
            if missing:
                raise InputError(f"{self.where} has no column(s) {', '.join(missing)} to resume into")
            self.meta = list(fields)
            self.columns = {**self.columns}
            return
        cols = [sql.SQL("{} {} PRIMARY KEY").format(sql.Identifier(self.id), sql.SQL(_SQL_TYPES[id_type]))]
        if self.text:
            cols.append(sql.SQL("{} text").format(sql.Identifier(self.text)))
        cols += [
            sql.SQL("{} {}").format(sql.Identifier(f), sql.SQL(_SQL_TYPES[t])) for f, t in fields.items()
        ]
        cols.append(sql.SQL("{} vector({}) NOT NULL").format(sql.Identifier(self.vector), sql.Literal(width)))
        comment = json.dumps({INFO_KEY: {**info, "created_by": "jmigrate"}}, sort_keys=True)
        try:
            with self.conn.transaction():
                self.conn.execute(
                    sql.SQL("CREATE TABLE {} ({})").format(self.table, sql.SQL(", ").join(cols))
                )
                self.conn.execute(
                    sql.SQL("COMMENT ON TABLE {} IS {}").format(self.table, sql.Literal(comment))
                )
        except psycopg.Error as e:
            raise InputError(f"cannot create {self.where}: {scrub(str(e))}") from None
        self.comment = comment
        self.info = {**info, "created_by": "jmigrate"}
        self.columns = {
            self.id: "int8" if id_type == "int" else "text",
            self.vector: "vector",
            **({self.text: "text"} if self.text else {}),
            **{f: _COPY_TYPES[t] for f, t in fields.items()},
        }

    def write(self, page: Page) -> None:
        if len(page) == 0:
            return
        if len(set(page.ids)) != len(page.ids):
            raise InputError(f"{self.where}: a page to write holds the same id twice")
        m = np.asarray(page.vectors, dtype=np.float32)
        if m.ndim != 2 or m.shape[0] != len(page) or m.shape[1] != self.width:
            raise InputError(
                f"{self.where}: vectors to write are {m.shape[-1]}-dimensional, expected {self.width}"
            )
        if not np.isfinite(m).all():
            raise InputError(f"{self.where}: a vector to write holds NaN or infinity")
        ftypes = self._field_types() if self.meta else {}
        cols = [self.id] + ([self.text] if self.text else []) + self.meta + [self.vector]
        types = (
            ["int8" if self.id_type == "int" else "text"]
            + (["text"] if self.text else [])
            + [_COPY_TYPES[ftypes[f]] for f in self.meta]
            + ["vector"]
        )
        col_sql = sql.SQL(", ").join(sql.Identifier(c) for c in cols)
        update = sql.SQL(", ").join(
            sql.SQL("{c} = EXCLUDED.{c}").format(c=sql.Identifier(c)) for c in cols[1:]
        )
        ids = [int(i) for i in page.ids] if self.id_type == "int" else [str(i) for i in page.ids]
        texts = page.texts if page.texts is not None else [None] * len(page)
        meta = page.metadata if page.metadata is not None else [{}] * len(page)
        try:
            with self.conn.transaction():
                self.conn.execute(
                    sql.SQL(
                        "CREATE TEMP TABLE IF NOT EXISTS jmigrate_stage AS SELECT {c} FROM {t} WITH NO DATA"
                    ).format(c=col_sql, t=self.table)
                )
                self.conn.execute("TRUNCATE jmigrate_stage")
                with (
                    self.conn.cursor() as cur,
                    cur.copy(
                        sql.SQL("COPY jmigrate_stage ({}) FROM STDIN (FORMAT BINARY)").format(col_sql)
                    ) as cp,
                ):
                    cp.set_types(types)
                    for n in range(len(page)):
                        row: list[Any] = [ids[n]]
                        if self.text:
                            row.append(texts[n])
                        for f in self.meta:
                            val = meta[n].get(f)
                            row.append(Jsonb(val) if ftypes[f] == "json" and val is not None else val)
                        row.append(m[n])
                        cp.write_row(row)
                self.conn.execute(
                    sql.SQL(
                        "INSERT INTO {t} ({c}) SELECT {c} FROM jmigrate_stage "
                        "ON CONFLICT ({i}) DO UPDATE SET {u}"
                    ).format(t=self.table, c=col_sql, i=sql.Identifier(self.id), u=update)
                )
        except psycopg.Error as e:
            raise InputError(f"cannot write to {self.where}: {scrub(str(e))}") from None
        except (TypeError, ValueError) as e:
            raise InputError(f"cannot write to {self.where}: {scrub(str(e))}") from None

    def delete(self, ids: Sequence[Any]) -> None:
        q = sql.SQL("DELETE FROM {t} WHERE {i}::text = ANY(%s)").format(
            t=self.table, i=sql.Identifier(self.id)
        )
        try:
            with self.conn.transaction():
                self.conn.execute(q, [[str(i) for i in ids]])
        except psycopg.Error as e:
            raise InputError(f"cannot delete from {self.where}: {scrub(str(e))}") from None

    def finish(self) -> list[str]:
        assert self.width is not None
        if self.width > HNSW_MAX_DIMS:
            return [
                f"no HNSW index on {self.uri.collection}: pgvector's HNSW takes at most {HNSW_MAX_DIMS} "
                "dimensions (searches are exact scans)"
            ]
        name = f"{self.uri.collection.rsplit('.', 1)[-1]}_{self.vector}_hnsw"[:63]
        try:
            with self.conn.transaction():
                self.conn.execute(
                    sql.SQL(
                        "CREATE INDEX IF NOT EXISTS {n} ON {t} USING hnsw ({v} vector_cosine_ops)"
                    ).format(n=sql.Identifier(name), t=self.table, v=sql.Identifier(self.vector))
                )
            self.conn.execute(sql.SQL("ANALYZE {}").format(self.table))
            self.conn.commit()
        except psycopg.Error as e:
            self.conn.rollback()
            raise InputError(f"cannot build the HNSW index on {self.where}: {scrub(str(e))}") from None
        return []

    def _comment(self, oid: int) -> str:
        row = self.conn.execute("SELECT obj_description(%s::oid, 'pg_class')", [oid]).fetchone()
        self.conn.rollback()
        return str(row[0]) if row and row[0] else ""

    def drop(self) -> None:
        rel = self._relation()
        if rel is None:
            return
        if "created_by" not in self._comment(rel[0]):
            raise InputError(f"{self.where} was not created by jmigrate; refusing to drop it")
        with self.conn.transaction():
            self.conn.execute(sql.SQL("DROP TABLE {}").format(self.table))

    # ------------------------------------------------------------------ records
    def _record_data(self) -> tuple[tuple[int, str] | None, dict[str, Any] | None]:
        rel = self._relation()
        if rel is None:
            return None, None
        text = self._comment(rel[0])
        if not text:
            return rel, {}
        try:
            data = json.loads(text)
        except ValueError:
            return rel, None
        return rel, data if isinstance(data, dict) else None

    def read_record(self, key: str) -> Any:
        _, data = self._record_data()
        return ((data or {}).get(INFO_KEY) or {}).get(key)

    def write_record(self, key: str, value: Any) -> str | None:
        rel, data = self._record_data()
        if rel is None or rel[1] != "r":
            return f"{self.uri.collection} is not a table: the record was not kept"
        if data is None:
            return f"the comment on {self.uri.collection} is not jmigrate's: the record was not kept"
        data.setdefault(INFO_KEY, {})[key] = value
        try:
            with self.conn.transaction():
                self.conn.execute(
                    sql.SQL("COMMENT ON TABLE {} IS {}").format(
                        self.table, sql.Literal(json.dumps(data, sort_keys=True))
                    )
                )
        except psycopg.Error as e:
            return f"could not keep the record on {self.uri.collection}: {scrub(str(e))}"
        return None

    # ------------------------------------------------------------------ cutover
    def _view(self, alias: str) -> tuple[str | None, str | None]:
        """(relkind, comment) of `alias`, or (None, None) if it does not exist."""
        row = self.conn.execute(
            "SELECT c.relkind::text, obj_description(c.oid, 'pg_class') FROM pg_class c "
            "WHERE c.oid = to_regclass(%s)",
            [_split_table(alias).as_string(self.conn)],
        ).fetchone()
        return (str(row[0]), row[1]) if row else (None, None)

    def alias_target(self, alias: str) -> str | None:
        kind, comment = self._view(alias)
        self.conn.rollback()
        if kind is None:
            return None
        return _alias_of(alias, kind, comment)

    def point_alias(self, alias: str, collection: str) -> str | None:
        view = _split_table(alias)
        try:
            with self.conn.transaction():
                kind, comment = self._view(alias)
                previous = _alias_of(alias, kind, comment) if kind else None
                if self._relation_of(collection) is None:
                    raise InputError(f"no table {collection!r} to point {alias!r} at")
                grants = []
                if kind:
                    # the new view must keep the privileges the application's role had on the old one
                    grants = self.conn.execute(
                        "SELECT a.privilege_type, coalesce(r.rolname, 'PUBLIC') FROM pg_class c, "
                        "aclexplode(c.relacl) a LEFT JOIN pg_roles r ON r.oid = a.grantee "
                        "WHERE c.oid = to_regclass(%s)",
                        [view.as_string(self.conn)],
                    ).fetchall()
                    self.conn.execute(sql.SQL("DROP VIEW {}").format(view))
                self.conn.execute(
                    sql.SQL("CREATE VIEW {} AS SELECT * FROM {}").format(view, _split_table(collection))
                )
                note = json.dumps({INFO_KEY: {"alias_of": collection}})
                self.conn.execute(sql.SQL("COMMENT ON VIEW {} IS {}").format(view, sql.Literal(note)))
                for priv, role in grants:
                    grantee = sql.SQL("PUBLIC") if role == "PUBLIC" else sql.Identifier(role)
                    self.conn.execute(sql.SQL("GRANT {} ON {} TO {}").format(sql.SQL(priv), view, grantee))
        except psycopg.Error as e:
            raise InputError(f"cannot point {alias!r} at {collection!r}: {scrub(str(e))}") from None
        return previous

    def _relation_of(self, name: str) -> str | None:
        row = self.conn.execute(
            "SELECT relkind::text FROM pg_class WHERE oid = to_regclass(%s)",
            [_split_table(name).as_string(self.conn)],
        ).fetchone()
        return str(row[0]) if row else None

    def close(self) -> None:
        self.conn.close()


def _alias_of(alias: str, kind: str | None, comment: str | None) -> str:
    if kind != "v":
        raise InputError(
            f"{alias!r} is a table, not a view: choose a new name for the alias the application "
            "will read (the v2 table is never renamed or replaced)"
        )
    try:
        target = json.loads(comment or "").get(INFO_KEY, {}).get("alias_of")
    except (ValueError, AttributeError):
        target = None
    if not target:
        raise InputError(f"view {alias!r} was not created by jmigrate; refusing to replace it")
    return str(target)


def open(
    uri: StoreURI,
    *,
    text_field: str | None = None,
    id_field: str | None = None,  # noqa: A001
    vector_field: str | None = None,
) -> PgVectorStore:
    conn = connect(uri)
    try:
        return PgVectorStore(uri, conn, id_field=id_field, text_field=text_field, vector_field=vector_field)
    except BaseException:
        conn.close()
        raise


def create(
    uri: StoreURI,
    *,
    width: int,
    fields: dict[str, str],
    id_type: str,
    store_text: bool,
    resume: bool,
    info: dict[str, Any],
) -> PgVectorStore:
    check_field_types(fields)
    conn = connect(uri)
    try:
        try:
            with conn.transaction():
                conn.execute("CREATE EXTENSION IF NOT EXISTS vector")
        except psycopg.Error as e:
            raise InputError(f"cannot enable pgvector in {_where(uri)}: {scrub(str(e))}") from None
        store = PgVectorStore(uri, conn, id_field=None, text_field=None, vector_field=None, creating=True)
        store._create(width, fields, id_type, store_text, info, resume)
        return store
    except BaseException:
        conn.close()
        raise
