"""Corpus readers for `reindex`: Parquet, JSONL, CSV, text/Markdown folders and existing v2 indexes.

Every reader streams fixed-order record batches (`RawBatch`) of raw ids, raw texts and carried
metadata, so memory stays flat and a rerun sees the rows in exactly the same order (resume depends
on it). Validation of the values (empty text, duplicate ids, ...) happens later, in `pipeline`.
"""

from __future__ import annotations

import csv
import glob
import hashlib
import io
import json
import os
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pyarrow as pa

from jmigrate.errors import InputError, UsageError

ID_CANDIDATES = ("id", "_id", "doc_id", "docid", "document_id", "uuid", "key", "pk", "chunk_id")
TEXT_CANDIDATES = ("text", "content", "contents", "body", "document", "page_content", "passage",
                   "chunk", "sentence", "input")
VECTOR_NAMES = ("embedding", "embeddings", "vector", "vectors", "emb", "values")
TEXT_SUFFIXES = (".txt", ".md", ".markdown", ".rst")
JSONL_SUFFIXES = (".jsonl", ".ndjson", ".json")
CSV_SUFFIXES = (".csv", ".tsv")
PARQUET_SUFFIXES = (".parquet", ".pq")
META_SNIFF_ROWS = 1000
RESERVED = frozenset({"id", "vector", "chunk_index", "chunk_start", "chunk_end", "text"})
CSV_COUNT_MAX_BYTES = 512 << 20  # count CSV rows up front (for the progress total) below this size
FINGERPRINT_SPAN = 1 << 20  # bytes hashed at the head and at the tail of every file


class RowProblem(str):
    """A reader-level problem with one row (bad JSON line, undecodable bytes): becomes a reject."""


@dataclass
class RawBatch:
    """Consecutive source rows: raw ids and texts (validated later) plus metadata in the output types."""

    ids: list[Any]
    texts: list[Any]
    metadata: pa.Table
    problems: list[str | None] = field(default_factory=list)

    def __len__(self) -> int:
        return len(self.ids)


@dataclass
class Source:
    """An opened corpus: where it is, what kind it is, and which columns hold id, text and metadata."""

    path: str
    format: str  # parquet | jsonl | csv | text-folder | npy-index
    files: list[Path]
    id_column: str | None
    text_column: str
    metadata_columns: list[str]
    metadata_schema: pa.Schema
    rows: int | None  # known up front for Parquet; counted lines otherwise
    vector_columns: list[str] = field(default_factory=list)  # old embeddings found (not carried)
    skipped_columns: list[str] = field(default_factory=list)  # named like an index column (not carried)

    def describe(self) -> dict[str, Any]:
        return {"path": self.path, "format": self.format, "id_column": self.id_column,
                "text_column": self.text_column, "metadata_columns": list(self.metadata_columns)}

    def fingerprint(self) -> str:
        return fingerprint_files(self.files)

    def batches(self, batch_rows: int = 1024) -> Iterator[RawBatch]:
        if self.format == "parquet":
            yield from _parquet_batches(self, batch_rows)
        elif self.format in ("jsonl", "npy-index-jsonl"):
            yield from _jsonl_batches(self, batch_rows)
        elif self.format in ("csv", "npy-index-csv"):
            yield from _csv_batches(self, batch_rows)
        elif self.format == "text-folder":
            yield from _text_batches(self, batch_rows)
        else:  # pragma: no cover - formats are fixed in open_source
            raise InputError(f"unsupported source format {self.format}")


# --------------------------------------------------------------------------- opening

