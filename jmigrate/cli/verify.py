"""`jmigrate verify`: compare v2 and v3 retrieval on the user's own queries (metrics, statistics, report)."""

from __future__ import annotations

import json
import os
from enum import Enum
from pathlib import Path
from typing import TYPE_CHECKING, Any

import typer

from jmigrate.cli.options import OUTPUT_HELP, ListFormat, choice
from jmigrate.encoders.factory import KINDS

if TYPE_CHECKING:
    from jmigrate.encoders.base import Encoder
    from jmigrate.verify.pipeline import VerifyResult


# The factory's list of kinds, as the Enum Typer shows and parses (one list for every command).
EncoderKind = Enum("EncoderKind", [(k, k) for k in KINDS], type=str)  # type: ignore[misc]


class SearchBackend(str, Enum):
    numpy = "numpy"
    faiss = "faiss"


def verify(
    v2: str = typer.Option(..., "--v2", metavar="PATH",
                          help="v2 index: reindex folder, .parquet, .npy (+ids), .jsonl, or a store URI."),
    v3: str = typer.Option(..., "--v3", metavar="PATH",
                          help="v3 index: reindex folder, .parquet, .npy (+ids), .jsonl, or a store URI."),
    queries: Path = typer.Option(
        ..., "--queries", metavar="FILE",
        help="Queries: JSONL/TSV/CSV/Parquet with id, text (and optionally language).",
    ),
    qrels: Path | None = typer.Option(
        None,
        "--qrels",
        metavar="FILE",
        help="Judgements: TREC 'qid 0 docid rel' or BEIR TSV. "
        "Without them: agreement only, no verdict on quality.",
    ),
    k: int = typer.Option(10, "-k", help="Cut-off for agreement measures and shown results."),
    output_format: ListFormat = typer.Option(ListFormat.text, "--format", "-f", parser=choice(ListFormat),
                                             help="text (tables + verdict) or json."),
    output: Path | None = typer.Option(None, "--output", "-o", help=OUTPUT_HELP, metavar="FILE"),
    report: Path | None = typer.Option(None, "--report", help="Write a self-contained HTML report to FILE.",
                                       metavar="FILE"),
    run_dir: Path | None = typer.Option(
        None, "--run-dir", help="Write TREC run files DIR/v2.run, DIR/v3.run.", metavar="DIR"
    ),
    encoder: EncoderKind = typer.Option(
        EncoderKind("api"), "--encoder", parser=choice(EncoderKind),
        help="How to embed queries: api, onnx, openai (fake: test vectors, rehearsals).",
    ),
    model_path: Path | None = typer.Option(None, "--model-path", help="Model folder for --encoder onnx.",
                                           metavar="DIR"),
    api_url: str | None = typer.Option(
        None, "--api-url", envvar="JMIGRATE_API_URL", help="Embeddings endpoint (default: Jina's)."
    ),
    api_key: str | None = typer.Option(
        None,
        "--api-key",
        show_default=False,
        # No envvar here: the environment is read by the factory's one key rule, which never sends
        # JINA_API_KEY to an OpenAI-compatible server.
        help="API key (default: JINA_API_KEY; JMIGRATE_OPENAI_API_KEY for --encoder openai; never printed).",
    ),
    allow_insecure: bool = typer.Option(
        False, "--allow-insecure",
        help="Allow a plain http:// --api-url to a non-loopback host (the key travels unencrypted).",
    ),
    v2_model: str | None = typer.Option(None, "--v2-model", metavar="MODEL",
                                        help="Model of a v2 index without a manifest."),
    v3_model: str | None = typer.Option(None, "--v3-model", metavar="MODEL",
                                        help="Model of a v3 index without a manifest."),
    v2_task: str | None = typer.Option(None, "--v2-task", metavar="TASK",
                                       help="Task of a v2 index without a manifest."),
    v3_task: str | None = typer.Option(
        None, "--v3-task", metavar="TASK",
        help="Task of a v3 index without a manifest (default retrieval.passage).",
    ),
    v2_ids: str | None = typer.Option(None, "--v2-ids", metavar="FILE", help="Ids file for a v2 .npy index."),
    v3_ids: str | None = typer.Option(None, "--v3-ids", metavar="FILE", help="Ids file for a v3 .npy index."),
    v2_query_vectors: str | None = typer.Option(
        None, "--v2-query-vectors", metavar="FILE", help="Precomputed v2 query vectors (Parquet id + vector)."
    ),
    v3_query_vectors: str | None = typer.Option(
        None, "--v3-query-vectors", metavar="FILE", help="Precomputed v3 query vectors (Parquet id + vector)."
    ),
    memory_budget: str = typer.Option(
        "1GB",
        "--memory-budget",
        metavar="SIZE",
        help="Memory for one search block (vectors + scores), e.g. 512MB; the index itself may be larger.",
    ),
    search_backend: SearchBackend = typer.Option(SearchBackend.numpy, "--search-backend",
                                                 parser=choice(SearchBackend),
                                                 help="numpy, or faiss (if installed)."),
    alpha: float = typer.Option(0.05, "--alpha", help="Significance level of the verdict."),
    examples: int = typer.Option(5, "--examples", help="Disagreeing queries to show side by side."),
    no_checksums: bool = typer.Option(
        False, "--no-checksums", help="Skip shard sha256 checks (large indexes)."
    ),
    allow_missing_judged: bool = typer.Option(
        False, "--allow-missing-judged",
        help="Evaluate even when over 5% of the relevant judgements (or all of a query's) name "
             "documents in neither index (otherwise an error: such metrics measure the qrels, not the "
             "models).",
    ),
    search_in_store: bool = typer.Option(
        False, "--search-in-store",
        help="Also run the queries through each store's own search (its ANN index) and report its "
             "recall@k against exact search (store URIs only; see docs/stores.md).",
    ),
    bridge: Path | None = typer.Option(
        None, "--bridge", metavar="DIR",
        help="A `jmigrate bridge fit` folder: adds v3 queries through the bridge on the v2 index as a "
             "third system (docs/bridge.md).",
    ),
) -> None:
    """Search both indexes with the same queries and compare them: metrics with qrels, agreement without.

    Exit 0: v3 is not significantly worse on nDCG@10 (or no qrels were given).

    Exit 1: v3 (or, with --bridge, the bridged system) is significantly worse than v2, or an index
    failed its integrity checks. Exit 2: errors (a bridge fitted for another index is one).
    """
    from jmigrate.cli.console import say
    from jmigrate.verify.pipeline import SideOptions, VerifyOptions, run_verify
    from jmigrate.verify.search import parse_size

    # Checked before any query is embedded (which may cost money): a run must not fail at the end.
    for option, path in (("--output", output), ("--report", report)):
        if path is not None:
            _check_writable_file(option, path)
    if run_dir is not None:
        _check_writable_dir("--run-dir", run_dir)
    from jmigrate.encoders.factory import open_encoder, resolve_api_key

    opts = VerifyOptions(
        v2=SideOptions(v2, v2_model, v2_task, v2_ids, v2_query_vectors),
        v3=SideOptions(v3, v3_model, v3_task, v3_ids, v3_query_vectors),
        queries=str(queries),
        qrels=str(qrels) if qrels else None,
        k=k,
        memory_budget=parse_size(memory_budget),
        backend=search_backend.value,
        run_dir=str(run_dir) if run_dir else None,
        alpha=alpha,
        examples=examples,
        verify_checksums=not no_checksums,
        bridge=str(bridge) if bridge else None,
        allow_missing_judged=allow_missing_judged,
    )

    key_note = resolve_api_key(encoder.value, api_key)[2]
    if key_note:
        say(f"note: {key_note}")

    def factory(model: str) -> Encoder:
        # fake: the same vectors as `reindex --encoder fake`, to rehearse the whole pipeline offline.
        return open_encoder(encoder.value, model, api_url=api_url, api_key=api_key,
                            model_path=str(model_path) if model_path else None, allow_insecure=allow_insecure)

    def progress(msg: str) -> None:
        say(msg, style="dim")

    from jmigrate.stores import is_store_uri

    if not (is_store_uri(v2) or is_store_uri(v3)):
        if search_in_store:
            from jmigrate.errors import UsageError

            raise UsageError("--search-in-store needs a store URI as --v2 or --v3")
        result = run_verify(opts, factory, progress)
        store_search: list[dict[str, Any]] = []
    else:  # each collection is streamed into a temporary Parquet index that verify searches as usual
        from jmigrate.stores.verify import verify_stores

        result, store_search = verify_stores(opts, factory, progress, search_in_store=search_in_store)
    from jmigrate.verify import report as rep

    if report is not None:
        try:
            rep.write_html(result, report)
        except OSError as e:
            from jmigrate.errors import UsageError

            raise UsageError(f"cannot write {report}: {e.strerror or e}") from e
        say(f"report written to {report}")
    _emit(result, output_format, output, store_search)
    raise typer.Exit(result.exit_code)


