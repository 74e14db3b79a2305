"""Vector databases as sources and targets: one URI syntax, one small interface, one module per backend.

A URI names one collection (table) in one store:

    postgresql://user@host:5432/db?table=docs&vector=embedding&text=content&id=id
    postgresql:///db?host=/path/to/socket&table=docs          (unix socket)
    qdrant://host:6333/collection    qdrant+https://host/collection    qdrant:///path?collection=docs
    chroma:///path?collection=docs   chroma+http://host:8000/collection
    lancedb:///path?table=docs

Secrets never travel in a URI: PostgreSQL passwords come from PGPASSWORD, ~/.pgpass or a libpq service,
the Qdrant API key from QDRANT_API_KEY. A URI carrying one is refused without echoing it. The backend
module (and its client library) is imported only when a URI of its kind is opened.
"""

from __future__ import annotations

import importlib
import os
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import parse_qsl, unquote, urlsplit

from jmigrate.errors import UsageError
from jmigrate.stores.base import Description, Page, Store

__all__ = [
    "BACKENDS",
    "Description",
    "Page",
    "Store",
    "StoreURI",
    "create_store",
    "is_store_uri",
    "open_store",
    "parse_uri",
]

# scheme -> (backend module, extra to install)
BACKENDS: dict[str, tuple[str, str]] = {
    "postgresql": ("pgvector", "pgvector"),
    "postgres": ("pgvector", "pgvector"),
    "qdrant": ("qdrant", "qdrant"),
    "qdrant+http": ("qdrant", "qdrant"),
    "qdrant+https": ("qdrant", "qdrant"),
    "chroma": ("chroma", "chroma"),
    "chroma+http": ("chroma", "chroma"),
    "chroma+https": ("chroma", "chroma"),
    "lancedb": ("lancedb", "lancedb"),
}
_SCHEME_RE = re.compile(r"^([a-z][a-z0-9+.-]*)://", re.IGNORECASE)
# Query keys that name a secret: refused in any URI (they would end up in shell history and logs).
_SECRET_KEYS = frozenset(
    {
        "password",
        "passwd",
        "pass",
        "api_key",
        "apikey",
        "api-key",
        "key",
        "token",
        "secret",
        "auth",
        "authorization",
    }
)
# What each backend accepts in the query string (anything else is a typo worth reporting).
_PARAMS: dict[str, frozenset[str]] = {
    "pgvector": frozenset(
        {
            "table",
            "vector",
            "text",
            "id",
            "host",
            "port",
            "user",
            "dbname",
            "sslmode",
            "sslrootcert",
            "sslcert",
            "sslkey",
            "service",
            "connect_timeout",
            "application_name",
            "options",
            "target_session_attrs",
        }
    ),
    "qdrant": frozenset({"collection", "vector", "text", "id", "prefix", "timeout"}),
    "chroma": frozenset({"collection", "text", "id", "tenant", "database"}),
    "lancedb": frozenset({"table", "vector", "text", "id"}),
}


@dataclass(frozen=True)
class StoreURI:
    """A parsed store URI. `str()` gives a display form that is safe to print (it never holds a secret)."""

    scheme: str  # as written, lower-cased: postgresql, qdrant+https, chroma, ...
    backend: str  # pgvector | qdrant | chroma | lancedb
    host: str | None  # None: embedded/local (a path) or a unix socket given as ?host=
    port: int | None
    user: str | None
    path: str | None  # local storage folder (qdrant/chroma/lancedb), database name (postgresql)
    collection: str  # the table or collection this URI names
    params: Mapping[str, str] = field(default_factory=dict)
    text: str = ""  # the URI as given (already checked to hold no secret)

    @property
    def local(self) -> bool:
        """True for an embedded store on a local path (no server)."""
        return self.backend != "pgvector" and self.host is None

    @property
    def https(self) -> bool:
        return self.scheme.endswith("+https")

    def with_collection(self, name: str) -> StoreURI:
        """The same store, another collection/table (for targets and aliases beside this one)."""
        key = "table" if self.backend in ("pgvector", "lancedb") else "collection"
        params = dict(self.params)
        in_path = self.backend in ("qdrant", "chroma") and self.host is not None
        text = self.text
        if in_path:
            head, _, query = text.partition("?")
            head = head.rstrip("/").rsplit("/", 1)[0] + "/" + name
            text = head + (f"?{query}" if query else "")
        else:
            params[key] = name
            head = text.partition("?")[0]
            text = head + "?" + "&".join(f"{k}={v}" for k, v in params.items())
        return StoreURI(
            self.scheme, self.backend, self.host, self.port, self.user, self.path, name, params, text
        )

    def __str__(self) -> str:
        return self.text


