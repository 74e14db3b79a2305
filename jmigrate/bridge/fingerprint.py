"""A content fingerprint of an index: which documents it holds and what their vectors are.

It is computed from what `verify` loads (ids in row order and the float32 vectors), not from files, so
the same index gives the same fingerprint whatever its container; any added, removed or re-embedded
row changes it. A bridge records the fingerprint of the index it was fitted on and is refused on any other.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterator

import numpy as np

from jmigrate.verify.indexes import VectorIndex

BLOCK_ROWS = 65_536


class Fingerprinter:
    """Feed (first row, block) pairs in row order, as `VectorIndex.iter_blocks` yields them."""

    def __init__(self, idx: VectorIndex) -> None:
        self._idx = idx
        self._h = hashlib.sha256()
        head = f"{idx.model}\n{idx.dimensions}\n{idx.rows}\n"
        self._h.update(head.encode("utf-8"))
        # Ids go first, one per line, so a renamed document changes the digest even with equal vectors.
        for start in range(0, idx.rows, BLOCK_ROWS):
            chunk = idx.row_ids[start : start + BLOCK_ROWS].tolist()
            self._h.update(("\n".join(chunk) + "\n").encode("utf-8", "surrogatepass"))
        if idx.chunk_keys is not None:
            self._h.update(np.ascontiguousarray(idx.chunk_keys, dtype="<i8").tobytes())
        self._next = 0

    def add(self, start: int, block: np.ndarray) -> None:
        if start != self._next:
            raise RuntimeError(f"fingerprint blocks out of order: got row {start}, expected {self._next}")
        self._h.update(np.ascontiguousarray(block, dtype="<f4").tobytes())
        self._next += len(block)

    def hexdigest(self) -> str:
        if self._next != self._idx.rows:
            raise RuntimeError(f"fingerprint saw {self._next} of {self._idx.rows} rows")
        return "sha256:" + self._h.hexdigest()


def blocks_with_fingerprint(
    idx: VectorIndex, block_rows: int, fp: Fingerprinter
) -> Iterator[tuple[int, np.ndarray]]:
    """`idx.iter_blocks` that also feeds the fingerprint, so a pass that reads the vectors anyway pays
    only for the hashing."""
    for start, block in idx.iter_blocks(block_rows):
        fp.add(start, block)
        yield start, block


def index_fingerprint(idx: VectorIndex, block_rows: int = BLOCK_ROWS) -> str:
    fp = Fingerprinter(idx)
    for _ in blocks_with_fingerprint(idx, block_rows, fp):
        pass
    return fp.hexdigest()