def open_source(
    path: str,
    *,
    id_column: str | None = None,
    text_column: str | None = None,
    metadata_columns: Sequence[str] | None = None,
) -> Source:
    """Find the files behind `path`, detect the format and columns, and check them before any spending."""
    files, fmt = _resolve(path)
    if fmt == "text-folder":
        return Source(path, fmt, files, "path", "text", [], pa.schema([]), len(files))
    rows: int | None
    if fmt == "parquet":
        columns, types, rows = _parquet_schema(files)
    elif fmt.endswith("jsonl"):
        columns, types, rows = _jsonl_schema(files)
    else:
        columns, types, rows = _csv_schema(files)
    bad = [c for c in columns if not _valid_utf8(c)]
    if bad and metadata_columns is None:
        # a JSON key with a lone surrogate cannot be a Parquet column name (nor be printed)
        raise InputError(f"column name {ascii(bad[0])} is not valid Unicode; pass --metadata-columns "
                         "(and --id-column / --text-column) to choose the columns to use")
    vectors = [c for c in columns if _is_vector_type(types.get(c)) or
               (c.lower() in VECTOR_NAMES and types.get(c) is None)]
    idc = _pick(columns, id_column, ID_CANDIDATES, "id", required=False)
    txt = _pick([c for c in columns if c != idc and c not in vectors], text_column, TEXT_CANDIDATES, "text",
                required=True, types=types)
    assert txt is not None
    skipped: list[str] = []
    if metadata_columns is None:
        meta = [c for c in columns if c not in (idc, txt) and c not in vectors]
        # A source column named like an index column (e.g. `text` when the text is in `body`) cannot
        # be carried under its name; it is left out and the CLI says so.
        skipped = [c for c in meta if c in RESERVED]
        meta = [c for c in meta if c not in RESERVED]
    else:
        missing = [c for c in metadata_columns if c not in columns]
        if missing:
            raise UsageError(f"metadata column(s) not in {path}: {', '.join(missing)}; "
                             f"columns: {', '.join(columns)}")
        meta = list(metadata_columns)
        clash = [c for c in meta if c in RESERVED]
        if clash:
            raise UsageError(f"metadata column(s) {', '.join(clash)} clash with index columns "
                             f"({', '.join(sorted(RESERVED))})")
    if fmt == "parquet":
        schema = pa.schema([pa.field(c, types[c]) for c in meta])
    elif fmt.endswith("jsonl"):
        schema = _sniff_jsonl_metadata(files, meta)
    else:
        schema = pa.schema([pa.field(c, pa.string()) for c in meta])
    return Source(path, fmt, files, idc, txt, meta, schema, rows, vectors, skipped)


def _resolve(path: str) -> tuple[list[Path], str]:
    if any(ch in path for ch in "*?["):
        files = sorted(Path(p) for p in glob.glob(path, recursive=True) if Path(p).is_file())
        if not files:
            raise InputError(f"no files match {path}")
        return files, _format_of_files(files, path)
    p = Path(path)
    if not p.exists():
        raise InputError(f"source not found: {path}")
    if p.is_file():
        if p.suffix.lower() == ".npy":
            return _npy_index(p.parent)
        return [p], _format_of_files([p], path)
    if (p / "manifest.json").is_file() or any(p.glob("*.parquet")) or any(p.rglob("*.parquet")):
        files = sorted(f for f in p.rglob("*") if f.suffix.lower() in PARQUET_SUFFIXES and f.is_file())
        return files, "parquet"
    if any(p.glob("*.npy")):
        return _npy_index(p)
    for suffixes, fmt in ((JSONL_SUFFIXES, "jsonl"), (CSV_SUFFIXES, "csv")):
        files = sorted(f for f in p.rglob("*") if f.is_file() and f.suffix.lower() in suffixes)
        if files:
            return files, fmt
    files = sorted(f for f in p.rglob("*") if f.is_file() and f.suffix.lower() in TEXT_SUFFIXES)
    if files:
        return files, "text-folder"
    raise InputError(f"no Parquet, JSONL, CSV, .npy, .txt or .md files in {path}")


def _npy_index(folder: Path) -> tuple[list[Path], str]:
    """A v2 index saved as vectors.npy + a metadata file: the text lives in the metadata file."""
    for suffixes, fmt in ((PARQUET_SUFFIXES, "parquet"), (JSONL_SUFFIXES, "npy-index-jsonl"),
                          (CSV_SUFFIXES, "npy-index-csv")):
        files = sorted(f for f in folder.iterdir() if f.is_file() and f.suffix.lower() in suffixes)
        if files:
            return files, fmt
    raise InputError(f"{folder} holds .npy vectors but no metadata file (.parquet/.jsonl/.csv) with the "
                     "texts; reindex needs the texts, not the old vectors")


