"""Every `reindex` option in one typed `Settings`, and the one place they are merged and validated.

Each option is a dataclass field whose metadata holds its flag, help text and whether it decides the
output (fingerprinted). The CLI builds its flags from these fields, config files are read against
them, and `Settings.resolve()` merges defaults < config file < flags, type-checks every value and
checks every rule (task against the model's tasks, dimensions against its widths, encoder options)
before anything is written or spent. Library callers that build a `Settings` directly get the same
rules from `check()`, which `reindex` and `dry_run` call again.
"""

from __future__ import annotations

import json
import math
import os
import typing
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any

from jmigrate.encoders.factory import KINDS as ENCODER_KINDS
from jmigrate.encoders.factory import SENDS_REQUESTS, URL_ENV
from jmigrate.errors import UsageError
from jmigrate.models import DEFAULT_DOCUMENT_TASK, MATRYOSHKA_DIMS, MODELS, TASKS, V3, Model


@dataclass(frozen=True)
class Option:
    """How an option is set: its flag(s), help, and whether it changes the output."""

    help: str
    flags: tuple[str, ...] = ()  # () = `--<field-name-with-dashes>`; ("",) = no flag (library/config only)
    flag_type: Any = None  # the type the flag is parsed as, when it differs from the field's
    metavar: str | None = None  # what the help shows for the value (default: its type)
    hidden: bool = False
    config: bool = True  # may be set in a config file
    fingerprint: bool = False  # decides the vectors or the index: a change needs --restart
    choices: tuple[str, ...] = ()
    minimum: float | None = None  # inclusive lower bound of a number
    positive: bool = False  # a number that must be > 0

    def flag_names(self, name: str) -> tuple[str, ...]:
        if self.flags == ("",):
            return ()
        return self.flags or ("--" + name.replace("_", "-"),)


def _opt(default: Any, help: str, **kw: Any) -> Any:  # noqa: A002 - mirrors the field's own help
    return field(default=default, metadata={"option": Option(help, **kw)})


