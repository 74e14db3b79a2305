"""Find vector stores on disk for `jmigrate plan` (a scan feature: `reindex` never calls it): what holds
embeddings, how many, how wide, which model.

Reads headers and schemas only: Parquet footers, Arrow IPC schemas, `.npy`/`.npz` array headers
(`allow_pickle=False`, never unpickled), the first line of JSONL files, FAISS index headers (the first
bytes), Chroma's SQLite catalogue (read-only) and LanceDB folder layout. Pickle files (LangChain's
`index.pkl`, `.pkl` docstores) are never opened.
"""

from __future__ import annotations

import json
import os
import re
import sqlite3
import stat
import struct
import zipfile
from collections.abc import Iterator
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from jmigrate.columns import TEXT_NAMES, pick
from jmigrate.models import DEFAULT_DOCUMENT_TASK, MODELS, V3
from jmigrate.scan.walk import skip_folder

VECTOR_MIN_DIMS = 32  # shorter float lists are features, not embeddings
MODEL_RE = re.compile(r"jina-embeddings?-[a-z0-9-]+")
SAMPLE_TEXTS = 200
MAX_JSONL_COUNT_BYTES = 256 << 20  # count lines only in files up to this size
MAX_JSONL_FIRST_LINE = 4 << 20  # a first row longer than this is not parsed (memory stays bounded)
MAX_MANIFEST_BYTES = 1 << 20
# FAISS: a 4-byte type code, then int32 d, int64 ntotal (faiss/impl/index_read.cpp read_index_header).
FAISS_SUFFIXES = (".faiss", ".index", ".ivf", ".hnsw")


@dataclass
class StoreInfo:
    path: str
    kind: str  # parquet | arrow | npy | npz | jsonl | faiss | lancedb | chroma
    rows: int | None
    dims: int | None
    vector_column: str | None = None
    text_column: str | None = None  # None: the texts are elsewhere (reindex needs them)
    likely_models: list[str] = field(default_factory=list)
    model_evidence: str = ""  # "dims" or where a model name was seen
    notes: list[str] = field(default_factory=list)
    avg_tokens: float | None = None  # from a sample of texts (~4 characters per token)
    reindex_command: str = ""
    estimates: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    def describe(self) -> list[str]:
        """Lines for a human report (`jmigrate plan` text output)."""
        size = f"{self.rows:,} rows" if self.rows is not None else "rows unknown"
        dims = f"{self.dims} dims" if self.dims else "dims unknown"
        models = ", ".join(self.likely_models) or "model unknown"
        why = f" (from {self.model_evidence})" if self.model_evidence else ""
        lines = [f"{self.path}: {self.kind}, {size}, {dims}; likely {models}{why}"]
        lines += [f"  note: {n}" for n in self.notes]
        est = self.estimates
        if est.get("tokens"):
            lines.append(f"  estimate: ~{est['tokens']:,} tokens"
                         + (f", ~${est['cost']:.4f}" if est.get("cost") is not None else "")
                         + f", {est['output_bytes_1024'] / 2**20:,.1f} MiB of vectors at 1024 dims")
        if self.reindex_command:
            lines.append(f"  re-embed: {self.reindex_command}")
        return lines


def discover_stores(root: str | os.PathLike[str], *, price_per_mtok: float | None = None) -> list[StoreInfo]:
    """Every vector store under `root`, sorted by path. Unreadable files become notes, not errors.

    Only regular files and real folders inside `root` are looked at: symlinks are not followed (a link to
    a store inside the root is found at its real path; one that leaves it, or points at a device such as
    /dev/zero, is not ours to read) and FIFOs, sockets and devices are never opened.
    """
    root = Path(root)
    found: list[StoreInfo] = []
    for d, dirnames, filenames in _walk(root):
        if _is_lancedb(d, dirnames):
            found.append(_lancedb(d, dirnames))
            continue
        parquet = sorted(f for f in filenames if f.lower().endswith((".parquet", ".pq")))
        # A reindex index is one store however many shards it has: one command for the folder.
        index = "manifest.json" in filenames and _is_reindex_index(d)
        if len(parquet) > 1 or (parquet and index):
            info = _safe(_parquet, d, [d / f for f in parquet])
            if info:
                found.append(info)
        for name in filenames:
            p = d / name
            low = name.lower()
            info = None
            if low.endswith((".parquet", ".pq")) and len(parquet) == 1 and not index:
                info = _safe(_parquet, p, [p])
            elif low.endswith((".arrow", ".feather", ".ipc")):
                info = _safe(_arrow, p)
            elif low.endswith(".npy"):
                info = _safe(_npy, p)
            elif low.endswith(".npz"):
                info = _safe(_npz, p)
            elif low.endswith((".jsonl", ".ndjson")):
                info = _safe(_jsonl, p)
            elif low.endswith(FAISS_SUFFIXES):
                info = _safe(_faiss, p)
            elif name == "chroma.sqlite3":
                info = _safe(_chroma, p)
            if info:
                found.append(info)
    for info in found:
        _finish(info, root, price_per_mtok)
    return sorted(found, key=lambda i: i.path)


