"""Encoders: everything that turns text into vectors, behind one interface (`Encoder`).

Names are imported on first use: the factory's list of kinds is read by the CLI at start-up, which
must not pay for numpy.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from jmigrate.encoders.base import Encoder, Usage, estimate_tokens, l2_normalise, truncate_and_normalise

__all__ = ["Encoder", "Usage", "estimate_tokens", "l2_normalise", "truncate_and_normalise"]


def __getattr__(name: str) -> Any:
    if name in __all__:
        from jmigrate.encoders import base

        return getattr(base, name)
    raise AttributeError(f"module 'jmigrate.encoders' has no attribute {name!r}")
