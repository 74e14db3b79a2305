"""`jmigrate bridge fit|show`: a query bridge from v3 query vectors into a v2 index (jmigrate.bridge)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING

import typer

from jmigrate.encoders.factory import KINDS as ENCODERS

if TYPE_CHECKING:
    from jmigrate.bridge.manifest import BridgeManifest
    from jmigrate.encoders.base import Encoder

HELP = {"help_option_names": ["-h", "--help"]}

bridge_app = typer.Typer(
    name="bridge",
    help="A query bridge: v3 queries searching the v2 index while the corpus is re-embedded.",
    no_args_is_help=True,
    context_settings=HELP,
)


@bridge_app.callback()
def _group(
    quiet: bool = typer.Option(
        False, "--quiet", "-q", help="No progress or notes on stderr (errors still show)."
    ),
) -> None:
    """A query bridge: v3 queries searching the v2 index while the corpus is re-embedded (docs/bridge.md)."""
    if quiet:
        from jmigrate.cli.console import set_quiet

        set_quiet(True)


@bridge_app.command("fit", context_settings=HELP)
def fit_cmd(
    v2: str = typer.Option(
        ...,
        "--v2",
        help="The v2 index: reindex folder, .parquet, .npy (+ids), .jsonl, or a store URI "
        "(anything `verify` opens).",
    ),
    out: Path = typer.Option(
        ..., "--out", help="Bridge folder to write (manifest.json, weights.npy, bias.npy)."
    ),
    sample: int = typer.Option(5000, "--sample", help="Documents to sample and embed (pairs to fit on)."),
    method: str = typer.Option(
        "procrustes",
        "--method",
        help="procrustes (default), ridge, low-rank, or auto (all three); another "
        "map replaces Procrustes only when it wins on held-out pairs.",
    ),
    embed_as: str = typer.Option(
        "query", "--embed-as", help="Embed the sampled documents as query (default) or passage."
    ),
    texts: str = typer.Option(
        None, "--texts", help="Corpus with id and text, when the index stores no text."
    ),
    v2_model: str = typer.Option(None, "--v2-model", help="Model of a v2 index without a manifest."),
    v2_task: str = typer.Option(None, "--v2-task", help="Task of a v2 index without a manifest."),
    v2_ids: str = typer.Option(None, "--v2-ids", help="Ids file for a v2 .npy index."),
    model: str = typer.Option(None, "--model", help="The new model (default: jina-embeddings-v3)."),
    dimensions: int = typer.Option(
        None,
        "--dimensions",
        help="Width of the v3 query vectors the application will send (default: the model's full width).",
    ),
    held_out: float = typer.Option(
        0.2, "--held-out", help="Fraction of pairs kept out of the fit to score it."
    ),
    seed: int = typer.Option(0, "--seed", help="Seed of the sample and the split."),
    encoder: str = typer.Option("api", "--encoder", help="api | onnx | openai (fake: test vectors)."),
    api_url: str = typer.Option(
        None, "--api-url", envvar="JMIGRATE_API_URL", help="Embeddings endpoint (default: Jina's)."
    ),
    # No envvar= here: the factory reads the key for the encoder kind (JINA_API_KEY for api,
    # JMIGRATE_OPENAI_API_KEY for openai), so a Jina key is never sent to a self-hosted server.
    api_key: str = typer.Option(
        None,
        "--api-key",
        show_default=False,
        help="API key (default: $JINA_API_KEY; $JMIGRATE_OPENAI_API_KEY with --encoder openai; never shown).",
    ),
    allow_insecure: bool = typer.Option(
        False, "--allow-insecure", help="Allow a plain http:// --api-url to a non-loopback host."
    ),
    model_path: Path = typer.Option(None, "--model-path", help="Local ONNX model folder (--encoder onnx)."),
    no_checksums: bool = typer.Option(False, "--no-checksums", help="Skip shard sha256 checks."),
    output_format: str = typer.Option("text", "--format", help="text or json (the manifest)."),
) -> None:
    """Sample documents from the v2 index, embed them with v3, fit the map, write the bridge folder.

    Exit 0: the bridge was written (a poor held-out fit is reported as a warning). Exit 2: errors.
    """
    from jmigrate.bridge.fit import METHODS, PROCRUSTES
    from jmigrate.bridge.pipeline import FitOptions, fit_bridge
    from jmigrate.cli.console import say, warn
    from jmigrate.errors import UsageError
    from jmigrate.models import V3

    if output_format not in ("text", "json"):
        raise UsageError(f"--format must be text or json, not {output_format!r}")
    if encoder not in ENCODERS:
        raise UsageError(f"--encoder must be one of {', '.join(ENCODERS)}, not {encoder!r}")
    if method == "auto":
        methods: tuple[str, ...] = METHODS
    elif method in METHODS:
        methods = (PROCRUSTES,) if method == PROCRUSTES else (PROCRUSTES, method)
    else:
        raise UsageError(f"--method must be one of {', '.join(METHODS)} or auto, not {method!r}")
    new_model = model or V3
    opts = FitOptions(
        index=v2,
        out=str(out),
        sample=sample,
        model=v2_model,
        task=v2_task,
        ids=v2_ids,
        texts=texts,
        new_model=new_model,
        dimensions=dimensions,
        embed_as=embed_as,
        methods=methods,
        held_out_fraction=held_out,
        seed=seed,
        verify_checksums=not no_checksums,
    )

    with _open_encoder(encoder, new_model, api_url, api_key, model_path, allow_insecure) as enc:
        report = fit_bridge(opts, enc, say)
    m = report.manifest
    if m.note:
        say(f"note: {m.note}")
    if m.poor:
        warn(f"warning: poor held-out fit: {m.quality_line()}")
    if output_format == "json":
        typer.echo(json.dumps(m.to_dict(), indent=2, ensure_ascii=False))
    else:
        typer.echo(_summary(m, report.path))


@bridge_app.command("show", context_settings=HELP)
def show_cmd(
    path: Path = typer.Argument(..., help="A bridge folder."),
    v2: str = typer.Option(
        None, "--v2", help="Also check that this index (or store URI) is the one the bridge was fitted on."
    ),
    output_format: str = typer.Option("text", "--format", help="text or json (the manifest)."),
) -> None:
    """Print what a bridge maps, how well it fitted, and (with --v2) whether it matches an index.

    Exit 0: readable (and matching). Exit 2: unreadable, damaged, or fitted for another index.
    """
    import warnings

    from jmigrate.bridge.apply import PoorBridgeWarning, load
    from jmigrate.cli.console import say
    from jmigrate.errors import UsageError

    if output_format not in ("text", "json"):
        raise UsageError(f"--format must be text or json, not {output_format!r}")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", PoorBridgeWarning)  # shown below as part of the summary
        bridge = load(path)
    if v2 is not None:
        bridge.check_index(v2, progress=say)
    m = bridge.manifest
    if output_format == "json":
        typer.echo(json.dumps(m.to_dict(), indent=2, ensure_ascii=False))
    else:
        typer.echo(_summary(m, path) + ("\nmatches the index " + v2 if v2 else ""))


def _summary(m: BridgeManifest, path: Path) -> str:
    lines = [
        f"bridge {path}",
        f"  maps     {m.source.describe()}",
        f"  into     {m.target.describe()}",
        f"  index    {m.index.path} ({m.index.kind}, {m.index.rows:,} vectors, "
        f"{m.index.documents:,} documents)",
        f"  method   {m.method} {m.params}" + (f" ({m.note})" if m.note else ""),
        f"  sample   {m.sample.get('pairs')} pairs ({m.sample.get('train')} fitted, "
        f"{m.sample.get('held_out')} held out), embedded as "
        f"{', '.join(m.sample.get('embedded_as') or ['(no task)'])}",
        f"  quality  {m.quality_line()}" + ("  POOR" if m.poor else ""),
    ]
    for c in m.candidates:
        h = c["held_out"]
        lines.append(
            f"  tried    {c['method']}: recall@10 {h['recall_at_10']:.3f}, mean cosine {h['mean_cosine']:.3f}"
        )
    return "\n".join(lines)


def _open_encoder(
    kind: str,
    model: str,
    api_url: str | None,
    api_key: str | None,
    model_path: Path | None,
    allow_insecure: bool,
) -> Encoder:
    # fake: deterministic test vectors (NOT Jina vectors), to rehearse the command offline.
    from jmigrate.encoders.factory import open_encoder

    return open_encoder(
        kind,
        model,
        api_url=api_url,
        api_key=api_key,
        model_path=str(model_path) if model_path else None,
        allow_insecure=allow_insecure,
    )


def register(app: typer.Typer) -> None:
    """Add this module's commands to the app, with the conventions every jmigrate command shares."""
    from jmigrate.cli.app import JMigrateCommand, JMigrateGroup

    for info in bridge_app.registered_commands:
        info.cls = JMigrateCommand
    app.add_typer(bridge_app, name="bridge", cls=JMigrateGroup)
