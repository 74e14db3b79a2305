"""CLI for `jmigrate reindex`: re-embed a corpus into a crash-safe Parquet index (library: jmigrate.index)."""

from __future__ import annotations

import contextlib
import json
import signal
import threading
from pathlib import Path
from typing import TYPE_CHECKING, Any

import typer

from jmigrate.cli.console import err_console, warn
from jmigrate.errors import UsageError

if TYPE_CHECKING:
    from jmigrate.encoders.base import Encoder
    from jmigrate.index.pipeline import Settings, Stats

DEFAULTS: dict[str, Any] = {
    "encoder": "api", "model": "jina-embeddings-v3", "task": "retrieval.passage", "dimensions": None,
    "late_chunking": False, "chunk_by": None, "chunk_size": 512, "chunk_overlap": 0, "concurrency": 8,
    "rpm": None, "tpm": None, "price_per_mtok": None, "limit": None, "on_long": "reject",
    "api_url": None, "model_path": None, "id_column": None, "text_column": None, "metadata_columns": None,
    "store_text": True, "shard_rows": 100_000, "unit_rows": 256, "allow_download": False, "batch_size": None,
}
ENCODERS = ("api", "onnx", "openai", "fake")


def register(app: typer.Typer) -> None:
    """Add this module's commands to the app."""

    @app.command("reindex")
    def reindex_cmd(
        source: str = typer.Argument(..., help="Corpus: Parquet file/folder/glob, JSONL, CSV, a folder of "
                                               ".txt/.md files, or a v2 index folder that holds the texts."),
        out: Path = typer.Option(None, "--out", "-o", help="Output index folder (created; rerun to resume)."),
        encoder: str = typer.Option(None, "--encoder", help="api | onnx | openai (fake: test vectors)."),
        model: str = typer.Option(None, "--model", help="Model name (default: jina-embeddings-v3)."),
        task: str = typer.Option(None, "--task", help="v3 task (default: retrieval.passage)."),
        dimensions: int = typer.Option(None, "--dimensions", help="Vector size (default: the model's; "
                                                                  "768 keeps a v2 schema)."),
        late_chunking: bool = typer.Option(None, "--late-chunking/--no-late-chunking",
                                           help="Embed each document once and pool its chunks."),
        chunk_by: str = typer.Option(None, "--chunk-by", help="Chunk documents: tokens | sentences."),
        chunk_size: int = typer.Option(None, "--chunk-size", help="Chunk size in tokens (default: 512)."),
        chunk_overlap: int = typer.Option(None, "--chunk-overlap", help="Overlap in tokens (default: 0)."),
        on_long: str = typer.Option(None, "--on-long", help="Rows over the token limit: truncate | chunk | "
                                                            "reject (default: reject)."),
        concurrency: int = typer.Option(None, "--concurrency", help="Requests in flight (default: 8)."),
        rpm: float = typer.Option(None, "--rpm", help="Requests per minute limit."),
        tpm: float = typer.Option(None, "--tpm", help="Tokens per minute limit."),
        price_per_mtok: float = typer.Option(None, "--price-per-mtok", help="Price per million tokens, "
                                                                            "for spend and estimates."),
        limit: int = typer.Option(None, "--limit", help="Only the first N source rows."),
        restart: bool = typer.Option(False, "--restart", help="Discard what --out holds and start over."),
        dry_run: bool = typer.Option(False, "--dry-run", help="Count rows and tokens, estimate cost, time "
                                                              "and size; call no encoder."),
        id_column: str = typer.Option(None, "--id-column", help="Column with the ids (detected)."),
        text_column: str = typer.Option(None, "--text-column", help="Column with the texts (detected)."),
        metadata_columns: str = typer.Option(None, "--metadata-columns",
                                             help="Comma-separated columns to carry (all others)."),
        no_text: bool = typer.Option(False, "--no-text", help="Do not store the text in the index."),
        api_url: str = typer.Option(None, "--api-url", help="API base URL (env JMIGRATE_API_URL)."),
        api_key: str = typer.Option(None, "--api-key", help="API key (env JINA_API_KEY); never printed.",
                                    show_default=False),
        allow_insecure: bool = typer.Option(False, "--allow-insecure",
                                            help="Allow a plain http:// --api-url to a non-loopback host "
                                                 "(the key travels unencrypted)."),
        model_path: Path = typer.Option(None, "--model-path",
                                        help="Local ONNX model folder (--encoder onnx)."),
        config: Path = typer.Option(None, "--config", help="jmigrate.toml (its reindex table) or a plan JSON "
                                                           "file from `jmigrate plan --format json`."),
        allow_download: bool = typer.Option(None, "--allow-download/--no-download",
                                            help="Let --encoder onnx fetch the model from the HF Hub."),
        batch_size: int = typer.Option(None, "--batch-size", help="Inputs per request.", hidden=True),
        unit_rows: int = typer.Option(None, "--unit-rows", help="Source rows per journalled unit.",
                                      hidden=True),
        shard_rows: int = typer.Option(None, "--shard-rows", help="Output rows per Parquet shard.",
                                       hidden=True),
        quiet: bool = typer.Option(False, "--quiet", "-q", help="No progress (for CI)."),
        as_json: bool = typer.Option(False, "--json", help="Print the summary as JSON on stdout."),
        to: str = typer.Option(None, "--to", metavar="URI",
                               help="Then load the vectors into a NEW vector-store collection "
                                    "(postgresql://, qdrant://, chroma://, lancedb://; docs/stores.md)."),
    ) -> None:
        """Re-embed a corpus into a new Parquet index that survives any crash (rerun to resume)."""
        given = {k: v for k, v in dict(
            out=out, encoder=encoder, model=model, task=task, dimensions=dimensions,
            late_chunking=late_chunking,
            chunk_by=chunk_by, chunk_size=chunk_size, chunk_overlap=chunk_overlap, on_long=on_long,
            concurrency=concurrency, rpm=rpm, tpm=tpm, price_per_mtok=price_per_mtok, limit=limit,
            id_column=id_column, text_column=text_column, api_url=api_url, model_path=model_path,
            metadata_columns=metadata_columns.split(",") if metadata_columns else None,
            store_text=False if no_text else None, allow_download=allow_download, batch_size=batch_size,
            unit_rows=unit_rows, shard_rows=shard_rows,
        ).items() if v is not None}
        opts = resolve_options(given, config)
        opts["allow_insecure"] = allow_insecure  # a flag only: a config file cannot lower it
        if config is not None and "api_url" not in given and opts.get("api_url"):
            # A config file from someone else decides where the key is sent: say so, by host only.
            from urllib.parse import urlsplit

            with contextlib.suppress(ValueError, TypeError, AttributeError):
                host = urlsplit(opts["api_url"]).hostname
                err_console.print(f"note: requests and the API key go to {host} (api_url from {config})",
                                  highlight=False, markup=False)
        code = run(source, opts, restart=restart, dry_run=dry_run, quiet=quiet, as_json=as_json,
                   api_key=api_key, to=to)
        if code:
            raise typer.Exit(code)


