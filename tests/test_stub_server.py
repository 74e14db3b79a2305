"""The loopback API stub is as strict as the real contract, deterministic, and says it is not v3."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import pytest
from helpers import STUB_KEY

from jmigrate.errors import UsageError
from jmigrate.models import V3
from jmigrate.testing.server import Fault, StubServer, stub_token_count, stub_vectors

KEY = STUB_KEY
AUTH = {"Authorization": f"Bearer {KEY}"}


@pytest.fixture()
def srv(stub: StubServer) -> StubServer:
    return stub


def post(srv: StubServer, body: dict[str, Any], headers: dict[str, str] | None = None) -> httpx.Response:
    return httpx.post(srv.url + "/embeddings", json=body, headers=AUTH if headers is None else headers)


def vectors(resp: httpx.Response) -> np.ndarray:
    assert resp.status_code == 200, resp.text
    data = sorted(resp.json()["data"], key=lambda d: d["index"])
    return np.array([d["embedding"] for d in data], dtype=np.float32)


@pytest.mark.parametrize(("body", "status", "detail"), [
    ({"model": V3, "input": ["a"], "encoding_format": "float"}, 400, "unknown field(s): encoding_format"),
    ({"model": V3, "input": ["a"] * 2049}, 400, "too many inputs: 2049 > 2048"),
    ({"model": "jina-embeddings-v9", "input": ["a"]}, 400, "unknown model"),
    ({"model": V3, "input": ["a"], "task": "retrieval"}, 400, "unknown task"),
    ({"model": "jina-embeddings-v2-base-en", "input": ["a"], "task": "retrieval.query"}, 400,
     "only supported"),
    ({"model": V3, "input": ["word " * 8193]}, 400, "8193 tokens, over the 8192-token limit"),
    ({"model": V3, "input": ["word " * 5000, "word " * 4000], "late_chunking": True}, 400,
     "late chunking: the request has 9000 tokens"),
    ({"model": V3, "input": []}, 422, "non-empty list"),
    ({"model": V3, "input": ["a"], "dimensions": 2048}, 422, "between 1 and 1024"),
    ({"model": V3, "input": ["a"], "embedding_type": "int8"}, 422, "embedding_type"),
])
def test_contract_violations_are_rejected_with_detail(srv: StubServer, body: dict[str, Any], status: int,
                                                      detail: str) -> None:
    resp = post(srv, body)
    assert resp.status_code == status
    assert detail in resp.json()["detail"]
    assert srv.stats.tokens == 0


@pytest.mark.parametrize("headers", [{}, {"Authorization": "Bearer jina_other"}, {"Authorization": KEY}])
def test_missing_or_bad_key_is_401(srv: StubServer, headers: dict[str, str]) -> None:
    resp = post(srv, {"model": V3, "input": ["a"]}, headers)
    assert resp.status_code == 401 and "Unauthorized" in resp.json()["detail"]


def test_truncate_cuts_long_inputs_to_the_limit(srv: StubServer) -> None:
    resp = post(srv, {"model": V3, "input": ["word " * 9000], "truncate": True})
    assert resp.status_code == 200 and resp.json()["usage"]["total_tokens"] == 8192
    np.testing.assert_allclose(vectors(resp)[0], stub_vectors(V3, [("word " * 8192).strip()])[0])


def test_tokenizer_is_the_documented_one() -> None:
    assert stub_token_count("Hello, world!") == 4  # Hello , world !
    assert stub_token_count("abcdefghij") == 2  # runs of up to 8 word characters
    assert stub_token_count("  \n") == 0
    assert stub_token_count("日本語") == 1


def test_vectors_are_deterministic_and_depend_on_model_task_text(srv: StubServer) -> None:
    texts = ["alpha", "beta"]
    a = vectors(post(srv, {"model": V3, "input": texts, "task": "retrieval.query"}))
    b = vectors(post(srv, {"model": V3, "input": texts, "task": "retrieval.query"}))
    c = vectors(post(srv, {"model": V3, "input": texts, "task": "retrieval.passage"}))
    d = vectors(post(srv, {"model": "jina-embeddings-v2-base-en", "input": texts}))
    np.testing.assert_array_equal(a, b)
    assert not np.allclose(a, c) and d.shape == (2, 768)
    assert abs(float(a[0] @ a[1])) < 0.5
    np.testing.assert_allclose(np.linalg.norm(a, axis=1), 1.0, rtol=1e-5)


def test_matryoshka_prefix_consistency(srv: StubServer) -> None:
    full = vectors(post(srv, {"model": V3, "input": ["alpha"], "task": "text-matching"}))[0]
    for d in (32, 256, 768):
        body = {"model": V3, "input": ["alpha"], "task": "text-matching", "dimensions": d}
        cut = vectors(post(srv, body))[0]
        np.testing.assert_allclose(cut, full[:d] / np.linalg.norm(full[:d]), rtol=1e-5, atol=1e-6)


def test_late_chunking_vectors_depend_on_the_other_chunks(srv: StubServer) -> None:
    one = vectors(post(srv, {"model": V3, "input": ["a", "b"], "late_chunking": True}))
    two = vectors(post(srv, {"model": V3, "input": ["a", "c"], "late_chunking": True}))
    naive = vectors(post(srv, {"model": V3, "input": ["a", "b"]}))
    assert not np.allclose(one[0], two[0]) and not np.allclose(one[0], naive[0])
    np.testing.assert_allclose(one, stub_vectors(V3, ["a", "b"], late_chunking=True), rtol=1e-6)


def test_base64_float_and_usage(srv: StubServer) -> None:
    texts = ["one two", "three, four"]
    f = vectors(post(srv, {"model": V3, "input": texts}))
    resp = post(srv, {"model": V3, "input": texts, "embedding_type": "base64"})
    import base64

    b = np.stack([np.frombuffer(base64.b64decode(d["embedding"]), "<f4") for d in resp.json()["data"]])
    np.testing.assert_allclose(f, b, rtol=1e-6)
    assert resp.json()["usage"]["total_tokens"] == 5
    assert srv.stats.tokens == 10 and srv.stats.inputs == 4


def test_it_says_its_vectors_are_not_v3(srv: StubServer) -> None:
    resp = post(srv, {"model": V3, "input": ["a"]})
    assert resp.json()["model"].startswith(V3) and "not real v3" in resp.json()["model"]
    assert "not real Jina embeddings" in resp.headers["X-Jmigrate-Stub"]


def test_faults_are_applied_in_order_while_running(srv: StubServer) -> None:
    srv.faults.script([Fault.error(503, "busy"), None, Fault.rate_limited(7), Fault.out_of_order()])
    body = {"model": V3, "input": ["a", "b", "c"]}
    r1, r2, r3, r4 = (post(srv, body) for _ in range(4))
    assert (r1.status_code, r1.json()["detail"]) == (503, "busy")
    assert r2.status_code == 200 and r3.status_code == 429 and r3.headers["Retry-After"] == "7"
    assert [d["index"] for d in r4.json()["data"]] == [2, 1, 0]
    srv.faults.add(Fault.rate_limited(3, http_date=True))
    assert post(srv, body).headers["Retry-After"].endswith("GMT")
    srv.faults.add(Fault.drop())
    with pytest.raises(httpx.RemoteProtocolError):
        post(srv, body)
    assert [r.fault for r in srv.stats.records][-2:] == ["rate_limited", "drop"]


def test_rate_limits_answer_429_with_headers() -> None:
    with StubServer(api_key=KEY, rpm=2, tpm=1000) as srv:
        ok = post(srv, {"model": V3, "input": ["a"]})
        assert ok.headers["X-RateLimit-Limit-Requests"] == "2"
        assert ok.headers["X-RateLimit-Limit-Tokens"] == "1000"
        assert post(srv, {"model": V3, "input": ["a"]}).status_code == 200
        third = post(srv, {"model": V3, "input": ["a"]})
        assert third.status_code == 429 and int(third.headers["Retry-After"]) >= 1
    with StubServer(api_key=KEY, tpm=600) as srv:
        assert post(srv, {"model": V3, "input": ["word " * 400]}).status_code == 200
        assert post(srv, {"model": V3, "input": ["word " * 400]}).status_code == 429
        assert srv.stats.tokens == 400


def test_concurrency_limit_refuses_the_extra_request() -> None:
    with StubServer(api_key=KEY, latency=1.0, max_concurrency=1) as srv:
        results: list[int] = []
        threads = [threading.Thread(target=lambda: results.append(post(srv, {"model": V3, "input": ["a"]})
                                                                  .status_code)) for _ in range(3)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        assert sorted(results) == [200, 429, 429]
        assert srv.stats.max_in_flight == 1


def test_only_loopback_hosts() -> None:
    with pytest.raises(UsageError, match="loopback"):
        StubServer(host="0.0.0.0")


def test_serve_stub_command_prints_url_and_banner() -> None:
    proc = subprocess.Popen(
        [sys.executable, "-m", "jmigrate", "serve-stub", "--port", "0", "--api-key", "jina_cli"],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        # A child of a non-interactive shell may inherit SIGINT ignored; restore it so Ctrl-C works.
        preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL),
    )
    try:
        assert proc.stdout is not None
        url = proc.stdout.readline().strip()
        assert url.startswith("http://127.0.0.1:") and url.endswith("/v1")
        resp = httpx.post(url + "/embeddings", json={"model": V3, "input": ["a"]},
                          headers={"Authorization": "Bearer jina_cli"})
        assert resp.status_code == 200
        os.kill(proc.pid, signal.SIGINT)
        out, err = proc.communicate(timeout=20)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.communicate()
    assert "NOT real Jina v3 vectors" in err
    assert proc.returncode == 130  # interrupted, as STYLE.md says


def test_every_serve_stub_option_is_documented() -> None:
    import typer

    from jmigrate.cli.app import app

    cmd = typer.main.get_command(app).commands["serve-stub"]  # type: ignore[attr-defined]
    doc = (Path(__file__).resolve().parents[1] / "docs" / "encoders.md").read_text(encoding="utf-8")
    options = [o for p in cmd.params for o in p.opts if o.startswith("--")]
    assert "--tpm" in options
    assert [o for o in options if f"`{o}`" not in doc] == []


# ------------------------------------------------------- faults for the client's hardening (issue 10)


def test_served_as_error_headers_and_reason_are_what_the_server_says(srv: StubServer) -> None:
    srv.faults.add(Fault.served_as("some-other-model"))
    assert post(srv, {"model": V3, "input": ["a"]}).json()["model"] == "some-other-model"
    srv.faults.add(Fault.error(503, detail="busy", headers={"X-Echo": "hello"}, reason="Very Busy"))
    r = post(srv, {"model": V3, "input": ["a"]})
    assert (r.status_code, r.reason_phrase, r.headers["x-echo"], r.json()) == \
        (503, "Very Busy", "hello", {"detail": "busy"})


def test_unnormalised_and_zero_vector_answers(srv: StubServer) -> None:
    want = stub_vectors(V3, ["a", "b"], dimensions=8)
    srv.faults.add(Fault.unnormalised(3.0))
    np.testing.assert_allclose(vectors(post(srv, {"model": V3, "input": ["a", "b"], "dimensions": 8})),
                               3 * want, rtol=1e-6)
    srv.faults.add(Fault.zero_vector("b"))
    got = vectors(post(srv, {"model": V3, "input": ["a", "b"], "dimensions": 8}))
    np.testing.assert_array_equal(got[1], 0.0)
    np.testing.assert_array_equal(got[0], want[0])


def test_trickle_sends_the_right_answer_slowly_and_huge_body_announces_its_size(srv: StubServer) -> None:
    srv.faults.add(Fault.trickle(0.0005))
    np.testing.assert_array_equal(vectors(post(srv, {"model": V3, "input": ["a"], "dimensions": 8})),
                                  stub_vectors(V3, ["a"], dimensions=8))
    srv.faults.add(Fault.huge_body(50_000_000))
    with httpx.stream("POST", f"{srv.url}/embeddings", json={"model": V3, "input": ["a"]}, headers=AUTH) as r:
        assert r.headers["content-length"] == "50000000"
        first = next(r.iter_bytes())
    assert first.startswith(b'{"object": "list", "data": [')


def test_openai_protocol_takes_openai_fields_only() -> None:
    with StubServer(api_key=None, protocol="openai") as oai:
        ok = httpx.post(f"{oai.url}/embeddings", json={"model": "any-name", "input": ["a"],
                                                       "encoding_format": "float"})
        assert ok.status_code == 200 and ok.json()["model"].startswith("any-name")
        np.testing.assert_allclose(ok.json()["data"][0]["embedding"], stub_vectors(V3, ["a"])[0], rtol=1e-6)
        refused = httpx.post(f"{oai.url}/embeddings",
                             json={"model": V3, "input": ["a"], "task": "separation"})
        assert refused.status_code == 400 and "task" in refused.json()["detail"]
    with pytest.raises(ValueError, match="protocol"):
        StubServer(protocol="grpc")
