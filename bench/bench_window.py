"""The request window: `jmigrate reindex` (the CLI, in its own process) against a loopback stub whose
cost grows with each request, as a fraction of the ceiling the server's limits allow.

- Slot-bound (the headline): the stub takes `--latency` (100 ms) + `--per-token` (200 us) per token
  + a uniform random 0..`--jitter` (100 ms) per request, answers 429 above `--cap` (16) requests at
  once, and has no RPM/TPM limit; the client runs `--concurrency 16` (= the cap). Ceiling (rows/s)
  = cap x rows / the summed service time of the requests the client actually sent (each: latency +
  per-token x its tokens + the mean jitter): what 16 slots, never idle, would give for those requests.
  Run at each `--batch-sizes` (32..1024): the curve shows whether large batches collapse.
- RPM-bound and TPM-bound: the same server with a requests/min (resp. tokens/min) limit, given to the
  client as `--rpm` (`--tpm`) too; ceiling = the limit's rate over the run.
Throughput is the server's: inputs of the requests that arrived between the first and the last
arrival, over that span (the start-up and the final drain are not steady state).

    .venv/bin/python bench/bench_window.py [--rows 30000] [--batch-sizes 32,64,128,256,512,1024]
        [--compare-with /path/to/other/checkout] [--json-out FILE]

`--compare-with DIR` also runs the CLI of another checkout (e.g. the commit before the window) on the
same workloads, side by side.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import shutil
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

from jmigrate.testing.server import StubServer, stub_token_count

WORK = Path(__file__).resolve().parent / "_work" / "window"
KEY = "jina_bench_window"
WORDS = ("the customer account invoice refund password delivery subscription warehouse shipment order "
         "configuration authentication integration notification dashboard export import report billing "
         "a an of to in for with on by is are was be can will should must not and or if when then").split()


def make_corpus(path: Path, rows: int, lo: int, hi: int, seed: int = 3) -> tuple[int, int]:
    """`rows` JSONL documents of `lo`..`hi` stub tokens; returns (rows, total tokens)."""
    rng = random.Random(seed)
    total = 0
    with open(path, "w", encoding="utf-8") as f:
        for i in range(rows):
            target = rng.randint(lo, hi)
            words: list[str] = []
            while len(words) < target:
                words.append(rng.choice(WORDS))
            text = " ".join(words) + "."
            total += stub_token_count(text)
            f.write(json.dumps({"id": f"d{i:07d}", "text": text}) + "\n")
    return rows, total


def run_once(src: Path, checkout: Path | None, server: dict[str, Any], flags: list[str]) -> dict[str, Any]:
    out = WORK / "index"
    shutil.rmtree(out, ignore_errors=True)
    env = {**os.environ, "JINA_API_KEY": KEY}
    if checkout is not None:
        env["PYTHONPATH"] = str(checkout)
    with StubServer(api_key=KEY, seed=1, **server) as srv:
        cmd = [sys.executable, "-m", "jmigrate", "reindex", str(src), "--out", str(out), "--encoder", "api",
               "--api-url", srv.url, "--dimensions", "256", "--quiet", "--json", *flags]
        t0 = time.monotonic()
        proc = subprocess.run(cmd, env=env, capture_output=True, text=True,
                              cwd=checkout or Path(__file__).resolve().parent.parent)
        wall = time.monotonic() - t0
        if proc.returncode != 0:
            sys.exit(f"reindex failed with exit code {proc.returncode}: {proc.stderr.strip()[-2000:]}")
        recs = [r for r in srv.stats.embedding_records() if r.status == 200]
        statuses = dict(srv.stats.by_status)
        max_in_flight = srv.stats.max_in_flight
    shutil.rmtree(out, ignore_errors=True)
    span = recs[-1].mono - recs[0].mono
    steady = sum(len(r.inputs) for r in recs[:-1]) / span if span > 0 else float("nan")
    return {"recs": recs, "steady": steady, "span": span, "wall": wall, "statuses": statuses,
            "max_in_flight": max_in_flight, "rows": sum(len(r.inputs) for r in recs),
            "inputs_per_request": sum(len(r.inputs) for r in recs) / len(recs)}


def busy_reference(src: Path, server: dict[str, Any], cap: int, batch: int) -> float:
    """Rows/s of `cap` bare httpx workers that each send the next batch the moment their answer is
    in: 16 always-busy slots, realised on this machine (its scheduling noise included)."""
    import asyncio

    import httpx

    texts = [json.loads(line)["text"] for line in src.read_text(encoding="utf-8").splitlines()]
    batches = [texts[i:i + batch] for i in range(0, len(texts), batch)]
    body = {"model": "jina-embeddings-v3", "task": "retrieval.passage", "dimensions": 256,
            "embedding_type": "base64"}

    async def go(url: str) -> None:
        it = iter(batches)
        async with httpx.AsyncClient(base_url=url, headers={"Authorization": f"Bearer {KEY}"}, timeout=120,
                                     limits=httpx.Limits(max_connections=cap)) as client:
            async def worker() -> None:
                for b in it:
                    (await client.post("/embeddings", json={**body, "input": b})).raise_for_status()
            await asyncio.gather(*(worker() for _ in range(cap)))

    with StubServer(api_key=KEY, seed=1, **server) as srv:
        asyncio.run(go(srv.url))
        recs = [r for r in srv.stats.embedding_records() if r.status == 200]
    return sum(len(r.inputs) for r in recs[:-1]) / (recs[-1].mono - recs[0].mono)


def slot_ceiling(recs: list[Any], cap: int, latency: float, per_token: float, jitter: float) -> float:
    busy = sum(latency + per_token * r.tokens + jitter / 2 for r in recs)
    return cap * sum(len(r.inputs) for r in recs) / busy


def occupancy(recs: list[Any], cap: int) -> float:
    """Share of the cap's slot-seconds the server spent answering, first arrival to last answer (the
    service times as measured, the stub's own work included: a check on the nominal ceiling)."""
    busy = sum(r.done - r.mono for r in recs)
    return busy / (cap * (max(r.done for r in recs) - recs[0].mono))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--rows", type=int, default=30_000, help="corpus rows for the slot-bound runs")
    ap.add_argument("--tokens", default="20,60", help="tokens per row, lo,hi (stub tokenizer)")
    ap.add_argument("--latency", type=float, default=0.1)
    ap.add_argument("--per-token", type=float, default=200e-6)
    ap.add_argument("--jitter", type=float, default=0.1)
    ap.add_argument("--cap", type=int, default=16)
    ap.add_argument("--batch-sizes", default="32,64,128,256,512,1024")
    ap.add_argument("--default-batch", type=int, default=128, help="the API encoder's default batch size")
    ap.add_argument("--rpm", type=float, default=600.0, help="limit of the RPM-bound run")
    ap.add_argument("--tpm", type=float, default=1_200_000.0, help="limit of the TPM-bound run")
    ap.add_argument("--limit-seconds", type=float, default=40.0, help="length of the RPM/TPM-bound runs")
    ap.add_argument("--skip-limits", action="store_true", help="only the slot-bound curve")
    ap.add_argument("--compare-with", type=Path, help="another checkout whose CLI runs the same workloads")
    ap.add_argument("--json-out", type=Path, help="also write the results as JSON (for bench/run_all.py)")
    a = ap.parse_args()

    shutil.rmtree(WORK, ignore_errors=True)
    WORK.mkdir(parents=True)
    lo, hi = (int(x) for x in a.tokens.split(","))
    src = WORK / "corpus.jsonl"
    n_rows, total = make_corpus(src, a.rows, lo, hi)
    print(f"corpus: {n_rows:,} rows of {lo}-{hi} tokens ({total / n_rows:.1f} on average, stub tokenizer)")
    print(f"server: {a.latency * 1000:.0f} ms + {a.per_token * 1e6:.0f} us/token + "
          f"0..{a.jitter * 1000:.0f} ms jitter per request, {a.cap} requests at once, "
          f"no RPM/TPM limit; client --concurrency {a.cap}")
    sides: list[tuple[str, Path | None]] = [("ours", None)]
    if a.compare_with is not None:
        sides.append(("other", a.compare_with))
    slot = {"latency": a.latency, "latency_per_token": a.per_token, "latency_jitter": a.jitter,
            "max_concurrency": a.cap}
    results: list[dict[str, Any]] = []
    for batch in [int(b) for b in a.batch_sizes.split(",")]:
        line = f"batch {batch:>5}:"
        # The reference sends the batches the client actually sends (a unit of --unit-rows 256 caps them).
        ref = busy_reference(src, slot, a.cap, min(batch, 256))
        line += f"  always-busy reference {ref:,.0f} rows/s;"
        for name, checkout in sides:
            r = run_once(src, checkout, slot, ["--concurrency", str(a.cap), "--batch-size", str(batch)])
            ceiling = slot_ceiling(r["recs"], a.cap, a.latency, a.per_token, a.jitter)
            ratio = r["steady"] / ceiling
            occ = occupancy(r["recs"], a.cap)
            line += (f"  {name} {r['steady']:,.0f} rows/s = {r['steady'] / ref:.1%} of the reference, "
                     f"{ratio:.1%} of the {ceiling:,.0f} nominal ceiling, slots busy {occ:.1%} "
                     f"({r['inputs_per_request']:.0f} inputs/request, {len(r['recs'])} requests, "
                     f"max {r['max_in_flight']} in flight, statuses {r['statuses']}, wall {r['wall']:.1f} s)")
            results.append({"kind": "slot", "side": name, "batch": batch, "steady": r["steady"],
                            "ceiling": ceiling, "ratio": ratio, "inputs_per_request": r["inputs_per_request"],
                            "occupancy": occ, "reference": ref, "vs_reference": r["steady"] / ref,
                            "statuses": r["statuses"], "wall": r["wall"]})
        print(line, flush=True)

    if not a.skip_limits:
        mean = total / n_rows
        for kind, limit in (("rpm", a.rpm), ("tpm", a.tpm)):
            # Rows for `--limit-seconds` at the limit's rate (requests of the default batch size).
            per_s = limit / 60 * (a.default_batch if kind == "rpm" else 1 / mean)
            rows = int(per_s * a.limit_seconds)
            lsrc = WORK / f"corpus-{kind}.jsonl"
            make_corpus(lsrc, rows, lo, hi, seed=4)
            server = {"latency": a.latency, "latency_jitter": a.jitter, kind: limit, "burst_seconds": 1.0}
            line = f"{kind.upper()}-bound ({limit:,.0f}/min):"
            for name, checkout in sides:
                r = run_once(lsrc, checkout, server, ["--concurrency", "8", f"--{kind}", f"{limit:g}"])
                ceiling = (limit / 60 * r["inputs_per_request"] if kind == "rpm"
                           else limit / 60 / (sum(x.tokens for x in r["recs"]) / r["rows"]))
                ratio = r["steady"] / ceiling
                line += (f"  {name} {r['steady']:,.1f} rows/s of a {ceiling:,.1f} ceiling = {ratio:.1%} "
                         f"({r['inputs_per_request']:.0f} inputs/request, statuses {r['statuses']}, "
                         f"wall {r['wall']:.1f} s)")
                results.append({"kind": kind, "side": name, "steady": r["steady"], "ceiling": ceiling,
                                "ratio": ratio, "statuses": r["statuses"], "wall": r["wall"]})
            print(line, flush=True)
    shutil.rmtree(WORK, ignore_errors=True)
    if a.json_out:
        a.json_out.write_text(json.dumps(report_rows(results, a), indent=2))