def _check_writable_file(option: str, path: Path) -> None:
    from jmigrate.errors import UsageError

    try:
        if path.is_dir():
            raise UsageError(f"{option} {path} is a folder; give a file name")
        parent_ok = path.parent.is_dir()
    except OSError as e:  # a folder on the way that cannot be searched
        raise UsageError(f"{option} {path}: {e.strerror or e}") from e
    if not parent_ok:
        raise UsageError(f"{option} {path}: folder {path.parent} does not exist")
    if not os.access(path.parent, os.W_OK | os.X_OK):
        raise UsageError(f"{option} {path}: cannot write in {path.parent} (permission denied)")


def _check_writable_dir(option: str, folder: Path) -> None:
    """The folder, or the nearest existing folder above it (where it will be created), is writable."""
    from jmigrate.errors import UsageError

    try:
        if folder.exists() and not folder.is_dir():
            raise UsageError(f"{option} {folder} exists and is not a folder")
        existing = folder
        while not existing.exists() and existing != existing.parent:
            existing = existing.parent
    except OSError as e:
        raise UsageError(f"{option} {folder}: {e.strerror or e}") from e
    if not os.access(existing, os.W_OK | os.X_OK):
        raise UsageError(f"{option} {folder}: cannot write in {existing} (permission denied)")


