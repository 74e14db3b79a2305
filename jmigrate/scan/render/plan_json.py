"""The JSON plan: `plan --format json` writes it, `apply --plan` reads it back. Schema: plan.schema.json."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping
from dataclasses import asdict
from functools import cache
from importlib import resources
from typing import Any

from jmigrate.errors import InputError
from jmigrate.scan.finding import Applicability, Edit, Finding, Mention, PlanResult, SkippedFile
from jmigrate.scan.render.summary import migration_checklist, sorted_findings, summarize
from jmigrate.version import VERSION

PLAN_VERSION = 1


@cache
def plan_schema() -> dict[str, Any]:
    """The JSON Schema (draft 2020-12) every plan file must satisfy; shipped inside the package."""
    text = resources.files("jmigrate.scan.render").joinpath("plan.schema.json").read_text("utf-8")
    schema: dict[str, Any] = json.loads(text)
    return schema


def plan_checksum(data: Mapping[str, Any]) -> str:
    """sha256 of the plan without its `checksum` field, as canonical JSON (sorted keys, no spaces).

    Not a signature (anyone can recompute it): it makes `apply --plan` refuse a plan edited by hand
    or damaged in transit, instead of writing edits `plan` never proposed.
    """
    body = {k: v for k, v in data.items() if k != "checksum"}
    canon = json.dumps(body, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    # surrogatepass: a root whose name is not UTF-8 (a lone surrogate in Python) still has a checksum,
    # and any valid text hashes exactly as before.
    return "sha256:" + hashlib.sha256(canon.encode("utf-8", "surrogatepass")).hexdigest()


def plan_to_dict(result: PlanResult) -> dict[str, Any]:
    data = _plan_body(result)
    data["checksum"] = plan_checksum(data)
    return data


def _plan_body(result: PlanResult) -> dict[str, Any]:
    s = summarize(result)
    return {
        "version": PLAN_VERSION,
        "tool": "jmigrate",
        "tool_version": VERSION,
        "root": result.root,
        "summary": {
            "files_scanned": s.files_scanned,
            "bytes_scanned": s.bytes_scanned,
            "files_with_findings": s.files_with_findings,
            "findings": s.findings,
            "fixable": s.fixable,
            "by_applicability": s.by_applicability,
            "by_code": s.by_code,
            "skipped": s.skipped,
            "mentions": s.mentions,
        },
        "notes": migration_checklist(result),
        "findings": [f.to_dict() for f in sorted_findings(result)],
        # Not findings: never applied, never a reason for exit status 1 (issue 12).
        "mentions": [asdict(m) for m in result.mentions],
        "skipped": [asdict(k) for k in sorted(result.skipped, key=lambda k: k.path)],
        "file_hashes": dict(sorted(result.file_hashes.items())),
        "encodings": dict(sorted(result.encodings.items())),
        "stores": result.stores,
        # Read by `jmigrate reindex --config plan.json`: the settings this plan recommends.
        "reindex": suggested_reindex_settings(),
    }


def suggested_reindex_settings() -> dict[str, Any]:
    from jmigrate.models import DEFAULT_DOCUMENT_TASK, MODELS, V3

    return {"model": V3, "task": DEFAULT_DOCUMENT_TASK, "dimensions": MODELS[V3].dims}


def render_json(result: PlanResult) -> str:
    return json.dumps(plan_to_dict(result), indent=2, ensure_ascii=False) + "\n"


def validate_plan(data: Any) -> None:
    """Raise InputError naming the first place where `data` breaks the plan schema."""
    import jsonschema

    validator = jsonschema.Draft202012Validator(plan_schema())
    error = jsonschema.exceptions.best_match(validator.iter_errors(data))
    if error is not None:
        where = "/".join(str(p) for p in error.absolute_path) or "(top level)"
        raise InputError(f"not a jmigrate plan (version {PLAN_VERSION}): at {where}: {error.message[:200]}")


def plan_from_dict(data: Any) -> PlanResult:
    """Rebuild a PlanResult from a plan document: schema-checked, and refused if edited since written."""
    validate_plan(data)
    if data["checksum"] != plan_checksum(data):
        raise InputError("the plan was changed after `jmigrate plan` wrote it (its checksum does not match); "
                         "plan again instead of editing the file (use --select/--ignore to choose findings)")
    findings = [
        Finding(
            code=f["code"],
            rule=f["rule"],
            path=f["path"],
            line=f["line"],
            column=f["column"],
            end_line=f["end_line"],
            end_column=f["end_column"],
            message=f["message"],
            fix_title=f["fix_title"],
            applicability=Applicability(f["applicability"]),
            edits=[Edit(e["start"], e["end"], e["replacement"]) for e in f["edits"]],
            recommendation=f["recommendation"],
            cell=f["cell"],
            cell_line=f["cell_line"],
        )
        for f in data["findings"]
    ]
    return PlanResult(
        root=data["root"],
        findings=findings,
        skipped=[SkippedFile(k["path"], k["reason"]) for k in data["skipped"]],
        files_scanned=data["summary"]["files_scanned"],
        bytes_scanned=data["summary"]["bytes_scanned"],
        file_hashes=dict(data["file_hashes"]),
        encodings=dict(data["encodings"]),
        notes=list(data["notes"]),
        stores=list(data.get("stores", [])),
        mentions=[Mention(**m) for m in data.get("mentions", [])],
    )
