"""Combined API faults over a whole reindex run against the loopback stub: every kind of misbehaviour
at once either costs retries only (same rows, same vectors as a clean run), or stops the run with a
clear error (exit 2) after which a rerun resumes with nothing lost and nothing written twice."""

from __future__ import annotations

import json
import socket
import struct
import threading
import time
from pathlib import Path

import numpy as np
import pyarrow.parquet as pq
import pytest
from helpers import read_index

from jmigrate.cli.app import main
from jmigrate.encoders.api import JinaAPIEncoder
from jmigrate.errors import EncoderError
from jmigrate.index.pipeline import Settings, reindex
from jmigrate.index.sources import open_source
from jmigrate.testing.server import Fault, StubServer, stub_vectors

KEY = "jina_faults_api_key"
CONCURRENCY, BATCH, UNIT = 3, 8, 16
SETTINGS = Settings(model="jina-embeddings-v3", task="retrieval.passage", dimensions=64, encoder="api",
                    unit_rows=UNIT, shard_rows=80)


def corpus(path: Path, n: int = 240) -> Path:
    with open(path, "w", encoding="utf-8") as f:
        for i in range(n):
            text = "" if i % 31 == 7 else f"ticket {i}: refund for order {i * 7 % 101}, customer {i % 13}"
            f.write(json.dumps({"id": f"t{i}", "text": text}) + "\n")
    return path


def encoder(url: str, **kw: object) -> JinaAPIEncoder:
    opts: dict[str, object] = {"api_url": url, "api_key": KEY, "concurrency": CONCURRENCY,
                               "batch_size": BATCH, "backoff_base": 0.01, "backoff_max": 0.05, **kw}
    return JinaAPIEncoder(**opts)  # type: ignore[arg-type]


@pytest.fixture
def clean(tmp_path: Path) -> tuple[Path, tuple[list[dict], np.ndarray, str], int]:
    src = corpus(tmp_path / "c.jsonl")
    with StubServer(api_key=KEY) as srv, encoder(srv.url) as enc:
        reindex(open_source(str(src)), tmp_path / "clean", enc, SETTINGS, concurrency=CONCURRENCY)
        inputs = srv.stats.inputs
    return src, read_index(tmp_path / "clean"), inputs


def test_every_fault_at_once_costs_retries_not_rows(tmp_path: Path, clean) -> None:  # type: ignore[no-untyped-def]
    src, want, _ = clean
    with StubServer(api_key=KEY) as srv, encoder(srv.url, timeout=0.5, max_attempts=12) as enc:
        every = [Fault.rate_limited(0.05), Fault.rate_limited(0.1, http_date=True), Fault.rate_limited(None),
                 Fault.error(500), Fault.error(503), Fault.error(502), Fault.timeout(1.5), Fault.drop(),
                 Fault.malformed(), Fault.truncated(), Fault.wrong_count(), Fault.out_of_order(), Fault.nan(),
                 Fault.wrong_dimensions()]
        # each kind once (both Retry-After forms and none), bursts of 429, then a random mix of all
        srv.faults.script([f for fault in every for f in (fault, None)] + [Fault.rate_limited(0.02)] * 6)
        srv.faults.set_random(every, probability=0.3, seed=11)
        result = reindex(open_source(str(src)), tmp_path / "o", enc, SETTINGS, concurrency=CONCURRENCY)
        deadline = time.monotonic() + 10  # a timed-out request is recorded when the stub gives up on it
        while not any(r.fault == "timeout" for r in srv.stats.records) and time.monotonic() < deadline:
            time.sleep(0.05)
        kinds = {r.fault for r in srv.stats.records if r.fault}
        http_date_429 = [r for r in srv.stats.records if r.fault == "rate_limited" and r.retry_after_until]
    assert result.status == "complete"
    assert {"rate_limited", "error", "timeout", "drop", "malformed", "truncated", "wrong_count",
            "out_of_order", "nan", "wrong_dimensions"} <= kinds
    assert http_date_429 and result.usage["retries"] >= 10
    got = read_index(tmp_path / "o")
    assert got[0] == want[0] and got[2] == want[2]
    np.testing.assert_array_equal(got[1], want[1])
    np.testing.assert_allclose(got[1], stub_vectors("jina-embeddings-v3", [r["text"] for r in got[0]],
                                                    task="retrieval.passage", dimensions=64), atol=1e-6)


def test_a_5xx_storm_stops_the_run_and_a_rerun_resumes_without_loss(tmp_path: Path, clean) -> None:  # type: ignore[no-untyped-def]
    src, want, clean_inputs = clean
    out = tmp_path / "o"
    with StubServer(api_key=KEY) as srv:
        srv.faults.script([None] * 9)  # some units get through, then the server is down for good
        srv.faults.set_random([Fault.error(503)], probability=1.0)
        with encoder(srv.url, max_attempts=3) as enc, pytest.raises(EncoderError, match="after 3 attempts"):
            reindex(open_source(str(src)), out, enc, SETTINGS, concurrency=CONCURRENCY)
        manifest = json.loads((out / "manifest.json").read_text())
        assert manifest["status"] == "failed"
        srv.faults.clear()
        with encoder(srv.url) as enc:
            result = reindex(open_source(str(src)), out, enc, SETTINGS, concurrency=CONCURRENCY)
        inputs = srv.stats.inputs
    assert result.status == "complete" and result.stats.resumed_rows > 0
    got = read_index(out)
    assert got[0] == want[0] and got[2] == want[2]
    np.testing.assert_array_equal(got[1], want[1])
    # the answers of the failed group's other requests are all that may be paid twice
    assert inputs <= clean_inputs + CONCURRENCY * BATCH + UNIT


