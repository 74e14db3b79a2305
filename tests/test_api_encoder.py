"""The Jina API client against the loopback stub: faults, fail-fast, Retry-After, late chunking, secrets."""

from __future__ import annotations

import logging
import threading
import traceback
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from jmigrate.encoders.api import JinaAPIEncoder, conservative_token_count, plan_late_chunking_windows
from jmigrate.encoders.factory import api_settings_from_env, open_encoder
from jmigrate.errors import EncoderError, UsageError
from jmigrate.models import API_MAX_TOKENS, V3
from jmigrate.testing.server import Fault, StubServer, stub_token_count, stub_vectors

KEY = "jina_test"
TEXTS = [f"passage number {i}: the quick brown fox, jumps over {i % 7} lazy dogs." for i in range(60)]


@pytest.fixture()
def srv() -> Iterator[StubServer]:
    with StubServer(api_key=KEY) as s:
        yield s


def make(srv: StubServer, **kw: object) -> JinaAPIEncoder:
    kw.setdefault("backoff_base", 0.01)
    kw.setdefault("batch_size", 8)
    return JinaAPIEncoder(api_url=srv.url, api_key=kw.pop("api_key", KEY), **kw)  # type: ignore[arg-type]


def expected(texts: list[str], task: str | None = "retrieval.passage", dims: int | None = None,
             late: bool = False) -> np.ndarray:
    return stub_vectors(V3, texts, task=task, dimensions=dims, late_chunking=late)


def test_many_texts_are_batched_sent_concurrently_and_returned_in_order() -> None:
    with StubServer(api_key=KEY, latency=0.05) as srv, make(srv, concurrency=4) as enc:
        out = enc.encode(TEXTS, task="retrieval.passage", dimensions=256)
        np.testing.assert_array_equal(out, expected(TEXTS, dims=256))
        recs = srv.stats.embedding_records()
        assert len(recs) == 8 and all(len(r.inputs) <= 8 for r in recs)
        assert 2 <= srv.stats.max_in_flight <= 4
        assert enc.usage.tokens == srv.stats.tokens == sum(stub_token_count(t) for t in TEXTS)
        assert enc.usage.requests == 8 and enc.usage.retries == 0
        assert enc.served_model is not None and "not real v3" in enc.served_model


FAULTS = [
    Fault.error(500), Fault.error(503), Fault.error(502), Fault.drop(), Fault.timeout(3.0), Fault.malformed(),
    Fault.truncated(), Fault.wrong_count(), Fault.nan(), Fault.wrong_dimensions(),
    Fault.rate_limited(0.2), Fault.rate_limited(None), Fault.slow(0.1),
]


@pytest.mark.parametrize("fault", FAULTS, ids=lambda f: f"{f.kind}-{f.status}-{f.retry_after}")
def test_each_fault_is_survived_with_every_vector_correct(srv: StubServer, fault: Fault) -> None:
    srv.faults.add(fault, times=2)
    with make(srv, timeout=0.5, concurrency=2) as enc:
        out = enc.encode(TEXTS[:24], task="retrieval.query")
        np.testing.assert_array_equal(out, expected(TEXTS[:24], task="retrieval.query"))
        retried = 0 if fault.kind == "slow" else 2
        assert enc.usage.retries == retried
        assert enc.usage.requests == 3 + retried
    assert srv.faults.pending == 0


def test_out_of_order_data_is_reordered_without_retry(srv: StubServer) -> None:
    srv.faults.add(Fault.out_of_order(), times=3)
    with make(srv) as enc:
        out = enc.encode(TEXTS[:24], task="retrieval.query")
        np.testing.assert_array_equal(out, expected(TEXTS[:24], task="retrieval.query"))
        assert enc.usage.retries == 0


