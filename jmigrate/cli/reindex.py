"""CLI for `jmigrate reindex`: parse flags, resolve one `Settings`, call the library, render.

The flags are built from the fields of `jmigrate.index.settings.Settings` (each option is declared
once, there); this module adds only what is not a setting: the source, `--config`, `--api-key`,
`--restart`, `--dry-run` and how to show the result.
"""

from __future__ import annotations

import inspect
import json
import signal
import threading
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

import typer

from jmigrate.cli.console import err_console, say, set_quiet, warn
from jmigrate.cli.options import ListFormat, choice
from jmigrate.errors import SpendCapReached
from jmigrate.index.settings import Settings, field_type, options

if TYPE_CHECKING:
    from jmigrate.encoders.base import Encoder
    from jmigrate.index.pipeline import Result, Stats

HELP = "Re-embed a corpus into a new Parquet index that survives any crash (rerun to resume)."


def register(app: typer.Typer) -> None:
    """Add this module's commands to the app."""
    app.command("reindex", help=HELP)(_command())


def _command() -> Any:
    """The Typer command: its parameters are the Settings fields' flags plus the few above."""
    P = inspect.Parameter
    params = [P("source", P.POSITIONAL_OR_KEYWORD, annotation=str, default=typer.Argument(
        ..., help="Corpus: Parquet file/folder/glob, JSONL, CSV, a folder of .txt/.md files, or a v2 index "
                  "folder that holds the texts."))]
    for name, o in options().items():
        flags = o.flag_names(name)
        if not flags:
            continue
        kind = o.flag_type or field_type(name)
        params.append(P(name, P.KEYWORD_ONLY, annotation=kind, default=typer.Option(
            None, *flags, help=o.help, hidden=o.hidden, show_default=False, metavar=o.metavar)))
    extra: list[tuple[str, Any, Any]] = [
        ("config", Path | None, typer.Option(None, "--config", metavar="FILE", help=(
            "jmigrate.toml (its reindex table) or a plan JSON file from `jmigrate plan --format json`."))),
        ("api_key", str | None, typer.Option(None, "--api-key", show_default=False, metavar="KEY", help=(
            "API key (default: JINA_API_KEY; JMIGRATE_OPENAI_API_KEY for --encoder openai); "
            "never printed."))),
        ("restart", bool, typer.Option(False, "--restart", help="Discard what --out holds and start over.")),
        ("dry_run", bool, typer.Option(False, "--dry-run", help="Count rows and tokens, estimate cost, time "
                                       "and size; call no encoder.")),
        ("quiet", bool, typer.Option(False, "--quiet", "-q", help="No progress or notes (for CI); "
                                     "errors and rejected rows still show.")),
        ("output_format", ListFormat, typer.Option(
            ListFormat.text, "--format", "-f", parser=choice(ListFormat),
            help="text | json (the summary, or the dry-run report, as JSON on stdout).")),
        ("as_json", bool, typer.Option(False, "--json", hidden=True, help="Same as --format json.")),
    ]
    params += [P(name, P.KEYWORD_ONLY, annotation=kind, default=default) for name, kind, default in extra]

    def reindex_cmd(source: str, *, config: Path | None, api_key: str | None, restart: bool, dry_run: bool,
                    quiet: bool, output_format: ListFormat, as_json: bool, **flags: Any) -> None:
        if quiet:
            set_quiet(True)
        code = run(source, flags, config=config, api_key=api_key, restart=restart, dry_run=dry_run,
                   quiet=quiet, as_json=as_json or output_format is ListFormat.json)
        if code:
            raise typer.Exit(code)

    reindex_cmd.__signature__ = inspect.Signature(params)  # type: ignore[attr-defined]
    reindex_cmd.__annotations__ = {p.name: p.annotation for p in params}
    reindex_cmd.__doc__ = HELP
    return reindex_cmd


# --------------------------------------------------------------------------- running

