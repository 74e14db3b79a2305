"""The OpenAI-compatible path end to end against the loopback stub in its OpenAI mode: the v3 task
reaches the server the only way that protocol allows, as the task's instruction in front of each
text, exactly once (issue 9 item 4; docs/encoders.md promises it)."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path

import numpy as np
import pytest
from helpers import read_shards, write_jsonl

from jmigrate.encoders.api import OpenAICompatibleEncoder
from jmigrate.models import TASKS, V3
from jmigrate.testing.server import StubServer, stub_vectors

PASSAGE = TASKS["retrieval.passage"].prefix
QUERY = TASKS["retrieval.query"].prefix


@pytest.fixture()
def oai() -> Iterator[StubServer]:
    with StubServer(api_key=None, protocol="openai") as srv:
        yield srv


def sent(srv: StubServer) -> list[str]:
    return [t for r in srv.stats.embedding_records() for t in r.inputs]


def test_reindex_with_the_openai_encoder_sends_the_task_instruction_once(
        oai: StubServer, cli: Callable[..., object], tmp_path: Path,
        monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("JMIGRATE_OPENAI_API_KEY", raising=False)
    texts = ["plain passage", PASSAGE + "already carries the instruction"]
    src = write_jsonl(tmp_path / "c.jsonl", [{"id": str(i), "text": t} for i, t in enumerate(texts)])
    r = cli("reindex", src, "--encoder", "openai", "--model", V3, "--task", "retrieval.passage",
            "--api-url", oai.url, "--out", tmp_path / "o", "-q")
    assert r.code == 0, r.err  # type: ignore[attr-defined]
    assert sent(oai) == [PASSAGE + "plain passage", PASSAGE + "already carries the instruction"]
    vectors = np.stack(read_shards(tmp_path / "o").column("vector").to_numpy(zero_copy_only=False))
    np.testing.assert_allclose(vectors, stub_vectors(V3, sent(oai)), atol=1e-6)


@pytest.mark.parametrize(("model", "task", "prefix"), [
    (V3, "retrieval.query", QUERY),
    ("jinaai/jina-embeddings-v3", "retrieval.passage", PASSAGE),
    (V3, "text-matching", ""),  # tasks without an instruction send the text as it is
    (V3, None, ""),
    ("intfloat/multilingual-e5-small", "retrieval.query", ""),  # not v3: its own conventions apply
])
def test_the_instruction_is_added_for_v3_models_by_default(oai: StubServer, model: str, task: str | None,
                                                           prefix: str) -> None:
    with OpenAICompatibleEncoder(model, api_url=oai.url) as enc:
        enc.encode(["one", prefix + "two"], task=task)
    assert sent(oai) == [prefix + "one", prefix + "two"]


def test_the_instruction_can_be_switched_off_or_forced(oai: StubServer) -> None:
    with OpenAICompatibleEncoder(V3, api_url=oai.url, add_task_prefix=False) as enc:
        enc.encode(["one"], task="retrieval.query")
    with OpenAICompatibleEncoder("my-served-v3", api_url=oai.url, add_task_prefix=True) as enc:
        enc.encode(["two"], task="retrieval.query")
    assert sent(oai) == ["one", QUERY + "two"]
