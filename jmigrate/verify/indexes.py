"""Open the vector indexes `verify` compares and check their integrity.

An index is a `reindex` folder (manifest.json + Parquet shards), a single Parquet file, an NPY matrix
with an ids file beside it, or JSONL with an id and a vector per line (a v2 store exported). Vectors
are never loaded whole: `iter_blocks` streams them in row blocks so an index larger than memory works.
"""

from __future__ import annotations

import contextlib
import json
from collections import Counter
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from jmigrate.columns import ID_NAMES, TEXT_NAMES, VECTOR_NAMES, pick
from jmigrate.errors import InputError, UsageError
from jmigrate.index.manifest import NORM_TOLERANCE, Manifest, Norms, read_manifest
from jmigrate.index.shards import sha256_file
from jmigrate.models import DEFAULT_DOCUMENT_TASK, get_model
from jmigrate.textio import decode_utf8_line, lines, open_regular, require_regular


@dataclass
class Issue:
    """One integrity finding. `error`s make the comparison untrustworthy; `warning`s are worth a look."""

    severity: str  # "error" | "warning"
    index: str  # "v2" | "v3" | "both"
    code: str
    message: str

    def to_dict(self) -> dict[str, str]:
        return {"severity": self.severity, "index": self.index, "code": self.code, "message": self.message}


@dataclass
class VectorStats:
    """What one streaming pass over the vectors saw; filled in by the search."""

    rows: int = 0
    nonfinite_rows: int = 0
    zero_rows: int = 0
    off_unit_rows: int = 0
    min_norm: float = float("inf")
    max_norm: float = 0.0
    norms: Norms = field(default_factory=Norms)  # as `reindex` records them per shard, to compare

    def add(self, norms: np.ndarray, finite: np.ndarray) -> None:
        self.norms.add_norms(norms)
        self.rows += len(norms)
        self.nonfinite_rows += int((~finite).sum())
        ok = norms[finite]
        self.zero_rows += int((ok == 0).sum())
        ok = ok[ok > 0]  # zero vectors are their own finding
        self.off_unit_rows += int((np.abs(ok - 1.0) > NORM_TOLERANCE).sum())
        if len(ok):
            self.min_norm = min(self.min_norm, float(ok.min()))
            self.max_norm = max(self.max_norm, float(ok.max()))


@dataclass
class VectorIndex:
    """An opened index: its declared space, the id of every vector row, and a block reader."""

    side: str
    path: Path
    kind: str  # "jmigrate-index" | "parquet" | "npy" | "jsonl"
    model: str
    task: str | None
    dimensions: int
    normalized: bool | None
    row_ids: np.ndarray  # object array of str, one per vector row (repeats when chunked)
    chunked: bool
    manifest: Manifest | None = None
    files: list[Path] = field(default_factory=list)
    vector_column: str = "vector"
    id_column: str = "id"
    text_column: str | None = None
    chunk_keys: np.ndarray | None = None  # chunk_index per row when the index has one
    issues: list[Issue] = field(default_factory=list)
    _matrix: np.ndarray | None = None  # only for JSONL, which has no random-access layout

    @property
    def rows(self) -> int:
        return len(self.row_ids)

    def doc_ids(self) -> set[str]:
        return set(self.row_ids.tolist())

    def iter_blocks(self, block_rows: int) -> Iterator[tuple[int, np.ndarray]]:
        """Yield (first row, float32 matrix of at most `block_rows` rows) in row order. Each block is a
        new array the caller owns (it may modify it in place); nothing else holds a full block."""
        block_rows = max(1, block_rows)
        if self.kind == "npy":
            yield from _npy_blocks(self.files[0], self.dimensions, self.rows, block_rows)
        elif self.kind == "jsonl":
            assert self._matrix is not None
            for start in range(0, self.rows, block_rows):
                # a copy: the search normalises each block in place
                yield start, self._matrix[start : start + block_rows].copy()
        else:
            yield from _parquet_blocks(self.files, self.vector_column, self.dimensions, block_rows)

    def texts(self, wanted: set[str], limit: int = 300) -> dict[str, str]:
        """Text snippets (first `limit` characters, first chunk wins) for the ids in `wanted`."""
        out: dict[str, str] = {}
        if not wanted:
            return out
        if self.text_column and self.kind in ("jmigrate-index", "parquet"):
            for f in self.files:
                with _reading(self.side, f):
                    pf = pq.ParquetFile(f)
                    for batch in pf.iter_batches(columns=[self.id_column, self.text_column]):
                        ids = batch.column(0).cast(pa.string()).to_pylist()
                        texts = batch.column(1).to_pylist()
                        for i, t in zip(ids, texts, strict=True):
                            if i in wanted and i not in out and t is not None:
                                out[i] = str(t)[:limit]
        elif self.manifest is not None:
            out.update(_source_texts(self.manifest, wanted, limit))
        return out