def run(source_path: str, flags: dict[str, Any], *, config: Path | None = None, api_key: str | None = None,
        restart: bool = False, dry_run: bool = False, quiet: bool = False, as_json: bool = False) -> int:
    """Flags (field name -> value, None = not given) -> Settings -> the library -> the summary."""
    from jmigrate.index import run as lib

    def note(text: str) -> None:
        # Said even with -q: where the key goes, a damaged shard made again, an empty run restarted.
        err_console.print(f"note: {text}")

    # Every setting is checked here, before the source is read, --out is touched or anything is sent.
    settings = Settings.resolve(flags, config=config, on_note=note)
    out = settings.out
    assert out is not None  # resolve() requires it
    if settings.sync:
        return _sync(source_path, settings, api_key, dry_run=dry_run, quiet=quiet, as_json=as_json,
                     on_note=note)
    source = lib.open_source(source_path, settings)
    try:  # a store source holds a connection until the run ends
        if settings.to is not None:
            from jmigrate.stores.load import preflight

            preflight(out, settings.to, source=source_path)  # before anything is spent
        for text in lib.source_notes(source):
            say(f"note: {text}")
        if dry_run:
            report = lib.dry_run(source, settings)
            if as_json:
                typer.echo(json.dumps(report, indent=2))
            else:
                from jmigrate.index.dryrun import render

                render(report, err_console)
            return 0
        code = _reindex(source, settings, api_key, restart=restart, quiet=quiet, as_json=as_json,
                        on_note=note)
    finally:
        close = getattr(source, "close", None)
        if callable(close):
            close()
    if settings.to is not None and code in (0, 1):
        code = max(code, _load_into_store(out, settings.to, restart=restart, quiet=quiet))
    return code


def _sync(source_path: str, settings: Settings, api_key: str | None, *, dry_run: bool, quiet: bool,
          as_json: bool, on_note: Callable[[str], None]) -> int:
    """`--sync`: embed only the v2 rows that are new or changed, load them into the v3 collection, delete
    what v2 no longer has (jmigrate.stores.sync)."""
    import dataclasses

    from jmigrate.errors import UsageError
    from jmigrate.index import run as lib
    from jmigrate.stores import is_store_uri
    from jmigrate.stores.sync import check_synced, delete_rows, mark_done, plan_sync, record_sync

    to, out = settings.to, settings.out
    if to is None or out is None or not is_store_uri(source_path):
        raise UsageError("--sync needs a store URI as SOURCE and --to URI (the v3 collection to bring up to "
                         "date); a changed file source is reindexed with --restart")
    plan = plan_sync(source_path, to, out, id_column=settings.id_column, text_column=settings.text_column)
    say(f"sync: {plan.v2_rows:,} rows in v2: {plan.new:,} new, {plan.changed:,} changed, "
        f"{len(plan.deleted):,} deleted")
    if dry_run:
        return 0
    code = 0
    if plan.delta is not None and plan.folder is not None:
        delta = dataclasses.replace(settings, out=plan.folder / "index", to=None, sync=False,
                                    id_column="id", text_column="text", metadata_columns=None)
        source = lib.open_source(str(plan.delta), delta)
        code = _reindex(source, delta, api_key, restart=False, quiet=quiet, as_json=as_json, on_note=on_note)
        if code not in (0, 1):
            return code
        from jmigrate.stores.load import load_index

        load_index(plan.folder / "index", to, into=True)
    delete_rows(to, plan.deleted)
    check_synced(to, plan.v2_rows)
    mark_done(plan)
    record_sync(to, plan)
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
                          "runs again")
        return 130
    finally:
        if threading.current_thread() is threading.main_thread():
            signal.signal(signal.SIGTERM, previous)
    for text in result.notes:
        err_console.print(f"note: {text}")
    if not quiet:
        err_console.print(f"loaded {result.rows:,} rows into {result.collection} ({result.shards_loaded} "
                          f"shard(s) loaded, {result.shards_skipped} already there); row count and "
                          f"{result.sample_checked} sampled vectors match the index")
    return 0


def _reindex(source: Any, settings: Settings, api_key: str | None, *, restart: bool, quiet: bool,
             as_json: bool, on_note: Callable[[str], None]) -> int:
    from jmigrate.index import run as lib

    out = settings.out
    assert out is not None  # resolve() requires it
    price = settings.price_per_mtok
    progress = None if quiet else _Progress(price)
    stop = threading.Event()
    previous = signal.getsignal(signal.SIGTERM)
    if threading.current_thread() is threading.main_thread():
        # SIGTERM (a scheduler stopping the job) ends the run like Ctrl-C: clean, resumable.
        signal.signal(signal.SIGTERM, _interrupt)
    try:
        result: Result = lib.reindex(
            source, settings, api_key=api_key, restart=restart, stop=stop,
            on_progress=progress.update if progress else None,
            on_note=on_note, on_stopping=_said_stopping, on_abandon=_said_abandon)
    except KeyboardInterrupt:
        if progress:
            progress.stop()
        err_console.print(f"interrupted: finished work is saved in {out}. Run the same command again to "
                          "resume.")
        return 130
    except SpendCapReached as e:
        if progress:
            progress.stop()
        err_console.print(f"error: {e}")
        return e.exit_code
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


