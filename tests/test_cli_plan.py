"""`jmigrate plan / apply / rules` end to end on a copy of fixtures/repo, through `jmigrate.cli.app.main`.

(docs/cli.md's copy of each command's `--help` is checked in tests/test_cli_conventions.py.)
"""

from __future__ import annotations

import ast
import json
import shutil
from pathlib import Path
from typing import Any

import jsonschema
import pytest
from helpers import snapshot_tree

from jmigrate.cli.app import main
from jmigrate.rules.registry import all_rules
from jmigrate.scan.render.plan_json import plan_schema
from jmigrate.scan.walk import decode_bytes, language_of

ROOT = Path(__file__).resolve().parent.parent
FIXTURE = ROOT / "fixtures" / "repo"
SARIF_SCHEMA = Path(__file__).parent / "data" / "sarif-schema-2.1.0.json"
WINDOWS_FILE = "app/faq_batch_windows.py"


@pytest.fixture
def repo(tmp_path: Path) -> Path:
    dest = tmp_path / "repo"
    shutil.copytree(FIXTURE, dest)
    return dest


def run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def plan_json(capsys: pytest.CaptureFixture[str], repo: Path, *extra: str) -> dict[str, Any]:
    code, out, _ = run(capsys, "plan", str(repo), "--format", "json", *extra)
    data: dict[str, Any] = json.loads(out)
    assert code == (1 if data["findings"] else 0)
    return data


