"""The deterministic fake encoder now lives in `jmigrate.encoders.fake` (the factory builds it for
`--encoder fake`); kept importable here for tests and benchmarks."""

from jmigrate.encoders.fake import FakeEncoder, hashed_vector

__all__ = ["FakeEncoder", "hashed_vector"]
