"""One typed Settings for `reindex`: every bad setting is a one-line error (exit 2) before `--out` is
touched or a request is sent, for runs and dry runs alike; config values are type-checked; the key
goes only to the server it belongs to; a start that embedded nothing never blocks the corrected rerun."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from jmigrate.cli.app import main
from jmigrate.errors import UsageError
from jmigrate.index.settings import Settings, field_type, options
from jmigrate.models import TASKS
from jmigrate.testing.server import StubServer

KEY = "jina_settings_test"
OPENAI_KEY = "sk-openai-settings-test"
PASSAGE = TASKS["retrieval.passage"].prefix


def corpus(tmp_path: Path, n: int = 6) -> Path:
    path = tmp_path / "docs.jsonl"
    path.write_text("".join(json.dumps({"id": f"d{i}", "text": f"document number {i}"}) + "\n"
                            for i in range(n)), encoding="utf-8")
    return path


def error_line(err: str) -> str:
    """stderr as one line (Rich may wrap it when stderr is not a terminal); exactly one error in it."""
    text = " ".join(err.split())
    assert text.startswith("error: ") and text.count("error:") == 1, err
    return text


@pytest.fixture()
def stub(monkeypatch: pytest.MonkeyPatch) -> Iterator[StubServer]:
    monkeypatch.setenv("JINA_API_KEY", KEY)
    monkeypatch.delenv("JMIGRATE_OPENAI_API_KEY", raising=False)
    monkeypatch.delenv("JMIGRATE_API_URL", raising=False)
    with StubServer(api_key=KEY) as srv:
        yield srv


class _OpenAIRecorder(BaseHTTPRequestHandler):
    """An OpenAI-compatible server on loopback that keeps each request's body and Authorization."""

    protocol_version = "HTTP/1.1"
    requests: list[dict[str, Any]] = []

    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 - stdlib signature
        pass

    def do_POST(self) -> None:  # noqa: N802 - stdlib name
        body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
        self.requests.append({**body, "auth": self.headers.get("Authorization")})
        width = 768 if "v2" in body["model"] else 1024  # what a server of that model would answer
        rows = [[float(len(t) % 7 + 1), 1.0] + [0.5] * (width - 2) for t in body["input"]]
        data = json.dumps({"object": "list", "model": body["model"], "usage": {"total_tokens": 3},
                           "data": [{"object": "embedding", "index": i, "embedding": r}
                                    for i, r in enumerate(rows)]}).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)


@pytest.fixture()
def openai_server() -> Iterator[tuple[str, list[dict[str, Any]]]]:
    handler = type("Rec", (_OpenAIRecorder,), {"requests": []})
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    t = threading.Thread(target=httpd.serve_forever, daemon=True)
    t.start()
    try:
        yield f"http://127.0.0.1:{httpd.server_address[1]}/v1", handler.requests
    finally:
        httpd.shutdown()
        httpd.server_close()


# ------------------------------------------------------------------------ bad flags, run and dry run

