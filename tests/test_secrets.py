"""The API key never shows: every command, every error path, `--debug`, logs and every file written.

Each test runs real commands against the loopback StubServer with a recognisable key, then greps
stdout, stderr, every log record (DEBUG, httpx and httpcore included) and every byte of every file
under the test folder (Parquet footers, manifests, rejects, journals, reports, run files, plans) for
the key and for pieces of it.
"""

from __future__ import annotations

import json
import logging
import os
import shutil
import signal
import socket
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pyarrow.parquet as pq
import pytest

from jmigrate.cli.app import main
from jmigrate.encoders.api import JinaAPIEncoder
from jmigrate.testing.server import Fault, StubServer

KEY = "jina_SECRETKEY_deadbeef0123456789"
# The whole key, its last 12 characters and its recognisable head: a truncated or partly masked
# key is still a leak.
NEEDLES = (KEY, KEY[-12:], KEY[:14])
ROOT = Path(__file__).resolve().parents[1]
CORPUS = ROOT / "fixtures" / "corpus"
V2, V3 = "jina-embeddings-v2-base-en", "jina-embeddings-v3"


def leaks(text: str | bytes) -> list[str]:
    """Pieces of the key in `text`, also when a console wrapped it across lines."""
    if isinstance(text, bytes):
        return [n for n in NEEDLES if n.encode() in text or n.encode() in b"".join(text.split())]
    return [n for n in NEEDLES if n in text or n in "".join(text.split())]


def files_leaking(root: Path) -> list[str]:
    """Files under `root` holding a piece of the key: raw bytes, and for Parquet the decoded
    key-value metadata and rows (data pages may be compressed, so bytes alone could miss it)."""
    bad = []
    for p in sorted(root.rglob("*")):
        if not p.is_file() or p.is_symlink():
            continue
        found = leaks(p.read_bytes())
        if p.suffix == ".parquet":
            meta = pq.read_metadata(p).metadata or {}
            found += leaks(b"".join(k + v for k, v in meta.items()))
            found += leaks(json.dumps(pq.read_table(p).to_pylist(), default=str))
        if found:
            bad.append(f"{p.relative_to(root)}: {found}")
    return bad


class Watch:
    """Runs CLI commands in-process and fails the test if the key shows anywhere they wrote."""

    def __init__(self, capsys: pytest.CaptureFixture[str], caplog: pytest.LogCaptureFixture, root: Path):
        self.capsys, self.caplog, self.root = capsys, caplog, root
        self.outputs: list[tuple[list[str], str, str]] = []

    def run(self, argv: list[str]) -> tuple[int, str, str]:
        code = main(argv)
        out, err = self.capsys.readouterr()
        self.outputs.append((argv, out, err))
        assert not leaks(out), f"key on stdout of {argv}: {out}"
        assert not leaks(err), f"key on stderr of {argv}: {err}"
        return code, out, err

    def check_all(self) -> None:
        for rec in self.caplog.records:
            text = rec.getMessage() + repr(rec.args) + (rec.exc_text or "")
            if rec.exc_info and rec.exc_info[1] is not None:
                text += repr(rec.exc_info[1])
            assert not leaks(text), f"key in log record {rec.name}: {text}"
        assert not leaks(self.caplog.text)
        assert files_leaking(self.root) == []


@pytest.fixture
def watch(capsys: pytest.CaptureFixture[str], caplog: pytest.LogCaptureFixture, tmp_path: Path,
          monkeypatch: pytest.MonkeyPatch) -> Iterator[Watch]:
    for name in ("JINA_API_KEY", "JINAAI_API_KEY", "JMIGRATE_API_URL", "JMIGRATE_OPENAI_API_KEY"):
        monkeypatch.delenv(name, raising=False)
    # Retries without waiting: "5xx until the attempts run out" then takes milliseconds.
    monkeypatch.setattr(JinaAPIEncoder, "_backoff", lambda self, attempt: 0.0)
    caplog.set_level(logging.DEBUG)
    for name in ("httpx", "httpcore", "jmigrate", "asyncio"):
        caplog.set_level(logging.DEBUG, logger=name)
    w = Watch(capsys, caplog, tmp_path)
    yield w
    w.check_all()


