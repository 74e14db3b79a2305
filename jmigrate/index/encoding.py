"""The encoder a reindex Settings asks for, built by the one factory (used by both engines)."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from jmigrate.encoders.base import Encoder
    from jmigrate.index.settings import Settings


def open_encoder(settings: Settings, api_key: str | None = None, *, offline: bool = False,
                 env: Mapping[str, str] | None = None,
                 on_note: Callable[[str], None] | None = None) -> Encoder:
    """The encoder `settings` ask for, built by the one factory. `offline`: to plan and count only
    (a dry run): an HTTP encoder then holds no key and sends nothing."""
    from jmigrate.encoders import factory

    if on_note is not None and not offline:
        note = factory.resolve_api_key(settings.encoder, api_key, env=env)[2]
        if note:
            on_note(note)
    return factory.open_encoder(
        settings.encoder, settings.model, api_url=settings.api_url, api_key=api_key,
        concurrency=settings.concurrency, rpm=settings.rpm, tpm=settings.tpm,
        model_path=str(settings.model_path) if settings.model_path else None,
        allow_download=settings.allow_download, batch_size=settings.batch_size,
        allow_insecure=settings.allow_insecure, offline=offline, env=env,
        # openai: a task in the settings (v3's default, or one asked for with another model name)
        # reaches the server the only way the protocol allows, as the instruction before the text
        add_task_prefix=True if settings.task is not None else None)
