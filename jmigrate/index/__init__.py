"""Reading corpora and writing crash-safe Parquet indexes (`jmigrate reindex`).

The library entry points, `reindex`, `dry_run` and `Settings`, are imported on first use so that
importing one submodule does not pull in the whole pipeline (pyarrow).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from jmigrate.index.run import dry_run, reindex
    from jmigrate.index.settings import Settings

__all__ = ["Settings", "dry_run", "reindex"]


def __getattr__(name: str) -> Any:
    if name in ("reindex", "dry_run"):
        from jmigrate.index import run

        return getattr(run, name)
    if name == "Settings":
        from jmigrate.index.settings import Settings

        return Settings
    raise AttributeError(f"module 'jmigrate.index' has no attribute {name!r}")