def test_random_mix_of_faults_still_gives_every_vector(srv: StubServer) -> None:
    kinds = [Fault.error(503), Fault.drop(), Fault.malformed(), Fault.truncated(), Fault.wrong_count(),
             Fault.out_of_order(), Fault.nan(), Fault.rate_limited(0.05), Fault.timeout(2.0)]
    srv.faults.set_random(kinds, probability=0.35, seed=7)
    with make(srv, timeout=0.5, concurrency=4, max_attempts=10, batch_size=3) as enc:
        out = enc.encode(TEXTS, task="text-matching", dimensions=64)
        np.testing.assert_array_equal(out, expected(TEXTS, task="text-matching", dims=64))
        assert enc.usage.retries > 0
    faulted = [r.fault for r in srv.stats.records if r.fault]
    assert len(set(faulted)) >= 5


@pytest.mark.parametrize("status", [400, 401, 402, 403, 422])
def test_client_errors_fail_fast_with_the_apis_message(srv: StubServer, status: int) -> None:
    srv.faults.add(Fault.error(status, f"AUTHZ_SOMETHING_{status} explained"), times=5)
    with make(srv) as enc, pytest.raises(EncoderError) as err:
        enc.encode(["one text"])
    assert f"HTTP {status}" in str(err.value) and f"AUTHZ_SOMETHING_{status} explained" in str(err.value)
    assert srv.stats.requests == 1 and enc.usage.retries == 0


def test_real_contract_errors_are_not_retried(srv: StubServer) -> None:
    with make(srv, api_key="jina_wrong") as enc, \
            pytest.raises(EncoderError, match="HTTP 401.*invalid API key"):
        enc.encode(["x"])
    with JinaAPIEncoder("jina-embeddings-v9", api_url=srv.url, api_key=KEY) as enc, \
            pytest.raises(EncoderError, match="HTTP 400: unknown model"):
        enc.encode(["x"])
    assert srv.stats.requests == 2


@pytest.mark.parametrize("http_date", [False, True])
def test_retry_after_is_honoured_in_both_forms(srv: StubServer, http_date: bool) -> None:
    srv.faults.add(Fault.rate_limited(1.2, http_date=http_date))
    with make(srv) as enc:
        np.testing.assert_array_equal(enc.encode(TEXTS[:3]), expected(TEXTS[:3], task=None))
        assert enc.rate_limited == 1
    first, second = srv.stats.records
    assert first.status == 429 and second.status == 200
    assert first.retry_after_until is not None and second.wall >= first.retry_after_until


def test_attempts_are_bounded_and_the_error_names_what_failed(srv: StubServer) -> None:
    srv.faults.add(Fault.error(503, "upstream overloaded"), times=10)
    with make(srv, max_attempts=3) as enc, pytest.raises(EncoderError) as err:
        enc.encode(["x"])
    msg = str(err.value)
    assert "after 3 attempts" in msg and "HTTP 503" in msg and "upstream overloaded" in msg
    assert srv.stats.requests == 3


def test_persistent_nan_answers_end_in_a_clear_error(srv: StubServer) -> None:
    srv.faults.add(Fault.nan(), times=2)
    with make(srv, max_attempts=2) as enc, pytest.raises(EncoderError, match="NaN"):
        enc.encode(["x"])


def test_server_concurrency_limit_is_met_by_the_client_setting(srv: StubServer) -> None:
    with StubServer(api_key=KEY, latency=0.03, max_concurrency=2) as srv2, make(srv2, concurrency=2) as enc:
        np.testing.assert_array_equal(enc.encode(TEXTS, task=None), expected(TEXTS, task=None))
        assert srv2.stats.by_status[429] == 0
    with StubServer(api_key=KEY, latency=0.03, max_concurrency=2) as srv3, \
            make(srv3, concurrency=6, max_attempts=20) as enc:
        np.testing.assert_array_equal(enc.encode(TEXTS, task=None), expected(TEXTS, task=None))
        assert srv3.stats.by_status[429] > 0  # over the cap: refused, retried, still complete


def test_client_rpm_limit_avoids_429_and_headers_are_read() -> None:
    # The client's bucket holds 1 s of budget, less than the server's 2 s: it never runs ahead.
    with StubServer(api_key=KEY, rpm=1200, tpm=10_000_000, burst_seconds=2.0) as srv, \
            make(srv, rpm=1200, batch_size=1, concurrency=8) as enc:
        out = enc.encode(TEXTS[:40], task=None)
        np.testing.assert_array_equal(out, expected(TEXTS[:40], task=None))
        assert srv.stats.by_status[429] == 0 and srv.stats.by_status[200] == 40
        assert enc.limiter.tpm == 10_000_000  # adopted from X-RateLimit-Limit-Tokens