def _is_reindex_index(d: Path) -> bool:
    manifest = d / "manifest.json"
    if manifest.is_symlink() or not manifest.is_file():
        return False
    return b'"jmigrate-index"' in _read_head(manifest, 4096)


def _walk(root: Path) -> Iterator[tuple[Path, list[str], list[str]]]:
    """(folder, sub-folder names, regular file names), sorted, depth first; no links, no special files.

    Iterative (a tree 1,000+ folders deep must not hit the recursion limit). A LanceDB folder's `.lance`
    tables are reported by their parent and not entered.
    """
    if root.is_symlink() or not root.is_dir():
        return
    stack = [root]
    while stack:
        folder = stack.pop()
        dirs: list[str] = []
        files: list[str] = []
        descend: list[Path] = []
        try:
            with os.scandir(folder) as it:
                entries = sorted(it, key=lambda e: e.name)
        except OSError:
            continue
        for entry in entries:
            try:
                if entry.is_symlink():
                    continue
                if entry.is_dir(follow_symlinks=False):
                    dirs.append(entry.name)
                    if not skip_folder(entry) and not entry.name.endswith(".lance"):
                        descend.append(Path(entry.path))
                elif entry.is_file(follow_symlinks=False):
                    files.append(entry.name)
            except OSError:
                continue
        yield folder, dirs, files
        if not _is_lancedb(folder, dirs):
            stack.extend(reversed(descend))


def _safe(fn: Any, *args: Any) -> StoreInfo | None:
    # The readers parse untrusted bytes through numpy, pyarrow, zipfile, sqlite3 and json, whose exception
    # sets are open-ended (numpy raises EOFError for an empty .npy, json RecursionError for deep nesting):
    # a damaged file is a note about that file, never the end of `plan`.
    try:
        result: StoreInfo | None = fn(*args)
        return result
    except Exception as e:
        path = Path(args[0])
        if not _looks_like_store(path):
            return None
        detail = str(e).splitlines()[0][:120] if str(e) else ""
        reason = f"{type(e).__name__}: {detail}" if detail else type(e).__name__
        return StoreInfo(str(path), "unreadable", None, None, notes=[f"cannot read ({reason})"])


def _looks_like_store(p: Path) -> bool:
    # A .jsonl that does not parse is most often just data; these suffixes are stores or nothing.
    return (
        p.is_dir()
        or p.suffix.lower() in (".npy", ".npz", ".parquet", ".pq", ".arrow", ".feather", *FAISS_SUFFIXES)
        or p.name == "chroma.sqlite3"
    )


def _read_head(path: Path, limit: int) -> bytes:
    """At most `limit` bytes of a regular file (refused for links and special files: see `_walk`)."""
    fd = os.open(path, os.O_RDONLY | getattr(os, "O_NOFOLLOW", 0) | getattr(os, "O_NONBLOCK", 0))
    with os.fdopen(fd, "rb") as f:
        if not stat.S_ISREG(os.fstat(f.fileno()).st_mode):
            raise OSError(f"{path.name} is not a regular file")
        return f.read(limit)


# --------------------------------------------------------------------------- per format