def _format_of_files(files: list[Path], shown: str) -> str:
    kinds = set()
    for f in files:
        s = f.suffix.lower()
        kinds.add("parquet" if s in PARQUET_SUFFIXES else "jsonl" if s in JSONL_SUFFIXES
                  else "csv" if s in CSV_SUFFIXES else "text-folder" if s in TEXT_SUFFIXES else s)
    if len(kinds) != 1:
        raise InputError(f"{shown}: mixed or unknown file types ({', '.join(sorted(kinds))})")
    kind = kinds.pop()
    if kind not in ("parquet", "jsonl", "csv", "text-folder"):
        raise InputError(f"{shown}: unsupported file type {kind!r} (use Parquet, JSONL, CSV, .txt/.md)")
    return kind


def _pick(columns: list[str], given: str | None, candidates: Sequence[str], what: str, *, required: bool,
          types: dict[str, pa.DataType | None] | None = None) -> str | None:
    if given is not None:
        if given not in columns:
            raise UsageError(f"--{what}-column {given!r} not found; columns: {', '.join(columns)}")
        return given
    lower = {c.lower(): c for c in columns}
    for cand in candidates:
        if cand in lower:
            return lower[cand]
    if required and types is not None:
        strings = [c for c in columns if types.get(c) is not None and _is_text_type(types[c])]
        if len(strings) == 1:
            return strings[0]
    if required:
        raise UsageError(f"cannot tell which column holds the {what}; pass --{what}-column "
                         f"(columns: {', '.join(columns) or 'none'})")
    return None


def _is_text_type(t: pa.DataType | None) -> bool:
    return t is not None and (pa.types.is_string(t) or pa.types.is_large_string(t)
                              or pa.types.is_binary(t) or pa.types.is_large_binary(t))


def _is_vector_type(t: pa.DataType | None) -> bool:
    if t is None:
        return False
    if pa.types.is_fixed_size_list(t) or pa.types.is_list(t) or pa.types.is_large_list(t):
        return pa.types.is_floating(t.value_type)
    return False


# --------------------------------------------------------------------------- Parquet

def _parquet_schema(files: list[Path]) -> tuple[list[str], dict[str, pa.DataType | None], int]:
    import pyarrow.parquet as pq

    schema: pa.Schema | None = None
    rows = 0
    for f in files:
        try:
            meta = pq.read_metadata(f)
            s = meta.schema.to_arrow_schema()
        except (OSError, pa.ArrowException) as e:
            raise InputError(f"cannot read Parquet file {f}: {_short(e)}") from e
        rows += meta.num_rows
        s = s.remove_metadata()
        if schema is None:
            schema = s
        elif not s.equals(schema):
            raise InputError(f"{f} has a different schema from {files[0]}; reindex them separately")
    assert schema is not None
    return schema.names, {n: schema.field(n).type for n in schema.names}, rows


def _parquet_batches(src: Source, batch_rows: int) -> Iterator[RawBatch]:
    import pyarrow.parquet as pq

    cols = ([src.id_column] if src.id_column else []) + [src.text_column] + src.metadata_columns
    for f in src.files:
        try:
            pf = pq.ParquetFile(f)
            for rb in pf.iter_batches(batch_size=batch_rows, columns=cols, use_threads=False):
                t = pa.Table.from_batches([rb])
                ids = t.column(src.id_column).to_pylist() if src.id_column else [None] * len(t)
                texts = _texts_of(t.column(src.text_column))
                yield RawBatch(ids, texts, t.select(src.metadata_columns), [None] * len(t))
        except (OSError, pa.ArrowException) as e:
            raise InputError(f"cannot read Parquet file {f}: {_short(e)}") from e


def _texts_of(col: pa.ChunkedArray) -> list[Any]:
    if pa.types.is_binary(col.type) or pa.types.is_large_binary(col.type):
        return [_decode(v) for v in col.to_pylist()]
    try:
        return col.to_pylist()
    except UnicodeDecodeError:  # a Parquet writer that did not check UTF-8
        return [_decode(v) for v in col.cast(pa.large_binary()).to_pylist()]


