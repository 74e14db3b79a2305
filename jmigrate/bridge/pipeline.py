"""`bridge fit` as one library call: sample texts from the old index, embed them with the new model,
pair them with their stored old vectors, fit the map, write the bridge folder.

The index is anything `verify` can open (`verify.indexes.open_index`), so new index kinds work here as
soon as `verify` reads them, and a vector-store URI (postgresql://, qdrant://, chroma://, lancedb://),
read out page by page into a temporary Parquet index with its text, as `verify` reads stores. Texts
come from the index's own text column, the corpus its manifest names, or a `--texts` corpus file
(id + text) when the index stores none.
"""

from __future__ import annotations

import datetime as dt
import shutil
import tempfile
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from jmigrate.bridge.fingerprint import Fingerprinter, blocks_with_fingerprint
from jmigrate.bridge.fit import METHODS, PROCRUSTES, FitResult, fit_map
from jmigrate.bridge.manifest import BridgeManifest, IndexIdentity, Space, write_bridge
from jmigrate.encoders.base import Encoder
from jmigrate.errors import InputError, UsageError
from jmigrate.models import V3, get_model
from jmigrate.verify.indexes import VectorIndex, open_index
from jmigrate.version import VERSION

QUERY, PASSAGE = "retrieval.query", "retrieval.passage"
# What the sampled documents are embedded as on the new side. "query" is the default: `apply` receives
# query vectors, and in the measurements in docs/bridge.md a map fitted on passage vectors (the other
# adapter) served queries slightly worse, and stacking both sets of pairs did not help either.
EMBED_AS = {"query": (QUERY,), "passage": (PASSAGE,)}
BLOCK_ROWS = 16_384
ENCODE_BATCH = 128
# Texts longer than this are cut before embedding: the stored old vector saw the whole text, but past
# this length the pair teaches the map little and costs tokens (queries are short).
MAX_TEXT_CHARS = 8_000
STORE_PAGE_ROWS = 2_000


@dataclass
class FitOptions:
    index: str
    out: str
    sample: int = 5_000
    model: str | None = None  # old index's model when it has no manifest
    task: str | None = None
    ids: str | None = None
    texts: str | None = None
    new_model: str = V3
    dimensions: int | None = None  # new model's query width (Matryoshka); default: the model's full width
    embed_as: str = "query"
    methods: tuple[str, ...] = (PROCRUSTES,)
    held_out_fraction: float = 0.2
    seed: int = 0
    verify_checksums: bool = True


@dataclass
class Pairs:
    """Sampled rows of the old index: their texts and their stored (normalised) vectors."""

    positions: np.ndarray
    ids: list[str]
    texts: list[str]
    vectors: np.ndarray
    fingerprint: str
    skipped: dict[str, int] = field(default_factory=dict)


@dataclass
class FitReport:
    path: Path
    manifest: BridgeManifest
    fit: FitResult


def fit_bridge(
    opts: FitOptions,
    encoder: Encoder,
    progress: Callable[[str], None] = lambda _m: None,
) -> FitReport:
    """Sample, embed, pair, fit and write. Nothing is written until the fit has succeeded."""
    _check_options(opts)
    from jmigrate.stores import is_store_uri

    if is_store_uri(opts.index):
        return _fit_from_store(opts, encoder, progress)
    progress(f"opening the index {opts.index}")
    idx = open_index(opts.index, side="v2", model=opts.model, task=opts.task, ids_path=opts.ids,
                     verify_checksums=opts.verify_checksums)
    return _fit_index(idx, str(idx.path), opts, encoder, progress)


def _fit_from_store(opts: FitOptions, encoder: Encoder, progress: Callable[[str], None]) -> FitReport:
    """A store collection: read it out (ids, texts, vectors) into a temporary Parquet index, fit on that.

    The fingerprint is over what was read (ids in the store's stable page order, vectors), which is what
    `verify --v2 URI` reads too, so the bridge matches the collection, not the temporary file."""
    from jmigrate.stores import open_store, parse_uri

    uri = parse_uri(opts.index)
    folder = Path(tempfile.mkdtemp(prefix="jmigrate-bridge-"))
    try:
        progress(f"reading the collection {uri.collection} out of the store")
        path = folder / "v2.parquet"
        with open_store(uri) as store:
            d = store.describe()
            if not d.width:
                raise InputError(f"{d.collection} holds no vectors")
            model = opts.model or d.info.get("model") or (
                d.likely_models[0] if len(d.likely_models) == 1 else None)
            if not model:
                raise UsageError(f"the collection {d.collection} does not say which model made its "
                                 "vectors: name it with --v2-model")
            if d.text_field is None and not opts.texts:
                raise UsageError(f"the collection {d.collection} stores no text: pass --texts CORPUS "
                                 "(JSONL/CSV/TSV/Parquet with id and text)")
            schema = pa.schema([pa.field("id", pa.string()), pa.field("text", pa.string()),
                                pa.field("vector", pa.list_(pa.float32(), d.width))])
            with pq.ParquetWriter(path, schema) as w:
                for page in store.pages(STORE_PAGE_ROWS):
                    m = np.ascontiguousarray(page.vectors, dtype=np.float32)
                    texts = page.texts if page.texts is not None else [None] * len(page)
                    w.write_table(pa.table({
                        "id": pa.array([str(i) for i in page.ids], pa.string()),
                        "text": pa.array(texts, pa.string()),
                        "vector": pa.FixedSizeListArray.from_arrays(pa.array(m.reshape(-1)), d.width),
                    }, schema=schema))
        idx = open_index(path, side="v2", model=model, task=opts.task or d.info.get("task"))
        return _fit_index(idx, str(uri), opts, encoder, progress, kind=f"store:{uri.backend}")
    finally:
        shutil.rmtree(folder, ignore_errors=True)


