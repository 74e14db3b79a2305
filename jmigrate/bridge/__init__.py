"""A query bridge: map v3 query vectors into a v2 index's space, so v3 queries can search the v2 index
while the corpus is re-embedded. `jmigrate.bridge.load(path).apply(vectors)`; fit with `jmigrate bridge fit`.
"""

from __future__ import annotations

from jmigrate.bridge.apply import Bridge, BridgedVectors, PoorBridgeWarning, is_bridged, load
from jmigrate.bridge.manifest import BridgeManifest, BridgeMismatchError, MixedVectorsError

__all__ = [
    "Bridge",
    "BridgedVectors",
    "BridgeManifest",
    "BridgeMismatchError",
    "MixedVectorsError",
    "PoorBridgeWarning",
    "is_bridged",
    "load",
]
