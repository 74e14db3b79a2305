"""Vector stores: jmigrate's reads and writes beside each store's own bulk path, and peak memory.

    .venv/bin/python bench/bench_stores.py [--rows 20000] [--dims 256] [--memory-rows 100000,1000000]
                                           [--stores pgvector,qdrant,chroma,lancedb] [--json-out FILE]

With a zero-cost encoder (the vectors are given), per store and in the same run:
1. read: `Store.pages(1000, vectors=False)` (what `reindex URI` reads: ids, texts, fields) and with the
   vectors (what `verify --v2 URI` reads), beside the store's own fastest read (PostgreSQL binary
   `COPY ... TO STDOUT`, Qdrant `scroll`, Chroma `get`, LanceDB `to_batches`), rows/s;
2. write: `Store.write` pages of 1,000 (what `reindex --to` does: idempotent upserts, HNSW built after)
   beside the store's own bulk load into a fresh table/collection (PostgreSQL binary `COPY` + the same
   HNSW build, Qdrant `upsert` batches, Chroma `add`, LanceDB `add`), rows/s;
3. peak memory (PostgreSQL and LanceDB): a child process reads every page of a table of each size in
   `--memory-rows` without vectors; its peak RSS should not grow with the table.
PostgreSQL is pgserver's on a unix socket; Qdrant is qdrant-client's local mode (no server here); Chroma
and LanceDB are embedded. Data lives under /dev/shm when there is one (bench/_work otherwise).
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import shutil
import subprocess
import sys
import tempfile
import time
import warnings
from pathlib import Path
from typing import Any

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from jmigrate.stores import Page, create_store, open_store  # noqa: E402

PAGE = 1000
WORDS = ["Haus", "maison", "家", "дом", "casa", "σπίτι", "house", "Straße", "ev", "nhà"]


def data(n: int, dims: int, seed: int = 0) -> tuple[list[int], list[str], np.ndarray]:
    rng = np.random.default_rng(seed)
    m = rng.standard_normal((n, dims), dtype=np.float32)
    m /= np.linalg.norm(m, axis=1, keepdims=True)
    texts = [f"{WORDS[i % len(WORDS)]} {i} " * 6 for i in range(n)]
    return list(range(n)), texts, m


def rate(n: int, seconds: float) -> float:
    return n / seconds if seconds > 0 else float("inf")


# ------------------------------------------------------------------------------------- per store: raw paths


class Raw:
    """The store's own client, doing the same job without jmigrate."""

    uri: str

    def load(self, name: str, ids: list[int], texts: list[str], m: np.ndarray) -> None:
        raise NotImplementedError

    def read(self, name: str) -> int:
        raise NotImplementedError


class PgRaw(Raw):
    def __init__(self, root: Path) -> None:
        import pgserver
        import psycopg

        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            self.srv = pgserver.get_server(str(root / "pg"), cleanup_mode="stop")
        self.sock = self.srv.get_uri().split("host=", 1)[1].split("&", 1)[0]
        with psycopg.connect(f"host={self.sock} user=postgres dbname=postgres", autocommit=True) as c:
            c.execute("CREATE EXTENSION IF NOT EXISTS vector")

    def conn(self) -> Any:
        import psycopg
        from pgvector.psycopg import register_vector

        c = psycopg.connect(f"host={self.sock} user=postgres dbname=postgres", autocommit=True)
        register_vector(c)
        return c

    def uri_of(self, name: str) -> str:
        return f"postgresql://postgres@/postgres?host={self.sock}&table={name}&text=content"

    def load(self, name: str, ids: list[int], texts: list[str], m: np.ndarray, *, index: bool = True) -> None:
        with self.conn() as c:
            c.execute(
                f"CREATE TABLE {name} (id bigint PRIMARY KEY, content text, embedding vector({m.shape[1]}))"
            )
            with c.cursor().copy(f"COPY {name} FROM STDIN (FORMAT BINARY)") as cp:
                cp.set_types(["int8", "text", "vector"])
                for i, t, v in zip(ids, texts, m, strict=True):
                    cp.write_row([i, t, v])
            if index:
                c.execute(f"CREATE INDEX ON {name} USING hnsw (embedding vector_cosine_ops)")

    def read(self, name: str, vectors: bool = False) -> int:
        cols = "id, content" + (", embedding" if vectors else "")
        n = 0
        with (
            self.conn() as c,
            c.cursor().copy(f"COPY (SELECT {cols} FROM {name}) TO STDOUT (FORMAT BINARY)") as cp,
        ):
            for block in cp:
                n += len(block)
        return -1  # bytes, not rows: COPY's own stream is not parsed (it is the baseline)

    def close(self) -> None:
        self.srv.cleanup()