@pytest.fixture
def stub() -> Iterator[StubServer]:
    with StubServer(api_key=KEY) as srv:
        yield srv


def free_port() -> int:
    """A loopback port nothing listens on (bound, then closed)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def small_corpus(path: Path, n: int = 3) -> Path:
    path.write_text("".join(json.dumps({"id": f"r{i}", "text": f"row number {i}"}) + "\n" for i in range(n)))
    return path


# --------------------------------------------------------------------------------------------- reindex


@pytest.mark.parametrize("how", ["flag", "JINA_API_KEY", "JINAAI_API_KEY"])
@pytest.mark.parametrize("debug", [False, True])
def test_reindex_with_the_key_from_a_flag_or_the_environment(
    watch: Watch, stub: StubServer, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, how: str, debug: bool
) -> None:
    key_args = ["--api-key", KEY] if how == "flag" else []
    if how != "flag":
        monkeypatch.setenv(how, KEY)
    pre = ["--debug"] if debug else []
    base = ["reindex", str(CORPUS / "multilingual.jsonl"), "--api-url", stub.url, *key_args]
    code, out, _ = watch.run([*pre, *base, "--out", str(tmp_path / "idx"), "--json"])
    assert code == 0 and json.loads(out)["status"] == "complete"
    assert stub.stats.by_status[200] > 0  # the key really travelled (in the header only)
    code, out, _ = watch.run([*pre, *base, "--out", str(tmp_path / "dry"), "--dry-run", "--json"])
    assert code == 0 and "rows" in out
    code, _, err = watch.run([*pre, *base, "--out", str(tmp_path / "idx")])  # resume: already complete
    assert code == 0 and "already complete" in " ".join(err.split())
    assert (tmp_path / "idx" / "manifest.json").exists()


def test_reindex_rejects_carry_the_servers_message_scrubbed(watch: Watch, stub: StubServer,
                                                           tmp_path: Path) -> None:
    # A server that echoes the key in its error detail: the reason is kept, the key is not.
    stub.faults.add(Fault.error(400, detail=f"input refused (key {KEY})"), times=3)
    code, _, err = watch.run(["--debug", "reindex", str(small_corpus(tmp_path / "c.jsonl", 2)),
                              "--api-url", stub.url, "--api-key", KEY, "--out", str(tmp_path / "o"), "-q"])
    assert code == 1 and "rejected" in err
    rejects = (tmp_path / "o" / "rejects.jsonl").read_text()
    assert "input refused (key ***)" in rejects


@pytest.mark.parametrize("case", ["wrong key", "echoing 401", "5xx until exhausted", "unreachable"])
@pytest.mark.parametrize("debug", [False, True])
def test_reindex_failures_name_the_problem_not_the_key(watch: Watch, tmp_path: Path, case: str,
                                                      debug: bool) -> None:
    with StubServer(api_key="jina_the_right_one" if case == "wrong key" else KEY) as srv:
        url = srv.url
        if case == "echoing 401":
            srv.faults.add(Fault.error(401, detail=f"key {KEY} is revoked"), times=10)
        if case == "5xx until exhausted":
            srv.faults.add(Fault.error(503, detail=f"overloaded; Authorization: Bearer {KEY}"), times=100)
        if case == "unreachable":
            url = f"http://127.0.0.1:{free_port()}/v1"
        pre = ["--debug"] if debug else []
        code, _, err = watch.run([*pre, "reindex", str(small_corpus(tmp_path / "c.jsonl")), "--api-url", url,
                                  "--api-key", KEY, "--out", str(tmp_path / "o"), "-q"])
    assert code == 2
    expected = {"wrong key": "HTTP 401", "echoing 401": "revoked", "5xx until exhausted": "HTTP 503",
                "unreachable": "connection failed"}[case]
    assert expected in err
    if debug:
        assert "Traceback" in err
    # The failed run left its journal, lock and work files behind: they were grepped too (check_all).


# ---------------------------------------------------------------------------------------------- verify


def test_verify_with_report_json_and_run_files(watch: Watch, stub: StubServer, tmp_path: Path,
                                              monkeypatch: pytest.MonkeyPatch) -> None:
    corpus = str(CORPUS / "multilingual.jsonl")
    for model, name in ((V2, "v2"), (V3, "v3")):
        code, _, _ = watch.run(["reindex", corpus, "--api-url", stub.url, "--api-key", KEY, "--model", model,
                                "--out", str(tmp_path / name), "-q"])
        assert code == 0
    common = ["verify", "--v2", str(tmp_path / "v2"), "--v3", str(tmp_path / "v3"), "--queries",
              str(CORPUS / "queries.jsonl"), "--qrels", str(CORPUS / "qrels.tsv"), "--api-url", stub.url]
    code, out, err = watch.run(["--debug", *common, "--api-key", KEY, "--format", "json", "--report",
                                str(tmp_path / "report.html"), "--run-dir", str(tmp_path / "runs")])
    assert code in (0, 1), err
    assert json.loads(out) and (tmp_path / "report.html").exists() and (tmp_path / "runs" / "v3.run").exists()
    monkeypatch.setenv("JINA_API_KEY", KEY)
    code, out, err = watch.run([*common, "--report", str(tmp_path / "report2.html")])
    assert code in (0, 1), err
    # the help text shows where the key comes from, never its value
    code, out, _ = watch.run(["verify", "--help"])
    assert code == 0 and "JINA_API_KEY" in out


@pytest.mark.parametrize("debug", [False, True])
def test_verify_failures_hide_the_key(watch: Watch, tmp_path: Path, debug: bool) -> None:
    with StubServer(api_key="jina_the_right_one") as srv:
        corpus = str(small_corpus(tmp_path / "c.jsonl"))
        for model, name in ((V2, "v2"), (V3, "v3")):
            assert watch.run(["reindex", corpus, "--encoder", "fake", "--model", model,
                              "--out", str(tmp_path / name), "-q"])[0] == 0
        pre = ["--debug"] if debug else []
        code, _, err = watch.run([*pre, "verify", "--v2", str(tmp_path / "v2"), "--v3", str(tmp_path / "v3"),
                                  "--queries", str(CORPUS / "queries.jsonl"), "--api-url", srv.url,
                                  "--api-key", KEY, "--report", str(tmp_path / "r.html")])
    assert code == 2 and "HTTP 401" in err


# ------------------------------------------------------------------------------ plan, apply, rules, stub


def test_plan_apply_and_rules_with_the_key_in_the_environment(watch: Watch, tmp_path: Path,
                                                              monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("JINA_API_KEY", KEY)
    repo = tmp_path / "repo"
    shutil.copytree(ROOT / "fixtures" / "repo", repo)
    before = {p: p.read_bytes() for p in repo.rglob("*") if p.is_file()}
    plan_file = tmp_path / "plan.json"
    for argv in (["plan", str(repo)], ["plan", str(repo), "--format", "sarif"],
                 ["plan", str(repo), "--format", "markdown", "-o", str(tmp_path / "plan.md")],
                 ["plan", str(repo), "--format", "json", "-o", str(plan_file)], ["plan", str(repo), "--diff"],
                 ["--debug", "apply", str(repo), "--plan", str(plan_file)], ["rules"],
                 ["rules", "--format", "json"], ["--debug", "plan", str(tmp_path / "missing")]):
        code, _, _ = watch.run(argv)
        assert code in (0, 1, 2)
    assert any(p.read_bytes() != b for p, b in before.items())  # apply really wrote


def test_serve_stub_never_prints_its_key(tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if k not in ("JINA_API_KEY", "JINAAI_API_KEY")}
    proc = subprocess.Popen([sys.executable, "-m", "jmigrate", "--debug", "serve-stub", "--port", "0",
                             "--api-key", KEY], stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=env)
    try:
        assert proc.stdout is not None
        url = proc.stdout.readline().decode().strip()
        assert url.startswith("http://127.0.0.1:")
        enc = JinaAPIEncoder(V3, api_url=url, api_key=KEY, max_attempts=1)
        with enc:
            assert enc.encode(["hello"], task="retrieval.query").shape == (1, 1024)
    finally:
        proc.send_signal(signal.SIGINT)
        out, err = proc.communicate(timeout=20)
    assert proc.returncode == 130
    assert not leaks(out) and not leaks(err), err.decode()


# ---------------------------------------------------------------------------------------- library level


def test_encoder_and_settings_reprs_and_errors_are_masked(stub: StubServer) -> None:
    from jmigrate.encoders.factory import api_settings_from_env, open_encoder

    settings = api_settings_from_env(None, None, env={"JINAAI_API_KEY": KEY})
    assert settings.api_key == KEY and settings.key_source == "JINAAI_API_KEY"
    assert not leaks(repr(settings)) and not leaks(str(settings))
    enc = open_encoder("api", api_url=stub.url, api_key=KEY)
    assert not leaks(repr(enc)) and not leaks(str(enc)) and not leaks(repr(vars(enc)))
    stub.faults.add(Fault.error(403, detail=f"forbidden for {KEY}"))
    with enc, pytest.raises(Exception) as info:
        enc.encode(["x"], task="retrieval.query")
    assert "forbidden for ***" in str(info.value)
    assert not leaks(repr(info.value)) and not leaks(str(info.value.__context__ or ""))


@pytest.mark.parametrize("raw", [KEY + "\n", KEY + "\r", f"  {KEY} "])
def test_a_key_with_surrounding_whitespace_is_trimmed_and_works(
    watch: Watch, stub: StubServer, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, raw: str
) -> None:
    # A CRLF .env file used to make h11 refuse the header on every attempt, quoting the key in the error.
    monkeypatch.setenv("JINA_API_KEY", raw)
    code, _, err = watch.run(["--debug", "reindex", str(small_corpus(tmp_path / "c.jsonl")),
                              "--api-url", stub.url, "--out", str(tmp_path / "o"), "-q"])
    assert code == 0, err


@pytest.mark.parametrize("bad", ["jina_SECRETKEY_dead beef0123456789", "jina_SECRETKEYé_deadbeef0123456789",
                                 "jina_SECRETKEY_dead\nbeef0123456789"])
def test_a_key_no_header_can_carry_is_refused_without_showing_it(
    watch: Watch, stub: StubServer, tmp_path: Path, bad: str
) -> None:
    code, _, err = watch.run(["--debug", "reindex", str(small_corpus(tmp_path / "c.jsonl")),
                              "--api-url", stub.url, "--api-key", bad, "--out", str(tmp_path / "o"), "-q"])
    assert code == 2 and "the key itself is not shown" in " ".join(err.split())
    assert "dead" not in err and stub.stats.requests == 0


@pytest.mark.parametrize("url", [f"http://user:{KEY}@127.0.0.1:9/v1", f"https://api.example.test/v1?key={KEY}",
                                 f"ftp://{KEY}@api.example.test/v1", f"https://api.example.test/v1#{KEY}"])
def test_a_key_inside_the_api_url_is_refused_without_showing_it(watch: Watch, tmp_path: Path,
                                                               url: str) -> None:
    code, _, err = watch.run(["reindex", str(small_corpus(tmp_path / "c.jsonl")), "--api-url", url,
                              "--api-key", KEY, "--out", str(tmp_path / "o"), "-q"])
    assert code == 2 and "API URL" in err


# ------------------------------------------------------------------------------------ https or loopback


@pytest.fixture
def no_network(monkeypatch: pytest.MonkeyPatch) -> list[object]:
    """Records (and blocks) every name lookup and outgoing connection in this process."""
    calls: list[object] = []

    def refuse(*args: object, **kwargs: object) -> None:
        calls.append(args)
        raise OSError("network use in a test that must not touch the network")

    monkeypatch.setattr(socket, "getaddrinfo", refuse)
    monkeypatch.setattr(socket, "create_connection", refuse)
    monkeypatch.setattr(socket.socket, "connect", refuse)
    monkeypatch.setattr(socket.socket, "connect_ex", refuse)
    return calls


@pytest.mark.parametrize("url", ["https://api.jina.ai/v1", "https://10.1.2.3/v1", "http://127.0.0.1:8080/v1",
                                 "http://127.9.8.7/v1", "http://[::1]:8080/v1", "http://localhost:8080/v1",
                                 "http://LOCALHOST/v1"])
def test_https_anywhere_and_plain_http_to_loopback_are_accepted(no_network: list[object], url: str) -> None:
    from jmigrate.encoders.factory import open_encoder

    enc = open_encoder("api", api_url=url, api_key=KEY)
    assert enc.url.startswith(("https://", "http://"))  # type: ignore[attr-defined]
    enc.close()
    assert no_network == []  # constructing an encoder resolves and connects nothing


@pytest.mark.parametrize("url", ["http://api.jina.ai/v1", "http://10.0.0.1:8080/v1", "http://localhost.evil.test/v1",
                                 "http://127.0.0.1.nip.io/v1", "http://[fe80::1]/v1", "http://0.0.0.0:8080/v1"])
def test_plain_http_to_a_remote_host_is_refused_unless_allowed(no_network: list[object], url: str) -> None:
    from jmigrate.encoders.factory import open_encoder
    from jmigrate.errors import UsageError

    with pytest.raises(UsageError, match="--allow-insecure"):
        open_encoder("api", api_url=url, api_key=KEY)
    with pytest.raises(UsageError, match="--allow-insecure"):
        open_encoder("openai", api_url=url)
    enc = open_encoder("api", api_url=url, api_key=KEY, allow_insecure=True)  # constructed, never used
    assert enc.url == url.rstrip("/")  # type: ignore[attr-defined]
    enc.close()
    assert no_network == []


@pytest.mark.parametrize("command", ["reindex", "verify"])
def test_cli_refuses_plain_http_to_a_remote_host_before_any_traffic_and_the_flag_allows_it(
    watch: Watch, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, no_network: list[object], command: str
) -> None:
    corpus = str(small_corpus(tmp_path / "c.jsonl"))
    if command == "reindex":
        argv = ["reindex", corpus, "--out", str(tmp_path / "o"), "-q"]
    else:
        for model, name in ((V2, "v2"), (V3, "v3")):
            assert watch.run(["reindex", corpus, "--encoder", "fake", "--model", model,
                              "--out", str(tmp_path / name), "-q"])[0] == 0
        argv = ["verify", "--v2", str(tmp_path / "v2"), "--v3", str(tmp_path / "v3"),
                "--queries", str(CORPUS / "queries.jsonl")]
    argv += ["--api-url", "http://embeddings.example.test/v1", "--api-key", KEY]
    code, _, err = watch.run(argv)
    assert code == 2 and "refusing plain http to embeddings.example.test" in err and "--allow-insecure" in err

    # With the flag the encoder is built for that URL; its first request is stopped here, before the
    # socket layer (which the no_network fixture would also block), so nothing leaves the machine.
    sent: list[str] = []

    def stop(self: JinaAPIEncoder, *args: object, **kwargs: object) -> None:
        from jmigrate.errors import EncoderError

        sent.append(self.url)
        raise EncoderError("stopped before sending (test)")

    monkeypatch.setattr(JinaAPIEncoder, "encode_batch", stop)
    code, _, err = watch.run([*argv, "--allow-insecure"])
    assert code == 2 and "stopped before sending" in err
    assert sent and sent[0] == "http://embeddings.example.test/v1"
    assert no_network == []


def test_openai_mode_key_from_its_own_variable_never_shows(watch: Watch, stub: StubServer, tmp_path: Path,
                                                           monkeypatch: pytest.MonkeyPatch) -> None:
    # The stub speaks Jina's dialect and refuses OpenAI's `encoding_format`: an error path with the key set.
    monkeypatch.setenv("JMIGRATE_OPENAI_API_KEY", KEY)
    code, _, err = watch.run(["--debug", "reindex", str(small_corpus(tmp_path / "c.jsonl")),
                              "--encoder", "openai", "--api-url", stub.url, "--out", str(tmp_path / "o"),
                              "-q"])
    assert code in (1, 2), err


def test_a_run_interrupted_by_sigint_leaves_no_key_behind(tmp_path: Path) -> None:
    import time

    corpus = tmp_path / "c.jsonl"
    rows = (json.dumps({"id": f"r{i}", "text": f"row {i} " * 5}) for i in range(400))
    corpus.write_text("\n".join(rows) + "\n")
    env = {**os.environ, "JINA_API_KEY": KEY}
    with StubServer(api_key=KEY, latency=0.2) as srv:
        argv = ["--debug", "reindex", str(corpus), "--api-url", srv.url, "--out", str(tmp_path / "o"),
                "--batch-size", "8", "--concurrency", "1", "--unit-rows", "8"]
        proc = subprocess.Popen([sys.executable, "-m", "jmigrate", *argv], stdout=subprocess.PIPE,
                                stderr=subprocess.PIPE, env=env)
        deadline = time.monotonic() + 60
        while srv.stats.by_status[200] < 2 and time.monotonic() < deadline and proc.poll() is None:
            time.sleep(0.05)
        proc.send_signal(signal.SIGINT)
        out, err = proc.communicate(timeout=60)
    assert proc.returncode == 130, err.decode()
    assert not leaks(out) and not leaks(err)
    assert files_leaking(tmp_path) == []
    assert any((tmp_path / "o").rglob("*"))  # the journal of the finished units was kept (and grepped)


@pytest.mark.parametrize("name", ["jmigrate.toml", "plan.json"])
def test_a_key_in_a_config_file_is_refused_without_showing_it(watch: Watch, tmp_path: Path,
                                                              name: str) -> None:
    config = tmp_path / name
    if name.endswith(".toml"):
        config.write_text(f'[reindex]\nencoder = "fake"\napi_key = "{KEY}"\n')
    else:
        config.write_text(json.dumps({"reindex": {"encoder": "fake", "api-key": KEY}}))
    code, _, err = watch.run(["reindex", str(small_corpus(tmp_path / "c.jsonl")),
                              "--out", str(tmp_path / "o"), "--config", str(config)])
    assert code == 2 and "do not put the API key in a config file" in " ".join(err.split())
    config.unlink()  # the test wrote the key there itself; everything else under tmp_path is checked


@pytest.mark.parametrize("status", [301, 302, 307, 308])
def test_a_redirect_is_not_followed_so_the_key_goes_nowhere_else(stub: StubServer, status: int) -> None:
    """A server (or a man in the middle) answering with a redirect to another host gets an error, and
    the other host never sees a request, let alone the key."""
    import threading
    from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

    from jmigrate.errors import EncoderError

    class Redirect(BaseHTTPRequestHandler):
        def do_POST(self) -> None:  # noqa: N802 - stdlib name
            self.send_response(status)
            self.send_header("Location", stub.url + "/embeddings")  # the "other host": the stub's port
            self.send_header("Content-Length", "0")
            self.end_headers()

        def log_message(self, format: str, *args: object) -> None:  # noqa: A002 - stdlib signature
            pass

    httpd = ThreadingHTTPServer(("127.0.0.1", 0), Redirect)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    try:
        enc = JinaAPIEncoder(V3, api_url=f"http://127.0.0.1:{httpd.server_address[1]}/v1", api_key=KEY,
                             max_attempts=1)
        with enc, pytest.raises(EncoderError, match=f"HTTP {status}") as info:
            enc.encode(["x"], task="retrieval.query")
        assert not leaks(str(info.value))
    finally:
        httpd.shutdown()
        httpd.server_close()
    assert stub.stats.requests == 0


def test_an_api_url_from_a_config_file_is_named_on_stderr(watch: Watch, stub: StubServer,
                                                          tmp_path: Path) -> None:
    config = tmp_path / "jmigrate.toml"
    config.write_text(f'[reindex]\napi_url = "{stub.url}"\n')
    code, _, err = watch.run(["reindex", str(small_corpus(tmp_path / "c.jsonl")), "--out",
                              str(tmp_path / "o"), "--config", str(config), "--api-key", KEY, "-q"])
    assert code == 0 and "the API key go to 127.0.0.1 (api_url from" in " ".join(err.split())


def test_a_garbled_compressed_answer_is_a_clear_error_not_a_crash(watch: Watch, tmp_path: Path) -> None:
    """Content-Encoding: gzip with a body that is not gzip: httpx raises DecodingError (not a
    TransportError); the run must end with a one-line error naming it, exit 2, and no key."""
    import threading
    from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

    class Garbled(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def do_POST(self) -> None:  # noqa: N802 - stdlib name
            self.rfile.read(int(self.headers.get("Content-Length") or 0))
            body = b"this is not gzip " + KEY.encode()
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Encoding", "gzip")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, format: str, *args: object) -> None:  # noqa: A002 - stdlib signature
            pass

    httpd = ThreadingHTTPServer(("127.0.0.1", 0), Garbled)
    threading.Thread(target=httpd.serve_forever, daemon=True).start()
    try:
        code, _, err = watch.run(["--debug", "reindex", str(small_corpus(tmp_path / "c.jsonl")), "--api-url",
                                  f"http://127.0.0.1:{httpd.server_address[1]}/v1", "--api-key", KEY,
                                  "--out", str(tmp_path / "o"), "-q"])
    finally:
        httpd.shutdown()
        httpd.server_close()
    assert code == 2 and "DecodingError" in err


# ------------------------------------------------------------------ server-supplied strings (issue 10)
# Everything a server says can reach an output: the model name it claims (manifest `served_model`,
# error messages), error details (rejects.jsonl, stderr), reason phrases and headers (logs). A server
# that echoes the key, whole, cut, or broken up, must not get it into any of them.


def _reindex(watch: Watch, stub: StubServer, tmp_path: Path, *extra: str) -> tuple[int, str, str]:
    return watch.run(["--debug", "reindex", str(small_corpus(tmp_path / "c.jsonl", 2)), "--api-url", stub.url,
                      "--api-key", KEY, "--out", str(tmp_path / "o"), *extra])


def test_a_served_model_name_holding_the_key_stays_out_of_the_manifest(watch: Watch, stub: StubServer,
                                                                       tmp_path: Path) -> None:
    stub.faults.add(Fault.served_as(f"{V3} {KEY}"), times=50)
    code, _, _ = _reindex(watch, stub, tmp_path, "-q")
    assert code == 0
    manifest = json.loads((tmp_path / "o" / "manifest.json").read_text())
    assert manifest["served_model"] == f"{V3} ***"  # kept for provenance, key masked


def test_a_served_model_that_is_the_key_is_masked_in_the_error(watch: Watch, stub: StubServer,
                                                               tmp_path: Path) -> None:
    stub.faults.add(Fault.served_as(KEY), times=50)
    code, _, err = _reindex(watch, stub, tmp_path, "-q")
    assert code == 2 and "answered with model '***'" in err


@pytest.mark.parametrize("where", ["across the cut", "after a long detail", "short detail"])
def test_an_echoed_key_is_scrubbed_before_the_detail_is_cut(watch: Watch, stub: StubServer, tmp_path: Path,
                                                            where: str) -> None:
    # The key ends exactly one character after a cut: cutting first would keep all but its last char.
    pad = {"across the cut": 501 - len(KEY), "after a long detail": 4000, "short detail": 0}[where]
    detail = "x" * pad + KEY + " trailing words"
    stub.faults.add(Fault.error(400, detail=detail), times=10)
    code, _, err = _reindex(watch, stub, tmp_path)
    assert code == 1 and "rejected" in err
    lines = (tmp_path / "o" / "rejects.jsonl").read_text().splitlines()
    reasons = [json.loads(line)["reason"] for line in lines]
    assert len(reasons) == 2 and all("was refused: HTTP 400: " in r for r in reasons)


@pytest.mark.parametrize("echo", [
    KEY[:-4] + "...",                      # a server that shows the key shortened
    "..." + KEY[6:],                       # ... or only its tail
    f"{KEY[:16]} {KEY[16:]}",              # broken by a space (a console would rejoin the pieces)
    f"part one {KEY[:18]}; part two {KEY[18:]}",
])
def test_pieces_of_the_key_are_scrubbed_too(watch: Watch, stub: StubServer, tmp_path: Path,
                                            echo: str) -> None:
    stub.faults.add(Fault.error(401, detail=f"bad key: {echo}"), times=10)
    code, _, err = _reindex(watch, stub, tmp_path, "-q")
    assert code == 2 and "bad key: " in err


def test_headers_and_reason_phrases_echoing_the_key_stay_out_of_logs_and_messages(
        watch: Watch, stub: StubServer, tmp_path: Path) -> None:
    # A proxy that echoes the Authorization header back, and puts the key in its reason phrase; with
    # --debug every httpx/httpcore record (they log reason phrases and headers) is grepped.
    stub.faults.add(Fault.error(503, detail="", headers={"X-Echo-Authorization": f"Bearer {KEY}"},
                                reason=f"Unavailable for {KEY}"), times=100)
    code, _, err = _reindex(watch, stub, tmp_path, "-q")
    assert code == 2 and "HTTP 503" in err
