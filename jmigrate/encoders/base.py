"""The one interface every encoder implements: a batch of texts in, an L2-normalised float32 matrix out."""

from __future__ import annotations

import re
from abc import ABC, abstractmethod
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, ClassVar

import numpy as np

from jmigrate.errors import EncoderError, InputError

# A row whose length is off by more than this was not normalised (float32 rounding stays near 1e-7).
NORM_TOLERANCE = 1e-4
# At or below this length a row has no usable direction: normalising would amplify noise or divide by 0.
ZERO_NORM = 1e-6


@dataclass
class Usage:
    """What an encoder has consumed so far; `reindex` turns tokens into cost."""

    requests: int = 0
    tokens: int = 0
    retries: int = 0


class ZeroVectorError(InputError):
    """The encoder answered a zero vector for some inputs: those rows fail (with this reason), the
    others can be encoded again. An InputError, so `reindex` rejects just those rows."""

    def __init__(self, rows: list[int], count: int) -> None:
        which = "" if count == 1 else f" for input {rows[0]} of {count}"
        more = f" (and {len(rows) - 1} more)" if len(rows) > 1 else ""
        super().__init__(f"the encoder returned a zero vector{which}{more}: it has no direction, so "
                         "there is nothing to store")
        self.rows = rows


class Halted(EncoderError):
    """A request was not sent because the encoder was told to stop (`Encoder.halt`)."""


