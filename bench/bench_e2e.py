"""End to end: `jmigrate reindex` as users run it (the CLI, in its own process) against the loopback stub
at the public limits of a paid Jina key, as a fraction of the ceiling those limits allow.

- Limits: 500 requests/min and 2,000,000 tokens/min, enforced by the stub (its buckets hold one
  minute of budget, like per-minute windows) AND given to the client as `--rpm/--tpm`.
- Latency: 100, 200 or 300 ms per request (100 ms base plus a random 0/100/200 ms, seeded).
- Corpus: JSONL documents of 200-500 tokens by the stub's tokenizer (the billed count), enough for
  `--seconds` of work at the ceiling.
- Ceiling (rows/s) = min(rpm x inputs per request, tpm / tokens per row) / 60, with inputs per request
  as the client actually batched them (the server's records) and tokens per row from the corpus.
- Headline: rows accepted by the server per second in the steady state, i.e. between the first
  request after `--warmup` seconds and the last request (the client paces itself from a 1-second
  bucket; the stub's full first-minute window is budget a bursty client could spend once, not a
  sustained rate). Also printed: rows / wall time of the whole CLI process (start-up and the final
  manifest included).

    .venv/bin/python bench/bench_e2e.py [--seconds 90] [--warmup 15] [--json-out FILE]
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

from jmigrate.testing.server import Fault, StubServer, stub_token_count

WORK = Path(__file__).resolve().parent / "_work" / "e2e"
KEY = "jina_bench_e2e"
RPM, TPM = 500.0, 2_000_000.0
WORDS = ("the customer account invoice refund password delivery subscription warehouse shipment order "
         "configuration authentication integration notification dashboard export import report billing "
         "a an of to in for with on by is are was be can will should must not and or if when then "
         "support article explains how resolve error limit request response timeout").split()


def make_corpus(path: Path, rows: int, seed: int = 11) -> tuple[int, int]:
    """Write `rows` documents of 200-500 stub tokens each; returns (rows, total tokens)."""
    rng = random.Random(seed)
    total = 0
    with open(path, "w", encoding="utf-8") as f:
        for i in range(rows):
            target = rng.randint(200, 500)
            sentences: list[str] = []
            tokens = 0
            while tokens < target:
                s = " ".join(rng.choice(WORDS) for _ in range(rng.randint(6, 18))).capitalize() + "."
                sentences.append(s)
                tokens += stub_token_count(s)
            text = " ".join(sentences)
            total += stub_token_count(text)
            f.write(json.dumps({"id": f"kb-{i:06d}", "text": text}) + "\n")
    return rows, total


def vm_hwm_mb(pid: int) -> float | None:
    """Peak RSS of a running process (VmHWM; ru_maxrss would carry over the parent's after fork+exec)."""
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    except OSError:
        return None
    return None


def run(seconds: float, warmup: float, concurrency: int) -> dict[str, object]:
    shutil.rmtree(WORK, ignore_errors=True)
    WORK.mkdir(parents=True)
    src = WORK / "corpus.jsonl"
    # Size the corpus for `seconds` at the TPM ceiling, from a sample's mean token count.
    n_rows, total_tokens = make_corpus(src, 400)
    rows_needed = int(TPM / 60 / (total_tokens / n_rows) * seconds)
    n_rows, total_tokens = make_corpus(src, rows_needed)
    tokens_per_row = total_tokens / n_rows

    env = {**os.environ, "JINA_API_KEY": KEY}
    with StubServer(api_key=KEY, latency=0.1, rpm=RPM, tpm=TPM) as srv:
        srv.faults.set_random([Fault.slow(0.1), Fault.slow(0.2)], probability=2 / 3, seed=5)
        cmd = [sys.executable, "-m", "jmigrate", "reindex", str(src), "--out", str(WORK / "index"),
               "--encoder", "api", "--api-url", srv.url, "--rpm", f"{RPM:g}", "--tpm", f"{TPM:g}",
               "--concurrency", str(concurrency), "--quiet", "--json"]
        t0 = time.monotonic()
        proc = subprocess.Popen(cmd, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        peak = 0.0
        while proc.poll() is None:
            peak = max(peak, vm_hwm_mb(proc.pid) or 0.0)
            time.sleep(0.5)
        wall = time.monotonic() - t0
        out, err = proc.communicate()
        if proc.returncode != 0:
            sys.exit(f"reindex failed with exit code {proc.returncode}: {err.strip()[-2000:]}")
        summary = json.loads(out)
        recs = [r for r in srv.stats.embedding_records() if r.status == 200]
        statuses = dict(srv.stats.by_status)

    assert summary["rows"]["written"] == n_rows, summary["rows"]
    inputs_per_request = sum(len(r.inputs) for r in recs) / len(recs)
    rpm_ceiling = RPM * inputs_per_request / 60
    tpm_ceiling = TPM / tokens_per_row / 60
    ceiling = min(rpm_ceiling, tpm_ceiling)
    binds = "tokens/min" if tpm_ceiling <= rpm_ceiling else "requests/min"
    # Steady state: from the first request at or after the warm-up to the last request.
    start = recs[0].mono + warmup
    window = [r for r in recs if r.mono >= start]
    if len(window) < 3:
        sys.exit(f"run too short for a steady-state window after {warmup:g} s of warm-up; raise --seconds")
    span = window[-1].mono - window[0].mono
    steady = sum(len(r.inputs) for r in window[:-1]) / span
    steady_tokens = sum(r.tokens for r in window[:-1]) / span
    whole = n_rows / wall
    print(f"corpus: {n_rows:,} JSONL documents, {tokens_per_row:.0f} tokens each on average (200-500, stub "
          f"tokenizer), {total_tokens:,} tokens")
    print(f"limits: {RPM:g} requests/min, {TPM:,.0f} tokens/min (stub and client), latency 100-300 ms, "
          f"concurrency {concurrency}; {len(recs)} requests of {inputs_per_request:.1f} inputs "
          f"({inputs_per_request * tokens_per_row:,.0f} tokens) each; server statuses {statuses}")
    print(f"ceiling: {ceiling:.1f} rows/s, bound by {binds} (requests/min allow {rpm_ceiling:,.1f} rows/s, "
          f"tokens/min allow {tpm_ceiling:.1f} rows/s)")
    print(f"reindex steady state ({span:.0f} s after {warmup:g} s warm-up): {steady:.1f} rows/s "
          f"({steady_tokens * 60:,.0f} tokens/min) = {steady / ceiling:.1%} of the ceiling")
    print(f"reindex whole CLI run: {n_rows:,} rows in {wall:.1f} s = {whole:.1f} rows/s = "
          f"{whole / ceiling:.1%} of the ceiling (includes start-up, the first-second burst and the final "
          f"manifest); peak RSS of the CLI process {peak:.0f} MB")
    shutil.rmtree(WORK, ignore_errors=True)
    return {"rows": n_rows, "tokens_per_row": tokens_per_row, "inputs_per_request": inputs_per_request,
            "ceiling": ceiling, "binds": binds, "rpm_ceiling": rpm_ceiling, "tpm_ceiling": tpm_ceiling,
            "steady": steady, "steady_span": span, "whole": whole, "wall": wall, "peak_mb": peak,
            "statuses": statuses, "requests": len(recs)}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--seconds", type=float, default=90.0, help="corpus size in seconds at the ceiling")
    ap.add_argument("--warmup", type=float, default=15.0, help="seconds left out before the steady state")
    ap.add_argument("--concurrency", type=int, default=8, help="reindex --concurrency (its default)")
    ap.add_argument("--json-out", type=Path, help="also write the results as JSON (for bench/run_all.py)")
    a = ap.parse_args()
    r = run(a.seconds, a.warmup, a.concurrency)
    if a.json_out:
        ratio = float(r["steady"]) / float(r["ceiling"])  # type: ignore[arg-type]
        a.json_out.write_text(json.dumps([{
            "part": "reindex CLI at paid-key limits",
            "workload": (f"{r['rows']:,} JSONL documents of 200-500 tokens (mean {r['tokens_per_row']:.0f}); "
                         f"stub at 500 RPM + 2M TPM (client --rpm/--tpm the same), 100-300 ms latency, "
                         f"concurrency 8, {r['inputs_per_request']:.1f} inputs/request"),
            "baseline": f"ceiling the limits allow (bound by {r['binds']})",
            "baseline_figure": f"{r['ceiling']:.1f} rows/s",
            "ours": "`jmigrate reindex` steady state",
            "ours_figure": (f"{r['steady']:.1f} rows/s over {r['steady_span']:.0f} s "
                            f"(whole run incl. start-up: {r['whole']:.1f} rows/s)"),
            "ratio": ratio, "ratio_text": f"{ratio:.1%} of the ceiling",
            "target": ">= 90% of the ceiling", "met": ratio >= 0.9,
            "peak_mb": r["peak_mb"],
        }], indent=2))


if __name__ == "__main__":
    main()