@dataclass(frozen=True, kw_only=True)
class Settings:
    """Everything `reindex` needs to know, typed and validated. Build it with `Settings.resolve()`.

    The fields marked `fingerprint` decide the output; they are recorded in the manifest and a rerun
    with other values is refused (unless nothing was embedded yet). The others (limits, price, where
    the server is) may change between runs.
    """

    out: Path | None = _opt(None, "Output index folder (created; rerun the same command to resume).",
                            flags=("--out",), metavar="DIR")
    encoder: str = _opt("api", "api | onnx | openai (fake: test vectors).", fingerprint=True, metavar="KIND",
                        choices=ENCODER_KINDS)
    model: str = _opt(V3, "Model name (default: jina-embeddings-v3).", fingerprint=True,
                      metavar="MODEL")
    task: str | None = _opt(DEFAULT_DOCUMENT_TASK, "v3 task (default: retrieval.passage; v2 models have "
                            "none).", fingerprint=True, choices=tuple(TASKS), metavar="TASK")
    dimensions: int = _opt(0, "Vector size (default: the model's; 768 keeps a v2 schema).",
                           flag_type=int | None, fingerprint=True, positive=True, metavar="N")
    late_chunking: bool = _opt(False, "Embed each document once and pool its chunks.",
                               flags=("--late-chunking/--no-late-chunking",), fingerprint=True)
    chunk_by: str | None = _opt(None, "Chunk documents: tokens | sentences.", fingerprint=True, metavar="BY",
                                choices=("tokens", "sentences"))
    chunk_size: int = _opt(512, "Chunk size in tokens (default: 512).", fingerprint=True, positive=True,
                          metavar="N")
    chunk_overlap: int = _opt(0, "Overlap in tokens (default: 0).", fingerprint=True, minimum=0,
                             metavar="N")
    on_long: str = _opt("reject", "Rows over the token limit: truncate | chunk | reject (default: reject).",
                        fingerprint=True, choices=("truncate", "chunk", "reject"), metavar="ACTION")
    concurrency: int = _opt(8, "Requests in flight (default: 8).", positive=True, metavar="N")
    rpm: float | None = _opt(None, "Requests per minute limit.", positive=True, metavar="N")
    tpm: float | None = _opt(None, "Tokens per minute limit.", positive=True, metavar="N")
    price_per_mtok: float | None = _opt(None, "Price per million tokens, for spend and estimates.",
                                        minimum=0, metavar="USD")
    max_spend: float | None = _opt(None, "Stop before the spend (at --price-per-mtok) could pass this many "
                                         "dollars, in all runs of this index; rerun with more to continue.",
                                   positive=True, metavar="USD")
    limit: int | None = _opt(None, "Only the first N source rows.", fingerprint=True, minimum=0,
                              metavar="N")
    id_column: str | None = _opt(None, "Column with the ids (detected).", metavar="COLUMN")
    text_column: str | None = _opt(None, "Column with the texts (detected).", metavar="COLUMN")
    metadata_columns: tuple[str, ...] | None = _opt(None, "Comma-separated columns to carry (all others).",
                                                    flag_type=str | None, metavar="A,B,...")
    store_text: bool = _opt(True, "Store the text in the index (--no-text: do not).",
                            flags=("--store-text/--no-text",), fingerprint=True)
    api_url: str | None = _opt(None, f"API base URL (env {URL_ENV}).", metavar="URL")
    allow_insecure: bool = _opt(False, "Allow a plain http:// --api-url to a non-loopback host (the key "
                                       "travels unencrypted).", flags=("--allow-insecure",), config=False)
    model_path: Path | None = _opt(None, "Local ONNX model folder (--encoder onnx).", metavar="DIR")
    allow_download: bool = _opt(False, "Let --encoder onnx fetch the model from the HF Hub.",
                                flags=("--allow-download/--no-download",))
    to: str | None = _opt(None, "Then load the vectors into a NEW vector-store collection (postgresql://, "
                                "qdrant://, chroma://, lancedb://; docs/stores.md).", metavar="URI")
    sync: bool = _opt(False, "With a store URI as SOURCE and --to: embed only new or changed rows, delete "
                             "deleted ones (docs/stores.md).", flags=("--sync",), config=False)
    batch_size: int | None = _opt(None, "Inputs per request.", hidden=True, positive=True,
                                  metavar="N")
    unit_rows: int = _opt(256, "Source rows per journalled unit.", hidden=True, fingerprint=True,
                          positive=True, metavar="N")
    shard_rows: int = _opt(100_000, "Output rows per Parquet shard.", hidden=True, fingerprint=True,
                           positive=True, metavar="N")
    row_group_rows: int = _opt(8192, "Rows per Parquet row group.", flags=("",), config=False,
                               fingerprint=True, positive=True)
    # Where the encoding runs. Never fingerprinted: an index started on one engine can be finished on
    # the other, byte for byte (docs/scale.md).
    engine: str = _opt("local", "Where encoding runs: local | ray (the jmigrate[ray] extra; docs/scale.md).",
                       choices=("local", "ray"), metavar="ENGINE")
    ray_address: str | None = _opt(None, "Ray cluster to join: auto | ray://HOST:10001 (default: start a "
                                         "local one).", metavar="ADDR")
    ray_workers: int = _opt(2, "Ray encoder workers (actors), each holding one encoder (default: 2).",
                            positive=True, metavar="N")
    ray_cpus_per_worker: float = _opt(0.25, "CPUs each Ray worker reserves (default: 0.25).", positive=True,
                                      metavar="N")
    ray_gpus_per_worker: float = _opt(0.0, "GPUs each Ray worker reserves (default: 0).", minimum=0,
                                      metavar="N")

    def __post_init__(self) -> None:
        if self.dimensions == 0 and self.model_info is not None:
            # Not given: the model's full width (frozen, hence the object.__setattr__).
            object.__setattr__(self, "dimensions", self.model_info.dims)

    # ---------------------------------------------------------------------------------- derived
    @property
    def chunked(self) -> bool:
        return self.late_chunking or self.chunk_by is not None or self.on_long == "chunk"

    def chunking(self) -> dict[str, Any] | None:
        if self.chunk_by is None:
            return None
        return {"by": self.chunk_by, "size": self.chunk_size, "overlap": self.chunk_overlap}

    @property
    def model_info(self) -> Model | None:
        return MODELS.get(self.model.rsplit("/", 1)[-1])

    def fingerprinted(self) -> dict[str, Any]:
        """The settings that decide the output (recorded in the manifest and compared on resume)."""
        return {f.name: getattr(self, f.name) for f in fields(self) if _option(f.name).fingerprint}

    # ------------------------------------------------------------------------------ validation
    def check(self, where: Callable[[str], str] | None = None) -> None:
        """Raise UsageError (one line) on the first rule these settings break.

        `where(field)` names the place a value came from in messages (a flag, or a config key)."""
        name = where or flag_of
        for f in fields(self):
            _check_value(f.name, getattr(self, f.name), name, unset_ok=True)
        info = self.model_info
        if info is None and self.dimensions == 0:
            raise UsageError(f"unknown model {self.model!r} (not in the catalogue): pass --dimensions; "
                             f"known models: {', '.join(MODELS)}")
        if self.task is not None and info is not None and info.generation != "v3":
            raise UsageError(f"{name('task')} {self.task}: {info.name} has no tasks (only v3 models do); "
                             "leave the task out")
        if info is not None:
            _check_width(self.dimensions, info, name("dimensions"))
        if self.late_chunking and self.chunk_by is None:
            raise UsageError(f"{name('late_chunking')} needs {name('chunk_by')} tokens|sentences")
        if self.late_chunking and self.encoder == "openai":
            raise UsageError(f"{name('late_chunking')} needs the Jina API or the local ONNX backend; "
                             "an OpenAI-compatible server cannot do it")
        if self.chunk_by is None:
            # Never silently ignored: without chunking these would change nothing.
            for key in ("chunk_size", "chunk_overlap"):
                if getattr(self, key) != _DEFAULTS[key]:
                    raise UsageError(f"{name(key)} {getattr(self, key)} has no effect without "
                                     f"{name('chunk_by')} tokens|sentences (or {name('late_chunking')})")
        if self.chunk_by is not None and self.chunk_overlap >= self.chunk_size:
            raise UsageError(f"{name('chunk_overlap')} {self.chunk_overlap} must be smaller than "
                             f"{name('chunk_size')} {self.chunk_size}")
        if self.encoder == "openai" and not self.api_url:
            raise UsageError(f"--encoder openai needs the server's URL: pass {name('api_url')} "
                             f"(or set {URL_ENV})")
        if self.api_url is not None and self.encoder not in SENDS_REQUESTS:
            raise UsageError(f"{name('api_url')} is for --encoder api or openai, not {self.encoder}")
        for key in ("model_path", "allow_download"):
            if getattr(self, key) and self.encoder != "onnx":
                raise UsageError(f"{name(key)} is for --encoder onnx, not {self.encoder}")
        if self.max_spend is not None:
            if self.price_per_mtok is None:
                raise UsageError(f"{name('max_spend')} needs {name('price_per_mtok')} (your price per "
                                 "million tokens): without it the spend is unknown")
            if self.encoder not in SENDS_REQUESTS:
                raise UsageError(f"{name('max_spend')} is for --encoder api or openai; {self.encoder} is not "
                                 "billed per token")
        if self.engine != "ray":
            # Never silently ignored: without the Ray engine these would change nothing.
            for key in ("ray_address", "ray_workers", "ray_cpus_per_worker", "ray_gpus_per_worker"):
                if getattr(self, key) != _DEFAULTS[key]:
                    raise UsageError(f"{name(key)} is for {name('engine')} ray")
        if self.engine == "ray" and self.max_spend is not None:
            # The cap is checked by the one HTTP client before each request; on Ray the requests are
            # sent by several clients, which do not share it yet.
            raise UsageError(f"{name('max_spend')} is not supported with {name('engine')} ray yet")
        if self.ray_address is not None and not (
                self.ray_address == "auto" or self.ray_address.startswith("ray://")
                or _host_port(self.ray_address)):
            raise UsageError(f"{name('ray_address')} {_plain(self.ray_address)}: expected auto, "
                             "ray://HOST:PORT or HOST:PORT")
        if self.api_url is not None:
            from jmigrate.encoders.api import check_base_url

            check_base_url(self.api_url, allow_insecure=self.allow_insecure)
        if self.out is not None:
            check_out_folder(self.out)

    # -------------------------------------------------------------------------------- merging
    @classmethod
    def resolve(
        cls,
        flags: Mapping[str, Any] | None = None,
        *,
        config: Path | None = None,
        env: Mapping[str, str] | None = None,
        require_out: bool = True,
        on_note: Callable[[str], None] | None = None,
    ) -> Settings:
        """Defaults < config file (`jmigrate.toml` [reindex] table, or a plan JSON's "reindex" object) <
        `flags` (field name -> value; None = not given); then type-check and validate everything.

        The model's defaults (task, width) apply when neither gives them. `env` supplies the API URL
        (JMIGRATE_API_URL) for the encoders that send requests; the key is never part of Settings."""
        env = os.environ if env is None else env
        values: dict[str, Any] = {}
        origin: dict[str, str] = {}
        from_config = load_config(config) if config is not None else {}
        for key, (label, value) in from_config.items():
            values[key] = value
            origin[key] = label
        for key, value in (flags or {}).items():
            if key not in _OPTIONS:
                raise UsageError(f"unknown reindex setting {key!r}")
            if value is None:
                continue
            if key == "metadata_columns" and isinstance(value, str):
                value = _split_columns(value)
            values[key] = value
            origin[key] = flag_of(key)

        def where(key: str) -> str:
            return origin.get(key, flag_of(key))

        hints = _hints()
        for key, value in values.items():
            values[key] = _coerce(key, value, hints[key], where(key))
            _check_value(key, values[key], where)  # before any default fills in: `--dimensions 0` is an error
        if require_out and values.get("out") is None:
            raise UsageError("--out DIR is required (the folder the new index is written to)")
        model = values.get("model", V3)
        info = MODELS.get(model.rsplit("/", 1)[-1])
        if "task" not in values:
            # v2 models have no tasks; a model outside the catalogue gets none unless asked for one.
            values["task"] = DEFAULT_DOCUMENT_TASK if info is not None and info.generation == "v3" else None
        if "dimensions" not in values and info is not None:
            values["dimensions"] = info.dims
        if values.get("late_chunking") and values.get("chunk_by") is None:
            values["chunk_by"] = "tokens"
        kind = values.get("encoder", "api")
        if kind in SENDS_REQUESTS and values.get("api_url") is None and env.get(URL_ENV, "").strip():
            values["api_url"] = env[URL_ENV].strip()
            origin["api_url"] = URL_ENV
        settings = cls(**values)
        settings.check(where)
        if on_note is not None and "api_url" in from_config and (flags or {}).get("api_url") is None:
            # A config file from someone else decides where the key is sent: say so, by host only.
            from urllib.parse import urlsplit

            host = urlsplit(str(settings.api_url)).hostname
            on_note(f"requests and the API key go to {host} (api_url from {config})")
        return settings


