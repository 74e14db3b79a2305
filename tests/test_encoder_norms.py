"""Every vector leaving an encoder is unit length or refused (issue 10, item 8): an answer that is not
normalised is normalised (and counted in `normalised_rows`, so the manifest can say so truthfully); a
zero vector has no direction and fails its own row with a reason, never a silent row."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from pathlib import Path

import numpy as np
import pytest
from helpers import STUB_KEY, read_index, read_rejects, read_shards, write_jsonl

from jmigrate.encoders.api import JinaAPIEncoder
from jmigrate.encoders.base import Encoder, ZeroVectorError
from jmigrate.models import V3
from jmigrate.testing.server import Fault, StubServer, stub_vectors

TEXTS = ["first passage", "second passage", "third passage"]


class Scripted(Encoder):
    """A real Encoder subclass whose backend answers with the given rows (the interface under test)."""

    def __init__(self, rows: np.ndarray) -> None:
        super().__init__()
        self.model = "scripted"
        self.rows = rows

    def encode_batch(self, texts: Sequence[str], *, task: str | None, dimensions: int | None,
                     late_chunking: bool = False) -> np.ndarray:
        return self.rows[: len(texts)].copy()


def test_rows_that_drift_from_unit_length_are_normalised_and_counted() -> None:
    rows = np.array([[3.0, 4.0], [0.6, 0.8], [0.6, 0.8000002]], dtype=np.float32)
    enc = Scripted(rows)
    out = enc.encode(["a", "b", "c"])
    np.testing.assert_allclose(np.linalg.norm(out, axis=1), 1.0, rtol=1e-6)
    np.testing.assert_allclose(out[0], [0.6, 0.8], rtol=1e-6)
    assert enc.normalised_rows == 1  # float32 rounding (row 3) is not drift
    np.testing.assert_array_equal(out[1:], rows[1:])  # unit rows are passed on bit for bit


@pytest.mark.parametrize("zero", [0.0, 1e-9])
def test_a_zero_vector_fails_its_row_with_a_reason(zero: float) -> None:
    rows = np.array([[0.6, 0.8], [zero, 0.0], [1.0, 0.0]], dtype=np.float32)
    with pytest.raises(ZeroVectorError, match="zero vector for input 1 of 3") as info:
        Scripted(rows).encode(["a", "b", "c"])
    assert info.value.rows == [1]


def test_the_api_client_normalises_an_unnormalised_answer() -> None:
    with StubServer(api_key=STUB_KEY) as srv, \
            JinaAPIEncoder(api_url=srv.url, api_key=STUB_KEY, backoff_base=0.01) as enc:
        srv.faults.add(Fault.unnormalised(3.0))
        out = enc.encode(TEXTS, task="retrieval.passage", dimensions=64)
        assert enc.normalised_rows == 3
        again = enc.encode(TEXTS, task="retrieval.passage", dimensions=64)
        assert enc.normalised_rows == 3  # a correct answer needs nothing
    want = stub_vectors(V3, TEXTS, task="retrieval.passage", dimensions=64)
    np.testing.assert_allclose(out, want, atol=1e-6)
    np.testing.assert_array_equal(again, want)


def test_the_api_client_refuses_a_zero_vector_without_retrying() -> None:
    with StubServer(api_key=STUB_KEY) as srv, \
            JinaAPIEncoder(api_url=srv.url, api_key=STUB_KEY, backoff_base=0.01) as enc:
        srv.faults.add(Fault.zero_vector())
        with pytest.raises(ZeroVectorError, match="input 0 of 3"):
            enc.encode(TEXTS, task="retrieval.passage")
        assert enc.usage.retries == 0


def test_late_chunking_checks_every_document(stub: StubServer) -> None:
    with JinaAPIEncoder(api_url=stub.url, api_key=STUB_KEY) as enc:
        stub.faults.add(Fault.unnormalised(0.5), times=2)  # both documents' requests, in either order
        docs = enc.encode_late_chunked([["a b", "c d"], ["e f"]], task="retrieval.passage")
        assert all(np.allclose(np.linalg.norm(d, axis=1), 1.0, atol=1e-6) for d in docs)
        assert enc.normalised_rows == 3
        stub.faults.add(Fault.zero_vector())
        with pytest.raises(ZeroVectorError):
            enc.encode_late_chunked([["a b", "c d"]], task="retrieval.passage")


def test_reindex_stores_unit_vectors_and_rejects_a_zero_vector_row(
        stub: StubServer, cli: Callable[..., object], tmp_path: Path) -> None:
    src = write_jsonl(tmp_path / "c.jsonl", [{"id": f"r{i}", "text": f"row {i}"} for i in range(4)])
    stub.faults.script([Fault.unnormalised(7.0)])
    r = cli("reindex", src, "--api-url", stub.url, "--api-key", STUB_KEY, "--out", tmp_path / "a", "-q")
    assert r.code == 0, r.err  # type: ignore[attr-defined]
    vectors = np.stack(read_shards(tmp_path / "a").column("vector").to_numpy(zero_copy_only=False))
    np.testing.assert_allclose(np.linalg.norm(vectors, axis=1), 1.0, atol=1e-6)

    stub.faults.add(Fault.zero_vector("row 0"), times=100)  # whichever request carries it
    r = cli("reindex", src, "--api-url", stub.url, "--api-key", STUB_KEY, "--out", tmp_path / "b", "-q")
    assert r.code == 1  # type: ignore[attr-defined]
    rows, vectors, _ = read_index(tmp_path / "b")
    assert [x["id"] for x in rows] == ["r1", "r2", "r3"]
    np.testing.assert_allclose(np.linalg.norm(vectors, axis=1), 1.0, atol=1e-6)
    (rejected,) = read_rejects(tmp_path / "b")
    assert rejected["id"] == "r0" and "zero vector" in rejected["reason"]


@pytest.mark.parametrize("late", [False, True])
def test_a_zero_vector_row_costs_two_more_requests_not_a_bisection(
        stub: StubServer, cli: Callable[..., object], tmp_path: Path, late: bool) -> None:
    # The encoder names the rows with zero vectors, so the run fails just those and re-sends the
    # rest once, instead of halving the batch down to the row (log2(n) rounds of paid requests).
    src = write_jsonl(tmp_path / "c.jsonl",
                      [{"id": f"r{i}", "text": f"alpha{i}. omega{i}."} for i in range(16)])
    bad = "alpha5. omega5." if not late else "alpha5."  # with late chunking: a chunk of row 5
    stub.faults.add(Fault.zero_vector(bad), times=1000)
    extra = ["--late-chunking", "--chunk-by", "sentences", "--chunk-size", "2"] if late else []
    r = cli("reindex", src, "--api-url", stub.url, "--api-key", STUB_KEY, "--out", tmp_path / "o", "-q",
            *extra)
    assert r.code == 1, r.err  # type: ignore[attr-defined]
    (rejected,) = read_rejects(tmp_path / "o")
    assert rejected["id"] == "r5" and "zero vector" in rejected["reason"]
    rows, _, _ = read_index(tmp_path / "o")
    assert sorted({x["id"] for x in rows}) == sorted(f"r{i}" for i in range(16) if i != 5)
    per_try = 1 if not late else 16  # one request per document with late chunking
    assert len(stub.stats.embedding_records()) == 2 * per_try + (per_try - 1 if late else 1)