class Encoder(ABC):
    """Turns texts into vectors.

    Implementations override `encode_batch` only. `encode` checks the result so every backend
    gives the same guarantees: one finite, unit-length float32 row per input, in input order. A row
    that is not unit length is normalised here and counted in `normalised_rows` (so a manifest can
    say truthfully who normalised what); a zero row raises ZeroVectorError.
    """

    # What a backend can do, declared here (with the defaults of a backend that cannot) so callers
    # read attributes instead of probing with getattr or comparing methods.
    kind: ClassVar[str] = "custom"  # the `open_encoder` kind that builds it
    model: str
    batch_size: int = 64  # inputs per request / session run
    max_batch_tokens: int | None = None  # tokens per request the backend plans with; None: no budget
    served_model: str | None = None  # what a server called its model in its last answer (scrubbed)
    # The model's own tokenizer (a `tokenizers.Tokenizer`) when the backend holds one: token chunks
    # are cut at its offsets. None: chunk windows are estimated.
    tokenizer: Any = None
    # True when `count_tokens` counts with the model's tokenizer; False: the stated estimate.
    exact_token_counts: bool = False
    # True when calls from several threads overlap their work (an HTTP client's requests share its
    # `concurrency` slots): `reindex` then keeps several units in hand at once. Local backends use
    # the cores already; calling them from threads would only compete for them.
    overlapping_calls: ClassVar[bool] = False
    in_flight: int = 0  # requests sent and not answered yet (HTTP backends)
    spend_cap_tokens: int | None = None  # billed tokens this encoder may still spend (HTTP backends)

    def __init__(self) -> None:
        self.usage = Usage()
        self.normalised_rows = 0  # rows the backend returned off unit length, normalised here

    @abstractmethod
    def encode_batch(
        self,
        texts: Sequence[str],
        *,
        task: str | None,
        dimensions: int | None,
        late_chunking: bool = False,
    ) -> np.ndarray:
        """Embed `texts`. With `late_chunking`, `texts` are the ordered chunks of ONE document."""

    def count_tokens(self, texts: Sequence[str]) -> list[int]:
        """Tokens per text as the model counts them; backends without a tokenizer estimate."""
        return [estimate_tokens(t) for t in texts]

    def count_tokens_upper(self, texts: Sequence[str]) -> list[int]:
        """Tokens per text, never fewer than the model will see: what limits are checked with (a
        text over the limit fails its whole request). Exact with a tokenizer; without one the ~4
        characters estimate can be far too low (CJK), so the higher of it and a high-side count."""
        counts = self.count_tokens(texts)
        if self.exact_token_counts:
            return counts
        return [max(n, conservative_token_count(t)) for n, t in zip(counts, texts, strict=True)]

    def encode(
        self,
        texts: Sequence[str],
        *,
        task: str | None = None,
        dimensions: int | None = None,
        late_chunking: bool = False,
    ) -> np.ndarray:
        if not texts:
            return np.zeros((0, dimensions or 0), dtype=np.float32)
        out = self.encode_batch(texts, task=task, dimensions=dimensions, late_chunking=late_chunking)
        return self.check_output(out, len(texts), dimensions)

    def check_output(self, m: np.ndarray, count: int, dimensions: int | None) -> np.ndarray:
        """What every public encode path returns through: shape, dtype and finiteness checked, rows
        off unit length normalised (and counted), zero rows refused with ZeroVectorError."""
        check_vectors(m, count, dimensions)
        if m.size == 0:
            return m
        norms = np.linalg.norm(m, axis=1)
        zero = np.flatnonzero(norms <= ZERO_NORM)
        if zero.size:
            raise ZeroVectorError(zero.tolist(), count)
        drift = np.abs(norms - 1.0) > NORM_TOLERANCE
        if drift.any():
            m = m.copy()
            m[drift] = (m[drift] / norms[drift, None]).astype(np.float32)
            self.normalised_rows += int(drift.sum())
        return m

    def encode_late_chunked(
        self,
        documents: Sequence[Sequence[str]],
        *,
        task: str | None = None,
        dimensions: int | None = None,
    ) -> list[np.ndarray]:
        """Late chunking for many documents: one matrix of chunk vectors per document.

        Each document's chunks are encoded together and never mixed with another document's.
        Backends that can run documents concurrently (the API client) override this.
        """
        mats = [self.encode_batch(list(chunks), task=task, dimensions=dimensions, late_chunking=True)
                if chunks else np.zeros((0, dimensions or 0), dtype=np.float32) for chunks in documents]
        return self.check_documents(mats, documents, dimensions)

    def check_documents(self, mats: Sequence[np.ndarray], documents: Sequence[Sequence[str]],
                        dimensions: int | None) -> list[np.ndarray]:
        """`check_output` for each document's chunk vectors. Zero rows of all documents are reported
        together, numbered as in the documents' chunks laid end to end, so a caller can fail just
        those chunks' documents."""
        out: list[np.ndarray] = []
        zero: list[int] = []
        offset = 0
        for m, chunks in zip(mats, documents, strict=True):
            if len(chunks):
                try:
                    m = self.check_output(m, len(chunks), dimensions)
                except ZeroVectorError as e:
                    zero += [offset + r for r in e.rows]
            out.append(m)
            offset += len(chunks)
        if zero:
            raise ZeroVectorError(zero, offset)
        return out

    def halt(self) -> None:  # noqa: B027 - a local backend finishes the call in hand and is done
        """Start nothing new: work not yet sent raises `Halted`; work already sent completes."""

    def abandon(self) -> None:  # noqa: B027
        """`halt`, and give up on the work in flight too."""

    def close(self) -> None:  # noqa: B027 - optional hook, most encoders hold nothing
        """Release sessions, sockets and threads."""

    def __enter__(self) -> Encoder:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def estimate_tokens(text: str) -> int:
    """A stated estimate used only where no tokenizer is at hand: ~4 characters per token, at least 1."""
    return max(1, (len(text) + 3) // 4)


_TOKEN_UPPER_BOUND_RE = re.compile(r"[A-Za-z0-9_]{1,4}|[^\sA-Za-z0-9_]")


def conservative_token_count(text: str) -> int:
    """An estimate that errs high: every ASCII word piece of up to 4 characters and every other
    non-space character (accents, CJK, punctuation) count one token. Used to plan requests before
    the server's `usage` says the real number, and to check limits without a tokenizer."""
    return max(1, len(_TOKEN_UPPER_BOUND_RE.findall(text)))


def add_prefix(text: str, prefix: str) -> str:
    """`prefix + text`, exactly once: inputs a user (or v2-era code) prefixed by hand are not
    prefixed twice."""
    return text if not prefix or text.startswith(prefix) else prefix + text


def l2_normalise(m: np.ndarray) -> np.ndarray:
    m = np.asarray(m, dtype=np.float32)
    norms = np.linalg.norm(m, axis=-1, keepdims=True)
    return (m / np.where(norms == 0, 1.0, norms)).astype(np.float32, copy=False)


def truncate_and_normalise(m: np.ndarray, dimensions: int | None) -> np.ndarray:
    """Matryoshka: cut to the first `dimensions` components, then re-normalise (in that order)."""
    if dimensions is not None:
        m = m[..., :dimensions]
    return l2_normalise(m)


def check_vectors(m: np.ndarray, count: int, dimensions: int | None) -> None:
    from jmigrate.errors import EncoderError

    if m.ndim != 2 or m.shape[0] != count:
        raise EncoderError(f"encoder returned {m.shape[0] if m.ndim else 0} vectors for {count} inputs")
    if dimensions is not None and m.shape[1] != dimensions:
        raise EncoderError(f"encoder returned {m.shape[1]}-dim vectors, expected {dimensions}")
    if m.dtype != np.float32:
        raise EncoderError(f"encoder returned {m.dtype} vectors, expected float32")
    if not np.isfinite(m).all():
        raise EncoderError("encoder returned NaN or infinite values")
