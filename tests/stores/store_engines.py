"""The four real engines the store tests run against, each loading a v2 collection with the store's OWN
client (not jmigrate's writer), plus small row helpers. Fixtures that start them are in conftest.py."""

from __future__ import annotations

import itertools
import uuid
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

_COUNTER = itertools.count()


def rows(n: int, width: int, *, seed: int = 0, missing_text_every: int = 0) -> dict[str, Any]:
    """n rows: int ids, multilingual texts (some missing if asked), a title and a count, unit vectors."""
    rng = np.random.default_rng(seed)
    m = rng.standard_normal((n, width)).astype(np.float32)
    m /= np.linalg.norm(m, axis=1, keepdims=True)
    words = ["Haus", "maison", "家", "дом", "casa", "σπίτι", "house"]
    texts: list[str | None] = [f"{words[i % len(words)]} {i}" for i in range(n)]
    if missing_text_every:
        for i in range(3, n, missing_text_every):
            texts[i] = None
    return {
        "ids": list(range(n)),
        "vectors": m,
        "texts": texts,
        "titles": [f"title {i}" for i in range(n)],
        "counts": [i * 10 for i in range(n)],
    }


class Engine:
    backend = ""

    def __init__(self, root: Path) -> None:
        self.root = root

    def uri(self, name: str, **params: str) -> str:
        raise NotImplementedError

    def load_v2(self, name: str, data: dict[str, Any]) -> str:
        raise NotImplementedError

    def snapshot(self, name: str) -> list[tuple[str, str | None, Any]]:
        """Every row of a collection as (id, text, vector) read with the store's own client, sorted by id."""
        raise NotImplementedError


class PgEngine(Engine):
    backend = "pgvector"

    def __init__(self, root: Path, socket: str) -> None:
        super().__init__(root)
        import psycopg

        self.socket = socket
        self.db = f"t{next(_COUNTER)}_{uuid.uuid4().hex[:6]}"
        with psycopg.connect(self._dsn("postgres"), autocommit=True) as c:
            c.execute(f'CREATE DATABASE "{self.db}"')
        with psycopg.connect(self._dsn(self.db), autocommit=True) as c:
            c.execute("CREATE EXTENSION vector")

    def _dsn(self, db: str) -> str:
        return f"host={self.socket} user=postgres dbname={db}"

    def uri(self, name: str, **params: str) -> str:
        extra = "".join(f"&{k}={v}" for k, v in params.items())
        return f"postgresql://postgres@/{self.db}?host={self.socket}&table={name}{extra}"

    def load_v2(self, name: str, data: dict[str, Any]) -> str:
        import psycopg

        d = data["vectors"].shape[1]
        with psycopg.connect(self._dsn(self.db), autocommit=True) as c:
            c.execute(
                f"CREATE TABLE {name} (id bigint PRIMARY KEY, content text, title text, n integer, "
                f"embedding vector({d}))"
            )
            from pgvector.psycopg import register_vector

            register_vector(c)
            sql = f"COPY {name} (id, content, title, n, embedding) FROM STDIN (FORMAT BINARY)"
            with c.cursor().copy(sql) as cp:
                cp.set_types(["int8", "text", "text", "int4", "vector"])
                for i, t, ti, n, v in zip(
                    data["ids"], data["texts"], data["titles"], data["counts"], data["vectors"], strict=True
                ):
                    cp.write_row([i, t, ti, n, v])
        return self.uri(name)

    def snapshot(self, name: str) -> list[tuple[str, str | None, Any]]:
        import psycopg

        # every column's text form, byte for byte (the vector as PostgreSQL prints it, no float parsing)
        with psycopg.connect(self._dsn(self.db)) as c:
            out = c.execute(
                f"SELECT id::text, content, title, n, embedding::text FROM {name} ORDER BY id"
            ).fetchall()
        return [(r[0], r[1], [r[2], r[3], r[4]]) for r in out]


class QdrantEngine(Engine):
    backend = "qdrant"

    def uri(self, name: str, **params: str) -> str:
        extra = "".join(f"&{k}={v}" for k, v in params.items())
        return f"qdrant://{self.root}/qdrant?collection={name}{extra}"

    def _client(self) -> Any:
        from qdrant_client import QdrantClient

        return QdrantClient(path=str(self.root / "qdrant"))

    def load_v2(self, name: str, data: dict[str, Any]) -> str:
        from qdrant_client import models

        c = self._client()
        try:
            c.create_collection(
                name,
                vectors_config=models.VectorParams(
                    size=data["vectors"].shape[1], distance=models.Distance.COSINE
                ),
            )
            payloads = [
                {"content": t, "title": ti, "n": n} if t is not None else {"title": ti, "n": n}
                for t, ti, n in zip(data["texts"], data["titles"], data["counts"], strict=True)
            ]
            c.upsert(
                name,
                points=models.Batch(ids=data["ids"], vectors=data["vectors"].tolist(), payloads=payloads),
            )
        finally:
            c.close()
        return self.uri(name)

    def snapshot(self, name: str) -> list[tuple[str, str | None, Any]]:
        c = self._client()
        try:
            out, offset = [], None
            while True:
                pts, offset = c.scroll(name, limit=500, offset=offset, with_vectors=True)
                out += [(str(p.id), (p.payload or {}).get("content"), list(p.vector)) for p in pts]
                if offset is None:
                    break
        finally:
            c.close()
        return sorted(out, key=lambda r: int(r[0]))