# ---------------------------------------------------------------------------------- helpers

_OPTIONS: dict[str, Option] = {f.name: f.metadata["option"] for f in fields(Settings)}
_DEFAULTS: dict[str, Any] = {f.name: f.default for f in fields(Settings)}
_CONFIG_KEYS = {k for k, o in _OPTIONS.items() if o.config}


def _option(name: str) -> Option:
    return _OPTIONS[name]


def options() -> dict[str, Option]:
    """Field name -> its Option, in declaration order (the CLI builds its flags from these)."""
    return dict(_OPTIONS)


def flag_of(name: str) -> str:
    """The flag that sets field `name` (its positive form), for messages."""
    names = _OPTIONS[name].flag_names(name)
    return names[0].split("/")[0] if names else name


_HINTS: dict[str, Any] = {}


def _hints() -> dict[str, Any]:
    if not _HINTS:
        _HINTS.update(typing.get_type_hints(Settings))
    return _HINTS


def field_type(name: str) -> Any:
    """The declared type of field `name` (resolved, e.g. `int | None`)."""
    return _hints()[name]


def _split_columns(text: str) -> tuple[str, ...]:
    return tuple(c.strip() for c in text.split(",") if c.strip())


def _show(value: Any) -> str:
    try:
        text = json.dumps(value, ensure_ascii=False)
    except (TypeError, ValueError):
        text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."


