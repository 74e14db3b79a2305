"""`reindex --engine ray`: the same index as the local engine, byte for byte, on a local Ray cluster.

One Ray session for the whole module (start-up costs seconds); every run joins it. Shards and
rejects are compared byte for byte; the manifest differs only in its timestamps and request count
(an engine cuts requests its own way; the vectors and rows are the same)."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from helpers import STUB_KEY, write_jsonl

ray = pytest.importorskip("ray")

pytestmark = [pytest.mark.slow,
              # Ray's own modules warn on import/shutdown (deprecations in its dependencies): not ours
              pytest.mark.filterwarnings("ignore::DeprecationWarning"),
              pytest.mark.filterwarnings("ignore::ResourceWarning")]


@pytest.fixture(scope="module", autouse=True)
def cluster() -> Iterator[str]:
    ray.init(num_cpus=4, include_dashboard=False, log_to_driver=False)
    try:
        yield ray.get_runtime_context().gcs_address
    finally:
        ray.shutdown()


def _rows(n: int) -> list[dict[str, Any]]:
    rows = [{"id": f"d{i}", "text": f"document {i}: " + "word " * (i % 13)} for i in range(n)]
    rows[7]["text"] = ""  # rejected: the rejects file must match too
    rows[11]["id"] = "d3"  # duplicate id
    return rows


def _same_index(a: Path, b: Path) -> None:
    files_a = sorted(p.name for p in a.iterdir())
    assert files_a == sorted(p.name for p in b.iterdir())
    for name in files_a:
        if name.endswith(".parquet") or name == "rejects.jsonl":
            assert (a / name).read_bytes() == (b / name).read_bytes(), name
    ma, mb = (json.loads((p / "manifest.json").read_text()) for p in (a, b))
    for m in (ma, mb):
        # Run-specific: times, and what was paid (a killed run pays for answers it never journalled;
        # the resume test checks separately that finished units are not paid again).
        m.pop("started_at"), m.pop("finished_at"), m.pop("usage")
    assert ma == mb


def test_fake_encoder_same_index_as_local(tmp_path: Path, cli: Callable[..., Any]) -> None:
    src = write_jsonl(tmp_path / "docs.jsonl", _rows(700))
    common = ["--encoder", "fake", "--unit-rows", "64", "--shard-rows", "300", "-q"]
    assert cli("reindex", src, "--out", tmp_path / "local", *common).code == 1  # 2 rows rejected
    r = cli("reindex", src, "--out", tmp_path / "ray", *common, "--engine", "ray", "--ray-workers", "3")
    assert r.code == 1, r.err
    _same_index(tmp_path / "local", tmp_path / "ray")


def test_api_stub_same_index_and_worker_killed(tmp_path: Path, stub: Any) -> None:
    """With the API encoder against the loopback stub; one worker is killed mid-run (Ray restarts it
    and retries its call): the index still equals the local one and every row is paid once or more
    only for the killed call."""
    from jmigrate.index.run import reindex
    from jmigrate.index.settings import Settings

    src = write_jsonl(tmp_path / "docs.jsonl", _rows(600))
    flags = {"encoder": "api", "api_url": stub.url, "unit_rows": 32, "batch_size": 16, "concurrency": 2}
    local = reindex(str(src), Settings.resolve({**flags, "out": tmp_path / "local"}), api_key=STUB_KEY)
    assert local.status == "complete"
    sent_local = stub.stats.inputs
    killed: list[int] = []

    def kill_one(stats: Any, encoder: Any) -> None:
        if not killed and stats.written > 0:
            killed.append(1)
            ray.kill(encoder.workers[0], no_restart=False)

    stub.latency = 0.02
    notes: list[str] = []
    result = reindex(str(src), Settings.resolve({**flags, "out": tmp_path / "ray", "engine": "ray",
                                                 "ray_workers": 2}),
                     api_key=STUB_KEY, on_progress=kill_one, on_note=notes.append)
    assert result.status == "complete" and killed
    assert any("Ray worker 1 was restarted" in n for n in notes), notes
    _same_index(tmp_path / "local", tmp_path / "ray")
    assert stub.stats.inputs - sent_local >= sent_local  # every row sent (a retried call may repeat)
    assert stub.stats.by_status.get(429, 0) == 0


def _journalled_rows(out: Path) -> int:
    """Rows a resumed run does not pay for again: committed shards plus journalled units."""
    import pyarrow as pa

    m = json.loads((out / "manifest.json").read_text())
    done = m["rows"]["written"]
    next_unit = m["checkpoint"]["next_unit"]
    work = out / ".jmigrate-work"
    for p in sorted(work.glob("unit-*.arrow")) if work.is_dir() else []:
        if int(p.name[5:-6]) >= next_unit:
            with pa.OSFile(str(p), "rb") as f:
                done += pa.ipc.open_file(f).read_all().num_rows
    return done


def test_driver_sigkilled_then_resumed(tmp_path: Path, stub: Any, cluster: str,
                                       cli: Callable[..., Any]) -> None:
    rows = [{"id": f"d{i}", "text": f"document {i} " + "word " * (i % 7)} for i in range(900)]
    src = write_jsonl(tmp_path / "docs.jsonl", rows)
    common = ["--encoder", "api", "--api-url", stub.url, "--unit-rows", "30", "--shard-rows", "120",
              "--batch-size", "15", "--concurrency", "1", "-q"]
    assert cli("reindex", src, "--out", tmp_path / "local", *common, "--api-key", STUB_KEY).code == 0
    stub.stats.inputs = 0
    stub.latency = 0.15
    out = tmp_path / "ray"
    env = {**os.environ, "JINA_API_KEY": STUB_KEY}
    cmd = [sys.executable, "-m", "jmigrate", "reindex", str(src), "--out", str(out), *common,
           "--engine", "ray", "--ray-address", cluster]
    log = tmp_path / "driver.err"
    with open(log, "wb") as err:
        proc = subprocess.Popen(cmd, env=env, stdout=subprocess.DEVNULL, stderr=err)
    try:
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline and proc.poll() is None:
            if list(out.glob("part-*.parquet")):
                break
            time.sleep(0.05)
        assert proc.poll() is None, log.read_text(errors="replace")
        proc.send_signal(signal.SIGKILL)
    finally:
        proc.wait()
    # The killed driver's actors are stopped by Ray a moment later: what they had in flight is the
    # loss window of a crash (answered, never journalled), not the resumed run's spending.
    last = -1
    while stub.stats.inputs != last:
        last = stub.stats.inputs
        time.sleep(1.0)
    stub.latency = 0.0
    done = _journalled_rows(out)
    assert 0 < done < len(rows)
    before = stub.stats.inputs
    r = cli("reindex", src, "--out", out, *common, "--api-key", STUB_KEY, "--engine", "ray")
    assert r.code == 0, r.err
    _same_index(tmp_path / "local", out)
    # finished units were not paid again: the resumed run sent exactly the rest
    assert stub.stats.inputs - before == len(rows) - done


def test_shared_limiter_holds_the_stub_rpm(tmp_path: Path, cli: Callable[..., Any]) -> None:
    """Three workers share one budget: the stub (150 RPM, 1 s burst) never answers 429 at --rpm 120.
    Each worker limiting itself alone would send 3 x 120 RPM."""
    from jmigrate.testing.server import StubServer

    src = write_jsonl(tmp_path / "docs.jsonl", [{"id": str(i), "text": f"t {i}"} for i in range(96)])
    with StubServer(api_key=STUB_KEY, rpm=150, burst_seconds=1.0) as srv:
        r = cli("reindex", src, "--out", tmp_path / "ray", "--encoder", "api", "--api-url", srv.url,
                "--api-key", STUB_KEY, "--rpm", "120", "--batch-size", "4", "--unit-rows", "8",
                "--concurrency", "2", "--engine", "ray", "--ray-workers", "3", "-q")
        assert r.code == 0, r.err
        assert srv.stats.by_status.get(429, 0) == 0
        assert srv.stats.inputs == 96


def test_ray_options_need_the_ray_engine(tmp_path: Path, cli: Callable[..., Any]) -> None:
    r = cli("reindex", tmp_path / "x.jsonl", "--out", tmp_path / "o", "--encoder", "fake",
            "--ray-workers", "3")
    assert r.code == 2 and "--ray-workers is for --engine ray" in r.err


def test_a_pool_the_cluster_cannot_hold_is_reported(tmp_path: Path, cli: Callable[..., Any],
                                                    monkeypatch: pytest.MonkeyPatch) -> None:
    """Workers asking for a GPU on a cluster without one: notes say what waits on what, then exit 2
    (instead of a silent hang); nothing is written."""
    from jmigrate.index.engines import ray as engine

    monkeypatch.setattr(engine, "STALL_SECONDS", 0.5)
    monkeypatch.setattr(engine, "START_STALLS", 3)
    src = write_jsonl(tmp_path / "docs.jsonl", _rows(20))
    r = cli("reindex", src, "--out", tmp_path / "o", "--encoder", "fake", "--engine", "ray",
            "--ray-gpus-per-worker", "1")
    assert r.code == 2
    err = " ".join(r.err.split())
    assert "still waiting for the Ray workers to start" in err and "1 GPU each" in err
    assert "gave up waiting for the Ray workers to start" in err
    assert not (tmp_path / "o").exists()


def test_started_locally_finished_on_ray(tmp_path: Path) -> None:
    """The engine is not part of the fingerprint: a local run stopped halfway is finished on Ray, and
    the index equals an uninterrupted local run's."""
    import threading

    from jmigrate.index.run import reindex
    from jmigrate.index.settings import Settings

    src = write_jsonl(tmp_path / "docs.jsonl", _rows(2000))
    flags = {"encoder": "fake", "unit_rows": 50, "shard_rows": 400, "batch_size": 25}
    whole = reindex(str(src), Settings.resolve({**flags, "out": tmp_path / "local"}))
    assert whole.status == "complete"
    from jmigrate.encoders.fake import FakeEncoder

    stop = threading.Event()

    class StopsHalfway(FakeEncoder):  # deterministic, whatever the machine's speed
        def encode_batch(self, texts: Any, **kw: Any) -> Any:
            if len(self.batches) >= 3:  # one call per gathered group (200 texts)
                stop.set()
            return super().encode_batch(texts, **kw)

    out = tmp_path / "mixed"
    first = reindex(str(src), Settings.resolve({**flags, "out": out}), stop=stop,
                    encoder=StopsHalfway(model=whole.manifest.model, batch_size=25))
    assert first.status == "interrupted" and 0 < first.manifest.rows.source < 2000
    second = reindex(str(src), Settings.resolve({**flags, "out": out, "engine": "ray"}))
    assert second.status == "complete"
    _same_index(tmp_path / "local", out)


