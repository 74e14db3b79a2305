"""Crash safety: SIGKILL `python -m jmigrate reindex` at random moments, again and again, against the
loopback API stub; the final index must equal an uninterrupted run's and finished work must not be
paid for twice (at most what was in flight at each kill)."""

from __future__ import annotations

import json
import os
import random
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pyarrow.parquet as pq
import pytest

from jmigrate.testing.server import StubServer, stub_vectors

pytestmark = pytest.mark.slow  # real processes killed again and again

KEY = "jina_crash_test_key"
CONCURRENCY, BATCH, UNIT = 2, 8, 16
KILLS = 18


def corpus(path: Path, n: int = 1600) -> None:
    rng = random.Random(7)
    words = "refund invoice password login export api key limit order delivery account plan".split()
    with open(path, "w", encoding="utf-8") as f:
        for i in range(n):
            text = " ".join(rng.choice(words) for _ in range(rng.randint(3, 40)))
            if i % 97 == 13:
                text = ""  # rejected, and must be rejected exactly once
            rid = f"doc{i}" if i % 211 != 50 else "doc1"  # a few duplicate ids
            f.write(json.dumps({"id": rid, "text": text, "n": i}) + "\n")


def command(src: Path, out: Path, url: str) -> list[str]:
    return [sys.executable, "-m", "jmigrate", "reindex", str(src), "--out", str(out), "--encoder", "api",
            "--api-url", url, "--concurrency", str(CONCURRENCY), "--batch-size", str(BATCH),
            "--unit-rows", str(UNIT), "--shard-rows", "200", "--dimensions", "256", "--quiet"]


def wait_for_requests(srv: StubServer, proc: subprocess.Popen[bytes], count: int) -> None:
    """Block until the stub has answered `count` requests in all (or the run ended by itself)."""
    deadline = time.monotonic() + 120
    while srv.stats.requests < count and proc.poll() is None:
        assert time.monotonic() < deadline, "the run made no progress for 120 s"
        time.sleep(0.005)


def env() -> dict[str, str]:
    return {**os.environ, "JINA_API_KEY": KEY}


def read(out: Path) -> tuple[list[dict], np.ndarray, str, dict]:
    t = pq.read_table(sorted(out.glob("part-*.parquet")))
    vectors = np.stack(t.column("vector").to_numpy(zero_copy_only=False))
    manifest = json.loads((out / "manifest.json").read_text())
    return t.drop_columns(["vector"]).to_pylist(), vectors, (out / "rejects.jsonl").read_text(), manifest


def test_sigkill_at_random_moments_then_resume_equals_an_uninterrupted_run(tmp_path: Path) -> None:
    src = tmp_path / "corpus.jsonl"
    corpus(src)
    with StubServer(api_key=KEY, latency=0.03) as ref_srv:
        done = subprocess.run(command(src, tmp_path / "ref", ref_srv.url), env=env(), capture_output=True,
                              text=True, timeout=300)
        assert done.returncode == 1, done.stderr  # 1: some rows rejected
        ref_inputs, ref_requests = ref_srv.stats.inputs, len(ref_srv.stats.embedding_records())
    ref = read(tmp_path / "ref")

    out = tmp_path / "crashy"
    rng = random.Random(1234)
    kills = 0
    with StubServer(api_key=KEY, latency=0.03) as srv:
        for attempt in range(KILLS):
            before = srv.stats.requests
            proc = subprocess.Popen(command(src, out, srv.url), env=env(), stdout=subprocess.DEVNULL,
                                    stderr=subprocess.DEVNULL)
            if attempt % 4 == 3:
                # a few kills before any request: start-up, reading the source, checking the shards
                time.sleep(rng.uniform(0.0, 0.4))
            else:
                # the rest after a random number of requests, so every kill lands in the middle of
                # encoding/journalling/committing whatever the machine's speed
                wait_for_requests(srv, proc, before + rng.randint(1, 5))
                time.sleep(rng.uniform(0.0, 0.05))
            assert proc.poll() is None, "the run finished before its kill: make the corpus larger"
            proc.send_signal(signal.SIGKILL)
            kills += 1
            proc.wait(timeout=60)
            if (out / "manifest.json").exists():  # atomic writes: always a whole manifest
                assert json.loads((out / "manifest.json").read_text())["format"] == "jmigrate-index"
        last = subprocess.run(command(src, out, srv.url), env=env(), capture_output=True, text=True,
                              timeout=300)
        assert last.returncode == 1, last.stderr
        inputs, requests = srv.stats.inputs, len(srv.stats.embedding_records())

    rows, vectors, rejects, manifest = read(out)
    ids = [(r["id"], r["n"]) for r in rows]
    assert len(ids) == len(set(ids)), "a row was written twice"
    assert rows == ref[0]
    np.testing.assert_array_equal(vectors, ref[1])
    assert rejects == ref[2]
    assert manifest["rows"] == ref[3]["rows"] and manifest["status"] == "complete"
    assert [s["sha256"] for s in manifest["shards"]] == [s["sha256"] for s in ref[3]["shards"]]
    # the vectors are the stub's answer for each text (not just equal to the reference run)
    want = stub_vectors("jina-embeddings-v3", [r["text"] for r in rows[:20]], task="retrieval.passage",
                        dimensions=256)
    np.testing.assert_allclose(vectors[:20], want, atol=1e-6)
    # Paying again is bounded by what was in flight at each kill: at most one encode call of
    # CONCURRENCY requests (up to CONCURRENCY*BATCH texts plus one unit) per kill.
    assert inputs <= ref_inputs + kills * (CONCURRENCY * BATCH + UNIT)
    assert requests <= ref_requests + kills * (CONCURRENCY + 2)


