"""jmigrate: move a project from Jina Embeddings v2 to v3 (find the code, re-embed the data, verify)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

__version__ = "0.1.0"

if TYPE_CHECKING:
    from jmigrate.scan.plan import plan as plan


def __getattr__(name: str) -> Any:
    # The library API is imported lazily so `import jmigrate` stays cheap for the CLI.
    if name == "plan":
        from jmigrate.scan.plan import plan

        return plan
    raise AttributeError(name)