def _vector_fields(schema: Any) -> list[tuple[str, int | None]]:
    import pyarrow as pa

    out = []
    for f in schema:
        t = f.type
        if pa.types.is_fixed_size_list(t) and pa.types.is_floating(t.value_type):
            if t.list_size >= VECTOR_MIN_DIMS:
                out.append((f.name, t.list_size))
        elif (pa.types.is_list(t) or pa.types.is_large_list(t)) and pa.types.is_floating(t.value_type):
            out.append((f.name, None))
    return out


def _text_field(names: list[str]) -> str | None:
    return pick(names, TEXT_NAMES)


def _parquet(path: Path, files: list[Path]) -> StoreInfo | None:
    import pyarrow.parquet as pq

    meta = pq.read_metadata(files[0])
    schema = meta.schema.to_arrow_schema()
    vectors = _vector_fields(schema)
    if not vectors:
        return None
    name, dims = vectors[0]
    pf = pq.ParquetFile(files[0])
    text = _text_field(schema.names)
    cols = [name] + ([text] if text else [])
    first = next(pf.iter_batches(batch_size=SAMPLE_TEXTS, columns=cols), None)
    if dims is None and first is not None and first.num_rows:
        v = first.column(0)[0].as_py()
        dims = len(v) if v is not None else None
    if dims is not None and dims < VECTOR_MIN_DIMS:
        return None
    rows = sum(pq.read_metadata(f).num_rows for f in files)
    info = StoreInfo(str(path), "parquet", rows, dims, name, text)
    kv = {k.decode(errors="replace"): v.decode(errors="replace") for k, v in (meta.metadata or {}).items()}
    _model_from_text(info, " ".join(kv.values()) + " " + " ".join(schema.names), "Parquet metadata")
    manifest = (path if path.is_dir() else path.parent) / "manifest.json"
    if manifest.is_file() and not manifest.is_symlink():
        _from_manifest(info, manifest)
    if first is not None and text:
        info.avg_tokens = _avg_tokens(first.column(1).to_pylist())
    return info


def _arrow(path: Path) -> StoreInfo | None:
    import pyarrow as pa

    with pa.memory_map(str(path)) as src:
        try:
            reader: Any = pa.ipc.open_file(src)
            batches = [reader.get_batch(i) for i in range(reader.num_record_batches)]
        except pa.ArrowInvalid:
            src.seek(0)
            reader = pa.ipc.open_stream(src)
            batches = list(reader)
        schema = reader.schema
        vectors = _vector_fields(schema)
        if not vectors:
            return None
        name, dims = vectors[0]
        rows = sum(b.num_rows for b in batches)
        if dims is None and batches and batches[0].num_rows:
            dims = len(batches[0].column(schema.get_field_index(name))[0].as_py())
        text = _text_field(schema.names)
        info = StoreInfo(str(path), "arrow", rows, dims, name, text)
        if text and batches:
            info.avg_tokens = _avg_tokens(batches[0].column(schema.get_field_index(text))[:SAMPLE_TEXTS]
                                          .to_pylist())
        md = schema.metadata or {}
        _model_from_text(info, " ".join(v.decode(errors="replace") for v in md.values()), "Arrow metadata")
    return info


def _npy(path: Path) -> StoreInfo | None:
    import numpy as np

    arr = np.load(path, mmap_mode="r", allow_pickle=False)  # header only; never unpickles
    return _matrix(path, "npy", arr.shape, arr.dtype.kind, None)


def _npz(path: Path) -> StoreInfo | None:
    import numpy as np

    with zipfile.ZipFile(path) as z:
        for member in z.namelist():
            if not member.endswith(".npy"):
                continue
            with z.open(member) as f:
                version = np.lib.format.read_magic(f)
                read = np.lib.format.read_array_header_1_0 if version == (1, 0) else \
                    np.lib.format.read_array_header_2_0
                shape, _, dtype = read(f)
            info = _matrix(path, "npz", shape, np.dtype(dtype).kind, member[:-4])
            if info:
                return info
    return None


