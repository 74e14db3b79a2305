"""`jmigrate verify`: compare v2 and v3 retrieval on the user's own queries (metrics, statistics, report)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING

import typer

if TYPE_CHECKING:
    from jmigrate.encoders.base import Encoder


def verify(
    v2: str = typer.Option(..., "--v2", help="v2 index: reindex folder, .parquet, .npy (+ids) or .jsonl."),
    v3: str = typer.Option(..., "--v3", help="v3 index: reindex folder, .parquet, .npy (+ids) or .jsonl."),
    queries: Path = typer.Option(
        ..., "--queries", help="Queries: JSONL/TSV/CSV/Parquet with id, text (and optionally language)."
    ),
    qrels: Path | None = typer.Option(
        None,
        "--qrels",
        help="Judgements: TREC 'qid 0 docid rel' or BEIR TSV. "
        "Without them: agreement only, no verdict on quality.",
    ),
    k: int = typer.Option(10, "-k", help="Cut-off for agreement measures and shown results."),
    output_format: str = typer.Option("text", "--format", help="text (tables + verdict) or json."),
    report: Path | None = typer.Option(None, "--report", help="Write a self-contained HTML report here."),
    run_dir: Path | None = typer.Option(
        None, "--run-dir", help="Write TREC run files DIR/v2.run, DIR/v3.run."
    ),
    encoder: str = typer.Option(
        "api", "--encoder", help="How to embed queries: api, onnx, openai (fake: test vectors, rehearsals)."
    ),
    model_path: Path | None = typer.Option(None, "--model-path", help="Model folder for --encoder onnx."),
    api_url: str | None = typer.Option(
        None, "--api-url", envvar="JMIGRATE_API_URL", help="Embeddings endpoint (default: Jina's)."
    ),
    api_key: str | None = typer.Option(
        None,
        "--api-key",
        envvar="JINA_API_KEY",
        show_default=False,
        help="API key (default: $JINA_API_KEY; never printed).",
    ),
    allow_insecure: bool = typer.Option(
        False, "--allow-insecure",
        help="Allow a plain http:// --api-url to a non-loopback host (the key travels unencrypted).",
    ),
    v2_model: str | None = typer.Option(None, "--v2-model", help="Model of a v2 index without a manifest."),
    v3_model: str | None = typer.Option(None, "--v3-model", help="Model of a v3 index without a manifest."),
    v2_task: str | None = typer.Option(None, "--v2-task", help="Task of a v2 index without a manifest."),
    v3_task: str | None = typer.Option(
        None, "--v3-task", help="Task of a v3 index without a manifest (default retrieval.passage)."
    ),
    v2_ids: str | None = typer.Option(None, "--v2-ids", help="Ids file for a v2 .npy index."),
    v3_ids: str | None = typer.Option(None, "--v3-ids", help="Ids file for a v3 .npy index."),
    v2_query_vectors: str | None = typer.Option(
        None, "--v2-query-vectors", help="Precomputed v2 query vectors (Parquet id + vector)."
    ),
    v3_query_vectors: str | None = typer.Option(
        None, "--v3-query-vectors", help="Precomputed v3 query vectors (Parquet id + vector)."
    ),
    memory_budget: str = typer.Option(
        "1GB",
        "--memory-budget",
        help="Memory for one search block (vectors + scores), e.g. 512MB; the index itself may be larger.",
    ),
    search_backend: str = typer.Option("numpy", "--search-backend", help="numpy, or faiss (if installed)."),
    alpha: float = typer.Option(0.05, "--alpha", help="Significance level of the verdict."),
    examples: int = typer.Option(5, "--examples", help="Disagreeing queries to show side by side."),
    no_checksums: bool = typer.Option(
        False, "--no-checksums", help="Skip shard sha256 checks (large indexes)."
    ),
) -> None:
    """Search both indexes with the same queries and compare them: metrics with qrels, agreement without.

    Exit 0: v3 is not significantly worse on nDCG@10 (or no qrels were given).

    Exit 1: v3 is significantly worse, or an index failed its integrity checks. Exit 2: errors.
    """
    from jmigrate.cli.console import err_console
    from jmigrate.errors import UsageError
    from jmigrate.verify.pipeline import SideOptions, VerifyOptions, run_verify
    from jmigrate.verify.search import parse_size

    if output_format not in ("text", "json"):
        raise UsageError(f"--format must be text or json, not {output_format!r}")
    if encoder not in ("api", "onnx", "openai", "fake"):
        raise UsageError(f"--encoder must be api, onnx, openai or fake, not {encoder!r}")
    opts = VerifyOptions(
        v2=SideOptions(v2, v2_model, v2_task, v2_ids, v2_query_vectors),
        v3=SideOptions(v3, v3_model, v3_task, v3_ids, v3_query_vectors),
        queries=str(queries),
        qrels=str(qrels) if qrels else None,
        k=k,
        memory_budget=parse_size(memory_budget),
        backend=search_backend,
        run_dir=str(run_dir) if run_dir else None,
        alpha=alpha,
        examples=examples,
        verify_checksums=not no_checksums,
    )

    def factory(model: str) -> Encoder:
        if encoder == "fake":
            # Same vectors as `reindex --encoder fake`, to rehearse the whole pipeline offline.
            from jmigrate.models import get_model
            from jmigrate.testing.fake import FakeEncoder

            return FakeEncoder(model=model, dims=get_model(model).dims)
        from jmigrate.encoders.factory import open_encoder

        return open_encoder(encoder, model, api_url=api_url, api_key=api_key,
                            model_path=str(model_path) if model_path else None, allow_insecure=allow_insecure)

    def progress(msg: str) -> None:
        err_console.print(f"[dim]{msg}[/]", highlight=False)

    result = run_verify(opts, factory, progress)
    from jmigrate.verify import report as rep

    if report is not None:
        rep.write_html(result, report)
        err_console.print(f"report written to {report}", highlight=False)
    if output_format == "json":
        typer.echo(json.dumps(rep.to_json(result), indent=2, ensure_ascii=False))
    else:
        from rich.console import Console

        console = Console()
        if not console.is_terminal:
            console = Console(width=140)  # piped to a file or CI log: don't squeeze tables into 80 columns
        rep.render_text(result, console)
    raise typer.Exit(result.exit_code)


def register(app: typer.Typer) -> None:
    """Add this module's commands to the app."""
    app.command("verify")(verify)