def test_base64_and_float_give_identical_vectors(srv: StubServer) -> None:
    with make(srv, embedding_type="base64") as a, make(srv, embedding_type="float") as b:
        np.testing.assert_array_equal(a.encode(TEXTS[:10], dimensions=512),
                                      b.encode(TEXTS[:10], dimensions=512))


def test_falls_back_to_float_when_base64_is_refused(srv: StubServer) -> None:
    srv.faults.add(Fault.error(400, "embedding_type 'base64' is not supported here"))
    with make(srv) as enc:
        np.testing.assert_array_equal(enc.encode(TEXTS[:5], task=None), expected(TEXTS[:5], task=None))
        assert enc.embedding_type == "float"


def test_late_chunking_sends_one_document_per_request(srv: StubServer) -> None:
    docs = [[f"doc {d} chunk {c}: some words here" for c in range(1 + d % 5)] for d in range(30)]
    with StubServer(api_key=KEY, latency=0.02) as srv, make(srv, concurrency=4) as enc:
        out = enc.encode_late_chunked(docs, task="retrieval.passage", dimensions=128)
        assert srv.stats.max_in_flight >= 2
    for doc, m in zip(docs, out, strict=True):
        np.testing.assert_array_equal(m, expected(doc, dims=128, late=True))
    recs = srv.stats.embedding_records()
    assert len(recs) == len(docs)
    assert all(r.late_chunking and list(r.inputs) in docs for r in recs)
    assert enc.late_chunking_windows == 0


def _long_doc(chunks: int, words: int) -> list[str]:
    return [" ".join(f"c{c:02d}w" for _ in range(words)) for c in range(chunks)]


@pytest.mark.parametrize("overlap", [0, 1500])
def test_long_documents_are_split_into_macro_windows(srv: StubServer, overlap: int) -> None:
    doc = _long_doc(20, 1000)  # 20 chunks of 1,000 tokens: over the 8,192-token limit
    with make(srv, late_chunking_overlap=overlap) as enc:
        out = enc.encode(doc, task="retrieval.passage", late_chunking=True)
        windows = plan_late_chunking_windows([conservative_token_count(c) for c in doc],
                                             API_MAX_TOKENS - 64, overlap)
        assert enc.split_documents == 1 and enc.late_chunking_windows == len(windows) >= 3
    recs = srv.stats.embedding_records()
    assert len(recs) == len(windows)
    assert all(r.tokens <= API_MAX_TOKENS for r in recs)
    want = np.concatenate([expected(doc[w.start:w.end], late=True)[w.keep - w.start:] for w in windows])
    np.testing.assert_array_equal(out, want)
    if overlap:
        assert any(w.keep > w.start for w in windows)  # context chunks were re-sent


@given(st.lists(st.integers(1, 3000), min_size=1, max_size=40), st.integers(0, 2000))
def test_window_plan_covers_every_chunk_once_within_budget(counts: list[int], overlap: int) -> None:
    budget = 8128
    windows = plan_late_chunking_windows(counts, budget, overlap)
    kept = [i for w in windows for i in range(w.keep, w.end)]
    assert kept == list(range(len(counts)))
    for w in windows:
        assert w.start <= w.keep < w.end
        assert sum(counts[w.start:w.end]) <= budget or w.end - w.keep == 1 and w.start == w.keep


def test_blocking_calls_work_from_worker_threads(srv: StubServer) -> None:
    with make(srv, concurrency=4) as enc:
        def job(i: int) -> bool:
            part = TEXTS[i * 10:(i + 1) * 10]
            return bool(np.array_equal(enc.encode(part, task=None), expected(part, task=None)))

        with ThreadPoolExecutor(4) as pool:
            assert all(pool.map(job, range(6)))
        assert threading.current_thread() is threading.main_thread()


