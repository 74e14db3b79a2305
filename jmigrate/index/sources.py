"""Corpus readers for `reindex`: Parquet, JSONL, CSV, text/Markdown folders and existing v2 indexes.

Every reader streams fixed-order record batches (`RawBatch`) of raw ids, raw texts and carried
metadata, so memory stays flat and a rerun sees the rows in exactly the same order (resume depends
on it). Validation of the values (empty text, duplicate ids, ...) happens later, in `pipeline`.
"""

from __future__ import annotations

import contextlib
import csv
import glob
import hashlib
import io
import json
import os
import stat
from collections.abc import Generator, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pyarrow as pa

from jmigrate.columns import ID_NAMES, TEXT_NAMES, VECTOR_NAMES, pick
from jmigrate.errors import InputError, JMigrateError, UsageError
from jmigrate.textio import (
    UTF8_BOM,
    NotRegularFile,
    count_rows,
    decode_document,
    file_kind,
    is_unicode,
    lines,
    open_regular,
    require_utf8,
    tsv_rows,
)

TEXT_SUFFIXES = (".txt", ".md", ".markdown", ".rst")
JSONL_SUFFIXES = (".jsonl", ".ndjson", ".json")
CSV_SUFFIXES = (".csv", ".tsv")
PARQUET_SUFFIXES = (".parquet", ".pq")
RESERVED = frozenset({"id", "vector", "chunk_index", "chunk_start", "chunk_end", "text"})
CSV_COUNT_MAX_BYTES = 512 << 20  # count CSV rows up front (for the progress total) below this size
FINGERPRINT_SPAN = 1 << 20  # bytes hashed at the head and at the tail of every file
# JSONL keys become columns; past this many distinct keys the rows are not records of one kind.
MAX_JSONL_COLUMNS = 4096
LEAVES = "symlink that leaves the source folder (not followed)"
LEAVES_DIR = "symlink to a folder that leaves the source folder (not followed)"


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
    root: Path | None = None  # text-folder ids are paths relative to it
    # text-folder entries that are rows but are not read (link out of the folder, FIFO...), with why
    refused: dict[Path, str] = field(default_factory=dict)
    column_types: dict[str, pa.DataType] = field(default_factory=dict)  # Parquet: one type per column

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


@dataclass
class _Scan:
    """What a pass over the source's files found: columns in first-seen order, their types, rows."""

    columns: list[str]
    types: dict[str, pa.DataType | None]
    rows: int | None
    per_file: dict[Path, set[str]] = field(default_factory=dict)  # columns of each file (CSV, Parquet)


# --------------------------------------------------------------------------- opening