def is_store_uri(value: str) -> bool:
    """True when `value` looks like a store URI (any `scheme://`), so callers route it here, not to files."""
    m = _SCHEME_RE.match(value.strip())
    return m is not None and m.group(1).lower() not in ("file",)


def parse_uri(value: str) -> StoreURI:
    """Parse and check a store URI; every problem is a one-line UsageError that never echoes a secret."""
    raw = value.strip()
    m = _SCHEME_RE.match(raw)
    if not m:
        raise UsageError("not a store URI (expected postgresql://, qdrant://, chroma:// or lancedb://...)")
    scheme = m.group(1).lower()
    if scheme not in BACKENDS:
        raise UsageError(f"unknown store scheme {scheme!r}; known: {', '.join(sorted(BACKENDS))}")
    backend = BACKENDS[scheme][0]
    try:
        parts = urlsplit(raw)
        port = parts.port
    except ValueError:
        raise UsageError(f"{scheme} URI: the port is not a number between 0 and 65535") from None
    if parts.password is not None or (parts.username is not None and ":" in parts.netloc.split("@")[0]):
        if backend == "pgvector":
            raise UsageError(
                "the postgresql URI must not contain a password; use PGPASSWORD, ~/.pgpass "
                "or a libpq service (the URI was not shown because it holds a secret)"
            )
        raise UsageError(
            f"the {scheme} URI must not contain credentials; use the environment "
            "(QDRANT_API_KEY for Qdrant) (the URI was not shown because it holds a secret)"
        )
    query = parse_qsl(parts.query, keep_blank_values=True)
    secret = [k for k, _ in query if k.lower() in _SECRET_KEYS]
    if secret:
        raise UsageError(
            f"the {scheme} URI must not contain {secret[0]!r}; secrets come from the environment "
            "(PGPASSWORD/.pgpass, QDRANT_API_KEY) (the URI was not shown because it holds a secret)"
        )
    params: dict[str, str] = {}
    for k, v in query:
        if k in params:
            raise UsageError(f"{scheme} URI: {k!r} is given twice")
        params[k] = v
    unknown = sorted(set(params) - _PARAMS[backend])
    if unknown:
        raise UsageError(
            f"{scheme} URI: unknown parameter {unknown[0]!r}; accepted: {', '.join(sorted(_PARAMS[backend]))}"
        )
    if parts.fragment:
        raise UsageError(f"{scheme} URI: a '#' fragment is not allowed")
    host = unquote(parts.hostname) if parts.hostname else None
    user = unquote(parts.username) if parts.username else None
    path = unquote(parts.path)
    if backend == "pgvector":
        return _postgres(scheme, raw, host, port, user, path, params)
    if user is not None:
        raise UsageError(f"{scheme} URI: a user name is not used here; remove '{user}@'")
    if host is None:  # embedded: scheme:///path?collection=...
        if scheme.endswith(("+http", "+https")):
            raise UsageError(f"{scheme} URI needs a host: {scheme}://host:port/collection")
        if not path or path == "/":
            raise UsageError(
                f"{scheme} URI needs a local folder: {scheme}:///path/to/storage?"
                f"{'table' if backend == 'lancedb' else 'collection'}=NAME"
            )
        key = "table" if backend == "lancedb" else "collection"
        name = params.get(key, "")
        if not name:
            raise UsageError(f"{scheme} URI needs ?{key}=NAME (which {key} in {path})")
        return StoreURI(scheme, backend, None, None, None, path, name, params, raw)
    if backend == "lancedb":
        raise UsageError(
            "lancedb URIs name a local folder: lancedb:///path/to/db?table=NAME "
            "(LanceDB Cloud is not supported)"
        )
    if scheme == "chroma":
        raise UsageError(
            "chroma://host is ambiguous: use chroma:///path?collection=NAME for a local "
            "folder or chroma+http://host:8000/NAME for a server"
        )
    name = path.strip("/")
    if "collection" in params:
        if name and name != params["collection"]:
            raise UsageError(
                f"{scheme} URI names two collections ({name!r} in the path and "
                f"{params['collection']!r} in ?collection=)"
            )
        name = params["collection"]
    if not name or "/" in name:
        raise UsageError(f"{scheme} URI needs exactly one collection: {scheme}://host:port/COLLECTION")
    return StoreURI(scheme, backend, host, port, None, None, name, params, raw)