def test_out_of_credit_mid_run_is_exit_2_and_resumes_after_top_up(tmp_path: Path, clean, capsys) -> None:  # type: ignore[no-untyped-def]
    src, want, clean_inputs = clean
    out = tmp_path / "o"
    args = ["reindex", str(src), "--out", str(out), "--encoder", "api", "--api-key", KEY, "--concurrency",
            str(CONCURRENCY), "--batch-size", str(BATCH), "--unit-rows", str(UNIT), "--shard-rows", "80",
            "--dimensions", "64", "--quiet"]
    with StubServer(api_key=KEY) as srv:
        srv.faults.script([None] * 12)
        srv.faults.set_random([Fault.error(402, "insufficient balance")], probability=1.0)
        capsys.readouterr()
        assert main([*args, "--api-url", srv.url]) == 2
        err = " ".join(capsys.readouterr().err.split())
        assert "HTTP 402" in err and "insufficient balance" in err
        assert "Traceback" not in err and KEY not in err
        srv.faults.clear()
        assert main([*args, "--api-url", srv.url]) == 1  # 1: the empty texts are rejected
        inputs = srv.stats.inputs
    got = read_index(out)
    assert got[0] == want[0] and got[2] == want[2]
    np.testing.assert_array_equal(got[1], want[1])
    assert len({r["id"] for r in got[0]}) == len(got[0])
    assert inputs <= clean_inputs + CONCURRENCY * BATCH + UNIT


def test_a_client_dying_mid_request_prints_no_traceback_in_the_stub(capsys) -> None:  # type: ignore[no-untyped-def]
    with StubServer(api_key=KEY) as srv:
        before = threading.active_count()
        s = socket.create_connection(("127.0.0.1", srv.port))
        s.sendall(b"POST /v1/embeddings HTTP/1.1\r\nHost: x\r\n")  # headers never finished
        time.sleep(0.05)
        s.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))  # close with RST
        s.close()
        deadline = time.monotonic() + 5
        while threading.active_count() > before and time.monotonic() < deadline:
            time.sleep(0.01)
    assert "Traceback" not in capsys.readouterr().err


def test_every_shard_says_the_same_settings_whatever_the_run_learnt_on_the_way(tmp_path: Path, clean) -> None:  # type: ignore[no-untyped-def]
    """Regression: the model name the server reports (known after the first answer) leaked into the
    shards' `jmigrate.manifest` metadata, so a resumed run's shards were not byte-identical."""
    shards = sorted((tmp_path / "clean").glob("part-*.parquet"))
    assert len(shards) >= 3
    kvs = {pq.read_metadata(p).metadata[b"jmigrate.manifest"] for p in shards}
    assert len(kvs) == 1
    manifest = json.loads((tmp_path / "clean" / "manifest.json").read_text())
    assert "not real v3" in manifest["served_model"]  # still recorded in the manifest itself


@pytest.mark.slow
def test_a_second_reindex_process_on_the_same_folder_is_refused(tmp_path: Path, capsys) -> None:  # type: ignore[no-untyped-def]
    import os
    import subprocess
    import sys

    src = corpus(tmp_path / "c.jsonl")
    out = tmp_path / "o"
    args = ["reindex", str(src), "--out", str(out), "--encoder", "api", "--concurrency", "1", "--batch-size",
            "4", "--unit-rows", str(UNIT), "--dimensions", "64", "--quiet"]
    with StubServer(api_key=KEY, latency=0.2) as srv:  # slow: the first run is still going
        first = subprocess.Popen([sys.executable, "-m", "jmigrate", *args, "--api-url", srv.url],
                                 env={**os.environ, "JINA_API_KEY": KEY}, stdout=subprocess.DEVNULL,
                                 stderr=subprocess.PIPE, text=True)
        try:
            deadline = time.monotonic() + 60
            while srv.stats.requests == 0 and time.monotonic() < deadline:  # it holds the lock by now
                time.sleep(0.02)
            capsys.readouterr()
            assert main([*args, "--api-url", srv.url, "--api-key", KEY]) == 2
            err = " ".join(capsys.readouterr().err.split())
            assert f"another jmigrate reindex (pid {first.pid}) is writing" in err
            # --restart does not get past the lock either
            assert main([*args, "--api-url", srv.url, "--api-key", KEY, "--restart"]) == 2
        finally:
            first.terminate()
            _, first_err = first.communicate(timeout=60)
        assert first.returncode == 130, first_err
        assert main([*args, "--api-url", srv.url, "--api-key", KEY]) == 1  # resumes once the first is gone