def _matrix(path: Path, kind: str, shape: tuple[int, ...], dtype_kind: str,
            key: str | None) -> StoreInfo | None:
    if len(shape) != 2 or dtype_kind != "f" or shape[1] < VECTOR_MIN_DIMS:
        return None
    info = StoreInfo(str(path), kind, int(shape[0]), int(shape[1]), key)
    texts = [p for p in path.parent.iterdir() if p.suffix in (".jsonl", ".parquet", ".csv", ".json")
             and p.stem != path.stem] if path.parent.is_dir() else []
    if texts:
        info.notes.append(f"texts probably in {texts[0].name} (reindex reads the folder)")
    else:
        info.notes.append("no texts next to the vectors: reindex needs the source texts")
    return info


def _jsonl(path: Path) -> StoreInfo | None:
    with open(path, "rb") as f:
        first = f.readline(MAX_JSONL_FIRST_LINE + 1)
    if len(first) > MAX_JSONL_FIRST_LINE:
        return None  # not a row of vectors we can sample within bounded memory
    try:
        obj = json.loads(first)
    except (ValueError, RecursionError):
        return None
    if not isinstance(obj, dict):
        return None
    vec = next((k for k, v in obj.items() if isinstance(v, list) and len(v) >= VECTOR_MIN_DIMS
                and all(isinstance(x, (int, float)) for x in v[:8])), None)
    if vec is None:
        return None
    size = path.stat().st_size
    rows: int | None = None
    if size <= MAX_JSONL_COUNT_BYTES:
        rows = _count_rows(path)
    text = _text_field(list(obj))
    info = StoreInfo(str(path), "jsonl", rows, len(obj[vec]), vec, text)
    if text:
        info.avg_tokens = _avg_tokens([obj.get(text)])
    _model_from_text(info, " ".join(str(v) for k, v in obj.items() if k != vec)[:5000], "first row")
    return info


def _count_rows(path: Path) -> int:
    """Non-blank lines, read in 1 MiB blocks (iterating lines would hold a whole giant line in memory)."""
    rows, open_line = 0, False  # open_line: the line running into this block has content already
    with open(path, "rb") as f:
        while block := f.read(1 << 20):
            pieces = block.split(b"\n")
            for piece in pieces[:-1]:
                rows += open_line or bool(piece.strip())
                open_line = False
            open_line = open_line or bool(pieces[-1].strip())
    return rows + open_line


def _faiss(path: Path) -> StoreInfo | None:
    with open(path, "rb") as f:
        head = f.read(16)
    if len(head) < 16 or not head[:4].isalnum():
        return None
    code = head[:4].decode("ascii")
    d, ntotal = struct.unpack("<iq", head[4:16])
    if not (0 < d <= 65536 and 0 <= ntotal < 10**13):
        return None
    info = StoreInfo(str(path), "faiss", ntotal, d, notes=[f"FAISS index type {code}"])
    pkl = path.with_suffix(".pkl")
    if pkl.exists():
        info.notes.append(f"{pkl.name} (a pickle, not opened) holds the docstore: export the texts "
                          "to reindex")
    else:
        info.notes.append("a FAISS index holds no texts: reindex needs the source texts")
    return info


def _chroma(path: Path) -> StoreInfo | None:
    con = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
    try:
        cols = {r[1] for r in con.execute("PRAGMA table_info(collections)")}
        dim_sql = "dimension" if "dimension" in cols else "NULL"
        collections = con.execute(f"SELECT id, name, {dim_sql} FROM collections").fetchall()
        try:
            total = con.execute("SELECT COUNT(*) FROM embeddings").fetchone()[0]
        except sqlite3.Error:
            total = None
        dims = {c[2] for c in collections if c[2]}
        info = StoreInfo(str(path.parent), "chroma", total, dims.pop() if len(dims) == 1 else None,
                         text_column="documents")
        info.notes.append("collections: " + ", ".join(str(c[1]) for c in collections))
        try:
            meta = con.execute("SELECT str_value FROM collection_metadata WHERE str_value LIKE '%jina%'")
            _model_from_text(info, " ".join(r[0] or "" for r in meta), "collection metadata")
        except sqlite3.Error:
            pass
        info.notes.append("a collection's model cannot change: reindex into a new collection")
        return info
    finally:
        con.close()


def _is_lancedb(d: Path, dirnames: list[str]) -> bool:
    return any(n.endswith(".lance") for n in dirnames) and not d.name.endswith(".lance")


