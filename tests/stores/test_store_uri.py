"""Store URIs: every accepted form parses to the right store, every wrong one is a one-line UsageError that
never echoes a secret, and a backend's client library is imported only when its URI is opened."""

from __future__ import annotations

import subprocess
import sys

import pytest

from jmigrate.errors import UsageError
from jmigrate.stores import is_store_uri, parse_uri


def test_postgresql_tcp_form() -> None:
    u = parse_uri("postgresql://app@db.example:5433/shop?table=docs&vector=embedding&text=content&id=id")
    assert (u.backend, u.host, u.port, u.user, u.path, u.collection) == (
        "pgvector",
        "db.example",
        5433,
        "app",
        "shop",
        "docs",
    )
    assert u.params["vector"] == "embedding" and u.params["text"] == "content"


def test_postgresql_unix_socket_form() -> None:
    u = parse_uri("postgresql:///shop?host=/run/postgresql&table=public.docs")
    assert (u.host, u.path, u.collection, u.port) == ("/run/postgresql", "shop", "public.docs", None)


def test_qdrant_forms() -> None:
    s = parse_uri("qdrant://localhost:6333/docs")
    assert (s.backend, s.host, s.port, s.collection, s.local, s.https) == (
        "qdrant",
        "localhost",
        6333,
        "docs",
        False,
        False,
    )
    h = parse_uri("qdrant+https://xyz.cloud.qdrant.io/docs_v3")
    assert h.https and h.collection == "docs_v3"
    loc = parse_uri("qdrant:///var/lib/q?collection=docs")
    assert loc.local and loc.path == "/var/lib/q" and loc.collection == "docs"


def test_chroma_and_lancedb_forms() -> None:
    c = parse_uri("chroma:///data/chroma?collection=docs")
    assert c.local and c.path == "/data/chroma" and c.collection == "docs"
    ch = parse_uri("chroma+http://127.0.0.1:8000/docs")
    assert (ch.host, ch.port, ch.collection, ch.local) == ("127.0.0.1", 8000, "docs", False)
    ld = parse_uri("lancedb:///data/lance?table=docs")
    assert ld.path == "/data/lance" and ld.collection == "docs"


def test_with_collection_names_a_sibling() -> None:
    assert parse_uri("qdrant://h:6333/docs").with_collection("docs_v3").collection == "docs_v3"
    assert str(parse_uri("qdrant://h:6333/docs").with_collection("docs_v3")) == "qdrant://h:6333/docs_v3"
    sib = parse_uri("postgresql:///db?host=/s&table=docs&text=content").with_collection("docs_v3")
    assert parse_uri(str(sib)).collection == "docs_v3" and sib.params["text"] == "content"
    assert parse_uri(str(parse_uri("lancedb:///x?table=a").with_collection("b"))).collection == "b"


@pytest.mark.parametrize(
    "uri, says",
    [
        ("postgresql://host/db", "?table="),
        ("mysql://host/db?table=x", "unknown store scheme"),
        ("qdrant://host:6333/", "exactly one collection"),
        ("qdrant://host:6333/a/b", "exactly one collection"),
        ("qdrant://host:notaport/docs", "port"),
        ("qdrant:///path", "?collection="),
        ("chroma:///path", "?collection="),
        ("chroma://host/docs", "ambiguous"),
        ("lancedb:///path", "?table="),
        ("lancedb://host/path?table=x", "local folder"),
        ("postgresql:///db?table=x&tabel=y", "unknown parameter 'tabel'"),
        ("postgresql:///db?table=x&table=y", "given twice"),
        ("chroma+http:///path?collection=x", "needs a host"),
        ("not a uri", "not a store URI"),
    ],
)
def test_wrong_uri_is_one_clear_line(uri: str, says: str) -> None:
    with pytest.raises(UsageError) as e:
        parse_uri(uri)
    assert says in str(e.value) and "\n" not in str(e.value)


@pytest.mark.parametrize(
    "uri",
    [
        "postgresql://app:S3cretPw!@db:5432/shop?table=docs",
        "postgresql://app:S3cretPw!@/shop?host=/run/pg&table=docs",
        "postgresql:///shop?host=/run/pg&table=docs&password=S3cretPw!",
        "qdrant+https://u:S3cretPw!@cloud/docs",
        "qdrant+https://cloud/docs?api_key=S3cretPw!",
        "chroma+http://h:8000/docs?token=S3cretPw!",
    ],
)
def test_a_secret_in_the_uri_is_refused_without_echoing_it(uri: str) -> None:
    with pytest.raises(UsageError) as e:
        parse_uri(uri)
    msg = str(e.value)
    assert "S3cretPw" not in msg and "not shown" in msg and "\n" not in msg


def test_is_store_uri() -> None:
    assert is_store_uri("qdrant://h/c") and is_store_uri("postgresql:///d?table=t")
    assert not is_store_uri("corpus.parquet") and not is_store_uri("./data/*.jsonl")
    assert not is_store_uri("file:///tmp/x.parquet")


def test_backends_are_imported_only_when_their_uri_is_used() -> None:
    code = (
        "import sys, jmigrate.stores as s, jmigrate.cli.app\n"
        "s.parse_uri('qdrant://h:1/c'); s.parse_uri('postgresql:///d?table=t')\n"
        "names = ('psycopg', 'qdrant_client', 'chromadb', 'lancedb', 'pgvector')\n"
        "heavy = [m for m in names if m in sys.modules]\n"
        "assert not heavy, heavy\n"
    )
    subprocess.run([sys.executable, "-c", code], check=True)
