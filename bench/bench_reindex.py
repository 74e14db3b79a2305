"""Benchmarks for `jmigrate reindex` (step 3). Each part runs its baseline in the same script and prints ratios.

1. Pipeline overhead: reindex with a zero-cost encoder vs writing the same ids + vectors with pyarrow
   directly (ParquetWriter, same row groups). Target: >= 70% of raw pyarrow throughput.
2. Peak memory at 100k vs 1M rows (each in a fresh subprocess, `resource.getrusage` maxrss): flat.
3. End to end against the loopback stub server at set limits (latency, RPM, TPM): rows/s vs the ceiling
   those limits allow.

Usage: .venv/bin/python bench/bench_reindex.py [--rows 100000] [--dims 1024] [--skip-memory] [--skip-stub]
Scratch data goes to bench/_work/ (git-ignored) and is deleted afterwards.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import shutil
import subprocess
import sys
import time
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from jmigrate.encoders.base import Encoder
from jmigrate.index.pipeline import Settings, reindex
from jmigrate.index.shards import vector_array
from jmigrate.index.sources import open_source

WORK = Path(__file__).resolve().parent / "_work"


class ZeroCostEncoder(Encoder):
    """Returns rows of a precomputed unit-vector matrix: the pipeline is the only cost left."""

    def __init__(self, dims: int, batch_size: int = 2048) -> None:
        super().__init__()
        self.model = "bench-zero-cost"
        self.batch_size = batch_size
        rng = np.random.default_rng(0)
        m = rng.standard_normal((4096, dims)).astype(np.float32)
        self.pool = m / np.linalg.norm(m, axis=1, keepdims=True)
        self.pos = 0

    def encode_batch(self, texts: Sequence[str], *, task: str | None, dimensions: int | None,
                     late_chunking: bool = False) -> np.ndarray:
        n = len(texts)
        idx = (np.arange(self.pos, self.pos + n) % len(self.pool))
        self.pos += n
        self.usage.requests += 1
        return self.pool[idx]

    def count_tokens(self, texts: Sequence[str]) -> list[int]:
        return [len(t) // 4 + 1 for t in texts]


def make_source(path: Path, rows: int) -> None:
    writer = None
    for start in range(0, rows, 100_000):
        n = min(100_000, rows - start)
        ids = [f"doc-{i}" for i in range(start, start + n)]
        texts = [f"document {i}: a short support article about topic {i % 97}" for i in range(start, start + n)]
        t = pa.table({"id": ids, "text": texts})
        writer = writer or pq.ParquetWriter(path, t.schema)
        writer.write_table(t)
    assert writer is not None
    writer.close()


def raw_pyarrow(src: Path, out: Path, dims: int) -> float:
    """The baseline: read ids, make the same vectors, write them with pyarrow; seconds."""
    enc = ZeroCostEncoder(dims)
    t0 = time.perf_counter()
    schema = pa.schema([pa.field("id", pa.string(), nullable=False),
                        pa.field("vector", pa.list_(pa.float32(), dims), nullable=False)])
    w = pq.ParquetWriter(out, schema, compression={"id": "zstd", "vector": "none"}, use_dictionary=["id"])
    for batch in pq.ParquetFile(src).iter_batches(batch_size=8192, columns=["id"]):
        vec = enc.encode_batch(["x"] * batch.num_rows, task=None, dimensions=dims)
        w.write_table(pa.table({"id": batch.column(0), "vector": vector_array(vec)}, schema=schema))
    w.close()
    with open(out, "rb+") as f:
        os.fsync(f.fileno())
    return time.perf_counter() - t0


def ours(src: Path, out: Path, dims: int, rows: int) -> float:
    settings = Settings(model="bench-zero-cost", task=None, dimensions=dims, encoder="fake", store_text=False,
                        unit_rows=2048)
    t0 = time.perf_counter()
    result = reindex(open_source(str(src)), out, ZeroCostEncoder(dims), settings, concurrency=1)
    took = time.perf_counter() - t0
    assert result.manifest["rows"]["written"] == rows, result.manifest["rows"]
    return took


def part_overhead(rows: int, dims: int) -> dict[str, float]:
    src = WORK / f"src-{rows}.parquet"
    make_source(src, rows)
    raw_t, our_t = [], []
    for _ in range(2):  # interleaved, best of two: the machine is shared
        shutil.rmtree(WORK / "raw", ignore_errors=True)
        (WORK / "raw").mkdir()
        raw_t.append(raw_pyarrow(src, WORK / "raw" / "part.parquet", dims))
        shutil.rmtree(WORK / "ours", ignore_errors=True)
        our_t.append(ours(src, WORK / "ours", dims, rows))
    raw, our = min(raw_t), min(our_t)
    res = {"rows": rows, "dims": dims, "raw_rows_s": rows / raw, "ours_rows_s": rows / our, "ratio": raw / our}
    print(f"[overhead] {rows:,} rows x {dims} dims: raw pyarrow {rows / raw:,.0f} rows/s, reindex "
          f"{rows / our:,.0f} rows/s -> {raw / our:.0%} of raw (target >= 70%)")
    return res


def child_memory(rows: int, dims: int) -> None:
    src = WORK / f"src-{rows}.parquet"
    out = WORK / f"mem-{rows}"
    shutil.rmtree(out, ignore_errors=True)
    took = ours(src, out, dims, rows)
    rss_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(json.dumps({"rows": rows, "maxrss_mb": rss_mb, "seconds": took}))
    shutil.rmtree(out, ignore_errors=True)


def part_memory(dims: int) -> dict[str, float]:
    out = {}
    for rows in (100_000, 1_000_000):
        src = WORK / f"src-{rows}.parquet"
        if not src.exists():
            make_source(src, rows)
        proc = subprocess.run([sys.executable, __file__, "--child-memory", str(rows), "--dims", str(dims)],
                              capture_output=True, text=True, check=True)
        r = json.loads(proc.stdout.strip().splitlines()[-1])
        out[rows] = r["maxrss_mb"]
        print(f"[memory] {rows:>9,} rows x {dims} dims: peak RSS {r['maxrss_mb']:.0f} MB "
              f"({r['seconds']:.1f} s)")
    print(f"[memory] 1M / 100k peak RSS ratio: {out[1_000_000] / out[100_000]:.2f} (flat = ~1)")
    return {"rss_100k_mb": out[100_000], "rss_1m_mb": out[1_000_000]}


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--rows", type=int, default=100_000)
    ap.add_argument("--dims", type=int, default=1024)
    ap.add_argument("--memory-dims", type=int, default=256)
    ap.add_argument("--skip-memory", action="store_true")
    ap.add_argument("--skip-stub", action="store_true")
    ap.add_argument("--child-memory", type=int)
    args = ap.parse_args()
    WORK.mkdir(parents=True, exist_ok=True)
    if args.child_memory:
        child_memory(args.child_memory, args.dims)
        return
    try:
        part_overhead(args.rows, args.dims)
        if not args.skip_memory:
            part_memory(args.memory_dims)
        if not args.skip_stub:
            part_stub()
    finally:
        for p in WORK.glob("*"):
            shutil.rmtree(p, ignore_errors=True) if p.is_dir() else p.unlink()


def part_stub() -> None:
    print("[stub] not run: waiting for the API encoder")


if __name__ == "__main__":
    main()
