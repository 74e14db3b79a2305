"""Fault campaign for `jmigrate reindex`: one run, stopped again and again, must end identical to an
uninterrupted run and pay again for no more than what was in flight.

A real `python -m jmigrate reindex` process against the loopback stub (127.0.0.1) is started, left to
run for a random moment (0.05-1.5 s; the stub adds random extra latency to a third of the requests)
and stopped, then started again; two stops in five are aimed at a commit (sent the moment a shard's
or the manifest's temp file shows up). Small units and shards (`--unit-rows 16 --shard-rows 64`) put the
stops in every phase: start-up and reading, requests in flight, shard writes, manifest updates (what
the folder and the stub show at the moment of each stop is counted). Most stops are SIGKILL; every
`--every`-th is SIGINT or SIGTERM instead, which must exit 130 and say how to resume.

At the end: rows (ids exactly once), vectors (equal to the stub's answer for each text), rejects and
the shard files (sha256) are compared with the uninterrupted run, and the inputs the stub embedded
are compared with the uninterrupted run's and the in-flight bound.

    .venv/bin/python bench/fault_campaign.py                      # 50 SIGKILL + SIGINT/SIGTERM
    .venv/bin/python bench/fault_campaign.py --kills 60 --rows 15000
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import random
import shutil
import signal
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow.parquet as pq

from jmigrate.testing.server import Fault, StubServer, stub_vectors

KEY = "jina_fault_campaign"
CONCURRENCY, BATCH, UNIT, SHARD = 2, 8, 16, 64
IN_FLIGHT = CONCURRENCY * BATCH + UNIT  # most inputs one stop can lose: one encode group (+ a unit)


def corpus(path: Path, n: int, seed: int) -> None:
    rng = random.Random(seed)
    words = "refund invoice password login export api key limit order delivery account plan".split()
    with open(path, "w", encoding="utf-8") as f:
        for i in range(n):
            text = " ".join(rng.choice(words) for _ in range(rng.randint(3, 40)))
            if i % 97 == 13:
                text = ""  # rejected, exactly once
            rid = f"doc{i}" if i % 211 != 50 else "doc1"  # duplicate ids, rejected exactly once
            f.write(json.dumps({"id": rid, "text": text, "n": i}) + "\n")


def command(src: Path, out: Path, url: str) -> list[str]:
    return [sys.executable, "-m", "jmigrate", "reindex", str(src), "--out", str(out), "--encoder", "api",
            "--api-url", url, "--concurrency", str(CONCURRENCY), "--batch-size", str(BATCH), "--unit-rows",
            str(UNIT), "--shard-rows", str(SHARD), "--dimensions", "256", "--quiet"]


def env() -> dict[str, str]:
    return {**os.environ, "JINA_API_KEY": KEY}


def phase(out: Path, srv: StubServer) -> str:
    """What the folder and the stub show at the moment of a stop (racy by nature: indicative)."""
    names = [p.name for p in out.iterdir()] if out.exists() else []
    if any(n.startswith(".part-") for n in names):
        return "shard open (row groups being written or committed)"
    if any(n.startswith(".manifest.json.tmp") for n in names):
        return "manifest update"
    if srv._in_flight:
        return "request in flight"
    if "manifest.json" not in names:
        return "start-up"
    return "reading / journalling / between requests"


def snapshot(out: Path) -> dict[str, Any]:
    t = pq.read_table(sorted(out.glob("part-*.parquet")))
    return {"rows": t.drop_columns(["vector"]).to_pylist(),
            "vectors": np.stack(t.column("vector").to_numpy(zero_copy_only=False)),
            "rejects": (out / "rejects.jsonl").read_text(encoding="utf-8"),
            "files": {p.name: hashlib.sha256(p.read_bytes()).hexdigest() for p in sorted(out.glob("part-*"))},
            "manifest": json.loads((out / "manifest.json").read_text())}


def campaign(work: Path, kills: int, rows: int, every: int, seed: int) -> dict[str, Any]:
    shutil.rmtree(work, ignore_errors=True)
    work.mkdir(parents=True)
    src = work / "corpus.jsonl"
    corpus(src, rows, seed)
    t0 = time.monotonic()
    with StubServer(api_key=KEY, latency=0.02) as srv:
        done = subprocess.run(command(src, work / "ref", srv.url), env=env(), capture_output=True, text=True)
        assert done.returncode == 1, done.stderr  # 1: the planted rows are rejected
        ref_inputs, ref_requests = srv.stats.inputs, len(srv.stats.embedding_records())
    ref_seconds = time.monotonic() - t0
    ref = snapshot(work / "ref")

    rng = random.Random(seed)
    out = work / "crashy"
    phases: Counter[str] = Counter()
    signals: Counter[str] = Counter()
    in_flight_at_stops = 0
    clean_stops_ok = 0
    outcomes: Counter[str] = Counter()  # what each SIGINT/SIGTERM ended with
    runs = 0
    with StubServer(api_key=KEY, latency=0.02) as srv:
        srv.faults.set_random([Fault.slow(0.02), Fault.slow(0.1), Fault.slow(0.3)], probability=0.3,
                              seed=seed)
        while signals["SIGKILL"] < kills:
            stops = sum(signals.values())
            sig = signal.SIGKILL
            if every and stops % every == every - 1:
                sig = signal.SIGINT if (stops // every) % 2 == 0 else signal.SIGTERM
            proc = subprocess.Popen(command(src, out, srv.url), env=env(), stdout=subprocess.DEVNULL,
                                    stderr=subprocess.PIPE, text=True)
            runs += 1
            aim = rng.choice(["any"] * 3 + [".part-", ".manifest.json.tmp"])
            time.sleep(rng.uniform(0.05, 1.5) if rng.random() < 0.8 else rng.uniform(0.05, 0.5))
            if aim != "any":  # aim at a commit: stop the moment its temp file shows up (or give up)
                until = time.monotonic() + 3.0
                while time.monotonic() < until and proc.poll() is None and out.exists() and not any(
                        n.startswith(aim) for n in os.listdir(out)):
                    time.sleep(0.0005)
            if proc.poll() is not None:
                proc.communicate()
                break  # finished before the stop: the campaign is over
            phases[phase(out, srv)] += 1
            in_flight_at_stops += srv._in_flight
            proc.send_signal(sig)
            _, err = proc.communicate(timeout=120)
            signals[signal.Signals(sig).name] += 1
            if sig != signal.SIGKILL:
                # a clean stop unless it came before the handler was installed (start-up: killed by it)
                told = "Run the same command again to resume" in " ".join(err.split())
                outcomes[f"{signal.Signals(sig).name} exit {proc.returncode}"
                         + (", told how to resume" if told else "")] += 1
                if proc.returncode == 130 and told:
                    clean_stops_ok += 1
                elif proc.returncode in (0, 1) and "complete:" in err:
                    break  # the run finished just as the signal came: the campaign is over, as above
                elif proc.returncode not in (-sig, 130):
                    raise AssertionError(f"{signal.Signals(sig).name}: exit {proc.returncode}: {err[-500:]}")
            if (out / "manifest.json").exists():  # atomic writes: always a whole, readable manifest
                assert json.loads((out / "manifest.json").read_text())["format"] == "jmigrate-index"
        last = subprocess.run(command(src, out, srv.url), env=env(), capture_output=True, text=True)
        runs += 1
        assert last.returncode == 1, last.stderr
        inputs, requests = srv.stats.inputs, len(srv.stats.embedding_records())
    got = snapshot(out)

    keys = [(r["id"], r["n"]) for r in got["rows"]]
    checks = {
        "every row exactly once": len(keys) == len(set(keys)) and got["rows"] == ref["rows"],
        "vectors equal the uninterrupted run's": bool(np.array_equal(got["vectors"], ref["vectors"])),
        "vectors are the stub's answer for each text": bool(np.allclose(
            got["vectors"], stub_vectors("jina-embeddings-v3", [r["text"] for r in got["rows"]],
                                         task="retrieval.passage", dimensions=256), atol=1e-6)),
        "rejects.jsonl identical": got["rejects"] == ref["rejects"],
        "shards byte-identical (sha256)": got["files"] == ref["files"],
        "manifest complete, same rows": got["manifest"]["status"] == "complete"
                                          and got["manifest"]["rows"] == ref["manifest"]["rows"],
    }
    stops = sum(signals.values())
    extra = inputs - ref_inputs
    result = {
        "rows": rows, "shards": len(ref["files"]), "uninterrupted_seconds": round(ref_seconds, 1),
        "signals": dict(signals), "runs": runs, "clean_stops_exit_130": clean_stops_ok,
        "clean_stop_outcomes": dict(outcomes),
        "phases_at_stop": dict(phases), "checks": checks,
        "inputs": {"uninterrupted": ref_inputs, "campaign": inputs, "re_paid": extra,
                   "re_paid_per_stop": round(extra / max(1, stops), 2), "bound_per_stop": IN_FLIGHT,
                   "requests_in_flight_at_stops": in_flight_at_stops},
        "requests": {"uninterrupted": ref_requests, "campaign": requests},
    }
    result["ok"] = all(checks.values()) and extra <= stops * IN_FLIGHT
    return result


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--kills", type=int, default=50, help="SIGKILLs (default: 50)")
    ap.add_argument("--every", type=int, default=6,
                    help="every N-th stop is SIGINT/SIGTERM instead (alternating; 0: never)")
    ap.add_argument("--rows", type=int, default=12000, help="corpus rows (default: 12000)")
    ap.add_argument("--seed", type=int, default=5)
    ap.add_argument("--work", type=Path, default=Path(__file__).parent / "_work" / "faults")
    args = ap.parse_args()
    r = campaign(args.work, args.kills, args.rows, args.every, args.seed)
    print(json.dumps(r, indent=2))
    if not r["ok"]:
        sys.exit(1)


if __name__ == "__main__":
    main()
