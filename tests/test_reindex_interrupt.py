"""Ctrl-C on a real `python -m jmigrate reindex` process against the loopback stub: the first SIGINT
is acknowledged at once, nothing new is sent (a request waiting on the rate limiter is dropped, not
sent), the run exits 130 and the same command finishes it; a second SIGINT abandons what is in flight."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from helpers import STUB_KEY, read_shards, write_jsonl

from jmigrate.testing.server import StubServer

pytestmark = pytest.mark.slow  # real processes and signals

ROWS = 400
STOPPING = re.compile(r"stopping: (\d+) requests? in flight, Ctrl-C again to abandon (it|them)")


def command(src: Path, out: Path, url: str, *extra: str) -> list[str]:
    return [sys.executable, "-m", "jmigrate", "reindex", str(src), "--out", str(out), "--encoder", "api",
            "--api-url", url, "--batch-size", "8", "--unit-rows", "16", "--dimensions", "64",
            "--concurrency", "4", *extra]


def corpus(tmp_path: Path) -> Path:
    return write_jsonl(tmp_path / "src.jsonl",
                       ({"id": f"r{i}", "text": f"row {i} about refunds and invoices"} for i in range(ROWS)))


def start(cmd: list[str]) -> subprocess.Popen[str]:
    return subprocess.Popen(cmd, env={**os.environ, "JINA_API_KEY": STUB_KEY}, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)


def wait_for_new_request(srv: StubServer, proc: subprocess.Popen[str], after: int) -> None:
    """Until the stub has received more than `after` embedding requests (or the run ended)."""
    deadline = time.monotonic() + 120
    while len(srv.stats.embedding_records()) <= after and proc.poll() is None:
        assert time.monotonic() < deadline, "no request reached the stub"
        time.sleep(0.002)


def wait_for_in_flight(srv: StubServer, proc: subprocess.Popen[str], count: int) -> None:
    """Until the stub holds `count` requests unanswered (records only show answered ones)."""
    deadline = time.monotonic() + 120
    while srv.in_flight < count and proc.poll() is None:
        assert time.monotonic() < deadline, "the requests did not reach the stub"
        time.sleep(0.002)


def test_first_ctrl_c_sends_nothing_new_and_exits_130_resumable(tmp_path: Path) -> None:
    src, out = corpus(tmp_path), tmp_path / "out"
    # 60 requests/min: the client's limiter holds the other requests back about a second each, so
    # right after a request arrives, the next ones are all waiting on the limiter, none on the wire.
    with StubServer(api_key=STUB_KEY, latency=1.5) as srv:
        proc = start(command(src, out, srv.url, "--rpm", "60"))
        wait_for_new_request(srv, proc, 2)
        assert proc.poll() is None, proc.communicate()
        signalled = time.time()
        proc.send_signal(signal.SIGINT)
        _, err = proc.communicate(timeout=60)
        assert proc.returncode == 130, err
        late = [r for r in srv.stats.embedding_records() if r.wall > signalled]
        assert late == [], f"{len(late)} request(s) sent after Ctrl-C"
        said = STOPPING.search(err)
        assert said and int(said.group(1)) >= 1, err  # the request still in flight was waited for
        assert err.index("stopping:") < err.index("interrupted:")
        assert "Run the same command again to resume" in err
        sent = len(srv.stats.embedding_records())
        srv.stats.records.clear()

        again = subprocess.run(command(src, out, srv.url), env={**os.environ, "JINA_API_KEY": STUB_KEY},
                               capture_output=True, text=True, timeout=120)
        assert again.returncode == 0, again.stderr
    table = read_shards(out)
    assert sorted(table.column("id").to_pylist()) == sorted(f"r{i}" for i in range(ROWS))
    # What was answered was journalled, not paid for again: at most the requests in flight at the
    # signal (a unit is two requests: one answered, the other dropped) are sent twice.
    assert sent < -(-ROWS // 8)
    assert sent + len([r for r in srv.stats.embedding_records() if r.status == 200]) <= -(-ROWS // 8) + 4


def test_second_ctrl_c_abandons_the_requests_in_flight(tmp_path: Path) -> None:
    src, out = corpus(tmp_path), tmp_path / "out"
    with StubServer(api_key=STUB_KEY, latency=30.0) as srv:  # answers nobody will wait for
        proc = start(command(src, out, srv.url))
        # all four slots busy. Not wait_for_new_request: the stub records a request when it has answered
        # it, so that waited for the first four answers (30 s) and raced the next requests' sending
        # (a loaded CI run signalled between them and saw "no request in flight").
        wait_for_in_flight(srv, proc, 4)
        proc.send_signal(signal.SIGINT)
        deadline = time.monotonic() + 30
        assert proc.stderr is not None
        first = proc.stderr.readline()
        while "stopping:" not in first:
            assert time.monotonic() < deadline and proc.poll() is None, first
            first = proc.stderr.readline()
        signalled = time.time()
        proc.send_signal(signal.SIGINT)
        _, rest = proc.communicate(timeout=60)
        assert proc.returncode == 130, rest
        assert STOPPING.search(first), first
        assert re.search(r"abandoning \d+ requests? in flight", rest), rest
        assert [r for r in srv.stats.embedding_records() if r.wall > signalled] == []
    with StubServer(api_key=STUB_KEY) as srv:
        again = subprocess.run(command(src, out, srv.url), env={**os.environ, "JINA_API_KEY": STUB_KEY},
                               capture_output=True, text=True, timeout=120)
        assert again.returncode == 0, again.stderr
    assert sorted(read_shards(out).column("id").to_pylist()) == sorted(f"r{i}" for i in range(ROWS))