def _postgres(
    scheme: str,
    raw: str,
    host: str | None,
    port: int | None,
    user: str | None,
    path: str,
    params: dict[str, str],
) -> StoreURI:
    db = path.lstrip("/")
    if "/" in db:
        raise UsageError("postgresql URI: the path is the database name (postgresql://host/DBNAME?table=...)")
    if "dbname" in params:
        if db and db != params["dbname"]:
            raise UsageError("postgresql URI names two databases (in the path and in ?dbname=)")
        db = params["dbname"]
    table = params.get("table", "")
    if not table:
        raise UsageError("postgresql URI needs ?table=NAME (the table or view holding the vectors)")
    if host is None and "host" in params:
        host = params["host"]  # a unix socket folder or a host name given in the query
    if host is not None and "host" in params and params["host"] != host:
        raise UsageError("postgresql URI names two hosts (in the authority and in ?host=)")
    if "port" in params:
        try:
            qport = int(params["port"])
        except ValueError:
            raise UsageError("postgresql URI: ?port= is not a number") from None
        if port is not None and port != qport:
            raise UsageError("postgresql URI names two ports")
        port = qport
    return StoreURI(
        scheme, "pgvector", host, port, user or params.get("user"), db or None, table, params, raw
    )


def _backend_module(uri: StoreURI) -> Any:
    module, extra = BACKENDS[uri.scheme]
    try:
        return importlib.import_module(f"jmigrate.stores.{module}")
    except ImportError as e:
        raise UsageError(
            f"{uri.scheme} stores need the {extra!r} extra: pip install 'jmigrate[{extra}]' "
            f"({e.name or e} is not installed)"
        ) from None


def open_store(
    uri: str | StoreURI,
    *,
    text_field: str | None = None,
    id_field: str | None = None,
    vector_field: str | None = None,
) -> Store:
    """Open an existing collection (v2 side, or a v3 target to check); a missing one is an InputError.

    `text_field`/`id_field`/`vector_field` override the URI's `text=`/`id=`/`vector=` (the CLI's
    --text-column/--id-column); where neither says, the backend detects them when unambiguous.
    """
    u = parse_uri(uri) if isinstance(uri, str) else uri
    store: Store = _backend_module(u).open(
        u, text_field=text_field, id_field=id_field, vector_field=vector_field
    )
    return store


def create_store(
    uri: str | StoreURI,
    *,
    width: int,
    fields: Mapping[str, str] | None = None,
    id_type: str = "text",
    store_text: bool = True,
    resume: bool = False,
    info: Mapping[str, Any] | None = None,
) -> Store:
    """Create a NEW collection/table to write into. It must not exist unless `resume` (then it must match).

    `fields` maps carried metadata fields to logical types (text, int, float, bool, json); `id_type` is
    text or int; `info` is small JSON kept with the collection (model, source) where the store has room.
    """
    u = parse_uri(uri) if isinstance(uri, str) else uri
    if width <= 0:
        raise UsageError(f"vector width must be positive, got {width}")
    if id_type not in ("text", "int"):
        raise UsageError(f"id type must be text or int, got {id_type!r}")
    store: Store = _backend_module(u).create(
        u,
        width=width,
        fields=dict(fields or {}),
        id_type=id_type,
        store_text=store_text,
        resume=resume,
        info=dict(info or {}),
    )
    return store


def env_secret(name: str) -> str | None:
    """A secret from the environment (empty counts as unset)."""
    value = os.environ.get(name)
    return value or None