class QdrantRaw(Raw):
    def __init__(self, root: Path) -> None:
        self.path = root / "qdrant"

    def uri_of(self, name: str) -> str:
        return f"qdrant://{self.path}?collection={name}&text=content"

    def load(self, name: str, ids: list[int], texts: list[str], m: np.ndarray, *, index: bool = True) -> None:
        from qdrant_client import QdrantClient, models

        c = QdrantClient(path=str(self.path))
        try:
            c.create_collection(
                name, vectors_config=models.VectorParams(size=m.shape[1], distance=models.Distance.COSINE)
            )
            for s in range(0, len(ids), PAGE):
                c.upsert(
                    name,
                    points=models.Batch(
                        ids=ids[s : s + PAGE],
                        vectors=m[s : s + PAGE].tolist(),
                        payloads=[{"content": t} for t in texts[s : s + PAGE]],
                    ),
                )
        finally:
            c.close()

    def read(self, name: str, vectors: bool = False) -> int:
        from qdrant_client import QdrantClient

        c = QdrantClient(path=str(self.path))
        n, offset = 0, None
        try:
            while True:
                pts, offset = c.scroll(name, limit=PAGE, offset=offset, with_vectors=vectors)
                n += len(pts)
                if offset is None:
                    return n
        finally:
            c.close()

    def close(self) -> None:
        pass


class ChromaRaw(Raw):
    def __init__(self, root: Path) -> None:
        import chromadb
        from chromadb.config import Settings

        (root / "chroma").mkdir()
        self.path = root / "chroma"
        self.client = chromadb.PersistentClient(
            path=str(self.path), settings=Settings(anonymized_telemetry=False)
        )

    def uri_of(self, name: str) -> str:
        return f"chroma://{self.path}?collection={name}"

    def load(self, name: str, ids: list[int], texts: list[str], m: np.ndarray, *, index: bool = True) -> None:
        col = self.client.create_collection(
            name, configuration={"hnsw": {"space": "cosine"}}, embedding_function=None
        )
        step = self.client.get_max_batch_size()
        for s in range(0, len(ids), step):
            col.add(
                ids=[str(i) for i in ids[s : s + step]],
                embeddings=m[s : s + step],
                documents=texts[s : s + step],
            )

    def read(self, name: str, vectors: bool = False) -> int:
        col = self.client.get_collection(name, embedding_function=None)
        n = 0
        include = ["documents", "metadatas"] + (["embeddings"] if vectors else [])
        while True:
            got = col.get(limit=PAGE, offset=n, include=include)
            if not got["ids"]:
                return n
            n += len(got["ids"])

    def close(self) -> None:
        pass


class LanceRaw(Raw):
    def __init__(self, root: Path) -> None:
        import lancedb

        self.path = root / "lance"
        self.db = lancedb.connect(str(self.path))

    def uri_of(self, name: str) -> str:
        return f"lancedb://{self.path}?table={name}&text=content"

    def load(self, name: str, ids: list[int], texts: list[str], m: np.ndarray, *, index: bool = True) -> None:
        import pyarrow as pa

        t = None
        for s in range(0, len(ids), 50_000):
            part = pa.table(
                {
                    "id": pa.array(ids[s : s + 50_000], pa.int64()),
                    "content": texts[s : s + 50_000],
                    "vector": pa.FixedSizeListArray.from_arrays(
                        pa.array(m[s : s + 50_000].reshape(-1)), m.shape[1]
                    ),
                }
            )
            if t is None:
                t = self.db.create_table(name, part)
            else:
                t.add(part)

    def read(self, name: str, vectors: bool = False) -> int:
        t = self.db.open_table(name)
        cols = ["id", "content"] + (["vector"] if vectors else [])
        return sum(b.num_rows for b in t.search().select(cols).limit(None).to_batches(PAGE))

    def close(self) -> None:
        pass


