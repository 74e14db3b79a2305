"""`jmigrate cutover`: point the alias the application reads at the v3 collection, or back at v2.

The v3 collection holds the record of the last `verify` of exactly these two collections (written by
verify). Cutover to v3 refuses unless that record says v3 is not significantly worse and no integrity
check failed (or `force`); rolling back to v2 is always allowed. The switch uses the store's own
mechanism (see `Store.point_alias`); what the application must change is returned as lines to print.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from jmigrate.errors import JMigrateError, UsageError
from jmigrate.index.manifest import now
from jmigrate.models import V3
from jmigrate.stores import StoreURI, open_store, parse_uri

ATOMICITY = {
    "pgvector": "one transaction (the view is dropped and created again; readers wait for it, then see v3)",
    "qdrant": "one alias operation (atomic on the server)",
    "chroma": "NOT atomic: two renames; for a few milliseconds the alias name does not exist, and a running "
    "application keeps the collection object it holds until it looks the name up again",
    "lancedb": "one commit (readers see all old rows or all new rows), made by copying the rows into the "
    "alias table: time and disk in proportion to the collection",
}


class CutoverRefused(JMigrateError):
    """The last verify does not allow the cutover (v3 significantly worse, or an integrity failure)."""

    exit_code = 1


@dataclass
class CutoverResult:
    alias: str
    now_serves: str
    previous: str | None
    to: str
    backend: str
    lines: list[str] = field(default_factory=list)  # what the application must change, and how to undo


def default_alias(v2_collection: str) -> str:
    return f"{v2_collection}_live"


def cutover(uri: str, *, to: str, alias: str | None = None, force: bool = False) -> CutoverResult:
    """Switch the alias to the v3 collection `uri` names (`to="v3"`) or to its v2 collection (`to="v2"`)."""
    if to not in ("v2", "v3"):
        raise UsageError(f"--to must be v3 or v2, not {to!r}")
    u = parse_uri(uri)
    with open_store(u) as store:
        rec = store.read_record("verify")
        info = store.describe().info
    rec = rec if isinstance(rec, dict) else None
    v2 = (rec or {}).get("v2_collection")
    if rec is None or not v2:
        if to == "v3" and not force:
            raise UsageError(
                f"no verify of {u.collection} is recorded: run `jmigrate verify --v2 V2_URI --v3 "
                f"{u}` first (or pass --force)"
            )
        if not v2:
            raise UsageError(
                f"no v2 collection is known for {u.collection}: run `jmigrate verify` on the two "
                "collections first"
            )
    if rec is not None and rec.get("v3_collection") != u.collection:
        raise UsageError(
            f"the verify recorded with {u.collection} compared {rec.get('v3_collection')!r}, not "
            "this collection: run verify on these two collections again"
        )
    if to == "v3" and not force:
        _check_verdict(rec or {}, u)
    name = alias or default_alias(str(v2))
    target = u.collection if to == "v3" else str(v2)
    with open_store(u) as store:
        previous = store.point_alias(name, target)
        record = {
            "to": to,
            "alias": name,
            "serves": target,
            "previous": previous,
            "at": now(),
            "forced": force,
        }
        store.write_record("cutover", record)
    return CutoverResult(
        name, target, previous, to, u.backend, _instructions(u, name, target, str(v2), to, info, previous)
    )


def _check_verdict(rec: dict[str, Any], u: StoreURI) -> None:
    errors = rec.get("integrity_errors") or []
    if errors:
        raise CutoverRefused(
            f"the last verify of {rec.get('v2_collection')} vs {u.collection} found an integrity "
            f"failure ({errors[0]}); fix it and verify again, or pass --force"
        )
    if rec.get("v3_worse"):
        main = rec.get("main") or {}
        what = (
            f" ({main.get('metric')} {main.get('v2_mean', 0):.4f} -> {main.get('v3_mean', 0):.4f}, "
            f"p={main.get('p_value', 0):.3g})"
            if main
            else ""
        )
        raise CutoverRefused(
            f"the last verify says v3 is significantly worse than v2{what}; not switching "
            "(pass --force to switch anyway)"
        )


def _instructions(
    u: StoreURI, alias: str, target: str, v2: str, to: str, info: dict[str, Any], previous: str | None
) -> list[str]:
    lines = [
        f"{alias} now serves {target}" + (f" (was {previous})" if previous else " (new alias)"),
        f"how: {ATOMICITY.get(u.backend, 'the store alias mechanism')}",
    ]
    if to == "v3":
        dims = info.get("dimensions")
        lines += [
            "the application must change, at the same moment:",
            f"  - read {alias!r} instead of {v2!r} (once: later cutovers only move the alias)"
            if previous is None
            else f"  - keep reading {alias!r}",
            f"  - embed queries with {info.get('model') or V3}, task retrieval.query"
            + (f", dimensions={dims}" if dims else "")
            + " (the documents were embedded with retrieval.passage; v2 query vectors no longer match)",
            "  - `jmigrate plan PATH` lists the places in the code (model names, task, vector widths)",
            f"roll back: jmigrate cutover '{u}' --to v2 --alias {alias}",
        ]
    else:
        lines += [
            "the application must, at the same moment, embed queries with the v2 model again",
            f"forward again: jmigrate cutover '{u}' --to v3 --alias {alias}",
        ]
    return lines