def open_index(
    path: str | Path,
    *,
    side: str,
    model: str | None = None,
    task: str | None = None,
    ids_path: str | Path | None = None,
    verify_checksums: bool = True,
) -> VectorIndex:
    """Open an index of any accepted kind; flags fill in what a file without a manifest cannot say."""
    p = Path(path)
    if not p.exists():
        raise InputError(f"{side} index not found: {p}")
    require_regular(p, folder_ok=True)
    if p.is_dir():
        if (p / "manifest.json").exists():
            idx = _open_manifest_dir(p, side, model, task, verify_checksums)
        else:
            files = sorted(p.glob("*.parquet"))
            if not files:
                raise InputError(f"{side} index {p} has neither manifest.json nor Parquet files")
            idx = _open_parquet(files, p, side, _require_model(model, side), task)
    elif p.suffix == ".parquet":
        idx = _open_parquet([p], p, side, _require_model(model, side), task)
    elif p.suffix == ".npy":
        idx = _open_npy(p, side, _require_model(model, side), task, ids_path)
    elif p.suffix in (".jsonl", ".ndjson"):
        idx = _open_jsonl(p, side, _require_model(model, side), task)
    else:
        raise InputError(f"{side} index {p}: expected a reindex folder, .parquet, .npy or .jsonl")
    _check_ids(idx)
    _check_model(idx)
    return idx


def _require_model(model: str | None, side: str) -> str:
    if not model:
        raise UsageError(f"the {side} index has no manifest: name its model with --{side}-model")
    return get_model(model).name


def _default_task(model: str, task: str | None) -> str | None:
    """Without a manifest, a v3 index is taken to hold passages (what `reindex` writes by default)."""
    if task is not None:
        return task
    return DEFAULT_DOCUMENT_TASK if get_model(model).generation == "v3" else None


