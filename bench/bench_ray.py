"""`reindex --engine ray` vs the local engine on the same encoder, in the same run: rows/s, start-up
cost, the driver's peak memory, and the per-worker rate the scaling model in docs/scale.md uses.

Each run is the CLI in its own process (so Ray's start-up is counted as a user pays it):
- fake encoder (in-process, CPU-bound hashing): the engine's own overhead per row;
- the loopback API stub with `--latency` per request (I/O-bound, like the real API): whether the
  workers' request windows add up;
- a 1-row corpus on each engine: the start-up cost (`ray.init` + actors ready) as the difference.

    .venv/bin/python bench/bench_ray.py [--rows 20000] [--api-rows 6000] [--latency 0.05] [--workers 2]
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
from pathlib import Path
from typing import Any

from jmigrate.testing.server import StubServer

WORK = Path(__file__).resolve().parent / "_work" / "ray"
KEY = "jina_bench_ray"


def corpus(path: Path, rows: int) -> Path:
    with open(path, "w", encoding="utf-8") as f:
        for i in range(rows):
            text = f"document {i} about " + "words " * (5 + i % 40)
            f.write(json.dumps({"id": f"d{i}", "text": text}) + "\n")
    return path


def run(src: Path, flags: list[str], env: dict[str, str] | None = None) -> dict[str, Any]:
    out = WORK / "out"
    shutil.rmtree(out, ignore_errors=True)
    before = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
    t0 = time.perf_counter()
    cmd = [sys.executable, "-m", "jmigrate", "reindex", str(src), "--out", str(out), "-q", *flags]
    r = subprocess.run(cmd, env={**os.environ, **(env or {})}, capture_output=True, text=True)
    took = time.perf_counter() - t0
    if r.returncode != 0:
        raise SystemExit(f"reindex failed ({r.returncode}): {r.stderr[-2000:]}")
    rss = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
    # RUSAGE_CHILDREN: the largest child so far (the driver; Ray's workers are not our children)
    return {"seconds": took, "peak_mb": max(rss, before) / 1024}


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--rows", type=int, default=20_000)
    ap.add_argument("--api-rows", type=int, default=6_000)
    ap.add_argument("--latency", type=float, default=0.05)
    ap.add_argument("--workers", type=int, default=2)
    a = ap.parse_args()
    WORK.mkdir(parents=True, exist_ok=True)
    ray_flags = ["--engine", "ray", "--ray-workers", str(a.workers)]
    one = corpus(WORK / "one.jsonl", 1)
    big = corpus(WORK / "fake.jsonl", a.rows)
    api = corpus(WORK / "api.jsonl", a.api_rows)
    rows: list[tuple[str, float, float, str]] = []

    local1, ray1 = run(one, ["--encoder", "fake"]), run(one, ["--encoder", "fake", *ray_flags])
    startup = ray1["seconds"] - local1["seconds"]
    print(f"start-up: local {local1['seconds']:.2f} s, ray {ray1['seconds']:.2f} s for 1 row "
          f"(Ray start-up {startup:.2f} s)")

    lf, rf = run(big, ["--encoder", "fake"]), run(big, ["--encoder", "fake", *ray_flags])
    rows.append(("fake encoder", a.rows / lf["seconds"], a.rows / rf["seconds"],
                 f"ray excl. start-up {a.rows / max(1e-9, rf['seconds'] - startup):,.0f} rows/s"))
    with StubServer(api_key=KEY, latency=a.latency) as srv:
        flags = ["--encoder", "api", "--api-url", srv.url, "--batch-size", "32", "--concurrency", "4"]
        env = {"JINA_API_KEY": KEY}
        la = run(api, flags, env)
        ra = run(api, [*flags, *ray_flags], env)
    rows.append((f"API stub, {a.latency * 1000:.0f} ms/request, concurrency 4 per worker",
                 a.api_rows / la["seconds"], a.api_rows / ra["seconds"],
                 f"ray excl. start-up {a.api_rows / max(1e-9, ra['seconds'] - startup):,.0f} rows/s"))
    print(f"\n| workload | local rows/s | ray rows/s ({a.workers} workers) | ray/local | note |")
    print("|---|---|---|---|---|")
    for name, lr, rr, note in rows:
        print(f"| {name} | {lr:,.0f} | {rr:,.0f} | {rr / lr:.2f}x | {note} |")
    print(f"\nRay start-up: {startup:.1f} s; peak RSS of a child process (the driver): "
          f"{max(lf['peak_mb'], rf['peak_mb'], la['peak_mb'], ra['peak_mb']):.0f} MB")


if __name__ == "__main__":
    main()