class ChromaEngine(Engine):
    backend = "chroma"

    def uri(self, name: str, **params: str) -> str:
        extra = "".join(f"&{k}={v}" for k, v in params.items())
        return f"chroma://{self.root}/chroma?collection={name}{extra}"

    def _client(self) -> Any:
        import chromadb
        from chromadb.config import Settings

        return chromadb.PersistentClient(
            path=str(self.root / "chroma"), settings=Settings(anonymized_telemetry=False)
        )

    def load_v2(self, name: str, data: dict[str, Any]) -> str:
        col = self._client().create_collection(
            name, configuration={"hnsw": {"space": "cosine"}}, embedding_function=None
        )
        col.add(
            ids=[str(i) for i in data["ids"]],
            embeddings=data["vectors"],
            documents=data["texts"],
            metadatas=[{"title": ti, "n": n} for ti, n in zip(data["titles"], data["counts"], strict=True)],
        )
        return self.uri(name)

    def snapshot(self, name: str) -> list[tuple[str, str | None, Any]]:
        client = self._client()
        # Chroma has no aliases: a cutover renames collections and each keeps its own name in metadata
        found = [
            c.name
            for c in client.list_collections()
            if c.name == name or (c.metadata or {}).get("jmigrate:name") == name
        ]
        col = client.get_collection(sorted(found, key=lambda n: n != name)[0], embedding_function=None)
        res = col.get(include=["embeddings", "documents"])
        out = [
            (i, d, [float(x) for x in e])
            for i, d, e in zip(res["ids"], res["documents"], res["embeddings"], strict=True)
        ]
        return sorted(out, key=lambda r: int(r[0]))


class LanceEngine(Engine):
    backend = "lancedb"

    def uri(self, name: str, **params: str) -> str:
        extra = "".join(f"&{k}={v}" for k, v in params.items())
        return f"lancedb://{self.root}/lance?table={name}{extra}"

    def load_v2(self, name: str, data: dict[str, Any]) -> str:
        import lancedb
        import pyarrow as pa

        m = data["vectors"]
        tbl = pa.table(
            {
                "id": pa.array(data["ids"], pa.int64()),
                "content": data["texts"],
                "title": data["titles"],
                "n": data["counts"],
                "vector": pa.FixedSizeListArray.from_arrays(pa.array(m.reshape(-1)), m.shape[1]),
            }
        )
        lancedb.connect(str(self.root / "lance")).create_table(name, tbl)
        return self.uri(name)

    def snapshot(self, name: str) -> list[tuple[str, str | None, Any]]:
        import lancedb

        t = lancedb.connect(str(self.root / "lance")).open_table(name).to_arrow().sort_by("id")
        return [
            (str(i), c, list(v))
            for i, c, v in zip(
                t.column("id").to_pylist(),
                t.column("content").to_pylist(),
                t.column("vector").to_pylist(),
                strict=True,
            )
        ]


BACKENDS = ("pgvector", "qdrant", "chroma", "lancedb")


def all_pages(store: Any, page_rows: int, **kw: Any) -> list[Any]:
    return list(store.pages(page_rows, **kw))


def ids_of(pages: Sequence[Any]) -> list[str]:
    return [str(i) for p in pages for i in p.ids]


def edit_v2(
    engine: Engine, name: str, *, update: dict[int, str], delete: list[int], add: dict[int, str], width: int
) -> None:
    """Change a v2 collection with the store's own client: new texts, deleted rows, added rows."""
    vec = [0.5] * width
    if isinstance(engine, PgEngine):
        import psycopg

        with psycopg.connect(engine._dsn(engine.db), autocommit=True) as c:
            for i, t in update.items():
                c.execute(f"UPDATE {name} SET content = %s WHERE id = %s", [t, i])
            c.execute(f"DELETE FROM {name} WHERE id = ANY(%s)", [delete])
            for i, t in add.items():
                c.execute(
                    f"INSERT INTO {name} (id, content, title, n, embedding) VALUES (%s, %s, 'new', 0, %s)",
                    [i, t, str(vec)],
                )
    elif isinstance(engine, QdrantEngine):
        from qdrant_client import models

        c = engine._client()
        try:
            for i, t in update.items():
                c.set_payload(name, payload={"content": t}, points=[i])
            c.delete(name, points_selector=models.PointIdsList(points=list(delete)))
            c.upsert(
                name,
                points=[
                    models.PointStruct(id=i, vector=vec, payload={"content": t, "title": "new", "n": 0})
                    for i, t in add.items()
                ],
            )
        finally:
            c.close()
    elif isinstance(engine, ChromaEngine):
        col = engine._client().get_collection(name, embedding_function=None)
        col.update(
            ids=[str(i) for i in update], documents=list(update.values()), embeddings=[vec] * len(update)
        )
        col.delete(ids=[str(i) for i in delete])
        col.add(
            ids=[str(i) for i in add],
            documents=list(add.values()),
            embeddings=[vec] * len(add),
            metadatas=[{"title": "new", "n": 0}] * len(add),
        )
    else:
        import lancedb
        import pyarrow as pa

        t = lancedb.connect(str(engine.root / "lance")).open_table(name)
        for i, text in update.items():
            t.update(where=f"id = {i}", values={"content": text})
        t.delete(f"id IN ({', '.join(map(str, delete))})")
        t.add(
            pa.table(
                {
                    "id": pa.array(list(add), pa.int64()),
                    "content": list(add.values()),
                    "title": ["new"] * len(add),
                    "n": pa.array([0] * len(add), pa.int64()),
                    "vector": pa.FixedSizeListArray.from_arrays(
                        pa.array(vec * len(add), pa.float32()), width
                    ),
                }
            )
        )
