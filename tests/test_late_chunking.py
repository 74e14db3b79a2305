"""Local late chunking checked against an independent recomputation from the raw token embeddings."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import onnxruntime as ort
import pytest
from tokenizers import Tokenizer

from jmigrate.encoders.late_chunking import join_chunks, token_spans, windowed_token_embeddings
from jmigrate.encoders.onnx import OnnxEncoder
from jmigrate.errors import InputError
from jmigrate.models import TASKS
from jmigrate.testing.tiny_models import build_model_dir

PASSAGE = TASKS["retrieval.passage"].prefix
CHUNKS = [
    "Berlin is the capital of Germany.",
    "It is a city on a river.",
    "The city has one old house, two new trees and ten birds.",
]


@pytest.fixture(scope="module")
def v3_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return build_model_dir(tmp_path_factory.mktemp("v3"), kind="v3")


def raw_token_embeddings(folder: Path, ids: list[int], task_id: int | None) -> np.ndarray:
    session = ort.InferenceSession(str(folder / "onnx" / "model.onnx"), providers=["CPUExecutionProvider"])
    batch = np.array([ids], dtype=np.int64)
    feed = {"input_ids": batch, "attention_mask": np.ones_like(batch)}
    if task_id is None:
        feed["token_type_ids"] = np.zeros_like(batch)
    else:
        feed["task_id"] = np.array(task_id, dtype=np.int64)
    return session.run(None, feed)[0][0]


def spans_by_hand(offsets: list[tuple[int, int]], special: list[int], chunks: list[str],
                  prefix: str) -> list[tuple[int, int]]:
    """Each chunk's tokens are those lying inside its character range; then <s> + prefix go to the first
    chunk and </s> to the last (the reference's _extend_special_tokens)."""
    spans = []
    pos = len(prefix)
    for chunk in chunks:
        inside = [i for i, ((s, e), sp) in enumerate(zip(offsets, special, strict=True))
                  if not sp and s >= pos and e <= pos + len(chunk)]
        spans.append((inside[0], inside[-1] + 1))
        pos += len(chunk) + 1
    spans[0] = (0, spans[0][1])
    spans[-1] = (spans[-1][0], len(offsets))
    return spans


def normalise(m: np.ndarray) -> np.ndarray:
    return m / np.linalg.norm(m, axis=1, keepdims=True)


def late_by_hand(folder: Path, chunks: list[str], task_id: int | None, prefix: str) -> np.ndarray:
    tok = Tokenizer.from_file(str(folder / "tokenizer.json"))
    enc = tok.encode(prefix + " ".join(chunks))
    tokens = raw_token_embeddings(folder, enc.ids, task_id)
    spans = spans_by_hand(enc.offsets, enc.special_tokens_mask, chunks, prefix)
    return normalise(np.stack([tokens[s:e].mean(axis=0) for s, e in spans]))


def test_late_chunking_equals_independent_recomputation(v3_dir: Path) -> None:
    enc = OnnxEncoder.from_pretrained(path=v3_dir)
    got = enc.encode(CHUNKS, task="retrieval.passage", late_chunking=True)
    assert got.shape == (3, 1024)
    np.testing.assert_allclose(got, late_by_hand(v3_dir, CHUNKS, 1, PASSAGE), atol=1e-5)
    assert enc.usage.requests == 1  # one document, one pass


def test_late_chunking_differs_from_naive_chunking(v3_dir: Path) -> None:
    enc = OnnxEncoder.from_pretrained(path=v3_dir)
    late = enc.encode(CHUNKS, task="retrieval.passage", late_chunking=True)
    naive = enc.encode(CHUNKS, task="retrieval.passage")
    cosines = (late * naive).sum(axis=1)
    assert (cosines < 0.999).all()
    # ...and a chunk's late vector depends on the other chunks of its document.
    other = enc.encode([CHUNKS[0], "The cat sat on the road."], task="retrieval.passage", late_chunking=True)
    assert float(other[0] @ late[0]) < 0.999


def test_one_chunk_late_equals_plain_encoding(v3_dir: Path) -> None:
    enc = OnnxEncoder.from_pretrained(path=v3_dir)
    text = " ".join(CHUNKS)
    np.testing.assert_allclose(enc.encode([text], task="retrieval.query", late_chunking=True),
                               enc.encode([text], task="retrieval.query"), atol=1e-5)


def test_prefix_once_and_truncation_in_late_chunking(v3_dir: Path) -> None:
    enc = OnnxEncoder.from_pretrained(path=v3_dir)
    plain = enc.encode(CHUNKS, task="retrieval.passage", late_chunking=True)
    prefixed = enc.encode([PASSAGE + CHUNKS[0], *CHUNKS[1:]], task="retrieval.passage", late_chunking=True)
    np.testing.assert_allclose(prefixed, plain, atol=1e-6)
    cut = enc.encode(CHUNKS, task="retrieval.passage", dimensions=128, late_chunking=True)
    np.testing.assert_allclose(cut, normalise(plain[:, :128]), atol=1e-5)


def test_long_document_uses_overlapping_macro_windows(v3_dir: Path) -> None:
    chunks = [" ".join(["one two three four five six seven eight"] * 2) + "." for _ in range(4)]
    window, overlap = 16, 4
    enc = OnnxEncoder.from_pretrained(path=v3_dir, max_tokens=window, window_overlap=overlap)
    got = enc.encode(chunks, task="text-matching", late_chunking=True)

    tok = Tokenizer.from_file(str(v3_dir / "tokenizer.json"))
    full = tok.encode(" ".join(chunks))
    n = len(full.ids)
    assert n > 3 * window
    parts, start = [], 0
    while True:  # the reference loop, written out again
        end = min(start + window, n)
        out = raw_token_embeddings(v3_dir, full.ids[start:end], 4)
        parts.append(out if start == 0 else out[overlap:])
        if end == n:
            break
        start += window - overlap
    tokens = np.concatenate(parts)
    assert len(tokens) == n
    spans = spans_by_hand(full.offsets, full.special_tokens_mask, chunks, "")
    expected = normalise(np.stack([tokens[s:e].mean(axis=0) for s, e in spans]))
    np.testing.assert_allclose(got, expected, atol=1e-5)
    single_pass = OnnxEncoder.from_pretrained(path=v3_dir).encode(chunks, task="text-matching",
                                                                  late_chunking=True)
    assert not np.allclose(got, single_pass, atol=1e-3)  # the windows really changed the context


def test_v2_late_chunking_has_no_prefix(tmp_path: Path) -> None:
    folder = build_model_dir(tmp_path / "v2", kind="v2")
    enc = OnnxEncoder.from_pretrained("jina-embeddings-v2-base-en", path=folder)
    got = enc.encode(CHUNKS, late_chunking=True)
    np.testing.assert_allclose(got, late_by_hand(folder, CHUNKS, None, ""), atol=1e-5)


def test_empty_chunk_is_an_input_error(v3_dir: Path) -> None:
    enc = OnnxEncoder.from_pretrained(path=v3_dir)
    with pytest.raises(InputError, match="chunk 1 of 3 has no tokens"):
        enc.encode(["a cat", " ", "a dog"], task="separation", late_chunking=True)


def test_token_spans_tile_the_sequence() -> None:
    text, starts = join_chunks(["ab cd", "ef", "gh"], prefix="P: ")
    assert text == "P: ab cd ef gh" and starts == [3, 9, 12]
    # <s> P : ab cd ef gh </s>, with a token ("gh") whose offsets start on the separating space.
    offsets = [(0, 0), (0, 1), (1, 2), (3, 5), (6, 8), (9, 11), (11, 14), (0, 0)]
    special = [1, 0, 0, 0, 0, 0, 0, 1]
    assert token_spans(offsets, special, starts) == [(0, 5), (5, 6), (6, 8)]


def test_windows_drop_the_overlap() -> None:
    seen: list[list[int]] = []

    def run(ids: np.ndarray) -> np.ndarray:
        seen.append(ids.tolist())
        return ids.astype(np.float32)[:, None]

    out = windowed_token_embeddings(run, np.arange(10), window=6, overlap=2)
    assert seen == [[0, 1, 2, 3, 4, 5], [4, 5, 6, 7, 8, 9]]
    assert out[:, 0].tolist() == list(range(10))


def test_many_documents_share_runs_without_mixing(v3_dir: Path) -> None:
    docs = [CHUNKS, ["The cat sat on the road.", "A dog came."], [CHUNKS[1]], [], CHUNKS[::-1]]
    enc = OnnxEncoder.from_pretrained(path=v3_dir, batch_size=8)
    got = enc.encode_late_chunked(docs, task="retrieval.passage", dimensions=256)
    assert enc.usage.requests == 1  # four non-empty documents, one padded batch
    assert [m.shape for m in got] == [(3, 256), (2, 256), (1, 256), (0, 256), (3, 256)]
    for chunks, vectors in zip(docs, got, strict=True):
        if chunks:
            expected = late_by_hand(v3_dir, chunks, 1, PASSAGE)[:, :256]
            np.testing.assert_allclose(vectors, normalise(expected), atol=1e-5)


def test_many_documents_mixing_long_and_short(v3_dir: Path) -> None:
    long_doc = [" ".join(["one two three four five six seven eight"] * 2) + "." for _ in range(3)]
    enc = OnnxEncoder.from_pretrained(path=v3_dir, max_tokens=16, window_overlap=4)
    docs = [long_doc, ["a cat.", "a dog."], long_doc[:1]]
    got = enc.encode_late_chunked(docs, task="classification")
    for chunks, vectors in zip(docs, got, strict=True):
        np.testing.assert_allclose(vectors, enc.encode(chunks, task="classification", late_chunking=True),
                                   atol=1e-6)