# --------------------------------------------------------------------------- options

def resolve_options(given: dict[str, Any], config: Path | None) -> dict[str, Any]:
    """Flags win over the config file, which wins over the defaults."""
    opts = dict(DEFAULTS)
    if config is not None:
        opts.update(load_config(config))
    opts.update(given)
    if opts.get("out") is None:
        raise UsageError("--out DIR is required (the folder the new index is written to)")
    opts["out"] = Path(opts["out"])
    if opts["encoder"] not in ENCODERS:
        raise UsageError(f"--encoder must be one of api, onnx, openai, not {opts['encoder']!r}")
    return opts


def load_config(path: Path) -> dict[str, Any]:
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
    # jmigrate.toml: a [reindex] table; plan JSON: a "reindex" object (the suggested settings).
    section = data.get("reindex", data)
    if not isinstance(section, dict):
        raise UsageError(f"{path}: 'reindex' must be a table/object")
    if "api_key" in section or "api-key" in section:
        raise UsageError(f"{path}: do not put the API key in a config file; use JINA_API_KEY")
    known = set(DEFAULTS) | {"out"}
    opts: dict[str, Any] = {}
    for k, v in section.items():
        key = k.replace("-", "_")
        if key in known:
            opts[key] = v
        elif section is not data:
            raise UsageError(f"{path}: unknown reindex setting {k!r}")
    return opts