def _requests(n: int) -> str:
    return f"{n} request{'' if n == 1 else 's'}"


def _said_stopping(in_flight: int) -> None:
    # Said at once, even with -q: the user pressed Ctrl-C and must see that it was heard.
    if in_flight:
        them = "it" if in_flight == 1 else "them"
        err_console.print(f"stopping: {_requests(in_flight)} in flight, Ctrl-C again to abandon {them}")
    else:
        err_console.print("stopping: no request in flight; saving what is finished")


def _said_abandon(in_flight: int) -> None:
    err_console.print(f"abandoning {_requests(in_flight)} in flight; what they carried will be embedded "
                      "again on resume")


class _Progress:
    """Progress on stderr: source rows embedded and safe (journalled or in a shard, so a crash keeps
    them) out of the total, rows written to shards, rows/s, tokens, spend, ETA, retries, rejects.

    On a terminal: a live bar. Elsewhere (a CI log, a file): one line every `interval` seconds and
    one at the end, so a log shows the run is alive without a line per refresh. A resumed run first
    says how much an earlier run did."""

    def __init__(self, price: float | None, *, live: bool | None = None, interval: float = 30.0) -> None:
        self.price = price
        self.live = err_console.is_terminal if live is None else live
        self.interval = interval
        self.bar: Any = None
        self.started = False
        self.last_line = 0.0
        self.line = ""

    def start(self, stats: Stats) -> None:
        import time

        self.started = True
        self.last_line = time.monotonic()
        if stats.done_before:
            of = f" of {stats.total_rows:,}" if stats.total_rows is not None else ""
            err_console.print(f"resuming: {stats.done_before:,}{of} rows already done")
        if self.live:
            from rich.progress import BarColumn, Progress, TextColumn

            self.bar = Progress(TextColumn("reindex"), BarColumn(), TextColumn("{task.fields[info]}"),
                                console=err_console, transient=False, refresh_per_second=4)
            self.task = self.bar.add_task("reindex", total=None, info="")
            self.bar.start()

    def stop(self) -> None:
        if not self.started:
            return
        self.started = False
        if self.bar is not None:
            self.bar.stop()
        elif self.line:
            err_console.print(self.line)

    def update(self, stats: Stats, encoder: Encoder) -> None:
        import time

        if not self.started:
            self.start(stats)
        now = time.monotonic()
        self.line = "reindex: " + describe(stats, encoder, self.price, now)
        if self.bar is not None:
            self.bar.update(self.task, completed=stats.safe_rows, total=stats.total_rows,
                            info=self.line.removeprefix("reindex: "))
        elif now - self.last_line >= self.interval:
            self.last_line = now
            err_console.print(self.line)


def describe(stats: Stats, encoder: Encoder, price: float | None, now: float) -> str:
    """One progress line: '1,280 of 2,000 rows safe (64%), 256 written · 412 rows/s · ETA 0:00:02 ·
    52,000 tok · $0.0010 · 0 retries · 0 rejected'."""
    total = stats.total_rows
    safe = stats.safe_rows
    text = f"{safe:,} of {total:,} rows safe" if total is not None else f"{safe:,} rows safe"
    if total:
        text += f" ({safe / total:.0%})"
    text += f", {stats.source_rows:,} written"
    elapsed = max(1e-6, now - stats.started)
    rate = max(0, safe - stats.done_before) / elapsed
    text += f" · {rate:,.0f} rows/s"
    if total is not None and safe < total:
        text += f" · ETA {_clock((total - safe) / rate)}" if rate > 0 else " · ETA -"
    billed = encoder.usage.tokens  # what the server reported; the local count until it does
    text += f" · {billed or stats.tokens:,} tok"
    if price is not None:
        text += f" · {money(billed / 1e6 * price)}"
    return text + f" · {encoder.usage.retries} retries · {stats.rejected:,} rejected"


def _clock(seconds: float) -> str:
    s = int(seconds + 0.5)
    return f"{s // 3600}:{s % 3600 // 60:02d}:{s % 60:02d}"
