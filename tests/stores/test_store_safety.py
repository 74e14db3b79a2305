"""Store credentials never appear in any message, and a load killed mid-write (SIGKILL, no cleanup)
resumes into exactly one copy of every row, on the real engines."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest
from store_engines import Engine, PgEngine, ids_of, rows

from jmigrate.errors import JMigrateError
from jmigrate.stores import Page, create_store, open_store

SECRET = "Sup3r-S3cret-Value-917"


def test_pg_password_from_the_environment_never_shows(
    pg_socket: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    pytest.importorskip("psycopg")
    monkeypatch.setenv("PGPASSWORD", SECRET)
    # a role that does not exist: the server refuses, and the message must not carry the password
    for uri in (
        f"postgresql://nobody@/postgres?host={pg_socket}&table=docs",
        "postgresql://app@127.0.0.1:1/db?table=docs&connect_timeout=2",
    ):
        with pytest.raises(JMigrateError) as e:
            open_store(uri)
        assert SECRET not in str(e.value) and "\n" not in str(e.value)
        assert "cannot connect" in str(e.value)


def test_qdrant_and_chroma_keys_never_show(monkeypatch: pytest.MonkeyPatch) -> None:
    pytest.importorskip("qdrant_client")
    pytest.importorskip("chromadb")
    monkeypatch.setenv("QDRANT_API_KEY", SECRET)
    monkeypatch.setenv("CHROMA_API_KEY", SECRET)
    # port 1 on loopback: nothing listens; the key is sent (loopback) and must not come back in the error
    for uri in ("qdrant://127.0.0.1:1/docs?timeout=2", "chroma+http://127.0.0.1:1/docs"):
        with pytest.raises(JMigrateError) as e:
            open_store(uri)
        assert SECRET not in str(e.value) and "\n" not in str(e.value)


CHILD = textwrap.dedent("""
    import json, os, signal, sys
    import numpy as np
    from jmigrate.stores import Page, create_store, open_store
    src, target, kill_after, mode = sys.argv[1], sys.argv[2], int(sys.argv[3]), sys.argv[4]
    v3 = np.load(sys.argv[5])
    pages = list(open_store(src).pages(64, vectors=False))
    t = create_store(target, width=v3.shape[1], id_type="int", resume=(mode == "resume"))
    if mode == "kill" and t.backend == "pgvector":
        # die in the middle of the COPY of page kill_after: that page's transaction never commits
        import psycopg
        original, sent = psycopg.Copy.write_row, [0]
        def write_row(self, row):
            sent[0] += 1
            if sent[0] > kill_after * 64 + 10:
                os.kill(os.getpid(), signal.SIGKILL)
            return original(self, row)
        psycopg.Copy.write_row = write_row
    for n, p in enumerate(pages):
        if mode == "kill" and n == kill_after:
            os.kill(os.getpid(), signal.SIGKILL)  # between two pages (after the page-wise commit)
        t.write(Page(p.ids, v3[[int(i) for i in p.ids]], p.texts, None))
    t.finish()
    print(json.dumps({"count": t.count()}))