def report_rows(results: list[dict[str, Any]], a: argparse.Namespace) -> list[dict[str, Any]]:
    """The results as bench/run_all.py's rows: one per slot-bound batch size, one per limit."""
    rows: list[dict[str, Any]] = []
    server = (f"stub: {a.latency * 1000:.0f} ms + {a.per_token * 1e6:.0f} us/token + "
              f"0..{a.jitter * 1000:.0f} ms jitter, {a.cap} at once")
    for r in results:
        if r["side"] != "ours":
            continue
        other = next((o for o in results if o["side"] == "other" and o["kind"] == r["kind"]
                      and o.get("batch") == r.get("batch")), None)
        before = f"; before the window: {other['ratio']:.1%}" if other else ""
        if r["kind"] == "slot":
            default = r["batch"] == a.default_batch
            rows.append({
                "part": f"slot-bound window, --batch-size {r['batch']}",
                "workload": f"{a.rows:,} rows; {server}; --concurrency {a.cap}",
                "baseline": f"{a.cap} always-busy slots (nominal; measured bare-client reference "
                            f"{r['reference']:,.0f} rows/s)",
                "baseline_figure": f"{r['ceiling']:,.0f} rows/s",
                "ours": "`jmigrate reindex`", "ours_figure": f"{r['steady']:,.0f} rows/s",
                "ratio": r["ratio"],
                "ratio_text": f"{r['ratio']:.1%} of the ceiling ({r['vs_reference']:.0%} of the reference)"
                              + before,
                "target": ">= 90%" if default else "no collapse", "met": r["ratio"] >= 0.9 if default
                else r["ratio"] >= 0.75})
        else:
            rows.append({
                "part": f"{r['kind'].upper()}-bound",
                "workload": (f"stub: {a.latency * 1000:.0f} ms + 0..{a.jitter * 1000:.0f} ms jitter, "
                             f"{a.rpm if r['kind'] == 'rpm' else a.tpm:,.0f} {r['kind']} (1-s bucket), "
                             f"client --{r['kind']} the same, --concurrency 8"),
                "baseline": f"the {r['kind'].upper()} limit's rate",
                "baseline_figure": f"{r['ceiling']:,.1f} rows/s",
                "ours": "`jmigrate reindex`", "ours_figure": f"{r['steady']:,.1f} rows/s",
                "ratio": r["ratio"], "ratio_text": f"{r['ratio']:.1%} of the ceiling" + before,
                "target": ">= 90% (as before)", "met": r["ratio"] >= 0.9})
    return rows


if __name__ == "__main__":
    main()
