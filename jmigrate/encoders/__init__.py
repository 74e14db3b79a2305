"""Encoders: everything that turns text into vectors, behind one interface (`Encoder`)."""

from jmigrate.encoders.base import Encoder, Usage, estimate_tokens, l2_normalise, truncate_and_normalise

__all__ = ["Encoder", "Usage", "estimate_tokens", "l2_normalise", "truncate_and_normalise"]
