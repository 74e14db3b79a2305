"""Every renderer on a hand-made plan: JSON against its shipped schema, SARIF against the OASIS schema."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import jsonschema
import pytest

from jmigrate.models import LICENCE_V3_NOTE, ORDERING_RULE
from jmigrate.rules.registry import all_rules
from jmigrate.scan.finding import Applicability, Edit, Finding, PlanResult, SkippedFile
from jmigrate.scan.render import render
from jmigrate.scan.render.plan_json import plan_from_dict, plan_schema, plan_to_dict

SARIF_SCHEMA = Path(__file__).parent / "data" / "sarif-schema-2.1.0.json"


def sample_plan(root: Path) -> PlanResult:
    findings = [
        Finding("JM101", "v2-model-name", "app/ingest.py", 12, 17, 12, 43,
                "jina-embeddings-v2-base-en is a Jina Embeddings v2 model (768 dims)",
                "Use jina-embeddings-v3 with task=retrieval.passage", Applicability.SAFE,
                [Edit(210, 236, "jina-embeddings-v3")],
                {"model": "jina-embeddings-v3", "task": "retrieval.passage",
                 "task_reason": "documents stored with from_documents on line 20"}),
        Finding("JM104", "v2-code-model-name", "app/code.py", 3, 1, 3, 10, "the v2 code model | stays",
                "Keep it for code corpora", Applicability.MANUAL),
        Finding("JM101", "v2-model-name", "notebooks/dédup.ipynb", 29, 36, 29, 62,
                "jina-embeddings-v2-base-en is a Jina Embeddings v2 model", "Use jina-embeddings-v3",
                Applicability.UNSAFE, [Edit(900, 926, "jina-embeddings-v3")], cell=3, cell_line=2),
    ]
    skipped = [SkippedFile("broken.py", "syntax error at line 4: invalid syntax")]
    return PlanResult(str(root), findings, skipped,
                      files_scanned=40, bytes_scanned=123_456,
                      file_hashes={"app/ingest.py": "a" * 64, "notebooks/dédup.ipynb": "b" * 64},
                      notes=[ORDERING_RULE, "A rule's own note."],
                      encodings={"app/ingest.py": "utf-8", "notebooks/dédup.ipynb": "utf-8-sig"})


def test_json_follows_its_schema_and_round_trips(tmp_path: Path) -> None:
    result = sample_plan(tmp_path)
    data = json.loads(render(result, "json"))
    jsonschema.Draft202012Validator.check_schema(plan_schema())
    jsonschema.validate(data, plan_schema(), cls=jsonschema.Draft202012Validator)
    assert data["version"] == 1 and data["tool"] == "jmigrate" and data["root"] == str(tmp_path)
    assert data["summary"]["by_applicability"] == {"safe": 1, "unsafe": 1, "manual": 1}
    assert data["summary"]["by_code"] == {"JM101": 2, "JM104": 1} and data["summary"]["fixable"] == 1
    assert [f["path"] for f in data["findings"]] == ["app/code.py", "app/ingest.py", "notebooks/dédup.ipynb"]
    assert data["findings"][1]["edits"] == [{"start": 210, "end": 236, "replacement": "jina-embeddings-v3"}]
    assert data["findings"][2]["cell"] == 3 and data["findings"][2]["cell_line"] == 2
    # The migration checklist travels with the plan, the rules' own notes once each.
    assert data["notes"][0] == ORDERING_RULE and data["notes"].count(ORDERING_RULE) == 1
    # Only the steps that apply: no finding proposes local v3 weights, so no licence step (issue 12).
    assert LICENCE_V3_NOTE not in data["notes"] and data["notes"][-1] == "A rule's own note."
    back = plan_from_dict(data)
    assert sorted(back.findings, key=lambda f: f.path) == sorted(result.findings, key=lambda f: f.path)
    assert (back.file_hashes, back.encodings, back.skipped) == (result.file_hashes, result.encodings,
                                                               result.skipped)
    assert plan_to_dict(back) == data


def _sarif(result: PlanResult) -> dict[str, Any]:
    log: dict[str, Any] = json.loads(render(result, "sarif"))
    schema = json.loads(SARIF_SCHEMA.read_text("utf-8"))
    jsonschema.Draft4Validator.check_schema(schema)
    jsonschema.validate(log, schema, cls=jsonschema.Draft4Validator)
    return log


def test_sarif_is_valid_2_1_0_with_rules_regions_and_fixes(tmp_path: Path) -> None:
    log = _sarif(sample_plan(tmp_path))
    run = log["runs"][0]
    assert log["version"] == "2.1.0"
    rules = run["tool"]["driver"]["rules"]
    assert [r["id"] for r in rules] == [r.code for r in all_rules()]
    jm101 = next(r for r in rules if r["id"] == "JM101")
    assert jm101["name"] == "v2-model-name" and jm101["shortDescription"]["text"]
    assert jm101["fullDescription"]["text"] and "Fix:" in jm101["help"]["text"]
    results = run["results"]
    assert [r["ruleId"] for r in results] == ["JM104", "JM101", "JM101"]
    ingest = results[1]
    assert rules[ingest["ruleIndex"]]["id"] == "JM101" and ingest["level"] == "warning"
    loc = ingest["locations"][0]["physicalLocation"]
    assert loc["artifactLocation"] == {"uri": "app/ingest.py", "uriBaseId": "SRCROOT"}
    assert loc["region"] == {"startLine": 12, "startColumn": 17, "endLine": 12, "endColumn": 43}
    assert ingest["fixes"][0]["artifactChanges"][0]["replacements"] == [
        {"deletedRegion": {"charOffset": 210, "charLength": 26},
         "insertedContent": {"text": "jina-embeddings-v3"}}
    ]
    assert "fixes" not in results[0]  # manual: nothing to offer
    nb_uri = results[2]["locations"][0]["physicalLocation"]["artifactLocation"]["uri"]
    assert nb_uri == "notebooks/d%C3%A9dup.ipynb"
    assert results[2]["properties"]["cell"] == 3
    assert run["columnKind"] == "unicodeCodePoints"
    assert run["originalUriBaseIds"]["SRCROOT"]["uri"] == tmp_path.as_uri() + "/"
    note = run["invocations"][0]["toolExecutionNotifications"][0]
    assert "broken.py" in note["message"]["text"]


def test_sarif_of_a_clean_tree_is_still_valid(tmp_path: Path) -> None:
    log = _sarif(PlanResult(str(tmp_path), [], [], 3, 10))
    assert log["runs"][0]["results"] == []


def test_markdown_has_checklist_table_and_escapes_cells(tmp_path: Path) -> None:
    md = render(sample_plan(tmp_path), "markdown")
    assert md.startswith("## Jina Embeddings v2 → v3 migration\n")
    assert "**3 findings** in 3 of 40 files: 1 safe, 1 unsafe, 1 manual; 1 skipped." in md
    assert f"- [ ] {ORDERING_RULE}" in md
    assert "| File | Line | Rule | Problem | Fix | Applicability | v3 settings |" in md
    assert "the v2 code model \\| stays" in md  # a pipe in a message must not split the row
    assert "| `notebooks/dédup.ipynb` | 29:36 (cell 3, line 2) | JM101 `v2-model-name` |" in md
    rows = [line for line in md.splitlines() if line.startswith("| `")]
    assert len(rows) == 3 and all(row.count(" | ") == 6 for row in rows)
    assert "<details><summary>Skipped files (1)</summary>" in md


def test_text_puts_the_checklist_first_and_groups_by_file(tmp_path: Path) -> None:
    text = render(sample_plan(tmp_path), "text")
    assert "\x1b[" not in text and not any(line.endswith(" ") for line in text.splitlines())
    checklist, summary = text.index("Migration checklist"), text.index("Summary")
    first_file = text.index("\napp/code.py\n")
    assert checklist < summary < first_file < text.index("\napp/ingest.py\n")
    assert f"  1. {ORDERING_RULE}" in text
    assert ("3 findings in 3 of 40 files scanned (123.5 KB): 1 fixed by `jmigrate apply`, "
            "1 more with --unsafe") in text
    assert "  12:17  JM101 [v2-model-name] jina-embeddings-v2-base-en is a Jina Embeddings v2 model" in text
    assert "      fix: Use jina-embeddings-v3 with task=retrieval.passage (safe)" in text
    assert ("      v3: model=jina-embeddings-v3; task=retrieval.passage "
            "(documents stored with from_documents on line 20)") in text
    assert "  29:36 (cell 3, line 2)  JM101" in text
    assert "  broken.py: syntax error at line 4: invalid syntax" in text
    assert "\x1b[" in render(sample_plan(tmp_path), "text", color=True)


def test_text_for_a_clean_tree_has_no_checklist(tmp_path: Path) -> None:
    text = render(PlanResult(str(tmp_path), [], [], 7, 2_000), "text")
    assert "Migration checklist" not in text
    assert "0 findings in 0 of 7 files scanned (2.0 KB)" in text


def test_unknown_format_is_a_usage_error(tmp_path: Path) -> None:
    from jmigrate.errors import UsageError

    with pytest.raises(UsageError, match="unknown format 'html'"):
        render(PlanResult(str(tmp_path), [], [], 0, 0), "html")