def _fit_index(idx: VectorIndex, where: str, opts: FitOptions, encoder: Encoder,
               progress: Callable[[str], None], kind: str | None = None) -> FitReport:
    new = get_model(opts.new_model)
    errors = [i for i in idx.issues if i.severity == "error"]
    if errors:
        raise InputError(f"the index {opts.index} failed its integrity checks: {errors[0].message}")
    if get_model(idx.model).name == new.name:
        raise UsageError(f"the index already holds {new.name} vectors: there is nothing to bridge")
    dims = opts.dimensions or new.dims
    if dims > new.dims:
        raise UsageError(f"--dimensions {dims}: {new.name} produces at most {new.dims}")
    pairs = sample_pairs(idx, opts, progress)
    x_parts, y_parts = [], []
    for task in EMBED_AS[opts.embed_as]:
        progress(f"embedding {len(pairs.texts):,} sampled texts with {new.name} ({task}, {dims} dims)")
        x_parts.append(
            _encode(encoder, pairs.texts, task if new.generation == "v3" else None, dims, progress)
        )
        y_parts.append(pairs.vectors)
    progress("fitting the map")
    result = _fit(x_parts, y_parts, opts)
    manifest = BridgeManifest(
        source=Space(new.name, QUERY if new.generation == "v3" else None, dims),
        target=Space(idx.model, idx.task, idx.dimensions),
        index=IndexIdentity(where, kind or idx.kind, idx.rows, len(idx.doc_ids()), pairs.fingerprint),
        method=result.map.method,
        params=result.map.params,
        sample={
            "requested": opts.sample,
            "pairs": len(pairs.texts),
            "train": result.train_pairs,
            "held_out": result.held_out_pairs,
            "held_out_fraction": opts.held_out_fraction,
            "seed": opts.seed,
            "embedded_as": list(EMBED_AS[opts.embed_as]) if new.generation == "v3" else [],
            "skipped": pairs.skipped,
        },
        held_out=result.held_out.to_dict(),
        candidates=[
            {"method": c.method, "params": c.params, "held_out": c.quality.to_dict()}
            for c in result.candidates
        ],
        encoder={
            "class": type(encoder).__name__,
            "model": new.name,
            "served_model": getattr(encoder, "served_model", None),
        },
        created=dt.datetime.now(dt.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ"),
        jmigrate_version=VERSION,
        note=result.note,
    )
    out = Path(opts.out)
    write_bridge(out, manifest, result.map.weights, result.map.bias)
    return FitReport(out, manifest, result)


def _check_options(opts: FitOptions) -> None:
    if opts.sample < 1:
        raise UsageError("--sample must be at least 1")
    if opts.embed_as not in EMBED_AS:
        raise UsageError(f"--embed-as must be one of {', '.join(EMBED_AS)}, not {opts.embed_as!r}")
    bad = [m for m in opts.methods if m not in METHODS]
    if bad:
        raise UsageError(f"unknown --method {bad[0]!r}; choose from {', '.join(METHODS)} or auto")
    if opts.dimensions is not None and opts.dimensions < 1:
        raise UsageError("--dimensions must be positive")
    out = Path(opts.out)
    if out.exists() and not out.is_dir():
        raise UsageError(f"--out {out} exists and is not a folder")


def _fit(x_parts: list[np.ndarray], y_parts: list[np.ndarray], opts: FitOptions) -> FitResult:
    return fit_map(x_parts[0], y_parts[0], methods=opts.methods, held_out_fraction=opts.held_out_fraction,
                   seed=opts.seed)


def _encode(
    encoder: Encoder, texts: list[str], task: str | None, dims: int, progress: Callable[[str], None]
) -> np.ndarray:
    out = []
    for start in range(0, len(texts), ENCODE_BATCH):
        batch = [t[:MAX_TEXT_CHARS] for t in texts[start : start + ENCODE_BATCH]]
        out.append(encoder.encode(batch, task=task, dimensions=dims))
        done = min(start + ENCODE_BATCH, len(texts))
        if done == len(texts) or (start // ENCODE_BATCH) % 10 == 9:
            progress(f"  {done:,}/{len(texts):,} embedded")
    return np.concatenate(out).astype(np.float32, copy=False)


def sample_pairs(idx: VectorIndex, opts: FitOptions, progress: Callable[[str], None]) -> Pairs:
    """Pick up to `opts.sample` rows that have a non-empty text, uniformly at random (seeded), and read
    their stored vectors in one streaming pass that also fingerprints the whole index."""
    texts_of = _text_source(idx, opts)
    order = np.random.default_rng(opts.seed).permutation(idx.rows)
    chosen: list[int] = []
    texts: dict[int, str] = {}
    no_text = 0
    step = max(opts.sample * 2, 1_000)
    for start in range(0, idx.rows, step):
        window = np.sort(order[start : start + step])
        got = texts_of(window)
        for pos in order[start : start + step]:
            t = got.get(int(pos))
            if t is None or not t.strip():
                no_text += 1
                continue
            if len(chosen) < opts.sample:
                chosen.append(int(pos))
                texts[int(pos)] = t
        if len(chosen) >= opts.sample:
            break
    if not chosen:
        raise InputError(f"none of the {idx.rows:,} rows of {idx.path} has a text to embed")
    positions = np.sort(np.asarray(chosen, dtype=np.int64))
    progress(f"reading {len(positions):,} stored vectors and fingerprinting the index ({idx.rows:,} rows)")
    fp = Fingerprinter(idx)
    vecs = np.empty((len(positions), idx.dimensions), dtype=np.float32)
    for first, block in blocks_with_fingerprint(idx, BLOCK_ROWS, fp):
        lo, hi = np.searchsorted(positions, [first, first + len(block)])
        if hi > lo:
            vecs[lo:hi] = block[positions[lo:hi] - first]
    norms = np.linalg.norm(vecs, axis=1)
    good = np.isfinite(vecs).all(axis=1) & (norms > 0)
    # no_text: rows drawn for the sample that had no text (drawing went on until enough had one).
    skipped = {"no_text": no_text, "bad_vector": int((~good).sum())}
    positions, vecs, norms = positions[good], vecs[good], norms[good]
    ids = idx.row_ids[positions].tolist()
    return Pairs(
        positions=positions,
        ids=[str(i) for i in ids],
        texts=[texts[int(p)] for p in positions],
        vectors=(vecs / norms[:, None]).astype(np.float32),
        fingerprint=fp.hexdigest(),
        skipped=skipped,
    )


TextLookup = Callable[[np.ndarray], dict[int, str]]


def _text_source(idx: VectorIndex, opts: FitOptions) -> TextLookup:
    """How to get the text of row positions: the index's own column, a corpus file by id, or the manifest's
    source corpus by id. Chunked indexes need per-row (chunk) texts, so only their own column will do."""
    if idx.text_column and idx.kind in ("jmigrate-index", "parquet") and not opts.texts:
        return lambda positions: _column_texts(idx, positions)
    if idx.chunked:
        raise UsageError(
            f"the index {idx.path} is chunked and stores no chunk text: a bridge needs each vector's own "
            "text (reindex with --store-text, or fit on an unchunked index)"
        )
    if opts.texts:
        from jmigrate.verify.queries import load_queries

        corpus = {q.id: q.text for q in load_queries(opts.texts)}
        return lambda positions: _by_id(idx, positions, corpus)
    if idx.kind == "jsonl":
        from jmigrate.verify.queries import load_queries

        try:
            corpus = {q.id: q.text for q in load_queries(str(idx.path))}
        except InputError:
            corpus = {}
        if corpus:
            return lambda positions: _by_id(idx, positions, corpus)
    if idx.manifest is not None:
        return lambda positions: _by_id(
            idx, positions, idx.texts(set(idx.row_ids[positions].tolist()), limit=MAX_TEXT_CHARS)
        )
    raise UsageError(
        f"the index {idx.path} stores no text: pass --texts CORPUS (JSONL/CSV/TSV/Parquet with id and text)"
    )


def _by_id(idx: VectorIndex, positions: np.ndarray, corpus: dict[str, str]) -> dict[int, str]:
    out = {}
    for p in positions.tolist():
        t = corpus.get(str(idx.row_ids[p]))
        if t is not None:
            out[int(p)] = t
    return out


def _column_texts(idx: VectorIndex, positions: np.ndarray) -> dict[int, str]:
    """Texts of sorted row positions, read one row group at a time from the text column only."""
    assert idx.text_column is not None
    out: dict[int, str] = {}
    first = 0
    for f in idx.files:
        pf = pq.ParquetFile(f)
        for g in range(pf.metadata.num_row_groups):
            n = pf.metadata.row_group(g).num_rows
            lo, hi = np.searchsorted(positions, [first, first + n])
            if hi > lo:
                col = pf.read_row_group(g, columns=[idx.text_column]).column(0)
                for p in positions[lo:hi].tolist():
                    v = col[p - first].as_py()
                    if isinstance(v, str):
                        out[int(p)] = v
            first += n
    return out
