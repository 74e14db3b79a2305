"""`jmigrate serve-stub`: the loopback Jina-API stand-in, to rehearse a pipeline offline (not v3 vectors)."""

from __future__ import annotations

import typer

from jmigrate.cli.options import float_range, int_range


def serve_stub(
    port: int = typer.Option(8089, "--port", parser=int_range(0, 65535),
                             help="Port on 127.0.0.1 (0 picks a free one)."),
    host: str = typer.Option("127.0.0.1", "--host", help="Loopback address only (127.0.0.1, ::1)."),
    api_key: str = typer.Option(
        "jina_test", "--api-key", help="Key the server accepts (send it as JINA_API_KEY)."
    ),
    latency: float = typer.Option(0.0, "--latency", parser=float_range(0),
                                  help="Seconds added to every answer."),
    rpm: float | None = typer.Option(None, "--rpm", help="Requests/min before 429 (default: none)."),
    tpm: float | None = typer.Option(None, "--tpm", help="Tokens/min before 429 (default: none)."),
    max_concurrency: int | None = typer.Option(
        None, "--max-concurrency", parser=int_range(1),
        help="Requests in flight before 429 (default: no limit)."
    ),
) -> None:
    """Serve a stand-in of the Jina embeddings API on loopback until Ctrl-C (then exit 130).

    Its vectors are deterministic test vectors, NOT jina-embeddings-v3 vectors: use it to rehearse
    `jmigrate reindex`/`verify` offline, never to build a real index.
    """
    import threading

    from rich.text import Text

    from jmigrate.cli.console import quiet_enabled, say
    from jmigrate.errors import UsageError
    from jmigrate.testing.server import StubServer

    for name, limit in (("--rpm", rpm), ("--tpm", tpm)):
        if limit is not None and not limit > 0:  # 0 or less would silently mean "no limit"
            raise UsageError(f"{name} must be a positive number (leave it out for no limit), not {limit:g}")
    srv = StubServer(api_key=api_key, latency=latency, rpm=rpm, tpm=tpm, max_concurrency=max_concurrency,
                     host=host, port=port)
    try:
        srv.start()
    except OSError as e:  # port in use, no permission for a low port, no IPv6 on this machine
        raise UsageError(f"cannot listen on {host}:{port}: {e.strerror or e}") from e
    try:
        if not quiet_enabled():
            from jmigrate.cli.console import err_console

            err_console.print(Text.assemble(
                ("jmigrate stub server: its vectors are NOT real Jina v3 vectors", "bold yellow"),
                " (deterministic test vectors for rehearsals). Ctrl-C stops it."))
        say(f"use: JMIGRATE_API_URL={srv.url} JINA_API_KEY=<the --api-key value>")
        typer.echo(srv.url)  # stdout: the one result, so scripts can capture it
        threading.Event().wait()  # until KeyboardInterrupt; the CLI maps it to exit 130
    finally:
        srv.stop()


def register(app: typer.Typer) -> None:
    """Add this module's commands to the app."""
    app.command("serve-stub")(serve_stub)
