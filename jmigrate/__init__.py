"""jmigrate: move a project from Jina Embeddings v2 to v3 (find the code, re-embed the data, verify)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from jmigrate.version import VERSION

__version__ = VERSION  # also `jmigrate.version.VERSION`, which library modules import

if TYPE_CHECKING:
    from jmigrate.scan.plan import plan as plan


def __getattr__(name: str) -> Any:
    # The library API is imported lazily so `import jmigrate` stays cheap for the CLI.
    if name == "plan":
        from jmigrate.scan.plan import plan

        return plan
    raise AttributeError(name)
