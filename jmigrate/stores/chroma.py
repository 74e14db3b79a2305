"""Chroma: a collection read with `get` in pages (limit/offset), written with `upsert` (ids are strings).

`chroma:///path?collection=name` is the embedded PersistentClient, `chroma+http://host:8000/name` a server
(a token from CHROMA_API_KEY is sent only over https or to loopback). The text is Chroma's `documents`
unless `?text=` names a metadata key. Chroma has no aliases: cutover renames collections (`modify(name=)`),
which is NOT atomic: between the two renames the alias name briefly does not exist, and a running
application keeps the collection object it already holds until it looks the name up again. Every
collection jmigrate renames keeps its own name in its metadata (`jmigrate:name`), so its URI still finds it.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterator, Sequence
from typing import Any

import chromadb
import numpy as np

from jmigrate.errors import InputError, UsageError
from jmigrate.stores import StoreURI, env_secret
from jmigrate.stores.base import (
    ID_CANDIDATES,
    SAMPLE_ROWS,
    Description,
    Page,
    Store,
    as_matrix,
    check_field_types,
    likely_models,
    pick_field,
    scrub,
    sniff_fields,
)

NAME_KEY = "jmigrate:name"  # a renamed collection's own name
INFO_KEY = "jmigrate:info"  # JSON: created_by, model, source (Chroma metadata values are scalars)
_LOOPBACK = ("127.0.0.1", "::1", "localhost")


def _client(uri: StoreURI) -> Any:
    from chromadb.config import Settings

    settings = Settings(anonymized_telemetry=False)
    try:
        if uri.local:
            if not os.path.isdir(uri.path or ""):
                raise InputError(f"no Chroma folder at {uri.path}")
            return chromadb.PersistentClient(
                path=uri.path or "",
                settings=settings,
                tenant=uri.params.get("tenant", chromadb.DEFAULT_TENANT),
                database=uri.params.get("database", chromadb.DEFAULT_DATABASE),
            )
        key = env_secret("CHROMA_API_KEY")
        headers = {"x-chroma-token": key} if key and (uri.https or uri.host in _LOOPBACK) else None
        return chromadb.HttpClient(
            host=uri.host or "", port=uri.port or 8000, ssl=uri.https, headers=headers, settings=settings
        )
    except InputError:
        raise
    except Exception as e:
        where = uri.path if uri.local else f"{uri.host}:{uri.port or 8000}"
        raise InputError(f"cannot open Chroma at {where}: {scrub(str(e))}") from None


def _create_target_folder(uri: StoreURI) -> None:
    if uri.local and uri.path:
        os.makedirs(uri.path, exist_ok=True)


class ChromaStore(Store):
    backend = "chroma"
    atomic_alias = False

    def __init__(self, uri: StoreURI, client: Any) -> None:
        super().__init__(uri)
        self.client = client
        self.where = f"collection {uri.collection!r}"
        self.col: Any = None
        self.width: int | None = None
        self.text: str | None = None  # None: no text; "documents": Chroma's documents; else a metadata key
        self.id_field: str | None = None
        self.info: dict[str, Any] = {}
        self.fields: dict[str, str] = {}

    def _call(self, what: str, fn: Any, *args: Any, **kwargs: Any) -> Any:
        try:
            return fn(*args, **kwargs)
        except (UsageError, InputError):
            raise
        except Exception as e:
            raise InputError(f"Chroma {what} failed for {self.where}: {scrub(str(e))}") from None

    def _find(self, name: str) -> Any | None:
        """The collection called `name`, or the one jmigrate renamed away from `name` (cutover)."""
        cols = self._call("listing", self.client.list_collections)
        for c in cols:
            if c.name == name:
                return self.client.get_collection(c.name, embedding_function=None)
        for c in cols:
            if (c.metadata or {}).get(NAME_KEY) == name:
                return self.client.get_collection(c.name, embedding_function=None)
        return None

    def _load(self, id_field: str | None, text_field: str | None) -> None:
        col = self._find(self.uri.collection)
        if col is None:
            names = sorted(c.name for c in self._call("listing", self.client.list_collections))
            raise InputError(
                f"no collection {self.uri.collection!r} in Chroma {self.uri.path or self.uri.host}; "
                f"collections: {', '.join(names[:20]) or 'none'}"
            )
        self.col = col
        meta = col.metadata or {}
        try:
            self.info = dict(json.loads(str(meta.get(INFO_KEY, "{}"))))
        except ValueError:
            self.info = {}
        sample = self._call(
            "get", col.get, limit=SAMPLE_ROWS, include=["embeddings", "documents", "metadatas"]
        )
        embs = sample.get("embeddings")
        self.width = int(np.asarray(embs).shape[1]) if embs is not None and len(embs) else None
        metas = [m or {} for m in (sample.get("metadatas") or [])]
        keys = sorted({k for m in metas for k in m})
        idf = id_field or self.uri.params.get("id")
        self.id_field = pick_field(idf, ID_CANDIDATES, keys, "id", self.where, hint="?id=") if idf else None
        tf = text_field or self.uri.params.get("text")
        if tf and tf != "documents":
            self.text = pick_field(tf, (), keys, "text", self.where, hint="?text=")
        else:
            docs = sample.get("documents") or []
            self.text = (
                "documents" if (tf or any(isinstance(d, str) and d for d in docs) or not docs) else None
            )
        self.fields = sniff_fields(metas, [k for k in (self.id_field, self.text) if k])

    def _metric(self) -> str | None:
        try:
            cfg = self.col.configuration_json or {}
            space = (cfg.get("hnsw") or {}).get("space") or (self.col.metadata or {}).get("hnsw:space")
            return str(space) if space else "l2"
        except Exception:  # older servers: the default space
            return None

    # ------------------------------------------------------------------ read
    def describe(self) -> Description:
        rows = int(self._call("count", self.col.count))
        missing: int | None = None
        if self.text:
            missing = 0
            for page in self.pages(5000, vectors=False):
                assert page.texts is not None
                missing += sum(1 for t in page.texts if not (isinstance(t, str) and t))
        notes = []
        if self.text is None:
            notes.append(
                "the text is not stored in this collection: re-embedding needs the original documents"
            )
        metric = self._metric()
        if metric and metric != "cosine":
            notes.append(f"distance is {metric}, not cosine")
        models, evidence = likely_models(self.width, json.dumps(self.col.metadata or {}), self.uri.collection)
        return Description(
            str(self.uri),
            self.backend,
            self.uri.collection,
            rows,
            self.width,
            self.id_field,
            None,
            self.text,
            missing,
            dict(self.fields),
            metric,
            models,
            evidence,
            dict(self.info),
            notes,
        )

    def count(self) -> int:
        return int(self._call("count", self.col.count))

    def _rows(self, res: dict[str, Any], vectors: bool) -> Page:
        ids = list(res["ids"])
        metas = [dict(m or {}) for m in (res.get("metadatas") or [{}] * len(ids))]
        if self.id_field:
            ids = [m.get(self.id_field) for m in metas]
        texts: list[Any] | None = None
        if self.text == "documents":
            texts = list(res.get("documents") or [None] * len(ids))
        elif self.text:
            texts = [m.get(self.text) for m in metas]
        skip = {k for k in (self.id_field, self.text) if k}
        metas = [{k: v for k, v in m.items() if k not in skip} for m in metas]
        m = (
            as_matrix(res["embeddings"], self.width, self.where)
            if vectors
            else np.zeros((len(ids), 0), dtype=np.float32)
        )
        return Page(ids, m, texts, metas)

    def pages(self, page_rows: int = 1000, after: Any = None, *, vectors: bool = True) -> Iterator[Page]:
        offset = int(after or 0)
        include = (
            ["metadatas"]
            + (["documents"] if self.text == "documents" else [])
            + (["embeddings"] if vectors else [])
        )
        while True:
            res = self._call("get", self.col.get, limit=page_rows, offset=offset, include=include)
            if not res["ids"]:
                return
            page = self._rows(res, vectors)
            offset += len(page)
            page.cursor = offset
            yield page
            if len(page) < page_rows:
                return

    def fetch(self, ids: Sequence[Any]) -> dict[str, np.ndarray]:
        if self.id_field:
            res = self._call(
                "get",
                self.col.get,
                where={self.id_field: {"$in": list(ids)}},
                include=["embeddings", "metadatas"],
            )
        else:
            res = self._call(
                "get", self.col.get, ids=[str(i) for i in ids], include=["embeddings", "metadatas"]
            )
        page = self._rows(res, True)
        return {str(i): page.vectors[n] for n, i in enumerate(page.ids)}

    def search(self, queries: np.ndarray, k: int) -> tuple[list[list[str]], np.ndarray]:
        q = np.asarray(queries, dtype=np.float32)
        include = ["distances"] + (["metadatas"] if self.id_field else [])
        res = self._call("query", self.col.query, query_embeddings=q, n_results=k, include=include)
        ids: list[list[str]] = []
        scores = np.full((len(q), k), np.nan, dtype=np.float32)
        metric = self._metric()
        for n, row in enumerate(res["ids"]):
            if self.id_field:
                row = [m.get(self.id_field) for m in res["metadatas"][n]]
            ids.append([str(i) for i in row])
            d = np.asarray(res["distances"][n], dtype=np.float32)
            scores[n, : len(d)] = 1.0 - d if metric == "cosine" else -d
        return ids, scores

    # ------------------------------------------------------------------ write
    def _create(
        self,
        width: int,
        fields: dict[str, str],
        id_type: str,
        store_text: bool,
        resume: bool,
        info: dict[str, Any],
    ) -> None:
        self.width = width
        self.fields = dict(fields)
        self.id_type = id_type
        text = self.uri.params.get("text")
        self.text = (text or "documents") if store_text else None
        self.id_field = None
        existing = self._find(self.uri.collection)
        if existing is not None:
            if not resume:
                raise InputError(
                    f"{self.where} already exists; name a new collection (the v2 data is never "
                    "overwritten) or resume the load that created it"
                )
            try:
                have = json.loads(str((existing.metadata or {}).get(INFO_KEY, "{}")))
            except ValueError:
                have = {}
            if have.get("created_by") != "jmigrate":
                raise InputError(f"{self.where} was not created by jmigrate; refusing to write into it")
            self.col = existing
            self.info = have
            got = self._call("get", existing.get, limit=1, include=["embeddings"])
            embs = got.get("embeddings")
            # an empty collection has no width in Chroma: the one recorded at creation counts
            have_width = np.asarray(embs).shape[1] if embs is not None and len(embs) else have.get("width")
            if have_width != width:
                raise InputError(f"{self.where} holds {have_width}-dimensional vectors, expected {width}")
            return
        self.info = {**info, "created_by": "jmigrate", "width": width}
        self.col = self._call(
            "create",
            self.client.create_collection,
            self.uri.collection,
            configuration={"hnsw": {"space": "cosine"}},
            embedding_function=None,
            metadata={INFO_KEY: json.dumps(self.info, sort_keys=True)},
        )

    def write(self, page: Page) -> None:
        if len(page) == 0:
            return
        m = np.asarray(page.vectors, dtype=np.float32)
        if m.ndim != 2 or m.shape[0] != len(page) or m.shape[1] != self.width:
            raise InputError(
                f"{self.where}: vectors to write are {m.shape[-1]}-dimensional, expected {self.width}"
            )
        if not np.isfinite(m).all():
            raise InputError(f"{self.where}: a vector to write holds NaN or infinity")
        ids = [str(i) for i in page.ids]
        if len(set(ids)) != len(ids):
            raise InputError(f"{self.where}: a page to write holds the same id twice")
        metas: list[dict[str, Any]] = []
        for n in range(len(page)):
            meta = {}
            for k, v in (page.metadata[n] if page.metadata else {}).items():
                if v is None:
                    continue
                meta[k] = json.dumps(v) if self.fields.get(k) == "json" or isinstance(v, (list, dict)) else v
            if self.text and self.text != "documents" and page.texts is not None:
                meta[self.text] = page.texts[n]
            metas.append(meta)
        docs = list(page.texts) if self.text == "documents" and page.texts is not None else None
        step = int(self.client.get_max_batch_size())
        for s in range(0, len(ids), step):
            sl = slice(s, s + step)
            self._call(
                "upsert",
                self.col.upsert,
                ids=ids[sl],
                embeddings=m[sl],
                documents=docs[sl] if docs is not None else None,
                metadatas=[x or None for x in metas[sl]] if any(metas[sl]) else None,
            )

    def delete(self, ids: Sequence[Any]) -> None:
        if not ids:
            return
        if self.id_field:
            self._call("delete", self.col.delete, where={self.id_field: {"$in": list(ids)}})
        else:
            self._call("delete", self.col.delete, ids=[str(i) for i in ids])

    def drop(self) -> None:
        col = self._find(self.uri.collection)
        if col is None:
            return
        try:
            have = json.loads(str((col.metadata or {}).get(INFO_KEY, "{}")))
        except ValueError:
            have = {}
        if have.get("created_by") != "jmigrate":
            raise InputError(f"{self.where} was not created by jmigrate; refusing to drop it")
        self._call("drop", self.client.delete_collection, col.name)

    # ------------------------------------------------------------------ records
    def _fresh(self) -> Any:
        # a cutover may have renamed this collection (and changed its metadata) since it was opened
        col = self._find(self.uri.collection)
        if col is None:
            raise InputError(f"{self.where} no longer exists")
        self.col = col
        return col

    def read_record(self, key: str) -> Any:
        raw = (self._fresh().metadata or {}).get(f"jmigrate:{key}")
        try:
            return json.loads(raw) if isinstance(raw, str) else None
        except ValueError:
            return None

    def write_record(self, key: str, value: Any) -> str | None:
        meta = {k: v for k, v in (self._fresh().metadata or {}).items() if not k.startswith("hnsw:")}
        meta[f"jmigrate:{key}"] = json.dumps(value, sort_keys=True)
        self._call("metadata update", self.col.modify, metadata=meta)
        return None

    # ------------------------------------------------------------------ cutover
    def _by_name(self, name: str) -> Any | None:
        for c in self._call("listing", self.client.list_collections):
            if c.name == name:
                return self.client.get_collection(name, embedding_function=None)
        return None

    def alias_target(self, alias: str) -> str | None:
        col = self._by_name(alias)
        if col is None:
            return None
        own = (col.metadata or {}).get(NAME_KEY)
        if own is None or own == alias:
            raise InputError(
                f"{alias!r} is a collection, not an alias: choose a new name for the alias the "
                "application will read"
            )
        return str(own)

    def _rename(self, col: Any, name: str, own: str) -> None:
        meta = {k: v for k, v in (col.metadata or {}).items() if not k.startswith("hnsw:")}
        meta[NAME_KEY] = own
        self._call("rename", col.modify, name=name, metadata=meta)

    def point_alias(self, alias: str, collection: str) -> str | None:
        previous = self.alias_target(alias)
        target = self._find(collection)
        if target is None:
            raise InputError(f"no collection {collection!r} to point {alias!r} at")
        if previous == collection:
            return previous
        if target.name != collection:
            raise InputError(
                f"collection {collection!r} is serving as {target.name!r}; cut that alias over first"
            )
        current = self._by_name(alias)
        if current is not None:  # step 1: the collection serving now goes back to its own name
            if self._by_name(str(previous)) is not None:
                raise InputError(
                    f"cannot give {alias!r} back its name {previous!r}: a collection has that name"
                )
            self._rename(current, str(previous), str(previous))
        try:  # step 2: the target takes the alias name (readers see no collection between the two steps)
            self._rename(target, alias, collection)
        except InputError:
            if current is not None:
                self._rename(current, alias, str(previous))
            raise
        return previous


def open(
    uri: StoreURI,
    *,
    text_field: str | None = None,
    id_field: str | None = None,  # noqa: A001
    vector_field: str | None = None,
) -> ChromaStore:
    if vector_field or uri.params.get("vector"):
        raise UsageError("Chroma collections have one vector; remove ?vector= / --vector-column")
    store = ChromaStore(uri, _client(uri))
    store._load(id_field, text_field)
    return store


def create(
    uri: StoreURI,
    *,
    width: int,
    fields: dict[str, str],
    id_type: str,
    store_text: bool,
    resume: bool,
    info: dict[str, Any],
) -> ChromaStore:
    check_field_types(fields)
    _create_target_folder(uri)
    store = ChromaStore(uri, _client(uri))
    store._create(width, fields, id_type, store_text, resume, info)
    return store
