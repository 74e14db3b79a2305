"""`reindex URI --out DIR --to URI` through the CLI on the real engines: rows streamed out of the v2
collection, the v3 vectors loaded into a new collection equal to the shards, v2 untouched, reruns and a
load stopped midway resume without duplicates, bad input refused before anything is spent."""

from __future__ import annotations

import threading
from pathlib import Path

import numpy as np
import pyarrow.parquet as pq
import pytest
from store_engines import Engine, ids_of, rows

from jmigrate.cli.app import main
from jmigrate.stores import open_store
from jmigrate.stores.load import load_index


def _shards(out: Path) -> dict[str, tuple[np.ndarray, str | None]]:
    got = {}
    for f in sorted(out.glob("part-*.parquet")):
        t = pq.read_table(f)
        vecs = t.column("vector").combine_chunks().flatten().to_numpy().reshape(t.num_rows, -1)
        texts = t.column("text").to_pylist()
        for i, v, tx in zip(t.column("id").to_pylist(), vecs, texts, strict=True):
            got[i] = (v, tx)
    return got


def _unit(v: np.ndarray) -> np.ndarray:
    return v / np.linalg.norm(v, axis=-1, keepdims=True)


def test_reindex_a_store_into_a_new_collection(
    engine: Engine, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    n = 300
    data = rows(n, 16)
    src = engine.load_v2("docs", data)
    before = engine.snapshot("docs")
    out = tmp_path / "idx"
    target = engine.uri("docs_v3")
    argv = [
        "reindex",
        src,
        "--out",
        str(out),
        "--encoder",
        "fake",
        "--dimensions",
        "64",
        "--to",
        target,
        "--unit-rows",
        "64",
        "-q",
    ]
    assert main(argv) == 0, capsys.readouterr().err
    shards = _shards(out)
    assert sorted(shards, key=int) == [str(i) for i in range(n)]
    with open_store(target) as v3:
        d = v3.describe()
        assert d.rows == n and d.width == 64 and d.likely_models == ["jina-embeddings-v3"]
        pages = list(v3.pages(100))
        assert sorted(ids_of(pages), key=int) == [str(i) for i in range(n)]
        for p in pages:
            for i, vec, text in zip(p.ids, p.vectors, p.texts or [], strict=True):
                want, want_text = shards[str(i)]
                np.testing.assert_allclose(_unit(vec), _unit(want), atol=1e-5)
                assert text == want_text == data["texts"][int(i)]
        assert pages[0].metadata and {"title", "n"} <= set(pages[0].metadata[0])
    assert engine.snapshot("docs") == before  # v2 never modified
    # the same command again: nothing to embed, nothing loaded twice
    assert main(argv) == 0
    with open_store(target) as v3:
        assert v3.count() == n


def test_a_load_stopped_midway_resumes_without_duplicates(engine: Engine, tmp_path: Path) -> None:
    n = 260
    src = engine.load_v2("docs", rows(n, 8))
    out = tmp_path / "idx"
    assert (
        main(
            [
                "reindex",
                src,
                "--out",
                str(out),
                "--encoder",
                "fake",
                "--dimensions",
                "32",
                "--shard-rows",
                "64",
                "--unit-rows",
                "32",
                "-q",
            ]
        )
        == 0
    )
    target = engine.uri("docs_v3")
    stop = threading.Event()
    with pytest.raises(KeyboardInterrupt):
        load_index(out, target, page_rows=50, stop=stop, on_progress=lambda done, total: stop.set())
    with open_store(target) as partial:
        assert 0 < partial.count() < n
    result = load_index(out, target, page_rows=50)
    assert result.rows == n and result.sample_checked > 0
    with open_store(target) as v3:
        assert v3.count() == n and sorted(ids_of(list(v3.pages(100))), key=int) == [str(i) for i in range(n)]


def test_bad_targets_and_sources_are_refused_before_anything_is_spent(
    engine: Engine, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    src = engine.load_v2("docs", rows(40, 8, missing_text_every=9))
    out = tmp_path / "idx"
    base = ["reindex", src, "--out", str(out), "--encoder", "fake", "--dimensions", "32", "-q"]
    assert main(base) == 2
    assert "have no text" in capsys.readouterr().err
    assert not out.exists()  # nothing written
    good = engine.load_v2("complete", rows(40, 8))
    assert (
        main(["reindex", good, "--out", str(out), "--encoder", "fake", "--to", engine.uri("complete")]) == 2
    )
    err = capsys.readouterr().err
    assert "NEW collection" in err or "not created by jmigrate" in err
    assert not out.exists()
    assert main(["reindex", engine.uri("nope"), "--out", str(out), "--encoder", "fake"]) == 2
    assert "nope" in capsys.readouterr().err