def open_source(
    path: str,
    *,
    id_column: str | None = None,
    text_column: str | None = None,
    metadata_columns: Sequence[str] | None = None,
) -> Source:
    """Find the files behind `path`, detect the format and columns, and check them before any spending."""
    from jmigrate.stores import is_store_uri

    if is_store_uri(path):
        # Stores sit above index (jmigrate.stores.source builds on this module): the library entry
        # point jmigrate.index.run.open_source routes URIs there; this function reads files.
        raise UsageError(f"{path.split('://', 1)[0]}:// is a store URI, not a file: open it with "
                         "jmigrate.index.run.open_source")
    files, fmt, root, refused = _resolve(path)
    if fmt == "text-folder":
        return Source(path, fmt, files, "path", "text", [], pa.schema([]), len(files) + len(refused),
                      root=root, refused=refused)
    if fmt == "parquet":
        scan = _parquet_scan(files)
    elif fmt.endswith("jsonl"):
        keep = None if metadata_columns is None else {*metadata_columns, id_column, text_column}
        scan = _jsonl_scan(files, keep)
    else:
        scan = _csv_scan(files)
    columns, types = scan.columns, scan.types
    bad = [c for c in columns if not is_unicode(c)]
    if bad and metadata_columns is None:
        # a JSON key with a lone surrogate cannot be a Parquet column name (nor be printed)
        raise InputError(f"column name {ascii(bad[0])} is not valid Unicode; pass --metadata-columns "
                         "(and --id-column / --text-column) to choose the columns to use")
    vectors = [c for c in columns if _is_vector_type(types.get(c)) or
               (c.lower() in VECTOR_NAMES and types.get(c) is None)]
    idc = _pick(columns, id_column, ID_NAMES, "id", required=False)
    txt = _pick([c for c in columns if c != idc and c not in vectors], text_column, TEXT_NAMES, "text",
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
    # Files of one source may differ in their metadata columns (missing ones are nulls), but each
    # must have the id and text columns: without them its rows are not rows of this corpus.
    for f, have in scan.per_file.items():
        for what, c in (("id", idc), ("text", txt)):
            if c is not None and c not in have:
                raise InputError(f"{f} has no {what} column {c!r} (other files of the source have it); "
                                 "reindex it separately or add the column")
    if fmt == "parquet":
        schema = pa.schema([pa.field(c, types[c]) for c in meta])
    elif fmt.endswith("jsonl"):
        schema = pa.schema([pa.field(c, types[c] or pa.string()) for c in meta])
    else:
        schema = pa.schema([pa.field(c, pa.string()) for c in meta])
    column_types = {c: t for c, t in types.items() if t is not None} if fmt == "parquet" else {}
    return Source(path, fmt, files, idc, txt, meta, schema, scan.rows, vectors, skipped,
                  column_types=column_types)


def source_texts(path: str, id_column: str, text_column: str, wanted: set[str], limit: int) -> dict[str, str]:
    """Texts (first `limit` characters, first row wins) of the rows whose id is in `wanted`.

    For `verify`'s report, when an index was built without its texts: the corpus is read by the same
    readers as `reindex` used. A source that moved, changed or no longer reads gives no snippets.
    """
    out: dict[str, str] = {}
    try:
        # (a text folder's manifest names `path` and `text`, which open_source ignores for folders)
        src = open_source(path, id_column=id_column, text_column=text_column, metadata_columns=[])
        for batch in src.batches():
            for rid, text in zip(batch.ids, batch.texts, strict=True):
                key = str(rid)
                good = isinstance(text, str) and not isinstance(text, RowProblem)
                if good and key in wanted and key not in out:
                    out[key] = text[:limit]
    except (JMigrateError, OSError, ValueError, pa.ArrowException):
        return out  # snippets are a convenience; a moved or changed source only loses them
    return out


def _resolve(path: str) -> tuple[list[Path], str, Path | None, dict[Path, str]]:
    """(regular files, format, root of the ids, entries refused with the reason)."""
    if any(ch in path for ch in "*?["):
        root = _glob_root(path)
        found: dict[Path, str | None] = {}
        for m in glob.glob(path, recursive=True):
            p = Path(m)
            why = _refusal(p, root)
            if why is not None or not p.is_dir():
                found[p] = why
        kinds = sorted(f for f, why in found.items() if why != LEAVES_DIR)
        if not kinds:
            raise InputError(f"no files match {path}")
        return _classify(found, _format_of_files(kinds, path), root, path)
    p = Path(path)
    if not p.exists():
        if p.is_symlink():
            raise InputError(f"source {path} is a broken symlink")
        raise InputError(f"source not found: {path}")
    if not p.is_dir():
        mode = p.stat().st_mode
        if not stat.S_ISREG(mode):  # a FIFO named data.jsonl would block every read
            raise NotRegularFile(path, file_kind(mode))
        if p.suffix.lower() == ".npy":
            files, fmt = _npy_index(p.parent)
            return files, fmt, None, {}
        return [p], _format_of_files([p], path), p.parent, {}
    entries = _walk(p)
    if (p / "manifest.json").is_file() or any(f.suffix.lower() in PARQUET_SUFFIXES for f in entries):
        return _classify(entries, "parquet", p, path)
    if any(f.suffix.lower() == ".npy" and f.parent == p for f in entries):
        files, fmt = _npy_index(p)
        return files, fmt, None, {}
    for suffixes, fmt in ((JSONL_SUFFIXES, "jsonl"), (CSV_SUFFIXES, "csv"), (TEXT_SUFFIXES, "text-folder")):
        if any(f.suffix.lower() in suffixes for f in entries):
            return _classify(entries, fmt, p, path)
    raise InputError(f"no Parquet, JSONL, CSV, .npy, .txt or .md files in {path}")


_FORMAT_SUFFIXES = {"parquet": PARQUET_SUFFIXES, "jsonl": JSONL_SUFFIXES, "csv": CSV_SUFFIXES,
                    "text-folder": TEXT_SUFFIXES}


def _classify(entries: dict[Path, str | None], fmt: str, root: Path,
              shown: str) -> tuple[list[Path], str, Path, dict[Path, str]]:
    """Keep the entries of the format; a refused one is a rejected row (text) or a stop (record files)."""
    suffixes = _FORMAT_SUFFIXES[fmt]
    files: list[Path] = []
    refused: dict[Path, str] = {}
    for f in sorted(entries):
        why = entries[f]
        if why is None:
            if f.suffix.lower() in suffixes:
                files.append(f)
        elif f.suffix.lower() in suffixes or why == LEAVES_DIR:
            # A link out of the folder is reported whatever its name: a linked folder may hold rows.
            refused[f] = why
    if refused and fmt != "text-folder":
        f, why = next(iter(refused.items()))
        raise InputError(f"refusing {f} in {shown}: {why}")
    return files, fmt, root, refused


def _walk(root: Path) -> dict[Path, str | None]:
    """Every entry under `root` that could be a row or a file of rows, with why it is refused (or None).

    Like `plan`'s walker, symlinks are never followed out of the folder (a link to a secret file must
    not be read, stored and sent to an API); a link inside it to a file is read like the file, a link to
    a folder inside it is not walked twice. FIFOs, sockets and devices are never opened.
    """
    real_root = os.path.realpath(root)
    out: dict[Path, str | None] = {}
    stack = [root]
    while stack:  # not recursion: a tree thousands of folders deep must not overflow the stack
        folder = stack.pop()
        try:
            entries = list(os.scandir(folder))
        except OSError as e:
            raise InputError(f"cannot list {folder}: {e.strerror or e}") from e
        for entry in entries:
            p = Path(entry.path)
            try:
                if entry.is_symlink():
                    why = _refusal(p, root, real_root)
                    if why is not None:
                        out[p] = why
                    elif not os.path.isdir(p):
                        out[p] = None
                elif entry.is_dir(follow_symlinks=False):
                    stack.append(p)
                elif entry.is_file(follow_symlinks=False):
                    out[p] = None
                else:
                    out[p] = f"not a regular file ({file_kind(entry.stat(follow_symlinks=False).st_mode)})"
            except OSError as e:
                out[p] = f"cannot stat ({e.strerror or e})"
    return out


def _refusal(p: Path, root: Path, real_root: str | None = None) -> str | None:
    """Why `p` (a file, or a link to one) must not be read as part of a source under `root`; None if fine."""
    if real_root is None:
        real_root = os.path.realpath(root)
    try:
        target = os.path.realpath(p, strict=True)
    except (OSError, RuntimeError):
        return "broken symlink or symlink loop"
    if os.path.commonpath([real_root, target]) != real_root:
        return LEAVES_DIR if os.path.isdir(target) else LEAVES
    try:
        mode = os.stat(target).st_mode
    except OSError as e:
        return f"cannot stat ({e.strerror or e})"
    if stat.S_ISDIR(mode) or stat.S_ISREG(mode):
        return None
    return f"not a regular file ({file_kind(mode)})"


def _glob_root(pattern: str) -> Path:
    """The fixed folder in front of a glob's first wildcard (`notes/**/*.md` -> `notes`): ids start there."""
    parts = Path(pattern).parts
    fixed: list[str] = []
    for part in parts[:-1]:
        if any(ch in part for ch in "*?["):
            break
        fixed.append(part)
    return Path(*fixed) if fixed else Path(".")


def _npy_index(folder: Path) -> tuple[list[Path], str]:
    """A v2 index saved as vectors.npy + a metadata file: the text lives in the metadata file."""
    for suffixes, fmt in ((PARQUET_SUFFIXES, "parquet"), (JSONL_SUFFIXES, "npy-index-jsonl"),
                          (CSV_SUFFIXES, "npy-index-csv")):
        files = sorted(f for f in folder.iterdir()
                       if f.suffix.lower() in suffixes and _refusal(f, folder) is None and f.is_file())
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
    found = pick(columns, candidates)
    if found is not None:
        return found
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


def _open(f: Path) -> io.BufferedReader:
    fh = open_regular(f)
    assert isinstance(fh, io.BufferedReader)
    return fh


# --------------------------------------------------------------------------- Parquet

def _parquet_scan(files: list[Path]) -> _Scan:
    """One schema for all files: the union of their columns, each with one type (or a clear error)."""
    import pyarrow.parquet as pq

    types: dict[str, pa.DataType] = {}
    first_seen: dict[str, Path] = {}
    per_file: dict[Path, set[str]] = {}
    rows = 0
    for f in files:
        try:
            meta = pq.read_metadata(f)
            s = meta.schema.to_arrow_schema()
        except (OSError, pa.ArrowException) as e:
            raise InputError(f"cannot read Parquet file {f}: {_short(e)}") from e
        rows += meta.num_rows
        dups = sorted({n for n in s.names if s.names.count(n) > 1})
        if dups:
            raise InputError(f"{f} has duplicate column name(s) {', '.join(map(repr, dups))}; rename them")
        for fld in s:
            have = types.get(fld.name)
            if have is None:
                types[fld.name], first_seen[fld.name] = fld.type, f
            elif have != fld.type:
                try:
                    types[fld.name] = pa.unify_schemas(
                        [pa.schema([pa.field(fld.name, have)]), pa.schema([pa.field(fld.name, fld.type)])],
                        promote_options="permissive").field(0).type
                except (pa.ArrowTypeError, pa.ArrowInvalid):
                    raise InputError(f"column {fld.name!r} is {have} in {first_seen[fld.name]} but "
                                     f"{fld.type} in {f}; reindex them separately or convert one") from None
        per_file[f] = set(s.names)
    if len(files) == 1:
        per_file = {}
    return _Scan(list(types), dict(types), rows, per_file)


def _parquet_batches(src: Source, batch_rows: int) -> Iterator[RawBatch]:
    import pyarrow.parquet as pq

    cols = ([src.id_column] if src.id_column else []) + [src.text_column] + src.metadata_columns
    for f in src.files:
        try:
            pf = pq.ParquetFile(f)
            have = set(pf.schema_arrow.names)
            for rb in pf.iter_batches(batch_size=batch_rows, columns=[c for c in cols if c in have],
                                      use_threads=False):
                t = _conform(pa.Table.from_batches([rb]), cols, src.column_types)
                ids = t.column(src.id_column).to_pylist() if src.id_column else [None] * len(t)
                texts = _texts_of(t.column(src.text_column))
                yield RawBatch(ids, texts, t.select(src.metadata_columns), [None] * len(t))
        except (OSError, pa.ArrowException) as e:
            raise InputError(f"cannot read Parquet file {f}: {_short(e)}") from e


def _conform(t: pa.Table, cols: list[str], types: dict[str, pa.DataType]) -> pa.Table:
    """A file's batch in the source's schema: columns it lacks are nulls, other types are promoted."""
    arrays = []
    for c in cols:
        if c not in t.column_names:
            arrays.append(pa.nulls(len(t), types[c]))
        elif t.schema.field(c).type != types[c]:
            arrays.append(t.column(c).cast(types[c]))
        else:
            arrays.append(t.column(c))
    return pa.Table.from_arrays(arrays, names=cols) if cols else t


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

_INT64 = (-(1 << 63), (1 << 63) - 1)


def _jsonl_scan(files: list[Path], keep: set[str | None] | None) -> _Scan:
    """Every key of every object, with the kinds of value it holds: the metadata schema is decided by
    the whole file, not by its first rows, so a field that first appears late is carried (and a rerun
    always decides the same schema, which resume relies on). `keep`: the columns the user named."""
    kinds: dict[str, set[Any]] = {}
    rows = objects = 0
    for f in files:
        first = f.suffix.lower() == ".json"  # only a .json file can be one JSON document instead
        with _open(f) as fh:
            for n, line in lines(fh, f):
                if not line.strip():
                    continue
                rows += 1
                try:
                    obj = json.loads(line.decode("utf-8"))
                except ValueError:  # UnicodeDecodeError too: that row is rejected when it is read
                    obj = None
                if first:
                    _refuse_json_document(f, line, obj)
                    first = False
                if obj is None:
                    continue
                if not isinstance(obj, dict):
                    continue
                objects += 1
                for k, v in obj.items():
                    seen = kinds.get(k)
                    if seen is None:
                        if len(kinds) >= MAX_JSONL_COLUMNS:
                            if keep is None:
                                raise InputError(
                                    f"{f}:{n}: more than {MAX_JSONL_COLUMNS} distinct keys; pass --metadata-"
                                    "columns (and --id-column / --text-column) to choose the columns")
                            if k not in keep:
                                continue
                        seen = kinds[k] = set()
                    t = type(v)
                    if t is int and not _INT64[0] <= v <= _INT64[1]:
                        t = str  # beyond int64: carried as its digits
                    seen.add(t)
    if not rows:
        raise InputError(f"{files[0] if len(files) == 1 else 'source'} is empty")
    if not objects:
        raise InputError(f"{files[0] if len(files) == 1 else 'source'}: no JSON objects")
    return _Scan(list(kinds), {k: _jsonl_type(v) for k, v in kinds.items()}, rows)


def _refuse_json_document(f: Path, line: bytes, obj: Any) -> None:
    """A `.json` file that opens a JSON array, or an object spread over lines, is one JSON document:
    read as JSON Lines, each of its lines would be a rejected row (or a stray object a row)."""
    head = line.lstrip()
    if isinstance(obj, list) or head.startswith(b"[") or (obj is None and head.startswith(b"{")):
        raise InputError(f"{f} holds one JSON document, not one object per line (JSON Lines); convert it, "
                         f"e.g. jq -c '.[]' {f.name} > {f.stem}.jsonl")


def _jsonl_type(kinds: set[Any]) -> pa.DataType | None:
    """The column type for the kinds of value seen; None if only nulls (no evidence: a string)."""
    kinds = kinds - {type(None)}
    if not kinds:
        return None
    if kinds == {bool}:
        return pa.bool_()
    if kinds == {int}:
        return pa.int64()
    if kinds <= {int, float}:
        return pa.float64()
    return pa.string()  # strings, mixed kinds and nested values are carried as text (nested ones as JSON)


def _jsonable(v: Any) -> Any:
    if isinstance(v, (dict, list)):
        return json.dumps(v, ensure_ascii=False, sort_keys=True)
    return v


def _jsonl_batches(src: Source, batch_rows: int) -> Iterator[RawBatch]:
    buf: list[tuple[Any, Any, list[Any], str | None]] = []
    for f in src.files:
        with _open(f) as fh:
            for lineno, line in lines(fh, f):
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


# --------------------------------------------------------------------------- CSV and TSV

def _is_tsv(f: Path) -> bool:
    return f.suffix.lower() == ".tsv"


def _records(f: Path) -> Generator[tuple[int, list[str]], None, None]:
    """(line number, fields) per non-blank record. CSV has quoting (Python's csv module); TSV has none."""
    with _open(f) as fh:
        if _is_tsv(f):
            yield from tsv_rows(fh, f)
            return
        require_utf8(f, fh.peek(4)[:4])
        # surrogateescape keeps undecodable bytes so the one bad row is rejected, not the whole file.
        with io.TextIOWrapper(fh, encoding="utf-8-sig", errors="surrogateescape", newline="") as text:
            reader = csv.reader(text)
            try:
                for rec in reader:
                    if rec:  # a blank line is not a row (as in JSONL and TSV)
                        yield reader.line_num, rec
            except csv.Error as e:
                raise InputError(f"cannot read CSV {f}: {_short(e)}") from e


def _csv_scan(files: list[Path]) -> _Scan:
    columns: dict[str, None] = {}
    per_file: dict[Path, set[str]] = {}
    rows: int | None = 0
    csv.field_size_limit(1 << 30)
    for f in files:
        if _is_tsv(f):  # the header, then a count of lines that does not decode them
            with _open(f) as fh:
                first = next(tsv_rows(fh, f), None)
                if first is None:
                    continue
                if rows is not None:
                    rows += count_rows(fh)
            header = first[1]
            _add_header(f, header, columns, per_file)
            continue
        with contextlib.closing(_records(f)) as records:
            first = next(records, None)
            if first is None:
                continue
            header = first[1]
            _add_header(f, header, columns, per_file)
            if rows is not None and f.stat().st_size <= CSV_COUNT_MAX_BYTES:
                rows += sum(1 for _ in records)
            else:  # parsing a huge CSV twice costs minutes: go without a total
                rows = None
    if not columns or rows == 0:
        raise InputError(f"{files[0] if len(files) == 1 else 'source'} is empty")
    if len(files) == 1:
        per_file = {}
    return _Scan(list(columns), dict.fromkeys(columns), rows, per_file)


def _add_header(f: Path, header: list[str], columns: dict[str, None], per_file: dict[Path, set[str]]) -> None:
    dups = sorted({c for c in header if header.count(c) > 1})
    if dups:
        raise InputError(f"{f} has duplicate column name(s) {', '.join(map(repr, dups))}; rename them")
    columns.update(dict.fromkeys(header))
    per_file[f] = set(header)


def _csv_batches(src: Source, batch_rows: int) -> Iterator[RawBatch]:
    buf: list[tuple[Any, Any, list[Any], str | None]] = []
    for f in src.files:
        with contextlib.closing(_records(f)) as records:
            header = next(records, (0, []))[1]
            pos = {c: i for i, c in enumerate(header)}
            for n, rec in records:
                buf.append(_csv_row(src, rec, pos, f"{f.name}:{n}"))
                if len(buf) >= batch_rows:
                    yield _batch_from_rows(src, buf)
                    buf = []
    if buf:
        yield _batch_from_rows(src, buf)


def _csv_row(src: Source, rec: list[str], pos: dict[str, int], where: str
             ) -> tuple[Any, Any, list[Any], str | None]:
    def get(c: str | None) -> Any:
        if c is None or c not in pos:
            return None  # a column this file does not have (the source's other files do)
        i = pos[c]
        return rec[i] if i < len(rec) else None

    rid, text = get(src.id_column), get(src.text_column)
    meta = [get(c) for c in src.metadata_columns]
    problem = None
    if len(rec) != len(pos):
        problem = f"row has {len(rec)} fields, header has {len(pos)} ({where})"
    for v in [rid, text, *meta]:
        if isinstance(v, str) and not is_unicode(v):
            problem = f"invalid UTF-8 ({where})"
            break
    if problem and "UTF-8" in problem:
        rid = rid.encode("utf-8", "surrogateescape").decode("utf-8", "replace") if rid else rid
        meta = [None] * len(meta)
        text = None
    return rid, text, meta, problem


# --------------------------------------------------------------------------- folders of text files

def _text_batches(src: Source, batch_rows: int) -> Iterator[RawBatch]:
    assert src.root is not None
    ids: list[Any] = []
    texts: list[Any] = []
    for f in sorted([*src.files, *src.refused]):
        ids.append(f.relative_to(src.root).as_posix())
        why = src.refused.get(f)
        texts.append(RowProblem(why) if why is not None else _read_document(f))
        if len(ids) >= batch_rows:
            yield RawBatch(ids, texts, empty_table(len(ids)), [None] * len(ids))
            ids, texts = [], []
    if ids:
        yield RawBatch(ids, texts, empty_table(len(ids)), [None] * len(ids))


def _read_document(f: Path) -> Any:
    try:
        with open_regular(f) as fh:  # a file swapped for a FIFO since the walk is still not opened
            data = fh.read()
    except NotRegularFile as e:
        return RowProblem(f"not a regular file ({e.kind})")
    except (InputError, OSError) as e:
        return RowProblem(f"cannot read file: {_short(e)}")
    try:
        return decode_document(data)
    except UnicodeDecodeError as e:
        offset = e.start + (len(UTF8_BOM) if data.startswith(UTF8_BOM) else 0)
        return RowProblem(f"invalid {e.encoding.upper().replace('-SIG', '')} in text at byte {offset}")


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
