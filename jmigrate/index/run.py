"""`reindex` as a library call: a source and one validated `Settings` in, an index folder out.

    from jmigrate.index import Settings, reindex
    result = reindex("docs.jsonl", Settings.resolve({"out": "docs-v3", "dimensions": 768}))

The CLI is a thin wrapper over `reindex` and `dry_run` here; the pipeline itself is in pipeline.py.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from jmigrate.errors import UsageError
from jmigrate.index.encoding import open_encoder
from jmigrate.index.settings import Settings

if TYPE_CHECKING:
    from jmigrate.encoders.base import Encoder
    from jmigrate.index.pipeline import Result, Stats
    from jmigrate.index.sources import Source


def open_source(source: str | Source, settings: Settings) -> Source:
    """The corpus at `source` with the columns `settings` names (a Source passes through)."""
    if not isinstance(source, str):
        return source
    from jmigrate.fileio import require_utf8_name
    from jmigrate.index.sources import open_source as open_path
    from jmigrate.stores import is_store_uri

    require_utf8_name(source, "source")

    columns = list(settings.metadata_columns) if settings.metadata_columns is not None else None
    if is_store_uri(source):  # a vector store collection (postgresql://, qdrant://, ...): jmigrate.stores
        from jmigrate.stores.source import open_store_source

        return open_store_source(source, id_column=settings.id_column, text_column=settings.text_column,
                                 metadata_columns=columns)
    return open_path(source, id_column=settings.id_column, text_column=settings.text_column,
                     metadata_columns=columns)


def source_notes(source: Source) -> list[str]:
    """What the user should know about how the source is read (said before anything runs)."""
    notes = []
    if source.id_column is None and source.format != "text-folder":
        notes.append("no id column found; the row number is used as the id (pass --id-column)")
    if source.vector_columns:
        notes.append(f"old vectors in {', '.join(source.vector_columns)} are not carried over")
    if source.skipped_columns:
        notes.append(f"column(s) {', '.join(source.skipped_columns)} not carried (named like an index "
                     "column); pass --metadata-columns to choose")
    return notes


def reindex(
    source: str | Source,
    settings: Settings,
    *,
    api_key: str | None = None,
    restart: bool = False,
    stop: threading.Event | None = None,
    on_progress: Callable[[Stats, Encoder], None] | None = None,
    on_note: Callable[[str], None] | None = None,
    encoder: Encoder | None = None,
    on_stopping: Callable[[int], None] | None = None,
    on_abandon: Callable[[int], None] | None = None,
) -> Result:
    """Embed `source` into `settings.out` (resuming a run of the same settings). `encoder` overrides
    the one `settings` describe (its kind must still be `settings.encoder`, which the manifest records)."""
    from jmigrate.index import pipeline

    settings.check()
    if settings.out is None:
        raise UsageError("--out DIR is required (the folder the new index is written to)")
    src = open_source(source, settings)
    # The encoder is opened (a missing key, a missing model file...) before the folder is touched.
    concurrency = settings.concurrency
    if encoder is not None:
        enc = encoder
    elif settings.engine == "ray":
        from jmigrate.index.engines.ray import RayEncoder

        if on_note is not None:
            note = _key_note(settings, api_key)
            if note:
                on_note(note)
        enc = RayEncoder(settings, _api_key(settings, api_key), on_note=on_note)
        # hand the encode stage one request window per worker at a time, so every worker is busy
        concurrency = settings.concurrency * settings.ray_workers
    else:
        enc = open_encoder(settings, api_key, on_note=on_note)
    with enc:
        return pipeline.reindex(src, settings.out, enc, settings, restart=restart, stop=stop,
                                on_progress=on_progress, concurrency=concurrency, on_note=on_note,
                                on_stopping=on_stopping, on_abandon=on_abandon)


def _key_note(settings: Settings, api_key: str | None) -> str | None:
    from jmigrate.encoders import factory

    return factory.resolve_api_key(settings.encoder, api_key)[2]


def _api_key(settings: Settings, api_key: str | None) -> str | None:
    """The key the workers' encoders use, resolved once on the driver by the one rule (flag, then the
    environment the driver sees: a worker's environment is not the user's)."""
    from jmigrate.encoders import factory

    return factory.resolve_api_key(settings.encoder, api_key)[0]


def dry_run(source: str | Source, settings: Settings, *, encoder: Encoder | None = None) -> dict[str, Any]:
    """Rows, tokens, requests, cost, duration and size of a run with `settings`; sends nothing and
    writes nothing. HTTP encoders count with the stated estimate, local ones with their tokenizer."""
    from jmigrate.index import dryrun

    settings.check()
    src = open_source(source, settings)
    enc = encoder if encoder is not None else open_encoder(settings, offline=True)
    with enc:
        return dryrun.dry_run(src, enc, settings, rpm=settings.rpm, tpm=settings.tpm,
                              concurrency=settings.concurrency, price_per_mtok=settings.price_per_mtok)
