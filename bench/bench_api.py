"""The API encoder against the loopback stub at 100 ms latency with a concurrency cap and a tokens/min limit.

Two measurements in one run, on the same server:
- our `JinaAPIEncoder.encode()` (concurrent requests, client-side TPM limiter) as a fraction of the
  ceiling those limits allow over the run: min(cap x tokens-per-request / latency,
  (TPM bucket burst + TPM/60 x seconds) / seconds);
- a sequential client, one `httpx.post` at a time in a loop (the pattern in Jina's own examples),
  same batch size, same server, for `--baseline-seconds`.
Throughput is counted in tokens the server accepted (200 answers), from the server's own counters.
The server runs in its own process (like the real API, it does not share our interpreter's GIL).

    .venv/bin/python bench/bench_api.py [--tpm 3600000] [--cap 16] [--batch 32] [--seconds 30]
"""

from __future__ import annotations

import argparse
import json
import multiprocessing as mp
import random
import time
from multiprocessing.connection import Connection
from pathlib import Path
from typing import Any

import httpx

from jmigrate.encoders.api import JinaAPIEncoder
from jmigrate.models import V3
from jmigrate.testing.server import StubServer, stub_token_count

KEY = "jina_bench"
WORDS = ("retrieval embedding vector index search query passage model token chunk late window "
         "bucket latency throughput server client request answer migrate").split()


def corpus(n: int, seed: int = 0) -> list[str]:
    rng = random.Random(seed)
    return [" ".join(rng.choice(WORDS) for _ in range(rng.randint(25, 55))) + "." for _ in range(n)]


def _serve(conn: Connection, kwargs: dict[str, Any]) -> None:
    """Child process: run the stub, answer "stats" requests, stop on "stop"."""
    with StubServer(**kwargs) as srv:
        conn.send(srv.url)
        while conn.recv() == "stats":
            conn.send({"tokens": srv.stats.tokens, "by_status": dict(srv.stats.by_status),
                       "max_in_flight": srv.stats.max_in_flight})


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--latency", type=float, default=0.1)
    ap.add_argument("--cap", type=int, default=16, help="server concurrency cap (= client --concurrency)")
    ap.add_argument("--tpm", type=float, default=3_600_000)
    ap.add_argument("--batch", type=int, default=32)
    ap.add_argument("--dims", type=int, default=256)
    ap.add_argument("--seconds", type=float, default=30.0, help="target length of our run")
    ap.add_argument("--baseline-seconds", type=float, default=6.0)
    ap.add_argument("--json-out", type=Path, help="also write the results as JSON (for bench/run_all.py)")
    a = ap.parse_args()

    sample = corpus(2000, seed=1)
    mean_tokens = sum(map(stub_token_count, sample)) / len(sample)
    n = int(a.tpm / 60 * a.seconds / mean_tokens)
    texts = corpus(n)
    burst = 2.0
    body = {"model": V3, "task": "retrieval.passage", "dimensions": a.dims, "embedding_type": "base64"}

    parent, child = mp.get_context("spawn").Pipe()
    proc = mp.get_context("spawn").Process(target=_serve, args=(child, dict(
        api_key=KEY, latency=a.latency, tpm=a.tpm, max_concurrency=a.cap, burst_seconds=burst)))
    proc.start()
    url = parent.recv()

    def stats() -> dict[str, Any]:
        parent.send("stats")
        got: dict[str, Any] = parent.recv()
        return got

    try:
        # Sequential baseline: one request at a time, a fresh httpx.post each, like Jina's examples.
        tok0 = stats()["tokens"]
        t0 = time.perf_counter()
        i = 0
        while time.perf_counter() - t0 < a.baseline_seconds:
            batch = texts[i:i + a.batch]
            i += a.batch
            r = httpx.post(url + "/embeddings", json={**body, "input": batch},
                           headers={"Authorization": f"Bearer {KEY}"}, timeout=60)
            r.raise_for_status()
        seq_secs = time.perf_counter() - t0
        seq_rate = (stats()["tokens"] - tok0) / seq_secs
        time.sleep(burst)  # let the token bucket refill, so our run starts from the same state

        before = stats()
        with JinaAPIEncoder(V3, api_url=url, api_key=KEY, concurrency=a.cap, tpm=a.tpm,
                            batch_size=a.batch) as enc:
            t0 = time.perf_counter()
            out = enc.encode(texts, task="retrieval.passage", dimensions=a.dims)
            secs = time.perf_counter() - t0
            retries = enc.usage.retries
        after = stats()
        assert out.shape == (len(texts), a.dims)
        ours = (after["tokens"] - before["tokens"]) / secs
        rejected = after["by_status"].get(429, 0) - before["by_status"].get(429, 0)
    finally:
        parent.send("stop")
        proc.join(10)

    per_request = mean_tokens * a.batch
    cap_ceiling = a.cap * per_request / a.latency
    tpm_ceiling = (a.tpm / 60 * burst + a.tpm / 60 * secs) / secs
    ceiling = min(cap_ceiling, tpm_ceiling)
    print(f"corpus: {len(texts)} texts, {mean_tokens:.1f} tokens each (stub tokenizer), batches of {a.batch}")
    print(f"server: latency {a.latency * 1000:.0f} ms, cap {a.cap} in flight, {a.tpm:,.0f} tokens/min "
          f"(burst {burst:g} s)")
    print(f"ceiling: {ceiling:,.0f} tokens/s (cap allows {cap_ceiling:,.0f}, TPM allows {tpm_ceiling:,.0f} "
          f"over {secs:.1f} s)")
    print(f"ours:       {ours:,.0f} tokens/s in {secs:.1f} s ({rejected} answers 429, {retries} retries)")
    print(f"sequential: {seq_rate:,.0f} tokens/s over {seq_secs:.1f} s")
    print(f"ours / ceiling    = {ours / ceiling:.1%}  (vs the sustained TPM rate alone: "
          f"{ours / min(cap_ceiling, a.tpm / 60):.1%})")
    print(f"ours / sequential = {ours / seq_rate:.1f}x")
    if a.json_out:
        workload = (f"{len(texts):,} texts of ~{mean_tokens:.0f} tokens, batches of {a.batch}, "
                    f"{a.dims} dims, base64; stub (own process) at {a.latency * 1000:.0f} ms, "
                    f"{a.cap} in flight, {a.tpm:,.0f} tokens/min")
        ours_fig = f"{ours:,.0f} tokens/s ({rejected} answers 429, {retries} retries)"
        a.json_out.write_text(json.dumps([
            {"part": "API client vs the limits", "workload": workload,
             "baseline": "ceiling the limits allow", "baseline_figure": f"{ceiling:,.0f} tokens/s",
             "ours": "`JinaAPIEncoder.encode()`", "ours_figure": ours_fig, "ratio": ours / ceiling,
             "ratio_text": f"{ours / ceiling:.1%} of the ceiling", "target": ">= 90%",
             "met": ours / ceiling >= 0.9},
            {"part": "API client vs a sequential loop", "workload": workload,
             "baseline": "sequential `httpx.post` loop (Jina's examples)",
             "baseline_figure": f"{seq_rate:,.0f} tokens/s", "ours": "`JinaAPIEncoder.encode()`",
             "ours_figure": ours_fig, "ratio": ours / seq_rate, "ratio_text": f"{ours / seq_rate:.1f}x",
             "target": ">= 5x", "met": ours / seq_rate >= 5}], indent=2))


if __name__ == "__main__":
    main()
