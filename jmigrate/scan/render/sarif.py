"""SARIF 2.1.0 for GitHub code scanning (and any SARIF viewer): one run, rules from the registry."""

from __future__ import annotations

import json
from typing import Any
from urllib.parse import quote

from jmigrate.scan.apply import scan_base
from jmigrate.scan.finding import Applicability, Finding, PlanResult
from jmigrate.scan.render.summary import recommendation_text, sorted_findings
from jmigrate.version import VERSION

SARIF_SCHEMA_URI = "https://json.schemastore.org/sarif-2.1.0.json"
ROOT_ID = "SRCROOT"


def _rule_descriptors() -> list[dict[str, Any]]:
    from jmigrate.rules.registry import all_rules

    rules = []
    for r in all_rules():
        help_text = f"{r.explanation}\n\nFix: {r.fix}\n\nExample that fires: {r.example}"
        help_md = f"{r.explanation}\n\n**Fix:** {r.fix}\n\nExample that fires:\n\n```\n{r.example}\n```"
        rules.append(
            {
                "id": r.code,
                "name": r.name,
                "shortDescription": {"text": r.summary},
                "fullDescription": {"text": r.explanation},
                "help": {"text": help_text, "markdown": help_md},
                "defaultConfiguration": {"level": "warning"},
                "properties": {
                    "applicability": r.applicability.value,
                    "tags": ["jina-embeddings-v3-migration"],
                },
            }
        )
    return rules


def _location(path: str) -> dict[str, Any]:
    return {"uri": quote(path), "uriBaseId": ROOT_ID}


def _fixes(f: Finding) -> list[dict[str, Any]]:
    if not f.edits or f.applicability is Applicability.MANUAL:
        return []
    # Edit offsets are characters of the decoded text; `columnKind` below says characters are code points.
    replacements = [
        {
            "deletedRegion": {"charOffset": e.start, "charLength": e.end - e.start},
            "insertedContent": {"text": e.replacement},
        }
        for e in sorted(f.edits, key=lambda e: (e.start, e.end))
    ]
    return [
        {
            "description": {"text": f"{f.fix_title} ({f.applicability.value} fix)"},
            "artifactChanges": [{"artifactLocation": _location(f.path), "replacements": replacements}],
        }
    ]


def _result(f: Finding, index: dict[str, int]) -> dict[str, Any]:
    props: dict[str, Any] = {"applicability": f.applicability.value, "rule": f.rule}
    if f.recommendation:
        props["recommendation"] = f.recommendation
    if f.cell is not None:
        props["cell"], props["cell_line"] = f.cell, f.cell_line
    rec = recommendation_text(f)
    res: dict[str, Any] = {
        "ruleId": f.code,
        "level": "warning",
        "message": {"text": f"{f.message} Fix: {f.fix_title}" + (f" (v3: {rec})" if rec else "")},
        "locations": [
            {
                "physicalLocation": {
                    "artifactLocation": _location(f.path),
                    "region": {
                        "startLine": f.line,
                        "startColumn": f.column,
                        "endLine": f.end_line,
                        "endColumn": f.end_column,
                    },
                }
            }
        ],
        "properties": props,
    }
    if f.code in index:
        res["ruleIndex"] = index[f.code]
    fixes = _fixes(f)
    if fixes:
        res["fixes"] = fixes
    return res


def sarif_log(result: PlanResult) -> dict[str, Any]:
    rules = _rule_descriptors()
    index = {r["id"]: i for i, r in enumerate(rules)}
    notifications = [
        {
            "level": "note",
            "message": {"text": f"skipped {k.path}: {k.reason}"},
            "locations": [{"physicalLocation": {"artifactLocation": _location(k.path)}}],
        }
        for k in sorted(result.skipped, key=lambda k: k.path)
    ]
    return {
        "$schema": SARIF_SCHEMA_URI,
        "version": "2.1.0",
        "runs": [
            {
                "tool": {
                    "driver": {
                        "name": "jmigrate",
                        "version": VERSION,
                        "semanticVersion": VERSION,
                        "rules": rules,
                    }
                },
                # Columns and char offsets count Unicode code points, as Python strings do (SARIF's default
                # is UTF-16 code units, which differ for characters outside the BMP).
                "columnKind": "unicodeCodePoints",
                "originalUriBaseIds": {ROOT_ID: {"uri": scan_base(result.root).resolve().as_uri() + "/"}},
                "invocations": [{"executionSuccessful": True, "toolExecutionNotifications": notifications}],
                # Mentions (models named in prose, comments, logs) are not results, not even `note`s:
                # code scanning opens an alert for every result, and nothing there needs changing.
                # Their count stays visible to SARIF readers as a run property.
                "properties": {"mentions": len(result.mentions)},
                "results": [_result(f, index) for f in sorted_findings(result)],
            }
        ],
    }


def render_sarif(result: PlanResult) -> str:
    return json.dumps(sarif_log(result), indent=2, ensure_ascii=False) + "\n"