def _open_manifest_dir(
    p: Path, side: str, model: str | None, task: str | None, verify_checksums: bool
) -> VectorIndex:
    try:
        manifest = read_manifest(p)
    except InputError as e:
        raise InputError(f"{side} index: {e}") from e
    assert manifest is not None  # the caller saw manifest.json
    issues: list[Issue] = []
    if model and get_model(model).name != get_model(manifest.model).name:
        raise UsageError(f"--{side}-model {model} contradicts the {side} index manifest ({manifest.model})")
    if task and manifest.task and task != manifest.task:
        raise UsageError(f"--{side}-task {task} contradicts the {side} index manifest ({manifest.task})")
    if not manifest.shards:
        if manifest.status in ("running", "interrupted", "failed"):
            raise InputError(f"{side} index {p} is incomplete: rerun the same `reindex` command to finish it "
                             f"(status {manifest.status!r}, no shard written yet)")
        raise InputError(f"{side} index {p}: the manifest lists no shards")
    if not manifest.complete:
        issues.append(
            Issue(
                "error",
                side,
                "incomplete-index",
                f"manifest status is {manifest.status!r}, not 'complete': rows may be missing "
                "(incomplete: rerun the same `reindex` command to finish it)",
            )
        )
    files: list[Path] = []
    shard_rows = 0
    for s in manifest.shards:
        f = p / s.file  # a plain part-NNNNN.parquet name: read_manifest refuses anything else
        if not f.is_file():
            raise InputError(f"{side} index {p}: shard {s.file} listed in the manifest is missing")
        files.append(f)
        try:
            actual = _parquet_rows(f, side)
        except InputError:
            if s.sha256 and sha256_file(f) != s.sha256:
                raise InputError(f"{side} index {p}: {s.file} is damaged: its sha256 differs from the "
                                 "manifest and it is not readable Parquet; rerun the same `reindex` command "
                                 "to repair it") from None
            raise
        shard_rows += actual
        if s.rows is not None and s.rows != actual:
            issues.append(
                Issue("error", side, "shard-rows",
                      f"{f.name}: manifest says {s.rows} rows, the file has {actual}")
            )
        if verify_checksums and s.sha256 and sha256_file(f) != s.sha256:
            issues.append(
                Issue(
                    "error",
                    side,
                    "shard-checksum",
                    f"{f.name}: sha256 differs from the manifest (file changed or corrupt)",
                )
            )
    unlisted = sorted({f.name for f in p.glob("*.parquet")} - {f.name for f in files})
    if unlisted:
        issues.append(
            Issue(
                "warning",
                side,
                "unlisted-shards",
                f"{len(unlisted)} Parquet file(s) not in the manifest were ignored: "
                f"{', '.join(unlisted[:3])}",
            )
        )
    rows = manifest.rows
    if not {"rows", "rows.written"} & manifest.missing.keys() and rows.written != shard_rows:
        issues.append(
            Issue(
                "error",
                side,
                "row-count",
                f"manifest says {rows.written} rows written, the shards hold {shard_rows}",
            )
        )
    rejected = rows.rejected
    if rejected > 0:
        issues.append(
            Issue(
                "warning",
                side,
                "rejected-rows",
                f"{rejected} source row(s) were rejected by reindex and are not in this index",
            )
        )
    idx = _open_parquet(
        files, p, side, get_model(manifest.model).name, manifest.task, manifest=manifest,
        dims=manifest.dimensions, default_task=False
    )
    if not {"rows", "rows.source"} & manifest.missing.keys():
        docs = len(idx.doc_ids())
        accounted = docs + rejected
        if accounted != rows.source:
            issues.append(
                Issue(
                    "error",
                    side,
                    "source-rows",
                    f"the source had {rows.source} rows; the index holds {docs} documents "
                    f"and {rejected} were rejected ({rows.source - accounted:+d} unaccounted)",
                )
            )
    idx.normalized = manifest.normalized
    idx.issues = issues + idx.issues
    return idx


def _parquet_rows(f: Path, side: str) -> int:
    try:
        return int(pq.ParquetFile(f).metadata.num_rows)
    except (OSError, pa.ArrowException) as e:
        raise InputError(f"{side} index {f}: not a readable Parquet shard ({_one_line(e)})") from e


def _one_line(e: BaseException) -> str:
    return " ".join(str(e).split())[:300]


def _pick(names: Sequence[str], keys: Sequence[str]) -> str | None:
    return pick(names, keys)


def _open_parquet(
    files: list[Path],
    root: Path,
    side: str,
    model: str,
    task: str | None,
    *,
    manifest: Manifest | None = None,
    dims: int | None = None,
    default_task: bool = True,
) -> VectorIndex:
    with _reading(side, files[0]):
        schema = pq.read_schema(files[0])
    names = schema.names
    dups = sorted({n for n in names if names.count(n) > 1})
    if dups:
        raise InputError(f"{side} index {files[0]} has duplicate column name(s) {', '.join(map(repr, dups))}")
    id_col, vec_col = _pick(names, ID_NAMES), _pick(names, VECTOR_NAMES)
    if id_col is None or vec_col is None:
        raise InputError(f"{side} index {files[0]}: needs an id column and a vector column, found {names}")
    vtype = schema.field(vec_col).type
    if pa.types.is_fixed_size_list(vtype):
        width = vtype.list_size
    elif pa.types.is_list(vtype) or pa.types.is_large_list(vtype):
        with _reading(side, files[0]):
            width = _first_list_length(files[0], vec_col)
    else:
        raise InputError(f"{side} index {files[0]}: column {vec_col!r} is {vtype}, not a list of floats")
    if dims is not None and width != dims:
        raise InputError(f"{side} index {root}: manifest says {dims} dimensions, the vectors have {width}")
    has_chunks = "chunk_index" in names
    cols = [id_col] + (["chunk_index"] if has_chunks else [])
    ids: list[np.ndarray] = []
    chunks: list[np.ndarray] = []
    for f in files:
        with _reading(side, f):
            t = pq.read_table(f, columns=cols)
            col_ids = _ids_array(t.column(0), f)
        if t.num_columns != len(cols):
            raise InputError(f"{side} index {f}: columns differ from the first shard's")
        ids.append(col_ids)
        if has_chunks:
            chunks.append(t.column(1).to_numpy(zero_copy_only=False))
    text_col = _pick(names, TEXT_NAMES)
    row_ids = np.concatenate(ids) if ids else np.empty(0, dtype=object)
    return VectorIndex(
        side=side,
        path=root,
        kind="jmigrate-index" if manifest is not None else "parquet",
        model=model,
        task=task if not default_task else _default_task(model, task),
        dimensions=width,
        normalized=None,
        row_ids=row_ids,
        chunked=has_chunks,
        manifest=manifest,
        files=files,
        vector_column=vec_col,
        id_column=id_col,
        text_column=text_col,
        chunk_keys=np.concatenate(chunks) if has_chunks else None,
    )


