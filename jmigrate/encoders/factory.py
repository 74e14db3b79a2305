"""Build an encoder from CLI-style settings: `open_encoder("api" | "openai" | "onnx", ...)`.

Also resolves the API URL and key from flags and the environment, the one place the CLIs
(`reindex`, `verify`) read them from.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from jmigrate.encoders.base import Encoder
from jmigrate.errors import UsageError
from jmigrate.models import V3

KINDS = ("api", "openai", "onnx")
URL_ENV = "JMIGRATE_API_URL"
KEY_ENVS = ("JINA_API_KEY", "JINAAI_API_KEY")
OPENAI_KEY_ENV = "JMIGRATE_OPENAI_API_KEY"


@dataclass(frozen=True)
class ApiSettings:
    """Where to send requests and with which key. The key is masked in the repr."""

    url: str | None
    api_key: str | None
    key_source: str | None  # "--api-key", an env var name, or None: safe to show, unlike the key

    def __repr__(self) -> str:
        return f"ApiSettings(url={self.url!r}, api_key={'***' if self.api_key else None}, " \
               f"key_source={self.key_source!r})"


def api_settings_from_env(
    api_url: str | None = None,
    api_key: str | None = None,
    *,
    kind: str = "api",
    env: Mapping[str, str] | None = None,
) -> ApiSettings:
    """Flags win over the environment: URL from `api_url` or JMIGRATE_API_URL (the API default is
    applied by the encoder); key from `api_key`, then JINA_API_KEY, then JINAAI_API_KEY (for
    kind="openai": JMIGRATE_OPENAI_API_KEY, so a Jina key is never sent to a self-hosted server)."""
    env = os.environ if env is None else env
    url = api_url or env.get(URL_ENV) or None
    # Surrounding whitespace is a copy-paste accident (a CRLF .env file, `echo` into a file), never key.
    if api_key and api_key.strip():
        return ApiSettings(url, api_key.strip(), "--api-key")
    for name in (OPENAI_KEY_ENV,) if kind == "openai" else KEY_ENVS:
        if env.get(name, "").strip():
            return ApiSettings(url, env[name].strip(), name)
    return ApiSettings(url, None, None)


def open_encoder(
    kind: str,
    model: str = V3,
    *,
    api_url: str | None = None,
    api_key: str | None = None,
    concurrency: int = 8,
    rpm: float | None = None,
    tpm: float | None = None,
    timeout: float = 60.0,
    max_attempts: int = 6,
    model_path: str | None = None,
    allow_download: bool = False,
    providers: list[str] | None = None,
    threads: int | None = None,
    batch_size: int | None = None,
    add_task_prefix: bool | None = None,  # openai: None = for v3 models (see OpenAICompatibleEncoder)
    allow_insecure: bool = False,
    env: Mapping[str, str] | None = None,
) -> Encoder:
    """An encoder of `kind`: "api" (Jina API), "openai" (OpenAI-compatible server) or "onnx" (local)."""
    if kind not in KINDS:
        raise UsageError(f"unknown encoder {kind!r}; choose one of {', '.join(KINDS)}")
    if kind == "onnx":
        return _open_onnx(model, model_path=model_path, allow_download=allow_download, providers=providers,
                          threads=threads, batch_size=batch_size)
    from jmigrate.encoders.api import JinaAPIEncoder, OpenAICompatibleEncoder

    settings = api_settings_from_env(api_url, api_key, kind=kind, env=env)
    common: dict[str, Any] = dict(api_key=settings.api_key, concurrency=concurrency, rpm=rpm, tpm=tpm,
                                  timeout=timeout, max_attempts=max_attempts, allow_insecure=allow_insecure)
    if batch_size is not None:
        common["batch_size"] = batch_size
    if kind == "openai":
        return OpenAICompatibleEncoder(model, api_url=settings.url, add_task_prefix=add_task_prefix, **common)
    return JinaAPIEncoder(model, api_url=settings.url, **common)


def _open_onnx(model: str, *, model_path: str | None, allow_download: bool, providers: list[str] | None,
               threads: int | None, batch_size: int | None) -> Encoder:
    # Imported here: onnxruntime and tokenizers are an optional extra and slow to import.
    from jmigrate.encoders.onnx import OnnxEncoder

    wants_cuda = any(p.lower() in ("cuda", "cudaexecutionprovider") for p in providers or [])
    options: dict[str, Any] = {} if batch_size is None else {"batch_size": batch_size}
    return OnnxEncoder.from_pretrained(model, model_path, allow_download=allow_download,
                                       device="cuda" if wants_cuda else "cpu", threads=threads, **options)
