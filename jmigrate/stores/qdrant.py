"""Qdrant: a collection read with `scroll` (next_page_offset cursors), written with batched upserts.

Works against a server (`qdrant://host:6333/name`, `qdrant+https://...` with QDRANT_API_KEY) and in
qdrant-client's embedded local mode (`qdrant:///path?collection=name`), with the same calls: nothing
here is local-mode only. Point ids must be unsigned integers or UUIDs; other ids are stored as UUIDv5
point ids with the original id in a payload field (named by `?id=`, default `doc_id`), recorded in the
collection's metadata so a reader finds it. Cutover is a collection alias, switched in one
`update_collection_aliases` call (atomic on the server).
"""

from __future__ import annotations

import os
import threading
import uuid
import warnings
from collections.abc import Iterator, Sequence
from typing import Any

import numpy as np
from qdrant_client import QdrantClient, models

from jmigrate.errors import InputError, UsageError
from jmigrate.stores import StoreURI, env_secret
from jmigrate.stores.base import (
    ID_CANDIDATES,
    INFO_KEY,
    SAMPLE_ROWS,
    TEXT_CANDIDATES,
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

_NS = uuid.UUID("6f1d4c3e-2b7a-5e4f-9a1d-0c8b7e6f5a4d")  # jmigrate's UUIDv5 namespace for string ids
_LOOPBACK = ("127.0.0.1", "::1", "localhost")
# Local mode locks its folder: one client per folder per process, shared by every store opened on it.
_LOCAL: dict[str, tuple[QdrantClient, int]] = {}
_LOCK = threading.Lock()


def _client(uri: StoreURI, *, create: bool = False) -> QdrantClient:
    try:
        if uri.local:
            assert uri.path is not None
            if not create and not os.path.isdir(uri.path):
                raise InputError(f"no Qdrant storage folder at {uri.path}")
            with _LOCK:
                client, n = _LOCAL.get(uri.path, (None, 0))
                if client is None:
                    client = QdrantClient(path=uri.path)
                _LOCAL[uri.path] = (client, n + 1)
                return client
        key = env_secret("QDRANT_API_KEY")
        if key and not uri.https and uri.host not in _LOOPBACK:
            key = None  # never send the key in clear text off this machine
        timeout = int(uri.params.get("timeout", "30"))
        with warnings.catch_warnings():
            # qdrant-client warns about a key over plain http; it is only ever sent to loopback here
            warnings.simplefilter("ignore", UserWarning)
            return QdrantClient(
                host=uri.host,
                port=uri.port or 6333,
                https=uri.https,
                api_key=key,
                prefix=uri.params.get("prefix"),
                timeout=timeout,
                # the version probe runs in a background thread whose errors nobody sees; the first real
                # call reports an unreachable server as a one-line error instead
                check_compatibility=False,
            )
    except InputError:
        raise
    except (ValueError, RuntimeError) as e:
        raise InputError(f"cannot open Qdrant at {_where(uri)}: {scrub(str(e))}") from None


def _release(uri: StoreURI, client: QdrantClient) -> None:
    if uri.local:
        assert uri.path is not None
        with _LOCK:
            c, n = _LOCAL.get(uri.path, (None, 0))
            if c is client and n > 1:
                _LOCAL[uri.path] = (c, n - 1)
                return
            _LOCAL.pop(uri.path, None)
    client.close()


def _where(uri: StoreURI) -> str:
    if uri.local:
        return f"local Qdrant storage {uri.path}"
    return f"{'https' if uri.https else 'http'}://{uri.host}:{uri.port or 6333}"


def point_id(value: Any, id_type: str) -> int | str:
    """The Qdrant point id for an application id: itself if an int/UUID, else a stable UUIDv5."""
    if id_type == "int":
        i = int(value)
        if i < 0:
            raise InputError(f"Qdrant point ids must be unsigned integers, got {i}")
        return i
    s = str(value)
    try:
        return str(uuid.UUID(s))
    except ValueError:
        return str(uuid.uuid5(_NS, s))


def _point_key(value: Any) -> int | str:
    """How an id the user gives (a string from a file, say) addresses an existing point."""
    if isinstance(value, int):
        return value
    s = str(value)
    return int(s) if s.isdigit() else str(uuid.UUID(s)) if _is_uuid(s) else str(uuid.uuid5(_NS, s))


def _is_uuid(s: str) -> bool:
    try:
        uuid.UUID(s)
        return True
    except ValueError:
        return False


class QdrantStore(Store):
    backend = "qdrant"

    def __init__(self, uri: StoreURI, client: QdrantClient) -> None:
        super().__init__(uri)
        self.client = client
        self.where = f"collection {uri.collection!r}"
        self.vector_name: str | None = None
        self.width: int | None = None
        self.metric: str | None = None
        self.id_field: str | None = None
        self.text: str | None = None
        self.info: dict[str, Any] = {}
        self.id_type = "text"
        self.store_text = True

    def _call(self, what: str, fn: Any, *args: Any, **kwargs: Any) -> Any:
        try:
            return fn(*args, **kwargs)
        except (UsageError, InputError):
            raise
        except Exception as e:  # the client raises ValueError, RuntimeError, httpx and grpc errors
            raise InputError(f"Qdrant {what} failed for {self.where}: {scrub(str(e))}") from None

    def _exists(self, name: str) -> bool:
        return bool(self._call("lookup", self.client.collection_exists, name))

    def _load(self, id_field: str | None, text_field: str | None, vector_field: str | None) -> None:
        if not self._exists(self.uri.collection):
            names = [c.name for c in self._call("listing", self.client.get_collections).collections]
            raise InputError(
                f"no collection {self.uri.collection!r} in {_where(self.uri)}; collections: "
                f"{', '.join(sorted(names)[:20]) or 'none'}"
            )
        cfg = self._call("describe", self.client.get_collection, self.uri.collection).config
        self.info = dict((cfg.metadata or {}).get(INFO_KEY, {}) or {})
        vectors = cfg.params.vectors
        given = vector_field or self.uri.params.get("vector")
        if isinstance(vectors, models.VectorParams):
            if given:
                raise InputError(f"{self.where} has one unnamed vector; remove ?vector={given}")
            params = vectors
        elif isinstance(vectors, dict) and vectors:
            if given:
                if given not in vectors:
                    raise InputError(
                        f"{self.where} has no named vector {given!r}; named vectors: {', '.join(vectors)}"
                    )
                self.vector_name = given
            elif len(vectors) == 1:
                self.vector_name = next(iter(vectors))
            else:
                raise InputError(
                    f"{self.where} has several named vectors ({', '.join(vectors)}); choose one with ?vector="
                )
            params = vectors[self.vector_name]
        else:
            raise InputError(f"{self.where} has no dense vectors")
        self.width = int(params.size)
        self.metric = str(params.distance.value).lower() if params.distance else None
        sample, _ = self._call(
            "scroll",
            self.client.scroll,
            self.uri.collection,
            limit=SAMPLE_ROWS,
            with_payload=True,
            with_vectors=False,
        )
        payloads = [p.payload or {} for p in sample]
        keys = sorted({k for p in payloads for k in p})
        idf = id_field or self.uri.params.get("id") or self.info.get("id_field")
        self.id_field = pick_field(idf, ID_CANDIDATES, keys, "id", self.where, hint="?id=") if idf else None
        if idf and not payloads:
            self.id_field = idf
        strings = [k for k in keys if any(isinstance(p.get(k), str) for p in payloads)]
        tf = text_field or self.uri.params.get("text")
        recorded = self.info.get("text_field")  # what jmigrate wrote it with: trusted even if rows lack it
        if tf and payloads:
            self.text = pick_field(
                tf, TEXT_CANDIDATES, keys, "text", self.where, hint="?text= or --text-column"
            )
        elif tf or recorded:
            self.text = tf or recorded
        else:
            self.text = pick_field(
                None, TEXT_CANDIDATES, strings, "text", self.where, hint="?text= or --text-column"
            )
        self.id_type = "int" if (not self.id_field and sample and isinstance(sample[0].id, int)) else "text"
        self.fields = sniff_fields(payloads, [k for k in (self.id_field, self.text) if k])

    # ------------------------------------------------------------------ read
    def describe(self) -> Description:
        rows = int(self._call("count", self.client.count, self.uri.collection, exact=True).count)
        missing = None
        if self.text:
            flt = models.Filter(
                should=[
                    models.IsEmptyCondition(is_empty=models.PayloadField(key=self.text)),
                    models.FieldCondition(key=self.text, match=models.MatchValue(value="")),
                ]
            )
            missing = int(
                self._call(
                    "count", self.client.count, self.uri.collection, count_filter=flt, exact=True
                ).count
            )
        notes = []
        if self.text is None:
            notes.append("the text is not stored in the payload: re-embedding needs the original documents")
        if self.metric and self.metric != "cosine":
            notes.append(f"distance is {self.metric}, not cosine")
        models_, evidence = likely_models(
            self.width, str(self.info), self.uri.collection, self.vector_name or ""
        )
        return Description(
            str(self.uri),
            self.backend,
            self.uri.collection,
            rows,
            self.width,
            self.id_field,
            self.vector_name,
            self.text,
            missing,
            dict(self.fields),
            self.metric,
            models_,
            evidence,
            dict(self.info),
            notes,
        )

    def count(self) -> int:
        return int(self._call("count", self.client.count, self.uri.collection, exact=True).count)

    def _id_of(self, p: Any) -> Any:
        if self.id_field:
            v = (p.payload or {}).get(self.id_field)
            if v is None:
                raise InputError(f"{self.where}: point {p.id} has no {self.id_field!r} in its payload")
            return v
        return p.id

    def _vector_of(self, p: Any) -> Any:
        v = p.vector
        if isinstance(v, dict):
            v = v.get(self.vector_name or "")
        return v

    def pages(self, page_rows: int = 1000, after: Any = None, *, vectors: bool = True) -> Iterator[Page]:
        offset = None if after is None else after.get("offset")
        if after is not None and offset is None:
            return  # the cursor of the last page: nothing after it
        with_vectors: Any = ([self.vector_name] if self.vector_name else True) if vectors else False
        skip = {k for k in (self.id_field, self.text) if k}
        while True:
            points, nxt = self._call(
                "scroll",
                self.client.scroll,
                self.uri.collection,
                limit=page_rows,
                offset=offset,
                with_payload=True,
                with_vectors=with_vectors,
            )
            if not points:
                return
            ids = [self._id_of(p) for p in points]
            texts = [(p.payload or {}).get(self.text) for p in points] if self.text else None
            m = (
                as_matrix([self._vector_of(p) for p in points], self.width, self.where)
                if vectors
                else np.zeros((len(points), 0), dtype=np.float32)
            )
            meta = [{k: v for k, v in (p.payload or {}).items() if k not in skip} for p in points]
            yield Page(ids, m, texts, meta, cursor={"offset": nxt})
            if nxt is None:
                return
            offset = nxt

    def fetch(self, ids: Sequence[Any]) -> dict[str, np.ndarray]:
        using: Any = [self.vector_name] if self.vector_name else True
        if self.id_field:
            flt = models.Filter(
                must=[models.FieldCondition(key=self.id_field, match=models.MatchAny(any=list(ids)))]
            )
            points, _ = self._call(
                "scroll",
                self.client.scroll,
                self.uri.collection,
                scroll_filter=flt,
                limit=max(1, len(ids)),
                with_payload=[self.id_field],
                with_vectors=using,
            )
        else:
            points = self._call(
                "retrieve",
                self.client.retrieve,
                self.uri.collection,
                ids=[_point_key(i) for i in ids],
                with_vectors=using,
            )
        out = {}
        for p in points:
            out[str(self._id_of(p))] = np.asarray(self._vector_of(p), dtype=np.float32)
        return out

    def search(self, queries: np.ndarray, k: int) -> tuple[list[list[str]], np.ndarray]:
        ids: list[list[str]] = []
        scores = np.full((len(queries), k), np.nan, dtype=np.float32)
        payload: Any = [self.id_field] if self.id_field else False
        for n, q in enumerate(np.asarray(queries, dtype=np.float32)):
            res = self._call(
                "query",
                self.client.query_points,
                self.uri.collection,
                query=q.tolist(),
                using=self.vector_name,
                limit=k,
                with_payload=payload,
            )
            ids.append([str(self._id_of(p)) for p in res.points])
            scores[n, : len(res.points)] = [p.score for p in res.points]
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
        p = self.uri.params
        self.vector_name = p.get("vector") or None
        self.text = p.get("text", "text") if store_text else None
        self.store_text = store_text
        self.id_type = id_type
        self.id_field = p.get("id", "doc_id") if id_type == "text" else None
        self.width = width
        self.fields = dict(fields)
        clash = [f for f in fields if f in (self.text, self.id_field)]
        if clash:
            raise UsageError(f"{self.where}: field name(s) {', '.join(clash)} used twice")
        if self._exists(self.uri.collection):
            if not resume:
                raise InputError(
                    f"{self.where} already exists in {_where(self.uri)}; name a new collection "
                    "(the v2 data is never overwritten) or resume the load that created it"
                )
            cfg = self._call("describe", self.client.get_collection, self.uri.collection).config
            have = dict((cfg.metadata or {}).get(INFO_KEY, {}) or {})
            if have.get("created_by") != "jmigrate":
                raise InputError(f"{self.where} was not created by jmigrate; refusing to write into it")
            vectors = cfg.params.vectors
            params = vectors.get(self.vector_name or "") if isinstance(vectors, dict) else vectors
            if not isinstance(params, models.VectorParams) or params.size != width:
                raise InputError(
                    f"{self.where} does not hold {width}-dimensional vectors "
                    f"{'named ' + repr(self.vector_name) if self.vector_name else ''}".rstrip()
                )
            self.info = have
            return
        vp = models.VectorParams(size=width, distance=models.Distance.COSINE)
        meta = {
            INFO_KEY: {**info, "created_by": "jmigrate", "id_field": self.id_field, "text_field": self.text}
        }
        self._call(
            "create",
            self.client.create_collection,
            self.uri.collection,
            vectors_config={self.vector_name: vp} if self.vector_name else vp,
            metadata=meta,
        )
        self.info = meta[INFO_KEY]

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
        pids: list[Any] = [point_id(i, self.id_type) for i in page.ids]
        if len(set(pids)) != len(pids):
            raise InputError(f"{self.where}: a page to write holds the same id twice")
        payloads = []
        for n, i in enumerate(page.ids):
            pl = dict(page.metadata[n]) if page.metadata else {}
            if self.id_field:
                pl[self.id_field] = str(i)
            if self.text and page.texts is not None:
                pl[self.text] = page.texts[n]
            payloads.append(pl)
        vecs: Any = [{self.vector_name: row} for row in m.tolist()] if self.vector_name else m.tolist()
        self._call(
            "upsert",
            self.client.upsert,
            self.uri.collection,
            points=models.Batch(ids=pids, vectors=vecs, payloads=payloads),
            wait=True,
        )

    def delete(self, ids: Sequence[Any]) -> None:
        if not ids:
            return
        selector: Any
        if self.id_field:
            selector = models.FilterSelector(
                filter=models.Filter(
                    must=[
                        models.FieldCondition(
                            key=self.id_field, match=models.MatchAny(any=[str(i) for i in ids])
                        )
                    ]
                )
            )
        else:
            selector = models.PointIdsList(points=[_point_key(i) for i in ids])
        self._call("delete", self.client.delete, self.uri.collection, points_selector=selector, wait=True)

    def drop(self) -> None:
        if not self._exists(self.uri.collection):
            return
        cfg = self._call("describe", self.client.get_collection, self.uri.collection).config
        if dict((cfg.metadata or {}).get(INFO_KEY, {}) or {}).get("created_by") != "jmigrate":
            raise InputError(f"{self.where} was not created by jmigrate; refusing to drop it")
        self._call("drop", self.client.delete_collection, self.uri.collection)

    # ------------------------------------------------------------------ records
    def read_record(self, key: str) -> Any:
        cfg = self._call("describe", self.client.get_collection, self.uri.collection).config
        return dict((cfg.metadata or {}).get(INFO_KEY, {}) or {}).get(key)

    def write_record(self, key: str, value: Any) -> str | None:
        cfg = self._call("describe", self.client.get_collection, self.uri.collection).config
        info = dict((cfg.metadata or {}).get(INFO_KEY, {}) or {})
        info[key] = value
        self._call(
            "metadata update", self.client.update_collection, self.uri.collection, metadata={INFO_KEY: info}
        )
        return None

    # ------------------------------------------------------------------ cutover
    def _aliases(self) -> dict[str, str]:
        res = self._call("alias listing", self.client.get_aliases)
        return {a.alias_name: a.collection_name for a in res.aliases}

    def alias_target(self, alias: str) -> str | None:
        return self._aliases().get(alias)

    def point_alias(self, alias: str, collection: str) -> str | None:
        aliases = self._aliases()
        previous = aliases.get(alias)
        if previous is None and self._exists(alias):
            raise InputError(
                f"{alias!r} is a collection, not an alias: choose a new name for the alias the "
                "application will read (collections are never renamed or replaced)"
            )
        if collection in aliases or not self._exists(collection):
            raise InputError(f"no collection {collection!r} to point {alias!r} at")
        ops: list[Any] = []
        if previous is not None:
            ops.append(models.DeleteAliasOperation(delete_alias=models.DeleteAlias(alias_name=alias)))
        ops.append(
            models.CreateAliasOperation(
                create_alias=models.CreateAlias(collection_name=collection, alias_name=alias)
            )
        )
        self._call("alias switch", self.client.update_collection_aliases, change_aliases_operations=ops)
        return previous

    def close(self) -> None:
        _release(self.uri, self.client)


def open(
    uri: StoreURI,
    *,
    text_field: str | None = None,
    id_field: str | None = None,  # noqa: A001
    vector_field: str | None = None,
) -> QdrantStore:
    store = QdrantStore(uri, _client(uri))
    try:
        store._load(id_field, text_field, vector_field)
    except BaseException:
        store.close()
        raise
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
) -> QdrantStore:
    check_field_types(fields)
    store = QdrantStore(uri, _client(uri, create=True))
    try:
        store._create(width, fields, id_type, store_text, resume, info)
    except BaseException:
        store.close()
        raise
    return store
