"""Exact top-10 search for `verify`: jmigrate's streamed search beside faiss IndexFlatIP, and peak memory.

    .venv/bin/python bench/bench_search.py [--rows 200000] [--dims 1024] [--queries 1000]

1. Writes a random unit-vector index (rows x dims float32) to bench/_work/ as Parquet shards in the
   reindex layout (manifest + part-*.parquet) and as NPY + ids.
2. Times faiss IndexFlatIP (whole matrix in memory, search only) and jmigrate's search streaming the
   same index from disk, in the same run; checks both return the same top-10; prints the ratio.
3. Runs jmigrate's search in a subprocess with a memory budget smaller than the index and reports the
   child's peak RSS (ru_maxrss) beside the index size.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import resource
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

WORK = Path(__file__).resolve().parent / "_work" / "verify-search"


def make_index(rows: int, dims: int, shard_rows: int = 50_000, row_group: int = 8192) -> Path:
    folder = WORK / f"idx-{rows}x{dims}"
    if (folder / "manifest.json").exists():
        return folder
    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(0)
    shards = []
    ids_all: list[str] = []
    npy = np.lib.format.open_memmap(
        folder.with_suffix(".npy"), mode="w+", dtype=np.float32, shape=(rows, dims)
    )
    for n, start in enumerate(range(0, rows, shard_rows)):
        m = rng.standard_normal((min(shard_rows, rows - start), dims), dtype=np.float32)
        m /= np.linalg.norm(m, axis=1, keepdims=True)
        npy[start : start + len(m)] = m
        ids = [f"doc{i:07d}" for i in range(start, start + len(m))]
        ids_all += ids
        name = f"part-{n:05d}.parquet"
        vec = pa.FixedSizeListArray.from_arrays(pa.array(m.ravel()), dims)
        pq.write_table(
            pa.table({"id": ids, "vector": vec}),
            folder / name,
            compression="none",
            use_dictionary=False,
            row_group_size=row_group,
        )
        digest = hashlib.sha256((folder / name).read_bytes()).hexdigest()
        shards.append({"file": name, "rows": len(m), "sha256": digest})
    npy.flush()
    del npy
    folder.with_suffix(".ids.txt").write_text("\n".join(ids_all))
    manifest = {
        "format": "jmigrate-index",
        "format_version": 1,
        "model": "jina-embeddings-v3",
        "task": "retrieval.passage",
        "dimensions": dims,
        "normalized": True,
        "late_chunking": False,
        "chunking": None,
        "encoder": "bench",
        "source": {},
        "rows": {"source": rows, "written": rows, "rejected": 0},
        "shards": shards,
        "status": "complete",
    }
    (folder / "manifest.json").write_text(json.dumps(manifest))
    return folder


def queries(n: int, dims: int) -> np.ndarray:
    q = np.random.default_rng(1).standard_normal((n, dims), dtype=np.float32)
    return q / np.linalg.norm(q, axis=1, keepdims=True)


def child(index: str, n_queries: int, dims: int, budget: str) -> None:
    """Subprocess body: search with a memory budget, print the result summary as JSON."""
    from jmigrate.verify.indexes import open_index
    from jmigrate.verify.search import parse_size, search

    idx = open_index(index, side="v3", model="jina-embeddings-v3", verify_checksums=False)
    t = time.perf_counter()
    r = search(
        idx,
        queries(n_queries, dims),
        [str(i) for i in range(n_queries)],
        10,
        memory_budget=parse_size(budget),
    )
    print(
        json.dumps(
            {
                "seconds": time.perf_counter() - t,
                "block_rows": r.block_rows,
                "passes": r.passes,
                "maxrss_mb": peak_rss_mb(),
            }
        )
    )


def peak_rss_mb() -> float:
    """This process's peak resident memory. VmHWM, not ru_maxrss: Linux carries ru_maxrss over from
    the parent across fork+exec, so a child of a big parent would report the parent's peak."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--rows", type=int, default=200_000)
    ap.add_argument("--dims", type=int, default=1024)
    ap.add_argument("--queries", type=int, default=1000)
    ap.add_argument("--budget", default="256MB", help="memory budget for the peak-memory run")
    ap.add_argument("--work", type=Path, help="scratch folder [bench/_work/verify-search]")
    ap.add_argument("--json-out", type=Path, help="also write the results as JSON (for bench/run_all.py)")
    ap.add_argument("--child", help=argparse.SUPPRESS)
    a = ap.parse_args()
    global WORK
    WORK = a.work or WORK
    if a.child:
        child(a.child, a.queries, a.dims, a.budget)
        return
    from jmigrate.verify.indexes import open_index
    from jmigrate.verify.search import search

    folder = make_index(a.rows, a.dims)
    q = queries(a.queries, a.dims)
    qids = [str(i) for i in range(a.queries)]
    index_mb = a.rows * a.dims * 4 / 2**20
    print(f"index {a.rows:,} x {a.dims} float32 = {index_mb:.0f} MiB; {a.queries:,} queries; top-10")

    results: dict[str, float] = {}
    same_top10: dict[str, float] = {}
    try:
        import faiss  # type: ignore[import-not-found, unused-ignore]
    except ImportError:
        faiss = None
        print("faiss-cpu not installed: no baseline (pip install 'jmigrate[faiss]')")
    ref = None
    if faiss is not None:
        xb = np.load(folder.with_suffix(".npy"))
        t = time.perf_counter()
        ix = faiss.IndexFlatIP(a.dims)
        ix.add(xb)
        _, ref = ix.search(q, 10)
        results["faiss IndexFlatIP (in memory, add+search)"] = time.perf_counter() - t
        del xb, ix
    for label, path in (
        ("jmigrate numpy, streamed from NPY", folder.with_suffix(".npy")),
        ("jmigrate numpy, streamed from Parquet shards", folder),
    ):
        idx = open_index(path, side="v3", model="jina-embeddings-v3", verify_checksums=False)
        t = time.perf_counter()
        r = search(idx, q, qids, 10)
        results[label] = time.perf_counter() - t
        got = np.array([[int(d[3:]) for d in row] for row in r.doc_ids])
        if ref is not None:
            same = float((np.sort(got, axis=1) == np.sort(ref, axis=1)).all(axis=1).mean())
            same_top10[label] = same
            print(
                f"  {label}: same top-10 set as faiss for {same:.1%} of queries (block {r.block_rows:,} rows)"
            )
    if faiss is not None:
        idx = open_index(folder, side="v3", verify_checksums=False)
        t = time.perf_counter()
        search(idx, q, qids, 10, backend="faiss")
        results["jmigrate faiss backend, streamed from Parquet shards"] = time.perf_counter() - t
    base = results.get("faiss IndexFlatIP (in memory, add+search)")
    for label, s in results.items():
        ratio = f"  {s / base:.2f}x faiss" if base else ""
        print(f"{label:55s} {s:7.2f} s{ratio}")

    workload = f"exact top-10, {a.queries:,} queries over {a.rows:,} x {a.dims} float32 ({index_mb:.0f} MiB)"
    rows: list[dict[str, object]] = []
    for label, s in results.items():
        if base is None or label == "faiss IndexFlatIP (in memory, add+search)":
            continue
        agree = f"; same top-10 as faiss for {same_top10[label]:.0%}" if label in same_top10 else ""
        rows.append({"part": label, "workload": workload, "baseline": "faiss `IndexFlatIP`, in memory",
                     "baseline_figure": f"{base:.2f} s", "ours": label, "ours_figure": f"{s:.2f} s{agree}",
                     "ratio": s / base, "ratio_text": f"{s / base:.2f}x faiss's time",
                     "target": "<= 1.5x" if "numpy" in label else "optional backend, no target",
                     "met": s / base <= 1.5 if "numpy" in label else None})
    for kind, path in (("NPY", folder.with_suffix(".npy")), ("Parquet", folder)):
        out = subprocess.run(
            [
                sys.executable,
                __file__,
                "--child",
                str(path),
                "--queries",
                str(a.queries),
                "--dims",
                str(a.dims),
                "--budget",
                a.budget,
            ],
            capture_output=True,
            text=True,
            check=True,
        )
        c = json.loads(out.stdout)
        print(
            f"{kind}: memory budget {a.budget}, index {index_mb:.0f} MiB: peak RSS {c['maxrss_mb']:.0f} MiB "
            f"({c['block_rows']:,} rows per block, {c['passes']} pass(es), {c['seconds']:.1f} s)"
        )
        rows.append({"part": f"search peak memory, {kind}",
                     "workload": f"{workload}, --memory-budget {a.budget}",
                     "baseline": "the index held in memory", "baseline_figure": f"{index_mb:.0f} MiB",
                     "ours": f"streamed search from {kind} (child process, VmHWM)",
                     "ours_figure": f"{c['maxrss_mb']:.0f} MiB", "ratio": c["maxrss_mb"] / index_mb,
                     "ratio_text": f"{c['maxrss_mb'] / index_mb:.2f}x the index size",
                     "target": "< the index size", "met": c["maxrss_mb"] < index_mb,
                     "peak_mb": c["maxrss_mb"]})
    if a.json_out:
        a.json_out.write_text(json.dumps(rows, indent=2))


if __name__ == "__main__":
    main()