def test_onnx_tiny_model_same_rows_and_vectors(tmp_path: Path, cli: Callable[..., Any]) -> None:
    """The local ONNX backend on the workers (the tiny test model): the same rows, ids, texts and
    rejects; the vectors equal to float32 rounding. ONNX batches inputs sorted by length within one
    call, so which texts share a call (the local engine gathers queued units, Ray spreads slices over
    workers) can move the last bit of a component (seen: 9e-8)."""
    pytest.importorskip("onnxruntime")
    import numpy as np
    from helpers import read_index

    from jmigrate.testing.tiny_models import build_model_dir

    model = build_model_dir(tmp_path / "tiny-v3")
    src = write_jsonl(tmp_path / "docs.jsonl", _rows(300))
    common = ["--encoder", "onnx", "--model-path", model, "--dimensions", "64", "--unit-rows", "40", "-q"]
    assert cli("reindex", src, "--out", tmp_path / "local", *common).code == 1  # 2 rows rejected
    assert cli("reindex", src, "--out", tmp_path / "ray", *common, "--engine", "ray").code == 1
    rows_l, vec_l, rej_l = read_index(tmp_path / "local")
    rows_r, vec_r, rej_r = read_index(tmp_path / "ray")
    assert rows_l == rows_r and rej_l == rej_r
    np.testing.assert_allclose(vec_r, vec_l, rtol=0, atol=1e-6)