def test_url_policy_and_missing_key() -> None:
    with pytest.raises(UsageError, match="refusing plain http"):
        JinaAPIEncoder(api_url="http://example.com/v1", api_key=KEY)
    JinaAPIEncoder(api_url="http://example.com/v1", api_key=KEY, allow_insecure=True).close()
    JinaAPIEncoder(api_url="http://[::1]:9/v1", api_key=KEY).close()
    assert JinaAPIEncoder(api_key=KEY).url == "https://api.jina.ai/v1"
    with pytest.raises(UsageError, match="JINA_API_KEY"):
        JinaAPIEncoder(api_url="https://api.jina.ai/v1", api_key=None)


def test_settings_come_from_flags_then_environment() -> None:
    env = {"JINAAI_API_KEY": "jina_b", "JINA_API_KEY": "jina_a", "JMIGRATE_API_URL": "https://x.test/v1"}
    s = api_settings_from_env(env=env)
    assert (s.url, s.api_key, s.key_source) == ("https://x.test/v1", "jina_a", "JINA_API_KEY")
    s = api_settings_from_env("https://y.test/v1", "jina_c", env=env)
    assert (s.url, s.api_key, s.key_source) == ("https://y.test/v1", "jina_c", "--api-key")
    assert api_settings_from_env(env={"JINAAI_API_KEY": "jina_b"}).key_source == "JINAAI_API_KEY"
    assert api_settings_from_env(kind="openai", env=env).api_key is None  # a Jina key stays with Jina
    assert "jina_a" not in repr(api_settings_from_env(env=env))


def test_factory_builds_the_api_encoder_from_env(srv: StubServer) -> None:
    env = {"JINA_API_KEY": KEY, "JMIGRATE_API_URL": srv.url}
    with open_encoder("api", env=env, concurrency=2) as enc:
        np.testing.assert_array_equal(enc.encode(["a b"], task=None), expected(["a b"], task=None))
    with pytest.raises(UsageError, match="unknown encoder"):
        open_encoder("grpc")


def test_the_key_never_appears_in_any_output(caplog: pytest.LogCaptureFixture,
                                            capsys: pytest.CaptureFixture[str]) -> None:
    secret = "jina_CANARY_h3_a1b2c3d4e5f6_do_not_print"
    caplog.set_level(logging.DEBUG)  # httpx/httpcore debug logs included
    seen: list[str] = []
    with StubServer(api_key=secret) as srv:
        with make(srv, api_key=secret, timeout=0.3, max_attempts=2) as enc:
            seen += [repr(enc), str(enc), repr(enc.__dict__)]
            enc.encode(TEXTS[:4])
            for faults in ([Fault.drop()] * 2, [Fault.timeout(1.0)] * 2, [Fault.error(403, "no credit")]):
                for f in faults:
                    srv.faults.add(f)
                with pytest.raises(EncoderError) as err:
                    enc.encode(["x"])
                seen += [str(err.value), repr(err.value), "".join(traceback.format_exception(err.value))]
        with make(srv, api_key=secret + "_wrong") as enc, pytest.raises(EncoderError) as err:
            enc.encode(["x"])
        seen += [str(err.value), "".join(traceback.format_exception(err.value))]
        seen.append(repr(srv))
    seen.append(repr(api_settings_from_env(api_key=secret)))
    out = capsys.readouterr()
    seen += [out.out, out.err, caplog.text]
    assert "HTTP 403: no credit" in "".join(seen)  # the errors were really captured
    assert all(secret not in s for s in seen)


def test_factory_opens_the_local_onnx_backend(tmp_path: Path) -> None:
    pytest.importorskip("onnxruntime")
    from jmigrate.testing.tiny_models import build_model_dir

    folder = build_model_dir(tmp_path / "tiny-v3")
    with open_encoder("onnx", V3, model_path=str(folder), threads=1, batch_size=4) as enc:
        out = enc.encode(["a b", "c"], task="retrieval.query", dimensions=32)
    assert out.shape == (2, 32) and enc.batch_size == 4
    np.testing.assert_allclose(np.linalg.norm(out, axis=1), 1.0, rtol=1e-5)
