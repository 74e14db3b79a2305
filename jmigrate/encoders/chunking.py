"""Split a document into chunks, each with its character span in the document (`chunk_start`, `chunk_end`).

Two strategies: by tokens (fixed size and overlap, on the real tokenizer's offsets) and by sentences
(grouped up to a token budget). Chunk text is always `document[chunk_start:chunk_end]`, trimmed of
surrounding whitespace. For late chunking use no overlap: the chunks are joined into one document.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from jmigrate.encoders.base import estimate_tokens
from jmigrate.errors import UsageError

# End of a sentence: Latin punctuation before whitespace (so "3.14" and "e.g.x" stay whole), CJK
# full stops anywhere, or a blank line (paragraph break).
_SENTENCE_END = re.compile(r"[.!?]+(?=\s|$)|[。！？]+|\n\s*\n")


@dataclass(frozen=True)
class Chunk:
    text: str
    chunk_start: int  # character offset of the first character in the document
    chunk_end: int  # one past the last character


def _trimmed(text: str, start: int, end: int) -> Chunk | None:
    while start < end and text[start].isspace():
        start += 1
    while end > start and text[end - 1].isspace():
        end -= 1
    return Chunk(text[start:end], start, end) if end > start else None


def chunk_by_tokens(text: str, tokenizer: Any, size: int, overlap: int = 0) -> list[Chunk]:
    """Chunks of `size` tokens stepping `size - overlap`, cut at token boundaries of `tokenizer`
    (a `tokenizers.Tokenizer`, e.g. `OnnxEncoder.tokenizer`). Special tokens are not counted."""
    if size < 1 or not 0 <= overlap < size:
        raise UsageError(f"chunk size must be >= 1 and overlap in [0, size): size={size} overlap={overlap}")
    offsets = [o for o, special in zip(*_offsets(tokenizer, text), strict=True) if not special]
    chunks: list[Chunk] = []
    for first in range(0, len(offsets), size - overlap):
        last = min(first + size, len(offsets)) - 1
        chunk = _trimmed(text, offsets[first][0], offsets[last][1])
        if chunk is not None:
            chunks.append(chunk)
        if last == len(offsets) - 1:
            break
    return chunks


def _offsets(tokenizer: Any, text: str) -> tuple[list[tuple[int, int]], list[int]]:
    enc = tokenizer.encode(text, add_special_tokens=False)
    return list(enc.offsets), list(enc.special_tokens_mask)


def sentence_spans(text: str) -> list[Chunk]:
    """Each sentence (or paragraph without end punctuation) of `text`, in order."""
    spans: list[Chunk] = []
    start = 0
    for m in _SENTENCE_END.finditer(text):
        end = m.start() if m.group().isspace() else m.end()
        chunk = _trimmed(text, start, end)
        if chunk is not None:
            spans.append(chunk)
        start = m.end()
    tail = _trimmed(text, start, len(text))
    if tail is not None:
        spans.append(tail)
    return spans


def chunk_by_sentences(text: str, max_tokens: int | None = None,
                       count: Callable[[str], int] = estimate_tokens) -> list[Chunk]:
    """Whole sentences grouped greedily while the group stays within `max_tokens` (measured by `count`,
    e.g. `lambda s: encoder.count_tokens([s])[0]`); one sentence per chunk without a budget. A single
    sentence over the budget becomes a chunk of its own: split it further with `chunk_by_tokens`."""
    sentences = sentence_spans(text)
    if max_tokens is None:
        return sentences
    chunks: list[Chunk] = []
    group: list[Chunk] = []
    for sentence in sentences:
        if group and count(text[group[0].chunk_start:sentence.chunk_end]) > max_tokens:
            chunks.append(Chunk(text[group[0].chunk_start:group[-1].chunk_end], group[0].chunk_start,
                                group[-1].chunk_end))
            group = []
        group.append(sentence)
    if group:
        chunks.append(Chunk(text[group[0].chunk_start:group[-1].chunk_end], group[0].chunk_start,
                            group[-1].chunk_end))
    return chunks