def open_encoder(opts: dict[str, Any], api_key: str | None) -> Encoder:
    """The one place the CLI builds an encoder (a factory in jmigrate.encoders does the work)."""
    kind = opts["encoder"]
    if kind == "fake":
        from jmigrate.models import MODELS
        from jmigrate.testing.fake import FakeEncoder

        info = MODELS.get(opts["model"].rsplit("/", 1)[-1])
        return FakeEncoder(model=opts["model"], dims=info.dims if info else 1024)
    from jmigrate.encoders.factory import open_encoder as factory

    model_path = opts.get("model_path")
    return factory(kind, opts["model"], api_url=opts.get("api_url"), api_key=api_key,
                   concurrency=int(opts["concurrency"]), rpm=opts.get("rpm"), tpm=opts.get("tpm"),
                   model_path=str(model_path) if model_path else None,
                   allow_download=bool(opts.get("allow_download")), batch_size=opts.get("batch_size"),
                   allow_insecure=bool(opts.get("allow_insecure")))


def make_settings(opts: dict[str, Any]) -> Settings:
    from jmigrate.index.pipeline import Settings
    from jmigrate.models import MODELS

    info = MODELS.get(opts["model"].rsplit("/", 1)[-1])
    dims = opts["dimensions"] or (info.dims if info else None)
    if dims is None:
        raise UsageError(f"unknown model {opts['model']!r}: pass --dimensions")
    if info is not None and (int(dims) > info.dims or (info.generation != "v3" and int(dims) != info.dims)):
        allowed = f"at most {info.dims}" if info.generation == "v3" else f"{info.dims} (no Matryoshka)"
        raise UsageError(f"--dimensions {dims} does not fit {info.name}: {allowed}")
    task = opts["task"] if info is None or info.generation == "v3" else None
    return Settings(
        model=opts["model"], task=task, dimensions=int(dims), encoder=opts["encoder"],
        late_chunking=bool(opts["late_chunking"]),
        chunk_by=opts["chunk_by"] or ("tokens" if opts["late_chunking"] else None),
        chunk_size=int(opts["chunk_size"]), chunk_overlap=int(opts["chunk_overlap"]), on_long=opts["on_long"],
        limit=opts["limit"], store_text=bool(opts["store_text"]), shard_rows=int(opts["shard_rows"]),
        unit_rows=int(opts["unit_rows"]))


# --------------------------------------------------------------------------- running

def run(source_path: str, opts: dict[str, Any], *, restart: bool, dry_run: bool, quiet: bool, as_json: bool,
        api_key: str | None, to: str | None = None) -> int:
    from jmigrate.index.sources import open_source

    source = open_source(source_path, id_column=opts["id_column"], text_column=opts["text_column"],
                         metadata_columns=opts["metadata_columns"])
    try:  # a store source holds a connection until the run ends
        if to is not None:
            from jmigrate.stores.load import preflight

            preflight(opts["out"], to, source=source_path)  # before anything is spent
        code = _run(source, opts, restart=restart, dry_run=dry_run, quiet=quiet, as_json=as_json,
                    api_key=api_key)
    finally:
        close = getattr(source, "close", None)
        if callable(close):
            close()
    if to is not None and not dry_run and code in (0, 1):
        code = max(code, _load_into_store(opts["out"], to, restart=restart, quiet=quiet))
    return code