_TYPE_WORDS = {bool: "true or false", int: "an integer", float: "a number", str: "a string",
               Path: "a path (a string)"}


def _kind_of(value: Any) -> str:
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, int):
        return "an integer"
    if isinstance(value, float):
        return "a number"
    if isinstance(value, str):
        return "a string"
    if isinstance(value, (list, tuple)):
        return "a list"
    if isinstance(value, dict):
        return "a table"
    if value is None:
        return "null"
    return type(value).__name__


def _coerce(key: str, value: Any, hint: Any, where: str) -> Any:
    """`value` as field `key`'s type, or a one-line error naming the key, the value and the type.
    Nothing is converted from text: `"false"` is not false and `"10"` is not 10 (bool is not int)."""
    args = typing.get_args(hint)
    optional = type(None) in args
    base = next((a for a in args if a is not type(None)), hint) if args else hint
    if value is None and optional:
        return None
    if typing.get_origin(base) is tuple:  # metadata_columns: a list of strings, or "a,b,c"
        if isinstance(value, str):
            return _split_columns(value)
        if isinstance(value, (list, tuple)) and all(isinstance(v, str) and v.strip() for v in value):
            return tuple(value)
        raise UsageError(f"{where} = {_show(value)} is {_kind_of(value)}, expected a list of column names")
    ok = {
        bool: lambda v: isinstance(v, bool),
        int: lambda v: isinstance(v, int) and not isinstance(v, bool),
        float: lambda v: isinstance(v, (int, float)) and not isinstance(v, bool),
        str: lambda v: isinstance(v, str),
        Path: lambda v: isinstance(v, (str, Path)),
    }[base](value)
    if not ok:
        raise UsageError(f"{where} = {_show(value)} is {_kind_of(value)}, expected {_TYPE_WORDS[base]}")
    if base in (str, Path) and not str(value).strip():
        # "" would be the current folder as --out, no model, no column: never what was meant
        raise UsageError(f"{where} is empty")
    if base is float:
        return float(value)
    if base is Path:
        return Path(value)
    return value