RAWS = {"pgvector": PgRaw, "qdrant": QdrantRaw, "chroma": ChromaRaw, "lancedb": LanceRaw}


# ------------------------------------------------------------------------------------- measurements


def jm_read(uri: str, vectors: bool) -> int:
    with open_store(uri) as s:
        return sum(len(p) for p in s.pages(PAGE, vectors=vectors))


def jm_write(uri: str, ids: list[int], texts: list[str], m: np.ndarray) -> None:
    with create_store(uri, width=m.shape[1], id_type="int") as t:
        for s in range(0, len(ids), PAGE):
            t.write(Page(ids[s : s + PAGE], m[s : s + PAGE], texts[s : s + PAGE], None))
        t.finish()


def timed(fn: Any, *args: Any, **kw: Any) -> tuple[float, Any]:
    t = time.perf_counter()
    out = fn(*args, **kw)
    return time.perf_counter() - t, out


def bench_store(name: str, root: Path, rows: int, dims: int) -> list[dict[str, Any]]:
    raw = RAWS[name](root)
    ids, texts, m = data(rows, dims)
    out: list[dict[str, Any]] = []
    try:
        t_raw_load, _ = timed(raw.load, "base", ids, texts, m)
        t_jm_load, _ = timed(jm_write, raw.uri_of("jm_target"), ids, texts, m)
        write_label = {
            "pgvector": "binary COPY + HNSW build",
            "qdrant": "upsert batches of 1,000",
            "chroma": "add in max-size batches",
            "lancedb": "add (one Arrow table per 50k rows)",
        }[name]
        out.append(
            row(
                name,
                "write",
                rows,
                dims,
                f"{name} {write_label}",
                rate(rows, t_raw_load),
                "Store.write pages of 1,000 (upsert) + finish()",
                rate(rows, t_jm_load),
            )
        )
        for vectors in (False, True):
            t_raw, n_raw = timed(raw.read, "base", vectors=vectors)
            t_jm, n_jm = timed(jm_read, raw.uri_of("base"), vectors)
            assert n_jm == rows and n_raw in (rows, -1), (n_raw, n_jm, rows)
            what = "ids+texts+vectors (verify)" if vectors else "ids+texts (reindex)"
            read_label = {
                "pgvector": "binary COPY TO STDOUT",
                "qdrant": "scroll",
                "chroma": "get(limit, offset)",
                "lancedb": "to_batches",
            }[name]
            out.append(
                row(
                    name,
                    f"read {what}",
                    rows,
                    dims,
                    f"{name} {read_label}",
                    rate(rows, t_raw),
                    "Store.pages(1,000) as Python rows",
                    rate(rows, t_jm),
                )
            )
    finally:
        raw.close()
    return out


def row(
    store: str, part: str, rows: int, dims: int, baseline: str, base_rate: float, ours: str, our_rate: float
) -> dict[str, Any]:
    ratio = our_rate / base_rate
    print(
        f"{store:9s} {part:32s} baseline {base_rate:10,.0f} rows/s  jmigrate {our_rate:10,.0f} rows/s  "
        f"{ratio:.0%}",
        flush=True,
    )
    return {
        "part": f"{store}: {part}",
        "workload": f"{rows:,} rows x {dims} dims, pages of {PAGE:,}",
        "baseline": baseline,
        "baseline_figure": f"{base_rate:,.0f} rows/s",
        "ours": ours,
        "ours_figure": f"{our_rate:,.0f} rows/s",
        "ratio": ratio,
        "ratio_text": f"{ratio:.0%} of it",
        "target": ">= 80%",
        "met": ratio >= 0.8,
    }


