"""Late chunking, by the reference algorithm of jina-ai/late-chunking: embed a whole document once,
then mean-pool each chunk's span of token embeddings, so every chunk vector keeps its context.

- The document is `prefix + " ".join(chunks)` (the API joins a late-chunking request the same way).
- A token belongs to the chunk holding its last character; the first chunk's span also covers `<s>`
  and the instruction prefix, the last chunk's span also covers `</s>`.
- A document longer than the model's context is embedded in overlapping macro-windows of `window`
  tokens stepping `window - overlap`; the first `overlap` token outputs of every window after the
  first are dropped and the rest concatenated, then spans are pooled as usual.

The functions here are pure (numpy in, numpy out) so they can be checked against a hand computation.
"""

from __future__ import annotations

from bisect import bisect_right
from collections.abc import Callable, Sequence

import numpy as np

from jmigrate.errors import InputError, UsageError

SEPARATOR = " "  # the API joins the chunks of a late-chunking request with one space


def join_chunks(chunks: Sequence[str], prefix: str = "") -> tuple[str, list[int]]:
    """The text the model sees and the character offset where each chunk starts in it."""
    starts: list[int] = []
    pos = len(prefix)
    for chunk in chunks:
        starts.append(pos)
        pos += len(chunk) + len(SEPARATOR)
    return prefix + SEPARATOR.join(chunks), starts


def token_spans(
    offsets: Sequence[tuple[int, int]], special: Sequence[int], chunk_starts: Sequence[int]
) -> list[tuple[int, int]]:
    """Map chunks (by character start) to half-open token index spans that tile the whole sequence.

    `offsets` and `special` come from the tokenizer (character offsets into the joined text, and 1 for
    special tokens). Leading tokens (`<s>`, prefix) go to the first chunk, trailing ones (`</s>`) to
    the last. Raises InputError when a chunk gets no token of its own (e.g. an empty chunk).
    """
    n_chunks = len(chunk_starts)
    first_token: list[int | None] = [None] * n_chunks
    for i, ((start, end), is_special) in enumerate(zip(offsets, special, strict=True)):
        if is_special:
            continue
        last_char = end - 1 if end > start else start
        owner = max(0, bisect_right(chunk_starts, last_char) - 1)
        if first_token[owner] is None:
            first_token[owner] = i
    missing = [c for c, t in enumerate(first_token) if t is None]
    if missing:
        raise InputError(f"late chunking: chunk {missing[0]} of {n_chunks} has no tokens (empty chunk?)")
    bounds = [0] + [t for t in first_token[1:] if t is not None] + [len(offsets)]
    return [(bounds[c], bounds[c + 1]) for c in range(n_chunks)]


def windowed_token_embeddings(
    run: Callable[[np.ndarray], np.ndarray], ids: np.ndarray, window: int, overlap: int
) -> np.ndarray:
    """Token embeddings [n, D] for a sequence of `n` ids, through macro-windows when `n > window`.

    `run` embeds one window of ids (1-D int64) and returns its token embeddings [len, D].
    """
    n = len(ids)
    if n <= window:
        return run(ids)
    if not 0 <= overlap < window:
        raise UsageError(f"late-chunking window overlap must be in [0, {window}), got {overlap}")
    parts: list[np.ndarray] = []
    start = 0
    while True:
        end = min(start + window, n)
        out = run(ids[start:end])
        parts.append(out if start == 0 else out[overlap:])
        if end == n:
            break
        start += window - overlap
    return np.concatenate(parts, axis=0)


def pool_spans(token_embeddings: np.ndarray, spans: Sequence[tuple[int, int]]) -> np.ndarray:
    """Mean of the token embeddings in each span: [n_spans, D] float32 (not normalised)."""
    return np.stack([token_embeddings[s:e].mean(axis=0) for s, e in spans]).astype(np.float32, copy=False)
