"""Real engines for the store tests: one PostgreSQL+pgvector (pgserver) per session on a unix socket, and
Qdrant local mode, Chroma PersistentClient and LanceDB embedded in a temp folder per test. Nothing mocked.

`engine` is parametrised over the four stores (classes in store_engines.py).
"""

from __future__ import annotations

import os
import shutil
import tempfile
import warnings
from collections.abc import Iterator
from pathlib import Path

import pytest
from store_engines import BACKENDS, ChromaEngine, Engine, LanceEngine, PgEngine, QdrantEngine


@pytest.fixture(scope="session")
def pg_socket(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    pgserver = pytest.importorskip("pgserver")
    folder = tmp_path_factory.mktemp("pgdata")
    with warnings.catch_warnings():
        # platformdirs warns that XDG_RUNTIME_DIR is unset (CI containers); harmless for a temp server
        warnings.simplefilter("ignore")
        srv = pgserver.get_server(str(folder), cleanup_mode="stop")
    socket = srv.get_uri().split("host=", 1)[1].split("&", 1)[0]
    try:
        yield socket
    finally:
        srv.cleanup()


@pytest.fixture
def fast_tmp(tmp_path: Path) -> Iterator[Path]:
    """A temp folder in memory when the machine has one: Qdrant local mode commits SQLite once per point
    (~15 ms each on this disk), which would dominate the suite's time; the engines behave the same."""
    shm = Path("/dev/shm")
    if not (shm.is_dir() and os.access(shm, os.W_OK)):
        yield tmp_path
        return
    folder = Path(tempfile.mkdtemp(prefix="jmigrate-stores-", dir=shm))
    try:
        yield folder
    finally:
        shutil.rmtree(folder, ignore_errors=True)


@pytest.fixture(params=BACKENDS)
def engine(request: pytest.FixtureRequest, fast_tmp: Path) -> Engine:
    name = request.param
    tmp_path = fast_tmp
    if name == "pgvector":
        pytest.importorskip("psycopg")
        return PgEngine(tmp_path, request.getfixturevalue("pg_socket"))
    if name == "qdrant":
        pytest.importorskip("qdrant_client")
        return QdrantEngine(tmp_path)
    if name == "chroma":
        pytest.importorskip("chromadb")
        (tmp_path / "chroma").mkdir()
        return ChromaEngine(tmp_path)
    pytest.importorskip("lancedb")
    return LanceEngine(tmp_path)