def child_read(uri: str) -> None:
    t, n = timed(jm_read, uri, False)
    # VmHWM, not ru_maxrss: Linux carries the parent's RSS at fork into the child's ru_maxrss across exec
    status = Path("/proc/self/status").read_text().splitlines()
    hwm = next(int(line.split()[1]) for line in status if line.startswith("VmHWM:"))
    ru = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(json.dumps({"rows": n, "seconds": t, "maxrss_mb": hwm / 1024, "ru_maxrss_mb": ru}))


def memory(name: str, root: Path, sizes: list[int]) -> list[dict[str, Any]]:
    raw = RAWS[name](root)
    peaks: dict[int, float] = {}
    try:
        for n in sizes:
            ids, texts, m = data(n, 16, seed=n)
            raw.load(f"mem{n}", ids, texts, m, index=False)
            del ids, texts, m
            res = subprocess.run(
                [sys.executable, __file__, "--child", raw.uri_of(f"mem{n}")],
                capture_output=True,
                text=True,
                check=True,
            )
            got = json.loads(res.stdout.strip().splitlines()[-1])
            peaks[n] = got["maxrss_mb"]
            print(
                f"{name} memory: read {got['rows']:,} rows (no vectors) in {got['seconds']:.1f} s, "
                f"peak RSS {got['maxrss_mb']:.0f} MiB",
                flush=True,
            )
    finally:
        raw.close()
    small, large = sizes[0], sizes[-1]
    ratio = peaks[large] / peaks[small]
    return [
        {
            "part": f"{name}: peak memory reading {large:,} vs {small:,} rows",
            "workload": f"Store.pages(1,000), no vectors, child VmHWM, {small:,} and {large:,} rows",
            "baseline": f"peak RSS at {small:,} rows",
            "baseline_figure": f"{peaks[small]:.0f} MiB",
            "ours": f"peak RSS at {large:,} rows",
            "ours_figure": f"{peaks[large]:.0f} MiB",
            "ratio": ratio,
            "ratio_text": f"{ratio:.2f}x",
            "target": "<= 1.2x (flat)",
            "met": ratio <= 1.2,
            "peak_mb": peaks[large],
        }
    ]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--rows", type=int, default=20_000)
    ap.add_argument("--dims", type=int, default=256)
    ap.add_argument("--stores", default="pgvector,qdrant,chroma,lancedb")
    ap.add_argument(
        "--memory-rows",
        default="100000,1000000",
        help="table sizes for the peak-memory check (PostgreSQL and LanceDB); empty to skip",
    )
    ap.add_argument("--skip-throughput", action="store_true", help="only the peak-memory check")
    ap.add_argument("--json-out", type=Path)
    ap.add_argument("--child", help=argparse.SUPPRESS)
    a = ap.parse_args()
    if a.child:
        child_read(a.child)
        return
    shm = Path("/dev/shm")
    base = shm if shm.is_dir() and os.access(shm, os.W_OK) else Path(__file__).resolve().parent / "_work"
    base.mkdir(parents=True, exist_ok=True)
    rows: list[dict[str, Any]] = []
    for name in [s.strip() for s in a.stores.split(",") if s.strip() and not a.skip_throughput]:
        root = Path(tempfile.mkdtemp(prefix=f"jmigrate-bench-{name}-", dir=base))
        try:
            n = min(a.rows, 10_000) if name == "qdrant" else a.rows  # local mode warns above 20k points
            rows += bench_store(name, root, n, a.dims)
        finally:
            shutil.rmtree(root, ignore_errors=True)
    sizes = [int(x) for x in a.memory_rows.split(",") if x.strip()]
    if sizes:
        for name in ("pgvector", "lancedb"):
            if name in a.stores:
                root = Path(tempfile.mkdtemp(prefix=f"jmigrate-bench-mem-{name}-", dir=base))
                try:
                    rows += memory(name, root, sizes)
                finally:
                    shutil.rmtree(root, ignore_errors=True)
    if a.json_out:
        a.json_out.write_text(json.dumps(rows, indent=2))


if __name__ == "__main__":
    main()