def _check_value(key: str, value: Any, name: Callable[[str], str], *, unset_ok: bool = False) -> None:
    """Choices and ranges of one field (its type is settled by `_coerce` or the dataclass caller).
    `unset_ok`: a `dimensions` of 0 means "not given" (a built Settings of a model outside the catalogue)."""
    o = _OPTIONS[key]
    if value is None:
        return
    if o.choices and value not in o.choices:
        what = "unknown task; v3 tasks are" if key == "task" else "choose one of"
        raise UsageError(f"{name(key)} {_plain(value)}: {what} {', '.join(o.choices)}")
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        if key == "dimensions" and value == 0 and unset_ok:
            return  # checked by `Settings.check` (an unknown model needs a width)
        if isinstance(value, float) and not math.isfinite(value):
            raise UsageError(f"{name(key)} {value}: must be a finite number")
        if o.positive and value <= 0:
            raise UsageError(f"{name(key)} {_num(value)}: must be greater than 0")
        if o.minimum is not None and value < o.minimum:
            raise UsageError(f"{name(key)} {_num(value)}: must be at least {_num(o.minimum)}")
    if isinstance(value, (str, Path)) and not str(value).strip():
        raise UsageError(f"{name(key)} is empty")


def _host_port(text: str) -> bool:
    host, sep, port = text.rpartition(":")
    return bool(sep and host.strip() and port.isdigit())


