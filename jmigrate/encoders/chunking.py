"""Split a document into chunks, each with its character span in the document (`chunk_start`, `chunk_end`).

Two strategies: by tokens (fixed size and overlap, on the real tokenizer's offsets) and by sentences
(grouped up to a token budget). Chunk text is always `document[chunk_start:chunk_end]`, trimmed of
surrounding whitespace. For late chunking use no overlap: the chunks are joined into one document.
`chunk_spans` picks the strategy for an encoder (token chunks need its tokenizer; without one, windows
of the estimate), and `truncate_to` cuts a text to a token limit with any counter.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from jmigrate.encoders.base import Encoder, estimate_tokens
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


def safe_counter(encoder: Encoder) -> Callable[[str], int]:
    """Token count for the model's limit (`Encoder.count_tokens_upper`): a text is never sent over
    the limit, which would fail its whole batch."""
    return lambda t: encoder.count_tokens_upper([t])[0]


def truncate_to(text: str, max_tokens: int, count: Callable[[str], int]) -> tuple[str, int]:
    """Cut `text` until `count` says at most `max_tokens` tokens (works with any token counter)."""
    n = count(text)
    while n > max_tokens and len(text) > 1:
        text = text[: max(1, int(len(text) * max_tokens / n * 0.98))]
        n = count(text)
    return text, n


def chunk_spans(text: str, by: str, size: int, overlap: int, encoder: Encoder,
                count: Callable[[str], int] | None = None) -> list[tuple[int, int]]:
    """Character spans of the chunks of `text`, by the encoders' chunkers.

    Token chunks need the model's tokenizer offsets; an encoder without a tokenizer (the HTTP API)
    gets windows of the stated estimate (4 characters per token) cut at whitespace.
    """
    tokenizer = encoder.tokenizer
    if by == "sentences":
        def count(t: str) -> int:
            return encoder.count_tokens([t])[0]

        out: list[tuple[int, int]] = []
        for c in chunk_by_sentences(text, size, count):
            if count(c.text) > size:  # one sentence over the budget: split it by tokens
                out += [(c.chunk_start + a, c.chunk_start + z)
                        for a, z in chunk_spans(c.text, "tokens", size, 0, encoder)]
            else:
                out.append((c.chunk_start, c.chunk_end))
        return out
    if tokenizer is not None:
        chunks = chunk_by_tokens(text, tokenizer, size, overlap)
        return [(c.chunk_start, c.chunk_end) for c in chunks]
    return _estimated_token_windows(text, size, overlap, count or safe_counter(encoder))


def _estimated_token_windows(text: str, size: int, overlap: int,
                             count: Callable[[str], int]) -> list[tuple[int, int]]:
    width, step = size * 4, (size - overlap) * 4
    spans: list[tuple[int, int]] = []
    start = 0
    while start < len(text):
        end = min(len(text), start + width)
        while end - start > 1 and count(text[start:end]) > size:  # dense text (CJK): narrow the window
            end = start + max(1, int((end - start) * 0.8))
        if end < len(text):  # back off to the last whitespace so words stay whole
            cut = text.rfind(" ", start + width // 2, end)
            end = cut if cut > start else end
        a, z = start, end
        while a < z and text[a].isspace():
            a += 1
        while z > a and text[z - 1].isspace():
            z -= 1
        if z > a:
            spans.append((a, z))
        if end >= len(text):
            break
        start = max(start + 1, end - (width - step))
    return spans
