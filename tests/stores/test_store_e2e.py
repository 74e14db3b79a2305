"""A database migration end to end, per store, on the real engines: a v2 collection of 2,000 multilingual
Tatoeba sentences is planned, reindexed through the loopback API stub into a new v3 collection, the
reindex is SIGKILLed during the load and resumed, the two collections are verified, cut over and rolled
back. Row counts, ids, vectors and texts equal the Parquet shards; the v2 side is unchanged row for row."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pyarrow.parquet as pq
import pytest
from helpers import STUB_KEY
from store_engines import Engine, ids_of

from jmigrate.cli.app import main
from jmigrate.stores import open_store

FIXTURES = Path(__file__).resolve().parents[2] / "fixtures" / "stores"
V2 = "jina-embeddings-v2-base-en"
KEY = STUB_KEY

pytestmark = pytest.mark.slow


def _corpus(backend: str) -> dict[str, object]:
    from jmigrate.testing.server import stub_vectors

    rows = [json.loads(line) for line in (FIXTURES / "tatoeba-2000.jsonl").read_text("utf-8").splitlines()]
    if backend == "qdrant":
        # qdrant-client's local mode is pure Python (one SQLite commit per point, pydantic per row): 1,000
        # rows (125 per language) keep its run near the others'; the server path is the same code
        rows = [r for r in rows if r["pair"] < 125]
    texts = [r["text"] for r in rows]
    return {
        "ids": [r["id"] for r in rows],
        "texts": texts,
        "titles": [r["lang"] for r in rows],
        "counts": [r["pair"] for r in rows],
        # the v2 vectors the stub gives for v2 documents, so v2 queries through the stub match them
        "vectors": stub_vectors(V2, texts).astype(np.float32),
    }


def _shards(out: Path) -> dict[str, tuple[np.ndarray, str]]:
    got: dict[str, tuple[np.ndarray, str]] = {}
    for f in sorted(out.glob("part-*.parquet")):
        t = pq.read_table(f)
        vecs = t.column("vector").combine_chunks().flatten().to_numpy().reshape(t.num_rows, -1)
        for i, v, tx in zip(t.column("id").to_pylist(), vecs, t.column("text").to_pylist(), strict=True):
            got[i] = (v, tx)
    return got


def _unit(v: np.ndarray) -> np.ndarray:
    return v / np.linalg.norm(v, axis=-1, keepdims=True)


def _kill_during_load(cmd: list[str], out: Path, env: dict[str, str]) -> int:
    """Run the reindex and SIGKILL it once the load into the store has committed its first shard."""
    proc = subprocess.Popen(cmd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    state = out / "store-load.json"
    deadline = time.monotonic() + 240
    try:
        while proc.poll() is None and time.monotonic() < deadline:
            try:
                if json.loads(state.read_text("utf-8")).get("shards"):
                    proc.send_signal(signal.SIGKILL)
                    break
            except (OSError, ValueError):
                pass
            time.sleep(0.005)
        proc.wait(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert proc.stderr is not None
    err = proc.stderr.read().decode()
    proc.stderr.close()
    assert proc.returncode == -signal.SIGKILL, f"the load finished before it could be killed: {err[-500:]}"
    return len(json.loads(state.read_text("utf-8"))["shards"])


def test_a_database_migration_end_to_end(
    engine: Engine, tmp_path: Path, stub: object, capsys: pytest.CaptureFixture[str]
) -> None:
    data = _corpus(engine.backend)
    v2 = engine.load_v2("docs", data)
    before = engine.snapshot("docs")
    v3 = engine.uri("docs_v3")
    n = len(data["ids"])  # type: ignore[arg-type]

    # 1. plan: the collection, its likely model, and the command that re-embeds it
    assert main(["plan", "--store", v2, "--format", "json"]) == 1
    (info,) = json.loads(capsys.readouterr().out)["stores"]
    assert info["rows"] == n and info["dims"] == 768 and V2 in info["likely_models"]
    assert "--to" in info["reindex_command"]

    # 2. reindex through the loopback API stub; SIGKILL during the load; run the same command again
    out = tmp_path / "index"
    url = stub.url  # type: ignore[attr-defined]
    cmd = [
        sys.executable,
        "-m",
        "jmigrate",
        "reindex",
        v2,
        "--out",
        str(out),
        "--to",
        v3,
        "--api-url",
        url,
        "--shard-rows",
        "100",
        "--unit-rows",
        "100",
        "-q",
    ]
    env = {**os.environ, "JINA_API_KEY": KEY, "PYTHONWARNINGS": "ignore"}
    loaded_before_kill = _kill_during_load(cmd, out, env)
    assert 1 <= loaded_before_kill < n // 100  # killed after some shards were loaded, before all were
    # the same command again (run in this process: a new one would only add its start-up time)
    if engine.backend == "chroma":  # Chroma caches a folder's state per process; another one wrote it
        from chromadb.api.shared_system_client import SharedSystemClient

        SharedSystemClient.clear_system_cache()
    resume = [a for a in cmd[3:] if a != "-q"] + ["--api-key", KEY, "-q"]
    assert main(resume) == 0, capsys.readouterr().err

    # counts, ids, vectors and texts in the v3 collection equal the Parquet shards
    shards = _shards(out)
    assert len(shards) == n
    with open_store(v3) as store:
        assert store.count() == n
        pages = list(store.pages(500))
    assert sorted(ids_of(pages), key=int) == sorted(shards, key=int)
    for p in pages:
        want = np.stack([shards[str(i)][0] for i in p.ids])
        np.testing.assert_allclose(_unit(p.vectors), _unit(want), atol=1e-5)
        assert list(p.texts or []) == [shards[str(i)][1] for i in p.ids]

    # 3. verify the two collections (exact search, and each store's own search)
    # (judgements only for PostgreSQL: the paired statistics cost seconds and are the same code for all)
    qrels = ["--qrels", str(FIXTURES / "tatoeba-qrels.tsv")] if engine.backend == "pgvector" else []
    code = main(
        [
            "verify",
            "--v2",
            v2,
            "--v3",
            v3,
            "--queries",
            str(FIXTURES / "tatoeba-queries.jsonl"),
            *qrels,
            "--api-url",
            url,
            "--api-key",
            KEY,
            "--v2-model",
            V2,
            "--search-in-store",
            "--format",
            "json",
            "-k",
            "10",
        ]
    )
    report_out, err = capsys.readouterr()
    assert code == 0, err
    report = json.loads(report_out)
    search = {s["side"]: s for s in report["store_search"]}
    assert set(search) == {"v2", "v3"}
    for s in search.values():
        assert s["queries"] == 96 and s["k"] == 10 and 0.0 <= s["recall"] <= 1.0
    with open_store(v3) as store:
        rec = store.read_record("verify")
    assert (rec["v2_collection"], rec["v3_collection"], rec["v3_worse"]) == ("docs", "docs_v3", False)
    assert rec["has_qrels"] is bool(qrels) and rec["store_search"] == report["store_search"]

    # 4. cut over, then roll back
    assert main(["cutover", v3, "--to", "v3"]) == 0
    said = capsys.readouterr().out
    assert "docs_live now serves docs_v3" in said and "retrieval.query" in said and "roll back" in said
    with open_store(engine.uri("docs_live")) as live:
        assert live.count() == n and live.describe().width == 1024
    assert main(["cutover", v3, "--to", "v2"]) == 0
    with open_store(engine.uri("docs_live")) as live:
        assert live.count() == n and live.describe().width == 768

    # the v2 collection: the same rows, texts and vectors as before it all
    assert engine.snapshot("docs") == before
