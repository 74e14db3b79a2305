"""`verify --v2 URI --v3 URI`: the store side of verify.

Each collection is streamed page by page into a temporary Parquet index (id, vector), which verify then
searches exactly, block by block, as it does any index (memory stays bounded by the page and the search
budget). With `--search-in-store` the same query vectors also go through the store's own search (its ANN
index) and the store's recall@k against exact search is reported. The verdict is recorded next to the v3
side (in the collection's own metadata, or a file beside a LanceDB table), where `cutover` reads it.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from jmigrate.index.manifest import now
from jmigrate.stores import StoreURI, open_store, parse_uri
from jmigrate.stores.export import export_sides


def ann_recall(uri: StoreURI, queries: np.ndarray, exact: list[list[str]], k: int) -> dict[str, Any]:
    """The store's own search against exact search: mean recall@k over the queries."""
    with open_store(uri) as store:
        got, _ = store.search(queries, k)
    recalls = []
    for want, have in zip(exact, got, strict=True):
        top = want[:k]
        if top:
            recalls.append(len(set(top) & set(have)) / len(top))
    return {
        "k": k,
        "queries": len(recalls),
        "recall": float(np.mean(recalls)) if recalls else None,
        "backend": uri.backend,
        "collection": uri.collection,
    }


def record(v2: str, v3: str, verdict: dict[str, Any]) -> str | None:
    """Keep the verdict next to the v3 side (for `cutover`); returns a note if it could not be kept."""
    u3 = parse_uri(v3)
    rec = {
        "v2": str(parse_uri(v2)) if _is_uri(v2) else v2,
        "v2_collection": _collection(v2),
        "v3_collection": u3.collection,
        "at": now(),
        **verdict,
    }
    with open_store(u3) as store:
        return store.write_record("verify", rec)


def last_record(v3: StoreURI) -> dict[str, Any] | None:
    with open_store(v3) as store:
        got = store.read_record("verify")
    return got if isinstance(got, dict) else None


def _is_uri(value: str) -> bool:
    from jmigrate.stores import is_store_uri

    return is_store_uri(value)


def _collection(value: str) -> str | None:
    return parse_uri(value).collection if _is_uri(value) else None


def verify_stores(
    opts: Any, factory: Any, progress: Any, *, search_in_store: bool
) -> tuple[Any, list[dict[str, Any]]]:
    """`run_verify` with the store sides of `opts` exported first; records the verdict next to a store
    v3 side. Returns the result and, with `search_in_store`, the store's recall per store side."""
    from dataclasses import replace

    from jmigrate.verify.pipeline import run_verify

    progress("reading the vectors out of the store(s)")
    ex = export_sides(opts.v2.index, opts.v3.index, v2_model=opts.v2.model, v3_model=opts.v3.model)
    try:
        run = opts
        for name, side in ex.sides.items():
            so = getattr(opts, name)
            run = replace(
                run,
                **{
                    name: replace(
                        so, index=str(side.path), model=so.model or side.model, task=so.task or side.task
                    )
                },
            )
        result = run_verify(run, factory, progress)
    finally:
        ex.cleanup()
    store_search: list[dict[str, Any]] = []
    if search_in_store:
        for name, side in ex.sides.items():
            got = result.sides[name]
            store_search.append(
                {"side": name, **ann_recall(side.uri, got.query_vectors, got.ranking.doc_ids, opts.k)}
            )
    if "v3" in ex.sides:
        main = result.main()
        note = record(
            opts.v2.index,
            opts.v3.index,
            {
                "v3_worse": bool(result.v3_worse),
                "exit_code": result.exit_code,
                "has_qrels": result.has_qrels,
                "integrity_errors": [i.message for i in result.integrity_errors],
                "main": main.to_dict() if main is not None else None,
                "store_search": store_search,
            },
        )
        progress(note or f"verdict recorded with {ex.sides['v3'].uri.collection} (jmigrate cutover reads it)")
    return result, store_search