def _load_into_store(out: Path, to: str, *, restart: bool, quiet: bool) -> int:
    """`--to URI`: the finished index's shards into a new collection (jmigrate.stores.load)."""
    from jmigrate.stores.load import load_index

    stop = threading.Event()
    previous = signal.getsignal(signal.SIGTERM)
    if threading.current_thread() is threading.main_thread():
        signal.signal(signal.SIGTERM, _interrupt)
    try:
        result = load_index(out, to, restart=restart, stop=stop)
    except KeyboardInterrupt:
        err_console.print(f"interrupted: the load into {to} resumes where it stopped when the same command "
                          "runs again", highlight=False, markup=False)
        return 130
    finally:
        if threading.current_thread() is threading.main_thread():
            signal.signal(signal.SIGTERM, previous)
    for note in result.notes:
        err_console.print(f"note: {note}", highlight=False, markup=False)
    if not quiet:
        err_console.print(f"loaded {result.rows:,} rows into {result.collection} ({result.shards_loaded} "
                          f"shard(s) loaded, {result.shards_skipped} already there); row count and "
                          f"{result.sample_checked} sampled vectors match the index",
                          highlight=False, markup=False)
    return 0


def _run(source: Any, opts: dict[str, Any], *, restart: bool, dry_run: bool, quiet: bool, as_json: bool,
         api_key: str | None) -> int:
    if source.id_column is None and source.format != "text-folder" and not quiet:
        err_console.print("note: no id column found; the row number is used as the id (pass --id-column)")
    if source.vector_columns and not quiet:
        err_console.print(f"note: old vectors in {', '.join(source.vector_columns)} are not carried over")
    if source.skipped_columns and not quiet:
        err_console.print(f"note: column(s) {', '.join(source.skipped_columns)} not carried (named like an "
                          "index column); pass --metadata-columns to choose")
    settings = make_settings(opts)  # checked before any encoder exists
    settings.check()
    if dry_run:
        return _dry_run(source, opts, settings, as_json, api_key)
    encoder = open_encoder(opts, api_key)
    with encoder:
        return _reindex(source, opts, settings, encoder, restart=restart, quiet=quiet, as_json=as_json)


def _dry_run(source: Any, opts: dict[str, Any], settings: Settings, as_json: bool,
             api_key: str | None) -> int:
    from jmigrate.index.dryrun import dry_run, render

    # Nothing is sent in a dry run: API runs count with the stated estimate, local ones with the tokenizer.
    encoder = _counting_encoder(opts) if opts["encoder"] in ("api", "openai") else open_encoder(opts, api_key)
    with encoder:
        report = dry_run(source, encoder, settings, rpm=opts.get("rpm"),
                         tpm=opts.get("tpm"), concurrency=opts["concurrency"],
                         price_per_mtok=opts.get("price_per_mtok"))
    if as_json:
        typer.echo(json.dumps(report, indent=2))
    else:
        render(report, err_console)
    return 0


def _counting_encoder(opts: dict[str, Any]) -> Encoder:
    """For a dry run of the API encoder: nothing is sent, so count tokens without any client (the
    stated estimate) and plan requests with the API client's own batch size."""
    import inspect

    from jmigrate.encoders.api import JinaAPIEncoder
    from jmigrate.testing.fake import FakeEncoder

    enc = FakeEncoder(model=opts["model"])
    params = inspect.signature(JinaAPIEncoder.__init__).parameters
    enc.batch_size = int(opts.get("batch_size") or params["batch_size"].default)
    enc.max_batch_tokens = int(params["max_batch_tokens"].default)
    return enc


