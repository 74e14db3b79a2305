"""The interface every store backend implements, and the small helpers they share.

A `Store` is one opened collection. Read side: `describe`, `count`, `pages` (bounded pages, resumable
from a cursor), `fetch` (vectors by id, for sample checks), `search` (the store's own index). Write
side, on a collection made by `create_store`: `write` (an idempotent upsert by id) and `finish` (build
the ANN index after the bulk load). Cutover: `alias_target` / `point_alias`.
"""

from __future__ import annotations

import os
import re
from abc import ABC, abstractmethod
from collections.abc import Iterator, Sequence
from dataclasses import asdict, dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np
import pyarrow as pa

from jmigrate.columns import ID_NAMES, TEXT_NAMES, VECTOR_NAMES
from jmigrate.errors import InputError
from jmigrate.models import MODELS

if TYPE_CHECKING:
    from jmigrate.stores import StoreURI

# The column-name lists every reader shares (reindex sources, plan, verify): one place, jmigrate/columns.py.
ID_CANDIDATES, TEXT_CANDIDATES, VECTOR_CANDIDATES = ID_NAMES, TEXT_NAMES, VECTOR_NAMES
MODEL_RE = re.compile(r"jina-embeddings?-[a-z0-9-]+")
SAMPLE_ROWS = 200  # rows looked at to detect payload fields in schemaless stores
LOGICAL_TYPES = ("text", "int", "float", "bool", "json")
# Written with the collection where the store keeps metadata (Qdrant metadata, Chroma metadata, Lance
# schema metadata, a PostgreSQL table comment): model, source, id field.
INFO_KEY = "jmigrate"


@dataclass
class Description:
    """What a collection holds, for `plan --store` and for checks before anything is spent."""

    uri: str
    backend: str
    collection: str
    rows: int
    width: int | None
    id_field: str | None  # None: the store's own point id
    vector_field: str | None  # None: the store's only (unnamed) vector
    text_field: str | None  # None: the text is not stored (re-embedding needs the original documents)
    text_missing: int | None = None  # rows without text (None: not counted)
    fields: dict[str, str] = field(default_factory=dict)  # carried metadata fields -> logical type
    metric: str | None = None
    likely_models: list[str] = field(default_factory=list)
    model_evidence: str = ""
    info: dict[str, Any] = field(default_factory=dict)  # what jmigrate wrote with it, if anything
    notes: list[str] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    def require_text(self) -> None:
        """Refuse to re-embed from a collection whose text is not stored, or missing on some rows."""
        if self.text_field is None:
            raise InputError(
                f"{self.collection} does not store the text (no text field found; name it with "
                "?text= or --text-column): re-embedding needs the original documents"
            )
        if self.text_missing:
            raise InputError(
                f"{self.text_missing:,} of {self.rows:,} rows in {self.collection} have no text in "
                f"{self.text_field!r}; re-embedding needs the text of every row"
            )

    def require_width(self, expected: int) -> None:
        check_width(self.width, expected, f"{self.collection} ({self.vector_field or 'vector'})")


@dataclass
class Page:
    """Consecutive rows of a collection (or rows to write): ids, an (n, d) float32 matrix, texts, metadata."""

    ids: list[Any]
    vectors: np.ndarray
    texts: list[str | None] | None = None  # None: no text field
    metadata: list[dict[str, Any]] | None = None  # carried fields per row (None: none)
    cursor: Any = None  # pass back as `after=` to continue after this page

    def __len__(self) -> int:
        return len(self.ids)


class Store(ABC):
    """One opened collection of one backend. Not thread-safe; close it when done."""

    backend: str = ""

    def __init__(self, uri: StoreURI) -> None:
        self.uri = uri

    @property
    def name(self) -> str:
        return self.uri.collection

    # ---------------------------------------------------------------- read
    @abstractmethod
    def describe(self) -> Description: ...

    @abstractmethod
    def count(self) -> int: ...

    @abstractmethod
    def pages(self, page_rows: int = 1000, after: Any = None, *, vectors: bool = True) -> Iterator[Page]:
        """Every row once, in a stable order, `page_rows` at a time; `after` is a page's `cursor`."""

    @abstractmethod
    def fetch(self, ids: Sequence[Any]) -> dict[str, np.ndarray]:
        """Vectors of the given ids (keys are `str(id)`); ids that are not there are absent."""

    @abstractmethod
    def search(self, queries: np.ndarray, k: int) -> tuple[list[list[str]], np.ndarray]:
        """Top-k by the store's own search (its ANN index where it has one): ids and cosine similarities."""

    # ---------------------------------------------------------------- write (collections from create_store)
    @abstractmethod
    def write(self, page: Page) -> None:
        """Upsert `page` by id: writing the same rows twice leaves one copy of each (crash-safe resume)."""

    def finish(self) -> list[str]:
        """After the bulk load: build indexes. Returns notes for the user (e.g. an index not built)."""
        return []

    @abstractmethod
    def delete(self, ids: Sequence[Any]) -> None:
        """Remove the rows with these ids (absent ids are ignored): `--sync` for rows deleted from v2."""

    @abstractmethod
    def drop(self) -> None:
        """Remove this collection (only for targets jmigrate created; used by --restart)."""

    # ---------------------------------------------------------------- cutover
    @abstractmethod
    def alias_target(self, alias: str) -> str | None:
        """The collection `alias` points at now, or None if there is no such alias."""

    @abstractmethod
    def point_alias(self, alias: str, collection: str) -> str | None:
        """Make `alias` serve `collection` with the store's atomic mechanism; returns the previous target."""

    atomic_alias: bool = True  # False where readers can see a gap during point_alias (documented)

    # ---------------------------------------------------------------- records kept with the collection
    def read_record(self, key: str) -> Any:
        """A small JSON record jmigrate keeps with this collection (e.g. the last verify), or None."""
        return None

    def write_record(self, key: str, value: Any) -> str | None:
        """Keep `value` under `key` with the collection; returns a note when the store cannot keep it."""
        return f"{self.backend} cannot keep records with a collection"

    def close(self) -> None:  # noqa: B027 - optional hook
        pass

    def __enter__(self) -> Store:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


