"""A deterministic in-process encoder (`--encoder fake`: tests, benchmarks, rehearsals).

Its vectors are NOT Jina vectors.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence

import numpy as np

from jmigrate.encoders.base import Encoder, truncate_and_normalise


def hashed_vector(key: str, dims: int) -> np.ndarray:
    """A unit vector that depends only on `key`; its prefixes are consistent (Matryoshka-like)."""
    digest = hashlib.blake2b(key.encode("utf-8", "surrogatepass"), digest_size=8).digest()
    seed = int.from_bytes(digest, "little")
    return np.random.default_rng(seed).standard_normal(dims).astype(np.float32)


class FakeEncoder(Encoder):
    """Hash-seeded vectors keyed by (model, task, text); counts its batches like llm's test encoder."""

    kind = "fake"

    def __init__(self, model: str = "fake-not-jina", dims: int = 1024, batch_size: int = 64) -> None:
        super().__init__()
        self.model = model
        self.dims = dims
        self.batch_size = batch_size
        self.batches: list[int] = []

    def encode_batch(
        self, texts: Sequence[str], *, task: str | None, dimensions: int | None, late_chunking: bool = False
    ) -> np.ndarray:
        self.batches.append(len(texts))
        self.usage.requests += 1
        self.usage.tokens += sum(self.count_tokens(texts))
        doc = " ".join(texts) if late_chunking else ""
        full = np.stack([hashed_vector(f"{self.model}|{task}|{doc}|{t}", self.dims) for t in texts])
        return truncate_and_normalise(full, dimensions)
