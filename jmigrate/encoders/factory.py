"""The one factory for every encoder kind: `open_encoder("api" | "openai" | "onnx" | "fake", ...)`.

Also the one place the API URL and key are read from flags and the environment, for every command
(`reindex`, `verify`): `resolve_api_key` decides which key goes to which kind of server.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from jmigrate.errors import UsageError
from jmigrate.models import MODELS, V3

if TYPE_CHECKING:
    from jmigrate.encoders.base import Encoder

# Every kind of encoder jmigrate can build; `fake` gives deterministic test vectors (not Jina's).
KINDS = ("api", "onnx", "openai", "fake")
SENDS_REQUESTS = ("api", "openai")  # the kinds that talk to a server: they need a URL and maybe a key
URL_ENV = "JMIGRATE_API_URL"
KEY_ENVS = ("JINA_API_KEY", "JINAAI_API_KEY")
OPENAI_KEY_ENV = "JMIGRATE_OPENAI_API_KEY"


@dataclass(frozen=True)
class ApiSettings:
    """Where to send requests and with which key. The key is masked in the repr."""

    url: str | None
    api_key: str | None
    key_source: str | None  # "--api-key", an env var name, or None: safe to show, unlike the key
    note: str | None = None  # something the user should hear about the key (never the key itself)

    def __repr__(self) -> str:
        return f"ApiSettings(url={self.url!r}, api_key={'***' if self.api_key else None}, " \
               f"key_source={self.key_source!r})"


def resolve_api_key(
    kind: str,
    api_key: str | None = None,
    *,
    env: Mapping[str, str] | None = None,
) -> tuple[str | None, str | None, str | None]:
    """(key, where it came from, a note) for an encoder of `kind`: the one rule every command uses.

    `--api-key` wins. Otherwise `api` (Jina's API) reads JINA_API_KEY, then JINAAI_API_KEY; `openai`
    (a self-hosted OpenAI-compatible server) reads only JMIGRATE_OPENAI_API_KEY: a Jina key is never
    sent to another server, even when it is the only key set (the note says so; most self-hosted
    servers need no key). `onnx` and `fake` need none."""
    env = os.environ if env is None else env
    # Surrounding whitespace is a copy-paste accident (a CRLF .env file, `echo` into a file), never key.
    if api_key and api_key.strip():
        return api_key.strip(), "--api-key", None
    if kind not in SENDS_REQUESTS:
        return None, None, None
    names = (OPENAI_KEY_ENV,) if kind == "openai" else KEY_ENVS
    for name in names:
        if env.get(name, "").strip():
            return env[name].strip(), name, None
    note = None
    if kind == "openai" and any(env.get(n, "").strip() for n in KEY_ENVS):
        note = (f"{' / '.join(n for n in KEY_ENVS if env.get(n, '').strip())} is not sent to an "
                f"OpenAI-compatible server; set {OPENAI_KEY_ENV} if yours needs a key")
    return None, None, note


def api_settings_from_env(
    api_url: str | None = None,
    api_key: str | None = None,
    *,
    kind: str = "api",
    env: Mapping[str, str] | None = None,
) -> ApiSettings:
    """Flags win over the environment: URL from `api_url` or JMIGRATE_API_URL (the API default is
    applied by the encoder); key by `resolve_api_key`."""
    env = os.environ if env is None else env
    url = api_url or env.get(URL_ENV, "").strip() or None
    key, source, note = resolve_api_key(kind, api_key, env=env)
    return ApiSettings(url, key, source, note)


def open_encoder(
    kind: str,
    model: str = V3,
    *,
    api_url: str | None = None,
    api_key: str | None = None,
    model_path: str | None = None,
    allow_download: bool = False,
    providers: list[str] | None = None,
    threads: int | None = None,
    batch_size: int | None = None,
    add_task_prefix: bool | None = None,  # openai: None = for v3 models (see OpenAICompatibleEncoder)
    offline: bool = False,
    dims: int | None = None,
    env: Mapping[str, str] | None = None,
    **http_options: Any,
) -> Encoder:
    """An encoder of `kind`: "api" (Jina API), "openai" (OpenAI-compatible server), "onnx" (local) or
    "fake" (deterministic test vectors of `dims`, default the model's width).

    `add_task_prefix` (openai): the server knows nothing of v3 tasks, so the task's instruction is
    put in front of each text on the client, once. `offline`: an HTTP encoder built only to plan and
    count (`reindex --dry-run`): it holds no key and refuses to send anything.

    `http_options` go to the HTTP client's constructor as given (`concurrency`, `rpm`, `tpm`,
    `timeout`, `deadline`, `max_response_bytes`, `max_attempts`, `allow_insecure`, ...): its signature
    is the one list of them and the one place their defaults live. The local kinds send nothing and
    leave them unused; a name the client does not know is a UsageError for every kind."""
    if kind not in KINDS:
        raise UsageError(f"unknown encoder {kind!r}; choose one of {', '.join(KINDS)}")
    _check_http_options(kind, http_options)
    if kind == "fake":
        from jmigrate.encoders.fake import FakeEncoder

        info = MODELS.get(model.rsplit("/", 1)[-1])
        options: dict[str, Any] = {} if batch_size is None else {"batch_size": batch_size}
        return FakeEncoder(model=model, dims=dims or (info.dims if info else 1024), **options)
    if kind == "onnx":
        return _open_onnx(model, model_path=model_path, allow_download=allow_download, providers=providers,
                          threads=threads, batch_size=batch_size)
    from jmigrate.encoders.api import JinaAPIEncoder, OpenAICompatibleEncoder

    settings = api_settings_from_env(api_url, api_key, kind=kind, env=env)
    common: dict[str, Any] = dict(http_options, api_key=None if offline else settings.api_key)
    if batch_size is not None:
        common["batch_size"] = batch_size
    if kind == "openai":
        cls: type[JinaAPIEncoder] = OpenAICompatibleEncoder
        common["add_task_prefix"] = add_task_prefix
    else:
        cls = JinaAPIEncoder
    if offline:
        cls = _offline(cls)
    return cls(model, api_url=settings.url, **common)


def _check_http_options(kind: str, options: Mapping[str, Any]) -> None:
    import inspect

    from jmigrate.encoders.api import JinaAPIEncoder, OpenAICompatibleEncoder

    classes = (JinaAPIEncoder,) if kind == "api" else (JinaAPIEncoder, OpenAICompatibleEncoder)
    known = {name for c in classes for name, p in inspect.signature(c.__init__).parameters.items()
             if p.kind is p.KEYWORD_ONLY} - {"api_url", "api_key", "batch_size", "add_task_prefix"}
    unknown = sorted(set(options) - known)
    if unknown:
        raise UsageError(f"unknown encoder option(s) {', '.join(unknown)}; the HTTP client takes "
                         f"{', '.join(sorted(known))}")


def _offline(cls: type[Any]) -> type[Any]:
    """`cls` that plans and counts exactly as it would for a run, without a key and without sending."""

    class Offline(cls):
        def _check_key(self) -> None:
            pass  # nothing is sent: no key needed, none held

        def encode_batch(self, *args: Any, **kwargs: Any) -> Any:
            raise UsageError("this encoder was opened to plan and count only; it sends nothing")

        def encode_late_chunked(self, *args: Any, **kwargs: Any) -> Any:
            raise UsageError("this encoder was opened to plan and count only; it sends nothing")

    Offline.__name__ = Offline.__qualname__ = f"Offline{cls.__name__}"
    return Offline


def _open_onnx(model: str, *, model_path: str | None, allow_download: bool, providers: list[str] | None,
               threads: int | None, batch_size: int | None) -> Encoder:
    # Imported here: onnxruntime and tokenizers are an optional extra and slow to import.
    from jmigrate.encoders.onnx import OnnxEncoder

    wants_cuda = any(p.lower() in ("cuda", "cudaexecutionprovider") for p in providers or [])
    options: dict[str, Any] = {} if batch_size is None else {"batch_size": batch_size}
    return OnnxEncoder.from_pretrained(model, model_path, allow_download=allow_download,
                                       device="cuda" if wants_cuda else "cpu", threads=threads, **options)