def _decode(v: bytes | None) -> Any:
    if v is None:
        return None
    try:
        return v.decode("utf-8")
    except UnicodeDecodeError as e:
        return RowProblem(f"invalid UTF-8 in text at byte {e.start}")


# --------------------------------------------------------------------------- JSONL

def _jsonl_schema(files: list[Path]) -> tuple[list[str], dict[str, pa.DataType | None], int]:
    columns: dict[str, None] = {}
    rows = 0
    for f in files:
        try:
            with open(f, "rb") as fh:
                for i, line in enumerate(fh):
                    if not line.strip():
                        continue
                    rows += 1
                    if i < META_SNIFF_ROWS:
                        try:
                            obj = json.loads(line)
                        except ValueError:
                            continue
                        if isinstance(obj, dict):
                            columns.update(dict.fromkeys(obj))
        except OSError as e:
            raise InputError(f"cannot read {f}: {_short(e)}") from e
    if not columns and rows:
        raise InputError(f"{files[0]}: no JSON objects in the first {META_SNIFF_ROWS} lines")
    if not rows:
        raise InputError(f"{files[0] if len(files) == 1 else 'source'} is empty")
    return list(columns), dict.fromkeys(columns), rows


def _sniff_jsonl_metadata(files: list[Path], meta: list[str]) -> pa.Schema:
    values: dict[str, list[Any]] = {c: [] for c in meta}
    seen = 0
    for obj in _iter_json_objects(files):
        if isinstance(obj, dict):
            for c in meta:
                values[c].append(_jsonable(obj.get(c)))
        seen += 1
        if seen >= META_SNIFF_ROWS:
            break
    fields = []
    for c in meta:
        vals = [v for v in values[c] if v is not None]
        kinds = {type(v) for v in vals}
        if kinds == {bool}:
            t: pa.DataType = pa.bool_()
        elif kinds == {int}:
            t = pa.int64()
        elif kinds and kinds <= {int, float}:
            t = pa.float64()
        else:
            t = pa.string()  # strings, mixed types and nested values (stored as JSON text)
        fields.append(pa.field(c, t))
    return pa.schema(fields)


def _iter_json_objects(files: list[Path]) -> Iterator[Any]:
    for f in files:
        with open(f, "rb") as fh:
            for line in fh:
                if line.strip():
                    try:
                        yield json.loads(line)
                    except ValueError:
                        yield None


def _jsonable(v: Any) -> Any:
    if isinstance(v, (dict, list)):
        return json.dumps(v, ensure_ascii=False, sort_keys=True)
    return v


def _jsonl_batches(src: Source, batch_rows: int) -> Iterator[RawBatch]:
    buf: list[tuple[Any, Any, list[Any], str | None]] = []
    for f in src.files:
        try:
            fh = open(f, "rb")
        except OSError as e:
            raise InputError(f"cannot read {f}: {_short(e)}") from e
        with fh:
            for lineno, line in enumerate(fh, 1):
                if not line.strip():
                    continue  # blank lines are not rows
                buf.append(_parse_json_line(src, line, f"{f.name}:{lineno}"))
                if len(buf) >= batch_rows:
                    yield _batch_from_rows(src, buf)
                    buf = []
    if buf:
        yield _batch_from_rows(src, buf)


def _parse_json_line(src: Source, line: bytes, where: str) -> tuple[Any, Any, list[Any], str | None]:
    none_meta: list[Any] = [None] * len(src.metadata_columns)
    try:
        text_line = line.decode("utf-8")
    except UnicodeDecodeError as e:
        # Recover the id if the damage is elsewhere, so the reject names the row.
        try:
            obj = json.loads(line.decode("utf-8", "replace"))
            rid = obj.get(src.id_column) if isinstance(obj, dict) and src.id_column else None
        except ValueError:
            rid = None
        return rid, None, none_meta, f"invalid UTF-8 at byte {e.start} ({where})"
    try:
        obj = json.loads(text_line)
    except json.JSONDecodeError as e:
        return None, None, none_meta, f"invalid JSON ({where}): {e.msg}"
    if not isinstance(obj, dict):
        return None, None, none_meta, f"line is not a JSON object ({where})"
    if src.text_column not in obj:
        problem: str | None = f"missing field {src.text_column!r}"
    else:
        problem = None
    rid = obj.get(src.id_column) if src.id_column else None
    return rid, obj.get(src.text_column), [_jsonable(obj.get(c)) for c in src.metadata_columns], problem


