"""What an encoder can do is declared on the base class (issue 9 item 4): callers read `tokenizer`,
`max_batch_tokens`, `served_model`, `exact_token_counts` and `count_tokens_upper` instead of probing
with getattr; the chunking helpers live with the encoders and the index layer never imports the
concrete HTTP client."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Sequence

import numpy as np

from jmigrate.encoders.base import Encoder, conservative_token_count, estimate_tokens
from jmigrate.encoders.chunking import chunk_spans, safe_counter, truncate_to
from jmigrate.testing.fake import FakeEncoder


class Minimal(Encoder):
    """An encoder that implements only the one abstract method: every capability has its default."""

    model = "minimal"

    def encode_batch(self, texts: Sequence[str], *, task: str | None, dimensions: int | None,
                     late_chunking: bool = False) -> np.ndarray:
        return np.eye(len(texts), 4, dtype=np.float32)


def test_a_minimal_encoder_declares_what_it_cannot_do() -> None:
    enc = Minimal()
    assert (enc.tokenizer, enc.max_batch_tokens, enc.served_model, enc.exact_token_counts) == \
        (None, None, None, False)
    assert enc.kind == "custom" and FakeEncoder.kind == "fake"


def test_limits_are_checked_with_a_count_that_never_runs_low() -> None:
    enc = Minimal()
    cjk = "雨が降っています" * 10
    assert enc.count_tokens([cjk]) == [estimate_tokens(cjk)]  # the stated estimate: far too low
    assert enc.count_tokens_upper([cjk]) == [conservative_token_count(cjk)] and \
        conservative_token_count(cjk) > estimate_tokens(cjk)
    assert safe_counter(enc)(cjk) == conservative_token_count(cjk)
    text, n = truncate_to(cjk, 20, safe_counter(enc))
    assert n <= 20 and cjk.startswith(text)


def test_without_a_tokenizer_token_chunks_are_estimated_windows_of_the_document() -> None:
    doc = " ".join(f"word{i}" for i in range(300))
    spans = chunk_spans(doc, "tokens", 50, 0, Minimal())
    assert len(spans) > 1 and all(doc[a:z].strip() == doc[a:z] for a, z in spans)
    assert all(safe_counter(Minimal())(doc[a:z]) <= 50 for a, z in spans)


def test_the_index_layer_does_not_import_the_http_client() -> None:
    # Counting and chunking for the limit included (the old helper imported the client to count).
    code = ("import sys, jmigrate.index.units, jmigrate.index.dryrun\n"
            "from jmigrate.encoders.chunking import chunk_spans\n"
            "from jmigrate.testing.fake import FakeEncoder\n"
            "chunk_spans('some words ' * 200, 'tokens', 16, 0, FakeEncoder())\n"
            "print('jmigrate.encoders.api' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "False"


def test_the_factory_forwards_http_options_whose_defaults_live_in_the_client_only() -> None:
    import inspect

    import pytest

    from jmigrate.encoders.api import JinaAPIEncoder, OpenAICompatibleEncoder
    from jmigrate.encoders.factory import open_encoder
    from jmigrate.errors import UsageError

    env = {"JINA_API_KEY": "jina_x"}
    with open_encoder("api", env=env) as enc:  # nothing given: the client's own defaults
        assert isinstance(enc, JinaAPIEncoder)
        params = inspect.signature(JinaAPIEncoder.__init__).parameters
        assert (enc.concurrency, enc.timeout, enc.max_attempts, enc.deadline) == (
            params["concurrency"].default, params["timeout"].default, params["max_attempts"].default,
            3 * params["timeout"].default)
    with open_encoder("openai", "m", api_url="http://127.0.0.1:9/v1", env={}, deadline=5.0,
                      max_response_bytes=4096, backoff_max=1.0, send_dimensions=True) as enc:
        assert isinstance(enc, OpenAICompatibleEncoder)
        assert (enc.deadline, enc.max_response_bytes, enc.backoff_max, enc.send_dimensions) == \
            (5.0, 4096, 1.0, True)
    with pytest.raises(UsageError, match="unknown encoder option.*send_dimensions"):
        open_encoder("api", env=env, send_dimensions=True)  # an OpenAI-compatible server's option
    with pytest.raises(UsageError, match="unknown encoder option.*concurency"):
        open_encoder("api", env=env, concurency=4)
    with open_encoder("fake", concurrency=4, rpm=10.0) as fake:  # sends nothing: HTTP options unused
        assert fake.kind == "fake"