""")


def test_a_load_killed_mid_copy_resumes_to_exactly_one_copy_of_each_row(
    pg_socket: str, tmp_path: Path
) -> None:
    """PostgreSQL killed (SIGKILL) in the middle of a page's binary COPY, then resumed; every store is also
    killed during the load of a real reindex in test_store_e2e.py."""
    engine = PgEngine(tmp_path, pg_socket)
    n = 400
    src = engine.load_v2("docs", rows(n, 8))
    v3 = np.random.default_rng(3).standard_normal((n, 16)).astype(np.float32)
    v3 /= np.linalg.norm(v3, axis=1, keepdims=True)
    np.save(tmp_path / "v3.npy", v3)
    target = engine.uri("docs_v3")
    run = [sys.executable, "-c", CHILD, src, target, "3"]
    npy = str(tmp_path / "v3.npy")
    env = {**os.environ, "PYTHONWARNINGS": "ignore"}
    killed = subprocess.run([*run, "kill", npy], capture_output=True, env=env, timeout=300)
    assert killed.returncode == -signal.SIGKILL, killed.stderr.decode()[-2000:]
    with open_store(target) as partial:
        assert 0 < partial.count() < n
        assert partial.count() % 64 == 0  # whole pages only: a page is written entirely or not at all
    done = subprocess.run([*run, "resume", npy], capture_output=True, env=env, timeout=300)
    assert done.returncode == 0, done.stderr.decode()[-2000:]
    assert json.loads(done.stdout)["count"] == n
    with open_store(target) as back:
        pages = list(back.pages(128))
        assert sorted(ids_of(pages), key=int) == [str(i) for i in range(n)]
        for p in pages:
            np.testing.assert_allclose(p.vectors, v3[[int(i) for i in p.ids]], rtol=1e-5, atol=1e-6)


def test_pages_stay_bounded_whatever_the_collection_size(engine: Engine) -> None:
    """Memory flat: the reader never holds more than one page of rows (checked on each page's size)."""
    engine.load_v2("docs", rows(300, 8))
    with open_store(engine.uri("docs")) as s:
        sizes = [len(p) for p in s.pages(7)]
    assert max(sizes) <= 7 and sum(sizes) == 300


def test_writing_a_page_with_a_repeated_id_is_refused(engine: Engine) -> None:
    with create_store(engine.uri("dups"), width=4) as t:
        with pytest.raises(JMigrateError, match="same id twice"):
            t.write(Page(["a", "a"], np.ones((2, 4), np.float32), ["x", "y"], None))
        with pytest.raises(JMigrateError, match="NaN"):
            t.write(Page(["a"], np.full((1, 4), np.nan, np.float32), ["x"], None))


def test_database_password_reaches_no_output_file_or_log(
    pg_socket: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """PGPASSWORD set for a whole run (reindex from the database into a new table, --debug, a failing
    run too): it appears in no output, no file of the index folder, no record kept with the table."""
    from jmigrate.cli.app import main

    engine = PgEngine(tmp_path, pg_socket)
    src = engine.load_v2("docs", rows(50, 8))
    monkeypatch.setenv("PGPASSWORD", SECRET)
    out = tmp_path / "idx"
    code = main(
        [
            "--debug",
            "reindex",
            src,
            "--out",
            str(out),
            "--encoder",
            "fake",
            "--dimensions",
            "32",
            "--to",
            engine.uri("docs_v3"),
        ]
    )
    assert code == 0
    assert (
        main(["--debug", "reindex", engine.uri("missing"), "--out", str(tmp_path / "x"), "--encoder", "fake"])
        == 2
    )
    printed = capsys.readouterr()
    assert SECRET not in printed.out + printed.err
    for f in out.rglob("*"):
        if f.is_file():
            assert SECRET.encode() not in f.read_bytes(), f
    import psycopg

    with psycopg.connect(f"host={pg_socket} user=postgres dbname={engine.db}") as c:
        comments = c.execute(
            "SELECT obj_description(oid, 'pg_class') FROM pg_class WHERE relname LIKE 'docs%'"
        )
        assert all(SECRET not in (r[0] or "") for r in comments.fetchall())


def test_a_role_without_privileges_gets_one_line(pg_socket: str, tmp_path: Path) -> None:
    import psycopg

    engine = PgEngine(tmp_path, pg_socket)
    engine.load_v2("docs", rows(10, 8))
    with psycopg.connect(f"host={pg_socket} user=postgres dbname={engine.db}", autocommit=True) as c:
        c.execute("DROP ROLE IF EXISTS reader")
        c.execute("CREATE ROLE reader LOGIN")
        c.execute("REVOKE CREATE ON SCHEMA public FROM PUBLIC")
    base = f"postgresql://reader@/{engine.db}?host={pg_socket}"
    with pytest.raises(JMigrateError) as e, open_store(f"{base}&table=docs") as store:
        store.describe()
    assert "permission denied" in str(e.value) and "\n" not in str(e.value)
    with pytest.raises(JMigrateError) as e:
        create_store(f"{base}&table=docs_v3", width=4)
    assert "permission denied" in str(e.value) and "\n" not in str(e.value)