@contextlib.contextmanager
def _reading(side: str, f: Path) -> Iterator[None]:
    """pyarrow's errors (a truncated or garbled file) as one line naming the file."""
    try:
        yield
    except (OSError, pa.ArrowException, UnicodeDecodeError) as e:  # a damaged string column decodes badly
        where = f"{side} index {f}" if side else str(f)
        raise InputError(f"{where}: not readable Parquet ({_one_line(e)})") from e


def _ids_array(col: pa.ChunkedArray, f: Path) -> np.ndarray:
    if col.null_count:
        raise InputError(f"{f}: {col.null_count} row(s) have no id")
    return np.asarray(col.cast(pa.string()).to_pylist(), dtype=object)


def _first_list_length(f: Path, col: str) -> int:
    for batch in pq.ParquetFile(f).iter_batches(batch_size=1, columns=[col]):
        return len(batch.column(0)[0].values)
    raise InputError(f"{f}: the index is empty")


def vectors_from_arrow(arr: pa.Array | pa.ChunkedArray, dims: int, where: Path | str) -> np.ndarray:
    """A (rows, dims) float32 matrix from a fixed_size_list or list column; checks every row's length."""
    if isinstance(arr, pa.ChunkedArray):
        arr = arr.combine_chunks()
    if arr.null_count:
        raise InputError(f"{where}: {arr.null_count} row(s) have no vector")
    if pa.types.is_fixed_size_list(arr.type):
        if arr.type.list_size != dims:
            raise InputError(f"{where}: vectors have {arr.type.list_size} dimensions, expected {dims}")
        flat = arr.flatten()
    else:
        lengths = pc.list_value_length(arr).to_numpy(zero_copy_only=False)
        if len(lengths) and (lengths != dims).any():
            bad = int((lengths != dims).sum())
            raise InputError(f"{where}: {bad} vector(s) do not have {dims} dimensions")
        flat = arr.flatten()
    m = flat.to_numpy(zero_copy_only=False).astype(np.float32, copy=False)
    return m.reshape(len(arr), dims)


def _open_npy(p: Path, side: str, model: str, task: str | None, ids_path: str | Path | None) -> VectorIndex:
    try:
        m = np.load(p, mmap_mode="r", allow_pickle=False)
    except (OSError, ValueError, EOFError) as e:  # EOFError: an empty file (Click would call it Ctrl-C)
        why = _one_line(e) or "empty file"
        raise InputError(f"{side} index {p}: not a readable NPY matrix ({why})") from e
    if m.ndim != 2 or m.dtype.kind != "f":
        raise InputError(f"{side} index {p}: expected a 2-D float matrix, found {m.dtype} {m.shape}")
    idf = Path(ids_path) if ids_path else _find_ids_file(p)
    if idf is None:
        raise UsageError(
            f"{side} index {p}: no ids file beside it ({p.stem}.ids.txt/.json/.parquet); pass --{side}-ids"
        )
    ids = read_ids_file(idf)
    if len(ids) != m.shape[0]:
        raise InputError(f"{side} index {p}: {m.shape[0]} vectors but {len(ids)} ids in {idf.name}")
    return VectorIndex(
        side=side,
        path=p,
        kind="npy",
        model=model,
        task=_default_task(model, task),
        dimensions=int(m.shape[1]),
        normalized=None,
        row_ids=np.asarray(ids, dtype=object),
        chunked=False,
        files=[p],
    )