def _reindex(source: Any, opts: dict[str, Any], settings: Settings, encoder: Encoder, *, restart: bool,
             quiet: bool, as_json: bool) -> int:
    from jmigrate.index.pipeline import reindex

    out: Path = opts["out"]
    price = opts.get("price_per_mtok")
    progress = None if quiet else _Progress(price)
    stop = threading.Event()
    previous = signal.getsignal(signal.SIGTERM)
    if threading.current_thread() is threading.main_thread():
        # SIGTERM (a scheduler stopping the job) ends the run like Ctrl-C: clean, resumable.
        signal.signal(signal.SIGTERM, _interrupt)
    try:
        result = reindex(source, out, encoder, settings, restart=restart, stop=stop,
                         on_progress=progress.update if progress else None,
                         concurrency=int(opts["concurrency"]),
                         on_note=lambda note: err_console.print(f"note: {note}", highlight=False))
    except KeyboardInterrupt:
        if progress:
            progress.stop()
        err_console.print(f"interrupted: finished work is saved in {out}. Run the same command again to "
                          "resume.")
        return 130
    finally:
        if progress:
            progress.stop()
        if threading.current_thread() is threading.main_thread():
            signal.signal(signal.SIGTERM, previous)
    m = result.manifest
    rows = vars(m.rows).copy()
    if result.already_complete and not quiet:
        err_console.print(f"{out} is already complete: nothing to do (--restart to redo it)", highlight=False)
    usage = result.usage
    summary: dict[str, Any] = {
        "out": str(out), "status": result.status, "rows": rows, "shards": len(m.shards),
        "model": m.model, "task": m.task, "dimensions": m.dimensions,
        "tokens": usage.get("tokens", 0), "requests": usage.get("requests", 0),
        "retries": usage.get("retries", 0),
        "cost": usage.get("tokens", 0) / 1e6 * price if price is not None else None,
        "rejects_file": str(out / "rejects.jsonl") if rows["rejected"] else None,
    }
    if as_json:
        typer.echo(json.dumps(summary, indent=2))
    if not quiet or rows["rejected"]:
        err_console.print(
            f"{result.status}: {rows['written']:,} rows written from {rows['source']:,} source rows into "
            f"{len(m.shards)} shard(s) in {out}; {usage.get('tokens', 0):,} tokens"
            + (f", spend {money(summary['cost'])}" if summary["cost"] is not None else ""), highlight=False)
    if rows["rejected"]:
        warn(f"{rows['rejected']:,} row(s) rejected; reasons in {out / 'rejects.jsonl'}")
        return 1
    return 0


def money(x: float) -> str:
    return f"${x:,.2f}" if x >= 1 else f"${x:.4f}" if x >= 0.01 else f"${x:.6f}"


def _interrupt(signum: int, frame: Any) -> None:
    raise KeyboardInterrupt


class _Progress:
    """Rich progress on stderr: rows, tokens, rows/s, ETA, spend, retries, rejects."""

    def __init__(self, price: float | None) -> None:
        from rich.progress import BarColumn, Progress, TextColumn, TimeRemainingColumn

        self.price = price
        self.bar = Progress(TextColumn("reindex"), BarColumn(),
                            TextColumn("{task.completed:,.0f}/{task.fields[of]}"), TimeRemainingColumn(),
                            TextColumn("{task.fields[info]}"), console=err_console, transient=False,
                            refresh_per_second=4)
        self.task = self.bar.add_task("reindex", total=None, of="?", info="")
        self.started = False

    def start(self) -> None:
        self.bar.start()
        self.started = True

    def stop(self) -> None:
        if self.started:
            self.bar.stop()
            self.started = False

    def update(self, stats: Stats, encoder: Encoder) -> None:
        import time

        if not self.started:
            self.start()
        elapsed = max(1e-6, time.monotonic() - stats.started)
        rate = max(0, stats.source_rows - stats.resumed_rows) / elapsed
        billed = encoder.usage.tokens  # what the server reported; the local count until it does
        info = f"{rate:,.0f} rows/s · {billed or stats.tokens:,} tok"
        if self.price is not None:
            info += f" · {money(billed / 1e6 * self.price)}"
        info += f" · {encoder.usage.retries} retries · {stats.rejected:,} rejected"
        self.bar.update(self.task, completed=stats.source_rows, total=stats.total_rows,
                        of=f"{stats.total_rows:,}" if stats.total_rows is not None else "?", info=info)
