"""A compact set of ids seen so far, for duplicate detection over millions of rows.

Ids are kept as 64-bit BLAKE2b hashes: a sorted numpy array plus a small Python set that is merged
into it every `flush_at` ids, so 1M ids cost ~8 MB instead of ~100 MB of Python strings. Two
different ids collide with probability ~n²/2⁶⁵ (≈3e-8 at a million rows); a collision would reject a
row as a duplicate, never drop it silently (it lands in rejects.jsonl).
"""

from __future__ import annotations

import hashlib

import numpy as np


def id_hash(rid: str) -> int:
    return int.from_bytes(hashlib.blake2b(rid.encode("utf-8", "surrogatepass"), digest_size=8).digest(),
                          "little")


class IdSet:
    def __init__(self, flush_at: int = 65536) -> None:
        self._sorted = np.zeros(0, dtype=np.uint64)
        self._recent: set[int] = set()
        self._flush_at = flush_at

    def __len__(self) -> int:
        return len(self._sorted) + len(self._recent)

    def add_many(self, rids: list[str | None]) -> list[bool]:
        """Add each id in order; False for a duplicate (of an earlier id or of one earlier in `rids`).
        None entries are skipped (reported True)."""
        hashes = [id_hash(r) if r is not None else None for r in rids]
        present = [False] * len(rids)
        if len(self._sorted):
            arr = np.fromiter((h or 0 for h in hashes), dtype=np.uint64, count=len(hashes))
            pos = np.searchsorted(self._sorted, arr).clip(max=len(self._sorted) - 1)
            present = (self._sorted[pos] == arr).tolist()
        out = []
        for h, seen in zip(hashes, present, strict=True):
            if h is None:
                out.append(True)
            elif seen or h in self._recent:
                out.append(False)
            else:
                self._recent.add(h)
                out.append(True)
        if len(self._recent) >= self._flush_at:
            self._flush()
        return out

    def _flush(self) -> None:
        merged = np.concatenate([self._sorted, np.fromiter(self._recent, dtype=np.uint64)])
        merged.sort()
        self._sorted = merged
        self._recent.clear()

    def add(self, rid: str) -> bool:
        """Add `rid`; False when it was already there (a duplicate)."""
        h = id_hash(rid)
        if h in self._recent:
            return False
        if len(self._sorted):
            i = int(np.searchsorted(self._sorted, np.uint64(h)))
            if i < len(self._sorted) and int(self._sorted[i]) == h:
                return False
        self._recent.add(h)
        if len(self._recent) >= self._flush_at:
            self._flush()
        return True