def _find_ids_file(p: Path) -> Path | None:
    for stem in (f"{p.stem}.ids", p.stem, "ids"):
        for ext in (".txt", ".json", ".parquet"):
            c = p.with_name(stem + ext)
            if c.is_file():
                return c
    return None


def read_ids_file(f: Path) -> list[str]:
    """Ids, one per vector row: a text file (one per line), a JSON list, or Parquet with an id column."""
    try:
        require_regular(f)
        if f.suffix == ".json":
            data = json.loads(f.read_bytes())  # bytes: json detects (and drops) a BOM
            if not isinstance(data, list):
                raise InputError(f"{f}: expected a JSON list of ids")
            return [str(x) for x in data]
        if f.suffix == ".parquet":
            t = pq.read_table(f)
            col = _pick(t.column_names, ID_NAMES) or t.column_names[0]
            return [str(x) for x in t.column(col).to_pylist()]
        with open_regular(f) as fh:
            return [decode_utf8_line(raw, f"{f}:{n}") for n, raw in lines(fh, f) if raw.strip()]
    except (OSError, ValueError, pa.ArrowException) as e:
        raise InputError(f"unreadable ids file {f}: {e}") from e


PARQUET_BATCH_BYTES = 1 << 20  # vector bytes pyarrow decodes at a time; its buffers stay ~5x this


