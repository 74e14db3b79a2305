"""Each request has a total deadline and a response size cap (issue 10, hangs 3): a server that
trickles its answer one byte at a time (every single read is quick, so a per-read timeout never
fires) or sends an endless body is cut off, and the request is retried like any transient failure."""

from __future__ import annotations

import tracemalloc
from collections.abc import Iterator

import numpy as np
import pytest

from jmigrate.encoders.api import JinaAPIEncoder
from jmigrate.errors import EncoderError
from jmigrate.models import V3
from jmigrate.testing.server import Fault, StubServer, stub_vectors

KEY = "jina_test"
TEXTS = ["a passage about foxes", "another one about dogs"]


@pytest.fixture()
def srv() -> Iterator[StubServer]:
    with StubServer(api_key=KEY) as s:
        yield s


def make(srv: StubServer, **kw: object) -> JinaAPIEncoder:
    kw.setdefault("backoff_base", 0.01)
    return JinaAPIEncoder(api_url=srv.url, api_key=KEY, **kw)  # type: ignore[arg-type]


def test_a_trickling_answer_is_cut_at_the_deadline_and_retried(srv: StubServer) -> None:
    # ~450 bytes at 20 ms each would take ~9 s, every read well inside the 2 s read timeout.
    srv.faults.add(Fault.trickle(0.02))
    with make(srv, timeout=2.0, deadline=0.5) as enc:
        out = enc.encode(TEXTS, task="retrieval.passage", dimensions=32)
        assert enc.usage.retries == 1 and enc.usage.requests == 2
    np.testing.assert_array_equal(out, stub_vectors(V3, TEXTS, task="retrieval.passage", dimensions=32))
    assert srv.stats.requests == 2 and srv.faults.pending == 0


def test_a_server_that_always_trickles_ends_in_an_error_naming_the_deadline(srv: StubServer) -> None:
    srv.faults.add(Fault.trickle(0.02), times=3)
    with make(srv, timeout=2.0, deadline=0.3, max_attempts=3) as enc, \
            pytest.raises(EncoderError, match=r"failed after 3 attempts; .*0\.3s deadline"):
        enc.encode(TEXTS, task="retrieval.passage", dimensions=32)


def test_a_huge_answer_is_not_read_past_the_cap_and_is_retried(srv: StubServer) -> None:
    srv.faults.add(Fault.huge_body(300_000_000))
    tracemalloc.start()
    try:
        with make(srv) as enc:
            out = enc.encode(TEXTS, task="retrieval.passage")
            assert enc.usage.retries == 1
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    np.testing.assert_array_equal(out, stub_vectors(V3, TEXTS, task="retrieval.passage"))
    # The default cap for 2 inputs of 1024 dimensions is about 1 MB; reading the answer whole took 2.5 GB.
    assert peak < 32 * 2**20, f"peak traced memory {peak / 2**20:.0f} MiB"


def test_the_cap_is_settable_and_its_error_says_so(srv: StubServer) -> None:
    with make(srv, max_response_bytes=1000, max_attempts=2) as enc, \
            pytest.raises(EncoderError, match="over the 1000-byte cap"):
        enc.encode(TEXTS, task="retrieval.passage")  # a correct answer of ~11 KB: over this cap
    with make(srv, max_response_bytes=100_000) as enc:
        enc.encode(TEXTS, task="retrieval.passage")


def test_a_huge_error_body_is_read_only_in_part(srv: StubServer) -> None:
    srv.faults.add(Fault.error(400, detail="x" * 5_000_000))
    with make(srv) as enc, pytest.raises(EncoderError, match=r"refused: HTTP 400: .*x{400}") as info:
        enc.encode(TEXTS, task="retrieval.passage")
    assert len(str(info.value)) < 700
