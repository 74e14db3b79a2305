"""`jmigrate plan --store URI` on the real engines: rows, width, likely model, whether the text is stored,
and the exact reindex command, in the text and JSON reports."""

from __future__ import annotations

import json
import shlex
from pathlib import Path

import pytest
from store_engines import Engine, PgEngine, rows

from jmigrate.cli.app import main


def test_plan_reports_a_store_collection(engine: Engine, capsys: pytest.CaptureFixture[str]) -> None:
    uri = engine.load_v2("docs", rows(120, 768, missing_text_every=50))
    assert main(["plan", "--store", uri]) == 1  # a v2 collection is work left
    out = capsys.readouterr().out
    assert "120 rows" in out and "768 dims" in out and "jina-embeddings-v2-base-en" in out
    assert "3 of 120 rows have no text" in out
    assert main(["plan", "--store", uri, "--format", "json"]) == 1
    stores = json.loads(capsys.readouterr().out)["stores"]
    (s,) = stores
    assert s["kind"] == engine.backend and s["rows"] == 120 and s["dims"] == 768
    assert s["text_column"] in ("content", "documents")
    assert s["estimates"]["tokens"] > 0
    cmd = shlex.split(s["reindex_command"])
    assert cmd[:3] == ["jmigrate", "reindex", uri] and "--to" in cmd
    assert "docs_v3" in cmd[cmd.index("--to") + 1]


def test_plan_says_plainly_when_the_text_is_not_stored(
    pg_socket: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    import psycopg

    pg = PgEngine(tmp_path, pg_socket)
    with psycopg.connect(f"host={pg_socket} user=postgres dbname={pg.db}", autocommit=True) as c:
        c.execute("CREATE TABLE vecs (id bigint PRIMARY KEY, embedding vector(512))")
        c.execute(
            "INSERT INTO vecs SELECT i, array_fill(0.5::real, ARRAY[512])::vector "
            "FROM generate_series(1, 30) i"
        )
    assert main(["plan", "--store", pg.uri("vecs")]) == 1
    out = capsys.readouterr().out
    assert "30 rows" in out and "jina-embeddings-v2-small-en" in out
    assert "text is NOT stored" in out and "original documents" in out


def test_plan_store_errors_are_one_line(engine: Engine, capsys: pytest.CaptureFixture[str]) -> None:
    engine.load_v2("docs", rows(5, 8))
    assert main(["plan", "--store", engine.uri("nope")]) == 2
    err = capsys.readouterr().err
    assert "nope" in err and len(err.strip().splitlines()) == 1
    assert main(["plan"]) == 2
    assert "missing PATH" in capsys.readouterr().err