def _parquet_blocks(files: Sequence[Path], column: str, dims: int,
                    block_rows: int) -> Iterator[tuple[int, np.ndarray]]:
    # Small batches decoded straight into a preallocated float32 block: one copy per value, no
    # concatenation, and pyarrow's own buffers (levels, pages, builders) bounded by the batch size
    # rather than by the row group's (reading whole row groups held ~4x a row group, 129 MiB for
    # 8,192 x 1024 rows, outside --memory-budget; docs/benchmarks.md).
    batch = max(1, PARQUET_BATCH_BYTES // (4 * max(1, dims)))
    start = 0
    block = np.empty((block_rows, dims), dtype=np.float32)
    held = 0
    for f in files:
        with _reading("", f):
            pf = pq.ParquetFile(f, pre_buffer=False, buffer_size=1 << 20)
            batches = pf.iter_batches(batch_size=batch, columns=[column], use_threads=False)
        while True:
            with _reading("", f):
                b = next(batches, None)
            if b is None:
                break
            m = _flat_vectors(b.column(0), dims, f)
            while len(m):
                take = m[: block_rows - held]
                m = m[len(take):]
                block[held : held + len(take)] = take  # the one copy (and cast, if not float32)
                held += len(take)
                if held == block_rows:
                    yield start, block
                    start += held
                    block = np.empty((block_rows, dims), dtype=np.float32)  # the last is still in use
                    held = 0
    if held:
        yield start, block[:held]


def _flat_vectors(arr: pa.Array, dims: int, where: Path) -> np.ndarray:
    """A (rows, dims) view (no copy when the values are float without nulls) of a list column."""
    if arr.null_count:
        raise InputError(f"{where}: {arr.null_count} row(s) have no vector")
    if pa.types.is_fixed_size_list(arr.type):
        if arr.type.list_size != dims:
            raise InputError(f"{where}: vectors have {arr.type.list_size} dimensions, expected {dims}")
    else:
        lengths = pc.list_value_length(arr).to_numpy(zero_copy_only=False)
        if len(lengths) and (lengths != dims).any():
            bad = int((lengths != dims).sum())
            raise InputError(f"{where}: {bad} vector(s) do not have {dims} dimensions")
    flat = arr.flatten().to_numpy(zero_copy_only=False)  # flatten honours the slice offset
    return flat.reshape(len(arr), dims)


def _npy_blocks(p: Path, dims: int, rows: int, block_rows: int) -> Iterator[tuple[int, np.ndarray]]:
    # Read with plain file reads rather than a memory map: mapped pages stay resident and count
    # against the process, which would defeat the memory budget on an index larger than memory.
    try:
        header = np.load(p, mmap_mode="r", allow_pickle=False)
    except (OSError, ValueError, EOFError) as e:  # replaced since it was opened
        raise InputError(f"{p}: not a readable NPY matrix ({_one_line(e) or 'empty file'})") from e
    dtype, fortran, offset = (
        header.dtype,
        header.flags.f_contiguous and not header.flags.c_contiguous,
        header.offset,
    )
    del header
    if fortran:
        raise InputError(f"{p}: Fortran-ordered NPY is not supported; save it with np.save of a C array")
    try:
        fh = p.open("rb")
    except OSError as e:  # removed or made unreadable since it was opened
        raise InputError(f"{p}: cannot read it ({_one_line(e)})") from e
    with fh:
        # Another dtype (float64, float16) is read in pieces and cast into the float32 block, so
        # the block is the only full-size copy.
        piece = max(1, PARQUET_BATCH_BYTES // (max(1, dims) * dtype.itemsize))
        for start in range(0, rows, block_rows):
            n = min(block_rows, rows - start)
            fh.seek(offset + start * dims * dtype.itemsize)
            block = np.empty((n, dims), dtype=np.float32)
            for i in range(0, n, piece):
                m = min(piece, n - i)
                if dtype == np.float32:
                    got = fh.readinto(block[i : i + m].data.cast("B"))
                    ok = got == m * dims * 4
                else:
                    part = np.fromfile(fh, dtype=dtype, count=m * dims)
                    ok = len(part) == m * dims
                    if ok:
                        block[i : i + m] = part.reshape(m, dims)
                if not ok:
                    raise InputError(f"{p}: the file is shorter than its header says (truncated?)")
            yield start, block


def _open_jsonl(p: Path, side: str, model: str, task: str | None) -> VectorIndex:
    ids: list[str] = []
    vecs: list[list[float]] = []
    with open_regular(p) as fh:
        for n, raw in lines(fh, p):
            if not raw.strip():
                continue
            try:
                rec = json.loads(decode_utf8_line(raw, f"{p}:{n}"))
            except ValueError as e:
                raise InputError(f"{p}:{n}: not JSON ({e})") from e
            if not isinstance(rec, dict):
                raise InputError(f"{p}:{n}: expected a JSON object with an id and a vector")
            id_key, vec_key = _pick(list(rec), ID_NAMES), _pick(list(rec), VECTOR_NAMES)
            if id_key is None or vec_key is None:
                raise InputError(f"{p}:{n}: needs an id and a vector field")
            vec = rec[vec_key]
            if not isinstance(vec, list) or not vec or not all(
                    isinstance(x, (int, float)) and not isinstance(x, bool) for x in vec):
                raise InputError(f"{p}:{n}: {vec_key!r} is not a list of numbers")
            if vecs and len(vec) != len(vecs[0]):
                raise InputError(f"{p}:{n}: {len(vec)} dimensions, the first vector has {len(vecs[0])}")
            ids.append(str(rec[id_key]))
            vecs.append(vec)
    if not ids:
        raise InputError(f"{side} index {p} is empty")
    dims = len(vecs[0])
    matrix = np.asarray(vecs, dtype=np.float32)
    return VectorIndex(
        side=side,
        path=p,
        kind="jsonl",
        model=model,
        task=_default_task(model, task),
        dimensions=dims,
        normalized=None,
        row_ids=np.asarray(ids, dtype=object),
        chunked=False,
        files=[p],
        _matrix=matrix,
    )


def _bad_vector(value: object, where: str) -> np.ndarray:
    shown = json.dumps(value)[:40] if not isinstance(value, (bytes, bytearray)) else "bytes"
    raise InputError(f"{where}: the vector is not a non-empty list of numbers ({shown})")


def _check_ids(idx: VectorIndex) -> None:
    if idx.rows == 0:
        raise InputError(f"{idx.side} index {idx.path} holds no vectors")
    if idx.chunked and idx.chunk_keys is not None:
        keys = Counter(zip(idx.row_ids.tolist(), idx.chunk_keys.tolist(), strict=True))
        what = "(id, chunk_index) pair"
    else:
        keys = Counter(idx.row_ids.tolist())
        what = "id"
    dups = [k for k, c in keys.items() if c > 1]
    if dups:
        idx.issues.append(
            Issue(
                "error",
                idx.side,
                "duplicate-ids",
                f"{len(dups)} duplicate {what}(s), e.g. {dups[0]!r}: a document may be returned twice",
            )
        )
    if any(not i for i in idx.row_ids.tolist()):
        idx.issues.append(Issue("error", idx.side, "empty-ids", "some rows have an empty id"))


def _check_model(idx: VectorIndex) -> None:
    m = get_model(idx.model)
    if idx.dimensions > m.dims:
        idx.issues.append(
            Issue(
                "error",
                idx.side,
                "dimensions",
                f"{idx.dimensions}-dim vectors, but {m.name} produces at most {m.dims}",
            )
        )
    elif idx.dimensions != m.dims and m.generation != "v3":
        idx.issues.append(
            Issue(
                "error",
                idx.side,
                "dimensions",
                f"{idx.dimensions}-dim vectors, but {m.name} produces {m.dims}",
            )
        )


def compare_indexes(v2: VectorIndex, v3: VectorIndex) -> list[Issue]:
    """Documents present in one index and not the other: the comparison is only fair on a shared corpus."""
    a, b = v2.doc_ids(), v3.doc_ids()
    issues = []
    for name, only in (("v2", sorted(a - b)), ("v3", sorted(b - a))):
        if only:
            issues.append(
                Issue(
                    "warning",
                    "both",
                    f"only-in-{name}",
                    f"{len(only)} document id(s) only in the {name} index, e.g. "
                    f"{', '.join(repr(x) for x in only[:3])}",
                )
            )
    return issues


def vector_issues(idx: VectorIndex, stats: VectorStats) -> list[Issue]:
    """Turn what the search pass saw into findings."""
    out = []
    if stats.nonfinite_rows:
        out.append(
            Issue(
                "error",
                idx.side,
                "non-finite",
                f"{stats.nonfinite_rows} vector(s) contain NaN or inf (never returned by search)",
            )
        )
    if stats.zero_rows:
        out.append(Issue("error", idx.side, "zero-vectors", f"{stats.zero_rows} vector(s) are all zeros"))
    not_unit = stats.off_unit_rows + stats.zero_rows + stats.nonfinite_rows
    if idx.normalized and not_unit:
        # The manifest's claim is what users' own code relies on (dot product as cosine): a false one
        # makes every score of that code wrong, not only this comparison.
        out.append(
            Issue(
                "error",
                idx.side,
                "normalized-claim",
                f"the manifest says normalized, but {not_unit} vector(s) are not unit length"
                + (f" (norms {stats.min_norm:.4g}..{stats.max_norm:.4g})" if stats.off_unit_rows else ""),
            )
        )
    recorded = _recorded_norms(idx)
    if recorded is not None and not recorded.same_as(stats.norms):
        out.append(
            Issue(
                "error",
                idx.side,
                "shard-norms",
                f"the manifest records {recorded.describe()}, the vectors have {stats.norms.describe()}: "
                "the manifest does not describe these shards",
            )
        )
    if stats.off_unit_rows:
        sev = "warning"
        claim = "the manifest says normalized" if idx.normalized else "vectors are compared by cosine"
        out.append(
            Issue(
                sev,
                idx.side,
                "norms",
                f"{stats.off_unit_rows} vector(s) are not unit length (norms {stats.min_norm:.4g}"
                f"..{stats.max_norm:.4g}; {claim}; they were normalised before search)",
            )
        )
    return out


def _recorded_norms(idx: VectorIndex) -> Norms | None:
    """The norms `reindex` measured as it wrote the shards, over the whole index; None if any shard
    has no record (an older jmigrate, a hand-made folder)."""
    m = idx.manifest
    if m is None or not m.shards or any(s.norms is None for s in m.shards):
        return None
    total = Norms()
    for s in m.shards:
        n = s.norms
        assert n is not None
        total.nonfinite += n.nonfinite
        for x in (n.min, n.max):
            if x is not None:
                total.min = x if total.min is None else min(total.min, x)
                total.max = x if total.max is None else max(total.max, x)
    return total


def _source_texts(manifest: Manifest, wanted: set[str], limit: int) -> dict[str, str]:
    """Snippets from the corpus the index was built from, when it is still where the manifest says
    (read by `reindex`'s own readers, so a TSV, a BOM or a text folder reads as it did then)."""
    from jmigrate.index.sources import source_texts

    src = manifest.source
    path, id_col, text_col = src.get("path"), src.get("id_column"), src.get("text_column")
    if not (isinstance(path, str) and isinstance(id_col, str) and isinstance(text_col, str)):
        return {}
    return source_texts(path, id_col, text_col, wanted, limit)