BAD_FLAGS = [
    (["--task", "bogus"], "--task bogus: unknown task; v3 tasks are retrieval.query, retrieval.passage, "
                          "separation, classification, text-matching"),
    (["--task", "retrieval"], "--task retrieval: unknown task; v3 tasks are retrieval.query"),
    (["--dimensions", "0"], "--dimensions 0: must be greater than 0"),
    (["--dimensions", "-8"], "--dimensions -8: must be greater than 0"),
    (["--dimensions", "700"], "--dimensions 700 is not a Matryoshka width of jina-embeddings-v3: choose one "
                              "of 32, 64, 128, 256, 512, 768, 1024"),
    (["--dimensions", "2048"], "--dimensions 2048 does not fit jina-embeddings-v3: at most 1024"),
    (["--model", "jina-embeddings-v2-base-en", "--dimensions", "512"],
     "--dimensions 512 does not fit jina-embeddings-v2-base-en: 768 (no Matryoshka)"),
    (["--model", "jina-embeddings-v2-base-en", "--task", "retrieval.query"],
     "--task retrieval.query: jina-embeddings-v2-base-en has no tasks (only v3 models do)"),
    (["--model", "my-own-model"], "unknown model 'my-own-model' (not in the catalogue): pass --dimensions"),
    (["--unit-rows", "0"], "--unit-rows 0: must be greater than 0"),
    (["--shard-rows", "-1"], "--shard-rows -1: must be greater than 0"),
    (["--batch-size", "0"], "--batch-size 0: must be greater than 0"),
    (["--concurrency", "0"], "--concurrency 0: must be greater than 0"),
    (["--chunk-by", "tokens", "--chunk-size", "0"], "--chunk-size 0: must be greater than 0"),
    (["--chunk-by", "tokens", "--chunk-size", "8", "--chunk-overlap", "8"],
     "--chunk-overlap 8 must be smaller than --chunk-size 8"),
    (["--chunk-overlap", "-1"], "--chunk-overlap -1: must be at least 0"),
    (["--chunk-size", "128"], "--chunk-size 128 has no effect without --chunk-by tokens|sentences"),
    (["--rpm", "0"], "--rpm 0: must be greater than 0"),
    (["--rpm", "-60"], "--rpm -60: must be greater than 0"),
    (["--tpm", "0"], "--tpm 0: must be greater than 0"),
    (["--tpm", "nan"], "--tpm nan: must be a finite number"),
    (["--price-per-mtok", "-1"], "--price-per-mtok -1: must be at least 0"),
    (["--limit", "-1"], "--limit -1: must be at least 0"),
    (["--on-long", "drop"], "--on-long drop: choose one of truncate, chunk, reject"),
    (["--chunk-by", "words"], "--chunk-by words: choose one of tokens, sentences"),
    (["--encoder", "grpc"], "--encoder grpc: choose one of api, onnx, openai, fake"),
    (["--encoder", "api", "--model-path", "models/v3"], "--model-path is for --encoder onnx, not api"),
    (["--encoder", "api", "--allow-download"], "--allow-download is for --encoder onnx, not api"),
    (["--late-chunking", "--encoder", "openai"],
     "--late-chunking needs the Jina API or the local ONNX backend"),
]


@pytest.mark.parametrize("dry_run", [False, True], ids=["run", "dry-run"])
@pytest.mark.parametrize(("flags", "message"), BAD_FLAGS, ids=[" ".join(f) for f, _ in BAD_FLAGS])
def test_each_bad_setting_is_one_line_exit_2_before_anything_is_written_or_sent(
        tmp_path: Path, stub: StubServer, capsys: pytest.CaptureFixture[str], flags: list[str], message: str,
        dry_run: bool) -> None:
    out = tmp_path / "out"
    args = ["reindex", str(corpus(tmp_path)), "--out", str(out), "--api-url", stub.url, *flags]
    if "--encoder" in flags and flags[flags.index("--encoder") + 1] != "api":
        args.remove("--api-url")
        args.remove(stub.url)
        if "openai" in flags:
            args += ["--api-url", stub.url]
    assert main(args + (["--dry-run"] if dry_run else [])) == 2
    err = error_line(capsys.readouterr().err)
    assert message in err
    assert not out.exists()
    assert stub.stats.requests == 0