def _lancedb(d: Path, dirnames: list[str]) -> StoreInfo:
    tables = sorted(n[:-6] for n in dirnames if n.endswith(".lance"))
    info = StoreInfo(str(d), "lancedb", None, None)
    info.notes.append("tables: " + ", ".join(tables))
    try:
        import lancedb  # optional: only when the user has it

        db = lancedb.connect(str(d))
        t = db.open_table(tables[0])
        info.rows = t.count_rows()
        vectors = _vector_fields(t.schema)
        if vectors:
            info.vector_column, info.dims = vectors[0]
        info.text_column = _text_field(t.schema.names)
    except Exception:  # lancedb missing or a format it cannot read: layout only
        info.notes.append("install lancedb to read rows and dims")
    return info


# --------------------------------------------------------------------------- model guess and command

def _from_manifest(info: StoreInfo, manifest: Path) -> None:
    """A `reindex` index says exactly what it holds (read by the one manifest reader, so plan, reindex
    and verify agree); another tool's manifest.json is only searched for model names."""
    from jmigrate.errors import InputError
    from jmigrate.index.manifest import read_manifest

    if manifest.stat().st_size <= MAX_MANIFEST_BYTES:
        try:
            m = read_manifest(manifest.parent)
        except InputError:
            m = None
        if m is not None:
            name = m.model.rsplit("/", 1)[-1]
            info.likely_models = [name] if name in MODELS else []
            info.model_evidence = "manifest.json (a reindex index)"
            if not m.complete:
                info.notes.append(f"a reindex index whose run is {m.status}: rerun its reindex command to "
                                  "finish it")
            return
    head = _read_head(manifest, MAX_MANIFEST_BYTES).decode("utf-8", errors="replace")
    _model_from_text(info, head, "manifest.json")


def _model_from_text(info: StoreInfo, text: str, where: str) -> None:
    names = sorted({m for m in MODEL_RE.findall(text) if m in MODELS})
    if names:
        info.likely_models = names
        info.model_evidence = where


def _avg_tokens(texts: list[Any]) -> float | None:
    strings = [t for t in texts if isinstance(t, str)]
    if not strings:
        return None
    from jmigrate.encoders.base import estimate_tokens

    return sum(estimate_tokens(t) for t in strings) / len(strings)


def _finish(info: StoreInfo, root: Path, price: float | None) -> None:
    if not info.likely_models and info.dims:
        info.likely_models = [m.name for m in MODELS.values() if m.dims == info.dims]
        info.model_evidence = "dims" if info.likely_models else ""
    if info.likely_models == [V3]:
        # Already v3 (a reindex index, or metadata naming v3): nothing to re-embed.
        info.notes.append(f"already {V3}: nothing to re-embed")
        return
    src = info.path
    try:
        src = os.path.relpath(info.path, Path.cwd())
    except ValueError:
        pass
    base = src.rstrip("/").rsplit(".", 1)[0] if Path(info.path).is_file() else src.rstrip("/")
    parts = ["jmigrate", "reindex", _quote(src), "--out", _quote(base + "-v3"), "--model", V3,
             "--task", DEFAULT_DOCUMENT_TASK]
    if info.dims and info.dims != MODELS[V3].dims and info.dims in (512, 768):
        parts += ["--dimensions", str(info.dims)]
        info.notes.append(f"--dimensions {info.dims} keeps the store's schema; 1024 is v3's full quality")
    if info.vector_column and info.kind in ("parquet", "arrow", "jsonl") and info.text_column:
        parts += ["--text-column", info.text_column]
    info.reindex_command = " ".join(parts)
    if info.rows is not None:
        tokens = info.rows * info.avg_tokens if info.avg_tokens else None
        info.estimates = {
            "rows": info.rows,
            "tokens": round(tokens) if tokens else None,
            "tokens_counted_by": "estimate: ~4 characters per token on a sample" if tokens else None,
            "cost": tokens / 1e6 * price if tokens and price is not None else None,
            "output_bytes_1024": info.rows * 1024 * 4,
        }


def _quote(s: str) -> str:
    import shlex

    return shlex.quote(s)