def _plain(value: Any) -> str:
    """A value for a one-line message: as typed when it is a plain word, else quoted and escaped."""
    text = str(value)
    if text and text.isprintable() and not any(c.isspace() for c in text) and len(text) <= 60:
        return text
    return _show(text)


def _num(x: float) -> str:
    return str(int(x)) if float(x).is_integer() else str(x)


def matryoshka_widths(info: Model) -> tuple[int, ...]:
    """The widths a model's vectors can be cut to: v3's Matryoshka sizes; a v1/v2 model only its own."""
    if info.generation != "v3":
        return (info.dims,)
    return tuple(d for d in MATRYOSHKA_DIMS if d <= info.dims)


def _check_width(dims: int, info: Model, where: str) -> None:
    widths = matryoshka_widths(info)
    if dims in widths:
        return
    if info.generation != "v3":
        raise UsageError(f"{where} {dims} does not fit {info.name}: {info.dims} (no Matryoshka)")
    listed = ", ".join(map(str, widths))
    if dims > info.dims:
        raise UsageError(f"{where} {dims} does not fit {info.name}: at most {info.dims} (its Matryoshka "
                         f"widths: {listed})")
    raise UsageError(f"{where} {dims} is not a Matryoshka width of {info.name}: choose one of {listed}")


def check_out_folder(out: Path) -> None:
    """`out` must be a folder or not exist yet (and no part of its path may be a file)."""
    from jmigrate.fileio import require_utf8_name

    require_utf8_name(out, "--out")
    if out.exists() and not out.is_dir():
        raise UsageError(f"--out {out} is a file, not a folder; choose a folder for the new index")
    for p in out.parents:
        if p.exists() and not p.is_dir():
            raise UsageError(f"--out {out}: {p} is a file, not a folder")


# ------------------------------------------------------------------------------- config files

def load_config(path: Path) -> dict[str, tuple[str, Any]]:
    """The reindex settings in a `jmigrate.toml` ([reindex] table) or a plan JSON ("reindex" object):
    field name -> (how to name it in messages, raw value). Keys may use `-` or `_`; unknown keys and
    the API key are errors. Values are type-checked by `Settings.resolve`."""
    try:
        raw = path.read_bytes()
    except OSError as e:
        raise UsageError(f"cannot read config {path}: {e.strerror}") from e
    data: Any
    if path.suffix == ".json":
        try:
            data = json.loads(raw)
        except ValueError as e:
            raise UsageError(f"{path} is not valid JSON: {e}") from e
    else:
        import tomllib

        try:
            data = tomllib.loads(raw.decode("utf-8-sig"))  # -sig: a BOM (Notepad) is not TOML
        except (ValueError, UnicodeDecodeError) as e:
            raise UsageError(f"{path} is not valid TOML: {e}") from e
    if not isinstance(data, dict):
        raise UsageError(f"{path}: expected a table/object")
    if "reindex" not in data:
        raise UsageError(f"{path} has no \"reindex\" table (jmigrate.toml) or object (plan JSON)")
    section = data["reindex"]
    if not isinstance(section, dict):
        raise UsageError(f"{path}: 'reindex' must be a table/object")
    out: dict[str, tuple[str, Any]] = {}
    for k, v in section.items():
        key = str(k).replace("-", "_")
        if key in ("api_key", "key", "token"):
            raise UsageError(f"{path}: do not put the API key in a config file; use JINA_API_KEY "
                             "(or JMIGRATE_OPENAI_API_KEY for --encoder openai)")
        if key not in _CONFIG_KEYS:
            if key in _OPTIONS:
                raise UsageError(f"{path}: {k!r} can only be given as a flag ({flag_of(key)})")
            import difflib

            close = difflib.get_close_matches(key, _CONFIG_KEYS, n=1)
            hint = f" (did you mean {close[0].replace('_', '-')!r}?)" if close else ""
            raise UsageError(f"{path}: unknown reindex setting {k!r}{hint}")
        out[key] = (f"{path.name}: {k}", v)
    return out