def test_dry_run_sends_nothing_and_the_key_is_never_echoed(tmp_path: Path, capsys) -> None:  # type: ignore[no-untyped-def]
    from jmigrate.cli.app import main

    src = tmp_path / "corpus.jsonl"
    corpus(src, 300)
    secret = "jina_do_not_print_me"
    with StubServer(api_key=KEY) as srv:
        assert main(["reindex", str(src), "--out", str(tmp_path / "o"), "--encoder", "api", "--api-url",
                     srv.url, "--api-key", secret, "--dry-run", "--json", "--price-per-mtok", "0.05"]) == 0
        report = json.loads(capsys.readouterr().out)
        assert srv.stats.requests == 0
        assert report["rows"]["source"] == 300 and report["tokens"] > 0 and report["cost"] > 0
        assert not (tmp_path / "o").exists()
        # a wrong key fails fast (401, not retried), with a message that does not contain it
        code = main(["reindex", str(src), "--out", str(tmp_path / "o"), "--encoder", "api", "--api-url",
                     srv.url, "--api-key", secret])
        captured = capsys.readouterr()
        assert code == 2
        assert secret not in captured.out + captured.err
        assert secret not in (tmp_path / "o" / "manifest.json").read_text()
        assert srv.stats.by_status[401] >= 1


@pytest.mark.parametrize("signum", [signal.SIGINT, signal.SIGTERM], ids=["SIGINT", "SIGTERM"])
def test_ctrl_c_in_a_real_process_stops_cleanly_and_resumes(tmp_path: Path, signum: int) -> None:
    src = tmp_path / "corpus.jsonl"
    corpus(src, 400)
    out = tmp_path / "o"
    with StubServer(api_key=KEY, latency=0.1) as srv:
        proc = subprocess.Popen(command(src, out, srv.url), env=env(), stdout=subprocess.DEVNULL,
                                stderr=subprocess.PIPE, text=True)
        deadline = time.monotonic() + 60
        while not list((out / ".jmigrate-work").glob("unit-*.arrow")) and time.monotonic() < deadline:
            time.sleep(0.05)
        proc.send_signal(signum)
        _, err = proc.communicate(timeout=60)
        assert proc.returncode == 130
        assert "Run the same command again to resume" in " ".join(err.split())
        assert json.loads((out / "manifest.json").read_text())["status"] == "interrupted"
        again = subprocess.run(command(src, out, srv.url), env=env(), capture_output=True, text=True,
                               timeout=120)
    assert again.returncode == 1
    rows, _, _, manifest = read(out)
    assert manifest["status"] == "complete" and len(rows) == manifest["rows"]["written"]
    assert len({(r["id"], r["n"]) for r in rows}) == len(rows)


def test_late_chunking_through_the_api_sends_one_document_per_request(tmp_path: Path) -> None:
    from jmigrate.cli.app import main

    corpus_file = Path(__file__).resolve().parents[1] / "fixtures" / "corpus" / "multilingual.jsonl"
    out = tmp_path / "o"
    with StubServer(api_key=KEY) as srv:
        assert main(["reindex", str(corpus_file), "--out", str(out), "--encoder", "api", "--api-url", srv.url,
                     "--api-key", KEY, "--late-chunking", "--chunk-by", "sentences", "--chunk-size", "12",
                     "--dimensions", "128", "--quiet"]) == 0
        records = [r for r in srv.stats.embedding_records() if r.status == 200]
    rows = pq.read_table(sorted(out.glob("part-*.parquet"))).to_pylist()
    by_doc: dict[str, list[dict]] = {}
    for r in rows:
        by_doc.setdefault(r["id"], []).append(r)
    assert all(rec.late_chunking for rec in records)
    # each request is exactly one document's chunks, in order (never two documents mixed)
    assert sorted(rec.inputs for rec in records) == sorted(tuple(c["text"] for c in chunks)
                                                         for chunks in by_doc.values())
    for chunks in by_doc.values():
        want = stub_vectors("jina-embeddings-v3", [c["text"] for c in chunks], task="retrieval.passage",
                            dimensions=128, late_chunking=True)
        np.testing.assert_allclose(np.array([c["vector"] for c in chunks], np.float32), want, atol=1e-6)


def test_server_faults_cost_retries_not_rows(tmp_path: Path, capsys) -> None:  # type: ignore[no-untyped-def]
    from jmigrate.cli.app import main
    from jmigrate.testing.server import Fault

    src = tmp_path / "corpus.jsonl"
    corpus(src, 300)
    args = ["--encoder", "api", "--api-key", KEY, "--batch-size", "8", "--concurrency", "4", "--unit-rows",
            "32", "--dimensions", "64", "--quiet", "--json"]
    with StubServer(api_key=KEY) as srv:
        assert main(["reindex", str(src), "--out", str(tmp_path / "clean"), "--api-url", srv.url, *args]) == 1
    capsys.readouterr()
    with StubServer(api_key=KEY) as srv:
        srv.faults.set_random([Fault.error(503), Fault.rate_limited(0.05), Fault.drop(), Fault.malformed(),
                               Fault.out_of_order(), Fault.wrong_count()], probability=0.3, seed=3)
        out = str(tmp_path / "faulty")
        assert main(["reindex", str(src), "--out", out, "--api-url", srv.url, *args]) == 1
        faults = sum(1 for r in srv.stats.records if r.fault)
    summary = json.loads(capsys.readouterr().out)
    assert faults > 5 and summary["retries"] > 0
    clean, faulty = read(tmp_path / "clean"), read(tmp_path / "faulty")
    assert clean[0] == faulty[0] and clean[2] == faulty[2]
    np.testing.assert_array_equal(clean[1], faulty[1])