def _store_lines(store_search: list[dict[str, Any]]) -> str:
    """`--search-in-store`: one line per store side (text output)."""
    return "".join(
        f"store search ({s['side']}: {s['backend']} {s['collection']}): recall@{s['k']} "
        + (f"{s['recall']:.4f}" if s["recall"] is not None else "n/a")
        + f" of exact search over {s['queries']} queries\n" for s in store_search)


def _emit(result: VerifyResult, fmt: ListFormat, output: Path | None,
          store_search: list[dict[str, Any]] | None = None) -> None:
    """The result on stdout, or in FILE with -o (written atomically)."""
    import io

    from rich.console import Console

    from jmigrate.verify import report as rep

    if fmt is ListFormat.json:
        data = rep.to_json(result)
        if store_search:
            data["store_search"] = store_search
        text = json.dumps(data, indent=2, ensure_ascii=False) + "\n"
    elif output is None:
        console = Console()
        if not console.is_terminal:
            console = Console(width=140)  # piped to a file or CI log: don't squeeze tables into 80 columns
        rep.render_text(result, console)
        if store_search:
            typer.echo(_store_lines(store_search), nl=False)
        return
    else:
        buf = io.StringIO()
        rep.render_text(result, Console(file=buf, width=140, color_system=None))
        text = buf.getvalue() + _store_lines(store_search or [])
    if output is None:
        typer.echo(text, nl=False)
        return
    from jmigrate.cli.console import say
    from jmigrate.fileio import write_output

    try:
        write_output(output, text.encode("utf-8"))
    except OSError as e:
        from jmigrate.errors import UsageError

        raise UsageError(f"cannot write {output}: {e.strerror or e}") from e
    say(f"wrote {output}")


def register(app: typer.Typer) -> None:
    """Add this module's commands to the app."""
    app.command("verify")(verify)