def _batch_from_rows(src: Source, rows: list[tuple[Any, Any, list[Any], str | None]]) -> RawBatch:
    ids = [r[0] for r in rows]
    texts = [r[1] for r in rows]
    problems = [r[3] for r in rows]
    arrays = []
    for j, fld in enumerate(src.metadata_schema):
        col = [r[2][j] for r in rows]
        arrays.append(_to_array(col, fld, problems))
    meta = pa.Table.from_arrays(arrays, schema=src.metadata_schema) if arrays else empty_table(len(rows))
    return RawBatch(ids, texts, meta, problems)


def _to_array(values: list[Any], fld: pa.Field, problems: list[str | None]) -> pa.Array:
    """Convert one metadata column; a value that does not fit the column's type rejects its row."""
    if pa.types.is_string(fld.type):
        values = [v if v is None or isinstance(v, str) else json.dumps(v) for v in values]
    # UnicodeEncodeError: a lone surrogate (JSONL can hold one as an escape; Arrow strings cannot)
    try:
        return pa.array(values, type=fld.type)
    except (pa.ArrowInvalid, pa.ArrowTypeError, OverflowError, UnicodeEncodeError):
        out = []
        for i, v in enumerate(values):
            try:
                pa.array([v], type=fld.type)
                out.append(v)
            except UnicodeEncodeError:
                if problems[i] is None:
                    problems[i] = f"metadata {fld.name!r} is not valid Unicode (lone surrogate)"
                out.append(None)
            except (pa.ArrowInvalid, pa.ArrowTypeError, OverflowError):
                if problems[i] is None:
                    problems[i] = f"metadata {fld.name!r}: {v!r} is not {fld.type}"
                out.append(None)
        return pa.array(out, type=fld.type)


# --------------------------------------------------------------------------- CSV

def _csv_dialect(f: Path) -> str:
    return "\t" if f.suffix.lower() == ".tsv" else ","


def _open_csv(f: Path) -> io.TextIOWrapper:
    # surrogateescape keeps undecodable bytes so the one bad row is rejected, not the whole file.
    return open(f, encoding="utf-8", errors="surrogateescape", newline="")


def _csv_schema(files: list[Path]) -> tuple[list[str], dict[str, pa.DataType | None], int | None]:
    header: list[str] | None = None
    rows: int | None = 0
    csv.field_size_limit(1 << 30)
    for f in files:
        try:
            with _open_csv(f) as fh:
                reader = csv.reader(fh, delimiter=_csv_dialect(f))
                h = next(reader, None)
                if h is None:
                    continue
                h = [c.lstrip("\ufeff") for c in h]
                if header is None:
                    header = h
                elif h != header:
                    raise InputError(f"{f} has a different header from {files[0]}")
                if rows is not None and f.stat().st_size <= CSV_COUNT_MAX_BYTES:
                    rows += sum(1 for _ in reader)
                else:  # parsing a huge CSV twice costs minutes: go without a total
                    rows = None
        except (OSError, csv.Error) as e:
            raise InputError(f"cannot read CSV {f}: {_short(e)}") from e
    if header is None or rows == 0:
        raise InputError(f"{files[0] if len(files) == 1 else 'source'} is empty")
    return header, dict.fromkeys(header), rows