def test_an_unknown_format_is_a_usage_error_listing_the_choices(
        tmp_path: Path, stub: StubServer, capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "out"
    assert main(["reindex", str(corpus(tmp_path)), "--out", str(out), "--api-url", stub.url, "--format",
                 "yaml"]) == 2
    assert "'yaml' is not one of 'text', 'json'" in " ".join(capsys.readouterr().err.split())
    assert not out.exists() and stub.stats.requests == 0


def test_openai_without_a_url_is_refused_up_front(tmp_path: Path, stub: StubServer,
                                                  capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "out"
    assert main(["reindex", str(corpus(tmp_path)), "--out", str(out), "--encoder", "openai"]) == 2
    assert "--encoder openai needs the server's URL: pass --api-url (or set JMIGRATE_API_URL)" in error_line(
        capsys.readouterr().err)
    assert not out.exists()


def test_out_pointing_at_a_file_is_a_clear_error_not_a_resume_hint(
        tmp_path: Path, stub: StubServer, capsys: pytest.CaptureFixture[str]) -> None:
    target = tmp_path / "notes.txt"
    target.write_text("keep me\n")
    for extra in ([], ["--dry-run"]):
        assert main(["reindex", str(corpus(tmp_path)), "--out", str(target), "--api-url", stub.url,
                     *extra]) == 2
        err = error_line(capsys.readouterr().err)
        assert f"--out {target} is a file, not a folder" in err and "resume" not in err
    assert main(["reindex", str(corpus(tmp_path)), "--out", str(target / "idx"), "--api-url", stub.url]) == 2
    assert f"{target} is a file, not a folder" in error_line(capsys.readouterr().err)
    assert target.read_text() == "keep me\n" and stub.stats.requests == 0


def test_the_library_refuses_a_file_as_out_too(tmp_path: Path) -> None:
    from jmigrate.encoders.fake import FakeEncoder
    from jmigrate.index.pipeline import reindex
    from jmigrate.index.sources import open_source

    target = tmp_path / "f"
    target.write_text("x")
    s = Settings(encoder="fake", dimensions=32)
    with pytest.raises(UsageError, match="is a file, not a folder"):
        reindex(open_source(str(corpus(tmp_path))), target, FakeEncoder(model=s.model), s)


def test_the_fake_encoder_checks_the_task_like_every_other(tmp_path: Path,
                                                          capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "o"
    assert main(["reindex", str(corpus(tmp_path)), "--out", str(out), "--encoder", "fake", "--task",
                 "bogus"]) == 2
    assert "--task bogus: unknown task" in error_line(capsys.readouterr().err)
    assert not out.exists()


# ----------------------------------------------------------------------------- typed config values

BAD_CONFIG = [
    ('late-chunking = "false"', 'late-chunking = "false" is a string, expected true or false'),
    ("dimensions = true", "dimensions = true is a boolean, expected an integer"),
    ('store-text = "false"', 'store-text = "false" is a string, expected true or false'),
    ('price-per-mtok = "0.02"', 'price-per-mtok = "0.02" is a string, expected a number'),
    ('dimensions = "768x"', 'dimensions = "768x" is a string, expected an integer'),
    ('limit = "10"', 'limit = "10" is a string, expected an integer'),
    ("model = 3", "model = 3 is an integer, expected a string"),
    ("rpm = true", "rpm = true is a boolean, expected a number"),
    ("dimensions = 768.0", "dimensions = 768.0 is a number, expected an integer"),
    ("metadata-columns = 5", "metadata-columns = 5 is an integer, expected a list of column names"),
    ("unit-rows = 0", "unit-rows 0: must be greater than 0"),
    ("tpm = -5", "tpm -5: must be greater than 0"),
    ('task = "retrieval"', "task retrieval: unknown task; v3 tasks are"),
    ("dimensions = 700", "dimensions 700 is not a Matryoshka width of jina-embeddings-v3"),
    ("bogus = 1", "unknown reindex setting 'bogus'"),
    ("allow-insecure = true", "'allow-insecure' can only be given as a flag (--allow-insecure)"),
]


@pytest.mark.parametrize(("line", "message"), BAD_CONFIG, ids=[line for line, _ in BAD_CONFIG])
def test_config_values_are_type_checked_before_anything_runs(
        tmp_path: Path, stub: StubServer, capsys: pytest.CaptureFixture[str], line: str,
        message: str) -> None:
    cfg = tmp_path / "jmigrate.toml"
    out = tmp_path / "out"
    cfg.write_text(f'[reindex]\nout = "{out}"\napi-url = "{stub.url}"\n{line}\n', encoding="utf-8")
    for extra in ([], ["--dry-run"]):
        assert main(["reindex", str(corpus(tmp_path)), "--config", str(cfg), *extra]) == 2
        err = error_line(capsys.readouterr().err)
        assert message in err
        assert "jmigrate.toml" in err  # the message says where the value came from
    assert not out.exists() and stub.stats.requests == 0


def test_a_plan_json_value_is_type_checked_too(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    plan = tmp_path / "plan.json"
    plan.write_text(json.dumps({"findings": [], "reindex": {"encoder": "fake", "dimensions": "1024"}}))
    assert main(["reindex", str(corpus(tmp_path)), "--config", str(plan), "--out", str(tmp_path / "o")]) == 2
    assert 'plan.json: dimensions = "1024" is a string, expected an integer' in error_line(
        capsys.readouterr().err)
    assert not (tmp_path / "o").exists()


def test_a_config_without_a_reindex_table_is_an_error(tmp_path: Path,
                                                      capsys: pytest.CaptureFixture[str]) -> None:
    cfg = tmp_path / "jmigrate.toml"
    cfg.write_text("dimensions = 768\n")
    assert main(["reindex", str(corpus(tmp_path)), "--config", str(cfg), "--out", str(tmp_path / "o")]) == 2
    assert "has no \"reindex\" table" in error_line(capsys.readouterr().err)


def test_typed_config_values_that_are_right_are_used(tmp_path: Path) -> None:
    cfg = tmp_path / "jmigrate.toml"
    out = tmp_path / "out"
    cfg.write_text(f'[reindex]\nout = "{out}"\nencoder = "fake"\ndimensions = 256\nstore-text = false\n'
                   'price-per-mtok = 1\nmetadata-columns = []\nlimit = 4\n', encoding="utf-8")
    assert main(["reindex", str(corpus(tmp_path)), "--config", str(cfg), "--quiet"]) == 0
    m = json.loads((out / "manifest.json").read_text())
    assert (m["dimensions"], m["rows"]["source"], m["settings"]["store_text"]) == (256, 4, False)


_TOML_VALUES = st.one_of(st.booleans(), st.integers(-10**6, 10**6), st.floats(allow_nan=False),
                         st.text(max_size=12), st.lists(st.integers(0, 3), max_size=3),
                         st.dictionaries(st.text(min_size=1, max_size=3), st.integers(), max_size=2))


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(key=st.sampled_from(sorted(k for k, o in options().items() if o.config)), value=_TOML_VALUES)
def test_any_config_value_is_accepted_or_refused_with_one_usage_error_naming_the_key(
        tmp_path: Path, key: str, value: Any) -> None:
    cfg = tmp_path / "c.json"
    cfg.write_text(json.dumps({"reindex": {key.replace("_", "-"): value}}))
    try:
        s = Settings.resolve({}, config=cfg, env={}, require_out=False)
    except UsageError as e:
        msg = str(e)
        assert "\n" not in msg
        assert key.replace("_", "-") in msg or key.startswith(("dimensions", "encoder", "model", "api_url")) \
            or "--" in msg
        return
    # accepted: the value kept its type (never a string read as a bool or a number, nor "" as a path)
    got = getattr(s, key)
    if isinstance(value, bool):
        assert got is value
    elif isinstance(value, (int, float)):
        assert got == value and not isinstance(got, (bool, str))
    elif isinstance(value, str) and key == "metadata_columns":  # "a,b" like the flag; "" carries none
        assert got == tuple(c.strip() for c in value.split(",") if c.strip())
    elif isinstance(value, str):
        assert value.strip() and isinstance(got, (str, Path))
    else:
        assert key == "metadata_columns" and field_type(key) is not None


# ----------------------------------------------------------- the walk of --task and --dimensions

def test_task_and_dimensions_reach_the_request_body_and_the_schema(tmp_path: Path, stub: StubServer) -> None:
    import pyarrow.parquet as pq

    out = tmp_path / "o"
    assert main(["reindex", str(corpus(tmp_path)), "--out", str(out), "--api-url", stub.url, "--task",
                 "text-matching", "--dimensions", "256", "--quiet"]) == 0
    assert {r.inputs for r in stub.stats.embedding_records()}  # something was embedded
    m = json.loads((out / "manifest.json").read_text())
    assert (m["task"], m["dimensions"]) == ("text-matching", 256)
    assert str(pq.read_schema(out / "part-00000.parquet").field("vector").type).endswith("[256]")


def test_model_defaults_a_v2_model_gets_no_task_and_its_own_width(tmp_path: Path, stub: StubServer) -> None:
    out = tmp_path / "o"
    assert main(["reindex", str(corpus(tmp_path)), "--out", str(out), "--api-url", stub.url, "--model",
                 "jina-embeddings-v2-base-en", "--quiet"]) == 0
    m = json.loads((out / "manifest.json").read_text())
    assert (m["task"], m["dimensions"]) == (None, 768)


def test_openai_puts_the_task_prefix_on_the_text_exactly_once(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
        openai_server: tuple[str, list[dict[str, Any]]]) -> None:
    url, requests = openai_server
    monkeypatch.delenv("JINA_API_KEY", raising=False)
    out = tmp_path / "o"
    assert main(["reindex", str(corpus(tmp_path)), "--out", str(out), "--encoder", "openai", "--api-url", url,
                 "--dimensions", "64", "--quiet"]) == 0
    inputs = [t for r in requests for t in r["input"]]
    assert inputs == [f"{PASSAGE}document number {i}" for i in range(6)]
    assert all("task" not in r and "dimensions" not in r for r in requests)
    m = json.loads((out / "manifest.json").read_text())
    assert (m["task"], m["dimensions"], m["encoder"]) == ("retrieval.passage", 64, "openai")
    requests.clear()
    assert main(["reindex", str(corpus(tmp_path)), "--out", str(tmp_path / "v2"), "--encoder", "openai",
                 "--api-url", url, "--model", "jina-embeddings-v2-base-en", "--quiet"]) == 0
    assert [t for r in requests for t in r["input"]] == [f"document number {i}" for i in range(6)]


# --------------------------------------------------------------------- the dry run predicts the run

def test_dry_run_counts_the_task_prefix_and_predicts_the_same_rejects(
        tmp_path: Path, stub: StubServer, capsys: pytest.CaptureFixture[str]) -> None:
    # 8,188 tokens by every count: under the model's 8,192, over it once the passage prefix is added.
    near = "abc " * 8188
    src = tmp_path / "long.jsonl"
    src.write_text(json.dumps({"id": "long", "text": near}) + "\n" + json.dumps({"id": "short", "text": "hi"})
                   + "\n", encoding="utf-8")
    out = tmp_path / "o"
    args = ["reindex", str(src), "--out", str(out), "--api-url", stub.url]
    assert main([*args, "--dry-run", "--format", "json"]) == 0
    report = json.loads(capsys.readouterr().out)
    assert report["rows"]["rejected"] == 1 and report["rows"]["embeddable"] == 1
    assert main([*args, "--quiet"]) == 1
    rejects = [json.loads(line) for line in (out / "rejects.jsonl").read_text().splitlines()]
    assert [r["id"] for r in rejects] == ["long"]
    assert "too long" in rejects[0]["reason"]
    # without a task there is no prefix: the same text fits, in the dry run and the run
    assert main([*args[:3], str(tmp_path / "v2"), *args[4:], "--model", "jina-embeddings-v2-base-en",
                 "--dry-run", "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["rows"]["rejected"] == 0


# --------------------------------------------------------------- a failed start blocks nothing

def test_a_start_refused_by_the_server_does_not_block_the_corrected_rerun(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    src = corpus(tmp_path)
    out = tmp_path / "o"
    with StubServer(api_key=KEY) as srv:
        monkeypatch.setenv("JINA_API_KEY", "jina_wrong_key")
        assert main(["reindex", str(src), "--out", str(out), "--api-url", srv.url, "--quiet"]) == 2
        assert "401" in " ".join(capsys.readouterr().err.split())
        assert json.loads((out / "manifest.json").read_text())["status"] == "failed"
        monkeypatch.setenv("JINA_API_KEY", KEY)
        # other settings, no --restart: nothing was embedded, so nothing is lost by starting over
        assert main(["reindex", str(src), "--out", str(out), "--api-url", srv.url,
                     "--dimensions", "512"]) == 0
        err = " ".join(capsys.readouterr().err.split())
        assert "embedded nothing; starting over" in err
    m = json.loads((out / "manifest.json").read_text())
    assert (m["status"], m["dimensions"], m["rows"]["written"]) == ("complete", 512, 6)


def test_a_run_whose_every_row_was_refused_does_not_block_the_corrected_rerun(
        tmp_path: Path, stub: StubServer, capsys: pytest.CaptureFixture[str]) -> None:
    src = corpus(tmp_path)
    out = tmp_path / "o"
    # a model the server does not know: each row is refused (HTTP 400) and rejected, nothing embedded
    assert main(["reindex", str(src), "--out", str(out), "--api-url", stub.url, "--model", "my-typo-model",
                 "--dimensions", "64", "--quiet"]) == 1
    assert json.loads((out / "manifest.json").read_text())["rows"]["written"] == 0
    assert main(["reindex", str(src), "--out", str(out), "--api-url", stub.url, "--quiet"]) == 0
    assert "embedded nothing; starting over" in " ".join(capsys.readouterr().err.split())
    m = json.loads((out / "manifest.json").read_text())
    assert (m["model"], m["rows"]["written"], m["rows"]["rejected"]) == ("jina-embeddings-v3", 6, 0)
    assert not (out / "rejects.jsonl").exists()


def test_a_folder_with_embedded_rows_still_needs_restart_for_new_settings(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    src = corpus(tmp_path)
    out = tmp_path / "o"
    assert main(["reindex", str(src), "--out", str(out), "--encoder", "fake", "--quiet"]) == 0
    assert main(["reindex", str(src), "--out", str(out), "--encoder", "fake", "--dimensions", "512"]) == 2
    assert "settings changed" in error_line(capsys.readouterr().err)


# -------------------------------------------------------------------------------- which key goes where

def _both_keys(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("JINA_API_KEY", KEY)
    monkeypatch.setenv("JMIGRATE_OPENAI_API_KEY", OPENAI_KEY)
    monkeypatch.delenv("JMIGRATE_API_URL", raising=False)


def _indexes(tmp_path: Path) -> tuple[Path, Path, Path]:
    src = corpus(tmp_path)
    v2, v3 = tmp_path / "v2", tmp_path / "v3"
    assert main(["reindex", str(src), "--out", str(v2), "--encoder", "fake", "--model",
                 "jina-embeddings-v2-base-en", "--quiet"]) == 0
    assert main(["reindex", str(src), "--out", str(v3), "--encoder", "fake", "--quiet"]) == 0
    queries = tmp_path / "q.jsonl"
    queries.write_text('{"id": "q1", "text": "number 1"}\n{"id": "q2", "text": "document"}\n')
    return v2, v3, queries


def test_reindex_api_sends_the_jina_key_when_both_are_set(tmp_path: Path,
                                                          monkeypatch: pytest.MonkeyPatch) -> None:
    _both_keys(monkeypatch)
    with StubServer(api_key=KEY) as srv:  # answers 401 to any other key
        assert main(["reindex", str(corpus(tmp_path)), "--out", str(tmp_path / "o"), "--api-url", srv.url,
                     "--quiet"]) == 0
        assert srv.stats.by_status == {200: srv.stats.requests}


def test_reindex_openai_sends_the_openai_key_never_the_jina_key(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str],
        openai_server: tuple[str, list[dict[str, Any]]]) -> None:
    url, requests = openai_server
    _both_keys(monkeypatch)
    args = ["reindex", str(corpus(tmp_path)), "--encoder", "openai", "--api-url", url, "--quiet"]
    assert main([*args, "--out", str(tmp_path / "a")]) == 0
    assert {r["auth"] for r in requests} == {f"Bearer {OPENAI_KEY}"}
    # only the Jina key set: it is not sent to this server (a leak); the user is told how to give one
    requests.clear()
    monkeypatch.delenv("JMIGRATE_OPENAI_API_KEY")
    assert main([*args, "--out", str(tmp_path / "b")]) == 0
    assert {r["auth"] for r in requests} == {None}
    err = " ".join(capsys.readouterr().err.split())
    assert "JINA_API_KEY is not sent to an OpenAI-compatible server" in err and KEY not in err


def test_verify_api_sends_the_jina_key_when_both_are_set(tmp_path: Path,
                                                         monkeypatch: pytest.MonkeyPatch) -> None:
    v2, v3, queries = _indexes(tmp_path)
    _both_keys(monkeypatch)
    with StubServer(api_key=KEY) as srv:
        assert main(["verify", "--v2", str(v2), "--v3", str(v3), "--queries", str(queries),
                     "--encoder", "api", "--api-url", srv.url, "--format", "json"]) == 0
        assert srv.stats.requests == 2 and srv.stats.by_status == {200: 2}


def test_verify_openai_sends_the_openai_key_never_the_jina_key(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str],
        openai_server: tuple[str, list[dict[str, Any]]]) -> None:
    url, requests = openai_server
    v2, v3, queries = _indexes(tmp_path)
    _both_keys(monkeypatch)
    args = ["verify", "--v2", str(v2), "--v3", str(v3), "--queries", str(queries), "--encoder", "openai",
            "--api-url", url, "--format", "json"]
    assert main(args) == 0
    assert len(requests) == 2 and {r["auth"] for r in requests} == {f"Bearer {OPENAI_KEY}"}
    # the v3 queries carry the query instruction (once); the v2 ones none
    assert requests[1]["input"][0] == TASKS["retrieval.query"].prefix + "number 1"
    assert requests[0]["input"][0] == "number 1"
    requests.clear()
    monkeypatch.delenv("JMIGRATE_OPENAI_API_KEY")
    capsys.readouterr()
    assert main(args) == 0
    assert {r["auth"] for r in requests} == {None}
    assert "is not sent to an OpenAI-compatible server" in " ".join(capsys.readouterr().err.split())


def test_an_explicit_api_key_flag_wins_for_both_kinds() -> None:
    from jmigrate.encoders.factory import resolve_api_key

    env = {"JINA_API_KEY": KEY, "JMIGRATE_OPENAI_API_KEY": OPENAI_KEY}
    assert resolve_api_key("api", env=env)[:2] == (KEY, "JINA_API_KEY")
    assert resolve_api_key("openai", env=env)[:2] == (OPENAI_KEY, "JMIGRATE_OPENAI_API_KEY")
    assert resolve_api_key("openai", " sk-flag ", env=env)[:2] == ("sk-flag", "--api-key")
    assert resolve_api_key("openai", env={"JINA_API_KEY": KEY})[:2] == (None, None)
    assert resolve_api_key("onnx", env=env) == (None, None, None)


# ------------------------------------------------------------------------------ one place per option

def test_every_flag_and_config_key_comes_from_one_settings_field() -> None:
    import typer

    from jmigrate.cli.app import app

    command = typer.main.get_command(app).commands["reindex"]  # type: ignore[attr-defined]
    names = {p.name for p in command.params}
    fields_with_flags = {k for k, o in options().items() if o.flag_names(k)}
    assert fields_with_flags <= names
    # the rest are not settings: what to read, where the key and config are, what to do, how to show it
    assert names - fields_with_flags - {"debug", "help"} == {
        "source", "config", "api_key", "restart", "dry_run", "quiet", "output_format", "as_json"}
    assert "-o" not in {o for p in command.params for o in getattr(p, "opts", [])}
    json_flag = next(p for p in command.params if p.name == "as_json")
    assert json_flag.hidden  # type: ignore[attr-defined]


def _v2_index(tmp_path: Path) -> Path:
    v2 = tmp_path / "v2"
    src = tmp_path / "many.jsonl"
    src.write_text("".join(json.dumps({"id": f"d{i}", "text": f"document {i} about topic {i % 5}"}) + "\n"
                           for i in range(30)), encoding="utf-8")
    assert main(["reindex", str(src), "--out", str(v2), "--encoder", "fake", "--model",
                 "jina-embeddings-v2-base-en", "--quiet"]) == 0
    return v2


def test_bridge_fit_api_sends_the_jina_key_when_both_are_set(tmp_path: Path,
                                                             monkeypatch: pytest.MonkeyPatch) -> None:
    v2 = _v2_index(tmp_path)
    _both_keys(monkeypatch)
    with StubServer(api_key=KEY) as srv:
        assert main(["bridge", "fit", "--v2", str(v2), "--sample", "20", "--out", str(tmp_path / "b"),
                     "--encoder", "api", "--api-url", srv.url, "--quiet"]) == 0
        assert srv.stats.requests >= 1 and srv.stats.by_status == {200: srv.stats.requests}


def test_bridge_fit_openai_sends_the_openai_key_never_the_jina_key(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
        openai_server: tuple[str, list[dict[str, Any]]]) -> None:
    url, requests = openai_server
    v2 = _v2_index(tmp_path)
    _both_keys(monkeypatch)
    assert main(["bridge", "fit", "--v2", str(v2), "--sample", "20", "--out", str(tmp_path / "b"),
                 "--encoder", "openai", "--api-url", url, "--quiet"]) == 0
    assert requests and {r["auth"] for r in requests} == {f"Bearer {OPENAI_KEY}"}


def test_every_command_offers_the_factorys_encoder_kinds() -> None:
    from jmigrate.cli.verify import EncoderKind
    from jmigrate.encoders.factory import KINDS

    assert {k.value for k in EncoderKind} == set(KINDS)
