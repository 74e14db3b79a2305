"""`plan --store URI`: a collection in a vector database reported like the stores plan finds on disk.

Rows, vector width, the likely model (from what is stored with the collection, else from the width),
whether the text is stored (said plainly when it is not: re-embedding then needs the original
documents), and the exact `reindex` command that re-embeds it into a new collection beside it, with
token, cost and size estimates from a sample of the texts.
"""

from __future__ import annotations

import shlex
from typing import Any

from jmigrate.models import MODELS, V3
from jmigrate.scan.stores import StoreInfo
from jmigrate.stores import open_store, parse_uri

SAMPLE_ROWS = 200


def store_info(uri: str, *, price_per_mtok: float | None = None) -> StoreInfo:
    """Describe the collection `uri` names (one-line JMigrateError if it cannot be read)."""
    from jmigrate.encoders.base import estimate_tokens

    u = parse_uri(uri)
    with open_store(u) as store:
        d = store.describe()
        texts: list[str] = []
        if d.text_field:
            for page in store.pages(SAMPLE_ROWS, vectors=False):
                texts = [t for t in (page.texts or []) if isinstance(t, str) and t]
                break
    info = StoreInfo(
        str(u),
        d.backend,
        d.rows,
        d.width,
        d.vector_field or "vector",
        d.text_field,
        list(d.likely_models),
        d.model_evidence,
        list(d.notes),
    )
    if d.text_field is None:
        info.notes = [n for n in info.notes if "text is not stored" not in n]
        info.notes.append(
            "the text is NOT stored in this collection: re-embedding needs the original "
            "documents (reindex them from their files, not from this collection)"
        )
    elif d.text_missing:
        info.notes.append(
            f"{d.text_missing:,} of {d.rows:,} rows have no text in {d.text_field!r}: reindex "
            "refuses the collection until every row has its text"
        )
    if texts:
        info.avg_tokens = sum(estimate_tokens(t) for t in texts) / len(texts)
    target = u.with_collection(f"{u.collection.rsplit('.', 1)[-1]}_v3")
    parts = [
        "jmigrate",
        "reindex",
        shlex.quote(str(u)),
        "--out",
        shlex.quote(f"{target.collection}-index"),
        "--to",
        shlex.quote(str(target)),
        "--model",
        V3,
        "--task",
        "retrieval.passage",
    ]
    if d.width and d.width != MODELS[V3].dims and d.width in (512, 768):
        parts += ["--dimensions", str(d.width)]
        info.notes.append(f"--dimensions {d.width} keeps the collection's width; 1024 is v3's full quality")
    info.reindex_command = " ".join(parts)
    tokens = d.rows * info.avg_tokens if info.avg_tokens else None
    info.estimates = {
        "rows": d.rows,
        "tokens": round(tokens) if tokens else None,
        "tokens_counted_by": "estimate: ~4 characters per token on a sample" if tokens else None,
        "cost": tokens / 1e6 * price_per_mtok if tokens and price_per_mtok is not None else None,
        "output_bytes_1024": d.rows * 1024 * 4,
    }
    return info


def store_infos(uris: list[str], *, price_per_mtok: float | None = None) -> list[dict[str, Any]]:
    return [store_info(u, price_per_mtok=price_per_mtok).to_dict() for u in uris]
