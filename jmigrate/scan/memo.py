"""A per-text cache for the whole-file analyses several rules ask for (task signals, JS blocks and
bindings, requests, line splits).

Keyed by the identity of the text, not its value: `functools.lru_cache` compares an equal but distinct
string (the same file decoded again by a later `plan` in the same process) character by character on
every lookup, which turned each cache hit into a scan of the whole file. The cache keeps a reference to
each text it holds, so an id is never reused while its entry lives.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Callable
from functools import wraps
from typing import TypeVar

_T = TypeVar("_T")


def per_text(maxsize: int = 8) -> Callable[[Callable[[str], _T]], Callable[[str], _T]]:
    def decorate(fn: Callable[[str], _T]) -> Callable[[str], _T]:
        entries: OrderedDict[int, tuple[str, _T]] = OrderedDict()

        @wraps(fn)
        def cached(text: str) -> _T:
            hit = entries.get(id(text))
            if hit is not None and hit[0] is text:
                entries.move_to_end(id(text))
                return hit[1]
            value = fn(text)
            entries[id(text)] = (text, value)
            if len(entries) > maxsize:
                entries.popitem(last=False)
            return value

        cached.cache_clear = entries.clear  # type: ignore[attr-defined]
        return cached

    return decorate
