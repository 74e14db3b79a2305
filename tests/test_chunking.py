"""Chunkers: token windows on real tokenizer offsets and sentence groups, each with its character span."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from jmigrate.encoders.chunking import Chunk, chunk_by_sentences, chunk_by_tokens, sentence_spans
from jmigrate.errors import UsageError
from jmigrate.testing.tiny_models import build_tokenizer

TOKENIZER = build_tokenizer()
DOC = ("Berlin is the capital of Germany.  It lies on a river; pi is 3.14 there!\n\n"
       "A new paragraph without an end\nand a second line. 北京是中国的首都。上海很大！ Last one?")


def n_tokens(text: str) -> int:
    return len(TOKENIZER.encode(text, add_special_tokens=False).ids)


def test_token_chunks_are_slices_of_at_most_size_tokens() -> None:
    chunks = chunk_by_tokens(DOC, TOKENIZER, size=7)
    assert all(c.text == DOC[c.chunk_start:c.chunk_end] for c in chunks)
    assert all(n_tokens(c.text) <= 7 for c in chunks)
    assert sum(n_tokens(c.text) for c in chunks) == n_tokens(DOC)  # nothing lost, nothing repeated
    assert all(a.chunk_end <= b.chunk_start for a, b in zip(chunks, chunks[1:], strict=False))
    assert chunks[0].text.startswith("Berlin") and chunks[-1].text.endswith("?")


def test_token_chunks_overlap() -> None:
    chunks = chunk_by_tokens(DOC, TOKENIZER, size=6, overlap=2)
    offsets = TOKENIZER.encode(DOC, add_special_tokens=False).offsets
    for i, chunk in enumerate(chunks[:-1]):  # chunk i = tokens 4i .. 4i+5, cut at their offsets
        assert (chunk.chunk_start, chunk.chunk_end) == (offsets[4 * i][0], offsets[4 * i + 5][1])
    assert chunks[-1].chunk_end == offsets[-1][1]
    assert chunks[1].chunk_start < chunks[0].chunk_end


def test_token_chunk_arguments_are_checked() -> None:
    with pytest.raises(UsageError, match="overlap"):
        chunk_by_tokens(DOC, TOKENIZER, size=4, overlap=4)
    assert chunk_by_tokens("   ", TOKENIZER, size=4) == []


def test_sentences() -> None:
    assert [c.text for c in sentence_spans(DOC)] == [
        "Berlin is the capital of Germany.",
        "It lies on a river; pi is 3.14 there!",
        "A new paragraph without an end\nand a second line.",
        "北京是中国的首都。",
        "上海很大！",
        "Last one?",
    ]


def test_sentences_grouped_within_a_token_budget() -> None:
    chunks = chunk_by_sentences(DOC, max_tokens=20, count=n_tokens)
    assert [c.text for c in chunks][:2] == [
        "Berlin is the capital of Germany.",  # with the next sentence it would be 21 tokens
        "It lies on a river; pi is 3.14 there!",
    ]
    assert all(c == Chunk(DOC[c.chunk_start:c.chunk_end], c.chunk_start, c.chunk_end) for c in chunks)
    big = chunk_by_sentences(DOC, max_tokens=10_000, count=n_tokens)
    assert len(big) == 1 and big[0].chunk_start == 0 and big[0].chunk_end == len(DOC)


@settings(max_examples=60, deadline=None)
@given(st.text(alphabet=st.sampled_from("ab .!?\n。"), max_size=80), st.integers(1, 6), st.integers(0, 5))
def test_chunk_spans_always_match_the_document(text: str, size: int, overlap: int) -> None:
    overlap = min(overlap, size - 1)
    chunks = chunk_by_tokens(text, TOKENIZER, size, overlap) + chunk_by_sentences(text, max_tokens=size)
    for chunk in chunks:
        assert chunk.text == text[chunk.chunk_start:chunk.chunk_end]
        assert chunk.text and chunk.text == chunk.text.strip()