def _csv_batches(src: Source, batch_rows: int) -> Iterator[RawBatch]:
    buf: list[tuple[Any, Any, list[Any], str | None]] = []
    for f in src.files:
        try:
            fh = _open_csv(f)
        except OSError as e:
            raise InputError(f"cannot read {f}: {_short(e)}") from e
        with fh:
            reader = csv.reader(fh, delimiter=_csv_dialect(f))
            header = [c.lstrip("\ufeff") for c in next(reader, [])]
            pos = {c: i for i, c in enumerate(header)}
            try:
                for rec in reader:
                    buf.append(_csv_row(src, rec, pos, f"{f.name}:{reader.line_num}"))
                    if len(buf) >= batch_rows:
                        yield _batch_from_rows(src, buf)
                        buf = []
            except csv.Error as e:
                raise InputError(f"cannot read CSV {f}: {_short(e)}") from e
    if buf:
        yield _batch_from_rows(src, buf)


def _csv_row(src: Source, rec: list[str], pos: dict[str, int], where: str
             ) -> tuple[Any, Any, list[Any], str | None]:
    def get(c: str | None) -> Any:
        if c is None:
            return None
        i = pos[c]
        return rec[i] if i < len(rec) else None

    rid, text = get(src.id_column), get(src.text_column)
    meta = [get(c) for c in src.metadata_columns]
    problem = None
    if len(rec) != len(pos):
        problem = f"row has {len(rec)} fields, header has {len(pos)} ({where})"
    for v in [rid, text, *meta]:
        if isinstance(v, str) and not _valid_utf8(v):
            problem = f"invalid UTF-8 ({where})"
            break
    if problem and "UTF-8" in problem:
        rid = rid.encode("utf-8", "surrogateescape").decode("utf-8", "replace") if rid else rid
        meta = [None] * len(meta)
        text = None
    return rid, text, meta, problem


def _valid_utf8(s: str) -> bool:
    try:
        s.encode("utf-8")
        return True
    except UnicodeEncodeError:
        return False


# --------------------------------------------------------------------------- folders of text files

def _text_batches(src: Source, batch_rows: int) -> Iterator[RawBatch]:
    root = Path(src.path)
    ids: list[Any] = []
    texts: list[Any] = []
    for f in src.files:
        ids.append(f.relative_to(root).as_posix())
        try:
            texts.append(_decode(f.read_bytes()))
        except OSError as e:
            texts.append(RowProblem(f"cannot read file: {_short(e)}"))
        if len(ids) >= batch_rows:
            yield RawBatch(ids, texts, empty_table(len(ids)), [None] * len(ids))
            ids, texts = [], []
    if ids:
        yield RawBatch(ids, texts, empty_table(len(ids)), [None] * len(ids))


# --------------------------------------------------------------------------- fingerprint

def fingerprint_files(files: Sequence[Path]) -> str:
    """Size + hash of the first and last MiB of every file, in order.

    Hashing whole files would read a multi-GB corpus before every (re)start; size + head/tail catches
    appends, truncation, replaced files and most edits, and mtimes are left out on purpose (a copy or
    a checkout changes them without changing a byte). Edits in the middle of a file that keep its size
    are caught later: `reindex` re-hashes the rows it skips on resume and compares them with the digests
    recorded for the finished shards.
    """
    h = hashlib.sha256()
    for f in files:
        try:
            size = f.stat().st_size
            with open(f, "rb") as fh:
                head = fh.read(FINGERPRINT_SPAN)
                if size > 2 * FINGERPRINT_SPAN:
                    fh.seek(size - FINGERPRINT_SPAN)
                tail = fh.read(FINGERPRINT_SPAN) if size > FINGERPRINT_SPAN else b""
        except OSError as e:
            raise InputError(f"cannot read {f}: {_short(e)}") from e
        h.update(f"{f.name}\0{size}\0".encode())
        h.update(hashlib.sha256(head).digest())
        h.update(hashlib.sha256(tail).digest())
    return h.hexdigest()[:32]


def empty_table(rows: int) -> pa.Table:
    """A table with no columns but `rows` rows (the metadata of a source that carries none)."""
    return pa.table({"_": pa.nulls(rows)}).drop_columns(["_"])


def _short(e: BaseException) -> str:
    return str(e).splitlines()[0][:200] if str(e) else type(e).__name__


def relative_files(src: Source) -> list[str]:
    base = Path(src.path) if Path(src.path).is_dir() else None
    return [os.fspath(f.relative_to(base)) if base else os.fspath(f) for f in src.files]