# ---------------------------------------------------------------------------- shared helpers


def likely_models(width: int | None, *texts: str) -> tuple[list[str], str]:
    """Model names seen in stored metadata, else the models of this width; and where it came from."""
    for t in texts:
        names = sorted({m for m in MODEL_RE.findall(t or "") if m in MODELS})
        if names:
            return names, "stored metadata"
    if width:
        names = [m.name for m in MODELS.values() if m.dims == width]
        if names:
            return names, "width"
    return [], ""


def pick_field(
    given: str | None,
    candidates: Sequence[str],
    available: Sequence[str],
    what: str,
    where: str,
    *,
    hint: str,
) -> str | None:
    """The field named by the user (must exist) or the one candidate found; None if none; ambiguous errs."""
    if given:
        if given not in available:
            shown = ", ".join(available[:20]) or "none"
            raise InputError(f"{where} has no {what} field {given!r}; fields: {shown}")
        return given
    found = [c for c in available if c.lower() in candidates]
    if len(found) > 1:
        raise InputError(
            f"{where} has several possible {what} fields ({', '.join(found)}); choose one with {hint}"
        )
    return found[0] if found else None


def check_width(width: int | None, expected: int | None, where: str) -> None:
    if expected is not None and width is not None and width != expected:
        raise InputError(f"{where} holds {width}-dimensional vectors, expected {expected}")


def as_matrix(rows: Any, width: int | None, where: str) -> np.ndarray:
    """Vectors from a client as an (n, d) float32 matrix; ragged or missing vectors are an InputError."""
    try:
        m = np.asarray(rows, dtype=np.float32)
    except (ValueError, TypeError):
        raise InputError(f"{where}: some rows have no vector or vectors of different widths") from None
    if m.ndim != 2 and len(rows) == 0:
        return np.zeros((0, width or 0), dtype=np.float32)
    if m.ndim != 2:
        raise InputError(f"{where}: some rows have no vector or vectors of different widths")
    if width is not None and m.shape[1] != width:
        raise InputError(f"{where}: found a {m.shape[1]}-dimensional vector, expected {width}")
    return m


def scrub(message: str) -> str:
    """A third-party error message made safe to show: secrets from the environment removed, one line."""
    text = " ".join(str(message).split())
    for name in ("PGPASSWORD", "QDRANT_API_KEY", "CHROMA_API_KEY", "JINA_API_KEY"):
        value = os.environ.get(name)
        if value and len(value) >= 4:
            text = text.replace(value, "***")
    text = re.sub(r"(?i)(password|api[_-]?key|token)\s*[=:]\s*\S+", r"\1=***", text)
    return text[:300]


def logical_type(value: Any) -> str:
    if isinstance(value, bool):
        return "bool"
    if isinstance(value, int):
        return "int"
    if isinstance(value, float):
        return "float"
    if isinstance(value, str):
        return "text"
    return "json"


def merge_types(a: str | None, b: str) -> str:
    if a is None or a == b:
        return b
    if {a, b} == {"int", "float"}:
        return "float"
    return "json"


def sniff_fields(rows: Sequence[dict[str, Any]], skip: Sequence[str]) -> dict[str, str]:
    """Logical types of payload fields over a sample of rows (fields in `skip` left out)."""
    types: dict[str, str] = {}
    for r in rows:
        for k, v in r.items():
            if k in skip or v is None:
                continue
            types[k] = merge_types(types.get(k), logical_type(v))
    return dict(sorted(types.items()))


def check_field_types(fields: dict[str, str]) -> None:
    bad = [f"{k}: {v}" for k, v in fields.items() if v not in LOGICAL_TYPES]
    if bad:
        raise InputError(f"unsupported field type(s) {', '.join(bad)}; use {', '.join(LOGICAL_TYPES)}")


def arrow_logical_type(t: pa.DataType) -> str:
    """The store-neutral field type (bool, int, float, text, json) of an Arrow type."""
    if pa.types.is_boolean(t):
        return "bool"
    if pa.types.is_integer(t):
        return "int"
    if pa.types.is_floating(t):
        return "float"
    if pa.types.is_string(t) or pa.types.is_large_string(t):
        return "text"
    return "json"