def test_plan_text_report_on_the_fixture_repo(repo: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code, out, err = run(capsys, "plan", str(repo))
    assert code == 1 and err == ""
    assert out.startswith(f"jmigrate plan: {repo}\n\nMigration checklist (in this order)\n  1. Re-embed")
    for path in ("app/embed_api.py", "db/schema.sql", "web/src/embed.ts", "notebooks/dedup.ipynb", ".env"):
        assert f"\n{path}\n" in out
    assert "(cell 3, line " in out  # notebook findings carry their cell
    assert "\napp/rerank.py\n" not in out  # reranker and an already-migrated v3 call: not findings


def test_plan_json_is_schema_valid_and_spares_the_near_misses(
    repo: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    data = plan_json(capsys, repo)
    jsonschema.validate(data, plan_schema(), cls=jsonschema.Draft202012Validator)
    assert data["root"] == str(repo) and data["summary"]["findings"] == len(data["findings"]) > 10
    by_file: dict[str, list[dict[str, Any]]] = {}
    for f in data["findings"]:
        by_file.setdefault(f["path"], []).append(f)
        assert f["path"] in data["file_hashes"]
    assert "app/rerank.py" not in by_file
    assert not any("reranker" in f["message"] for f in data["findings"])
    # Chunk sizes and HNSW parameters are not embedding widths.
    settings = [f["line"] for f in by_file.get("app/settings.py", [])]
    assert 11 not in settings and 13 not in settings
    code_model = [f for f in data["findings"] if "v2-base-code" in f["message"]]
    assert code_model and all(f["applicability"] == "manual" for f in code_model if f["code"] == "JM104")


def test_plan_sarif_validates_against_the_oasis_schema(
    repo: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code, out, _ = run(capsys, "plan", str(repo), "-f", "sarif")
    log = json.loads(out)
    jsonschema.validate(log, json.loads(SARIF_SCHEMA.read_text("utf-8")), cls=jsonschema.Draft4Validator)
    assert code == 1
    results = log["runs"][0]["results"]
    assert results and {r["ruleId"] for r in results} <= {r.code for r in all_rules()}
    for r in results:
        uri = r["locations"][0]["physicalLocation"]["artifactLocation"]["uri"]
        assert not uri.startswith("/") and (repo / uri).is_file()


def test_plan_markdown_and_output_file(
    repo: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    report = tmp_path / "migration.md"
    code, out, err = run(capsys, "plan", str(repo), "--format", "markdown", "--output", str(report))
    assert code == 1 and out == ""
    assert f"wrote {report}" in err and " findings in " in err
    md = report.read_text("utf-8")
    assert "### Checklist" in md and "| File | Line | Rule |" in md and "`app/embed_api.py`" in md
    code, out, err = run(capsys, "plan", str(repo), "-o", str(tmp_path / "no-such-dir" / "r.txt"))
    assert code == 2 and "cannot write" in err


def test_select_and_ignore(repo: Path, capsys: pytest.CaptureFixture[str]) -> None:
    everything = plan_json(capsys, repo)
    codes = {f["code"] for f in everything["findings"]}
    some = sorted(codes)[0]
    only = plan_json(capsys, repo, "--select", some)
    assert only["findings"] and {f["code"] for f in only["findings"]} == {some}
    rest = plan_json(capsys, repo, "--ignore", f" {some},")
    assert len(rest["findings"]) == len(everything["findings"]) - len(only["findings"])
    code, out, err = run(capsys, "plan", str(repo), "--select", "JM999")
    assert code == 2 and out == "" and "JM999" in err


def test_plan_on_a_clean_tree_exits_0(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    (tmp_path / "app.py").write_text('MODEL = "jina-embeddings-v3"\nCHUNK_SIZE = 512\n')
    code, out, _ = run(capsys, "plan", str(tmp_path))
    assert code == 0 and "0 findings in 0 of 1 files scanned" in out


def test_plan_on_a_missing_path_exits_2(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code, out, err = run(capsys, "plan", str(tmp_path / "nope"))
    assert code == 2 and out == "" and "nope" in err


def test_diff_prints_a_patch_and_changes_nothing(repo: Path, capsys: pytest.CaptureFixture[str]) -> None:
    before = snapshot_tree(repo)
    code, safe_diff, err = run(capsys, "plan", str(repo), "--diff")
    assert code == 1 and " findings in " in err
    code, unsafe_diff, _ = run(capsys, "plan", str(repo), "--diff", "--unsafe")
    assert unsafe_diff.startswith("--- a/") and len(unsafe_diff) > len(safe_diff)
    assert "+++ b/app/embed_api.py\n" in unsafe_diff
    assert '+            "model": "jina-embeddings-v3",' in unsafe_diff
    assert snapshot_tree(repo) == before
    code, out, err = run(capsys, "plan", str(repo), "--diff", "--format", "json")
    assert code == 2 and out == "" and "cannot be combined" in err


def _assert_everything_parses(root: Path) -> None:
    for path in sorted(root.rglob("*")):
        rel = str(path.relative_to(root))
        if path.suffix == ".py":
            ast.parse(decode_bytes(path.read_bytes(), language_of(rel))[0], rel)
        elif path.suffix in (".json", ".ipynb"):
            doc = json.loads(path.read_text("utf-8"))
            for cell in doc.get("cells", []) if path.suffix == ".ipynb" else []:
                src = "".join(cell["source"])
                if cell["cell_type"] == "code" and not src.startswith("%"):
                    ast.parse(src, f"{rel} cell")


def test_apply_then_plan_again_leaves_only_manual_findings(
    repo: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    windows_before = (repo / WINDOWS_FILE).read_bytes()
    code, out, err = run(capsys, "apply", str(repo))
    assert out == "" and code == 1 and " remain (" in err  # unsafe and manual findings stay
    code, out, err = run(capsys, "apply", str(repo), "--unsafe")
    assert out == "" and "fixed app/embed_api.py:" in err
    _assert_everything_parses(repo)
    again = plan_json(capsys, repo)
    assert again["findings"], "the fixture has manual findings (the code model, ids built at run time)"
    assert {f["applicability"] for f in again["findings"]} == {"manual"}
    code, out, err = run(capsys, "apply", str(repo), "--unsafe")
    assert code == 1 and "0 findings fixed in 0 files" in err
    # The Windows file keeps its BOM and CRLF line endings; only the model name changed.
    windows_after = (repo / WINDOWS_FILE).read_bytes()
    assert windows_after.startswith(b"\xef\xbb\xbf") and windows_after.count(b"\r\n") == windows_before.count(
        b"\r\n") and b"\n" not in windows_after.replace(b"\r\n", b"")
    assert b"jina-embeddings-v2" not in windows_after


def test_apply_a_saved_plan_and_refuse_a_stale_one(
    repo: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    saved = tmp_path / "plan.json"
    assert run(capsys, "plan", str(repo), "-f", "json", "-o", str(saved))[0] == 1
    (repo / "app" / "embed_api.py").write_text((repo / "app" / "embed_api.py").read_text() + "# edited\n")
    before = snapshot_tree(repo)
    code, out, err = run(capsys, "apply", str(repo), "--unsafe", "--plan", str(saved))
    assert code == 2 and "app/embed_api.py: changed since it was planned" in err and "nothing written" in err
    assert snapshot_tree(repo) == before
    assert run(capsys, "plan", str(repo), "-f", "json", "-o", str(saved))[0] == 1
    code, out, err = run(capsys, "apply", str(repo), "--unsafe", "--plan", str(saved))
    assert code == 1 and "fixed app/embed_api.py:" in err
    code, out, err = run(capsys, "apply", str(tmp_path), "--plan", str(saved))
    assert code == 2 and "was planned for" in err


def test_rules_lists_the_catalogue(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run(capsys, "rules")
    assert code == 0
    rules = all_rules()
    assert [line.split()[0] for line in out.splitlines()] == [r.code for r in rules]
    assert all(r.name in out for r in rules)
    code, out, _ = run(capsys, "rules", "--format", "json")
    data = json.loads(out)
    assert [d["code"] for d in data] == [r.code for r in rules]
    assert {"name", "summary", "explanation", "example", "fix", "applicability", "languages"} <= set(data[0])
