"""Every rule against its fixture (marked lines fire, nothing else does); fixes leave only manual findings."""

from __future__ import annotations

import ast
import json
import re
import shutil
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from jmigrate.errors import UsageError
from jmigrate.models import LICENCE_V3_NOTE, ORDERING_RULE
from jmigrate.rules.registry import all_rules
from jmigrate.scan.finding import Applicability, Edit, PlanResult
from jmigrate.scan.plan import plan
from jmigrate.scan.walk import decode_bytes, language_of

FIXTURES = Path(__file__).resolve().parent.parent / "fixtures" / "rules"
FIXTURE_FILES = sorted(p for p in FIXTURES.iterdir() if p.is_file())
# A mark is a trailing comment listing codes: `# JM101`, `// JM201`, `-- JM401`, `# JM101 JM103`.
MARK = re.compile(r"(?:#|//|--)\s*(JM\d{3}(?:[ ,]+JM\d{3})*)\s*$")


def marks(path: Path, code: str) -> set[tuple[str, int]]:
    out = set()
    for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1):
        m = MARK.search(line)
        if m:
            out |= {(c, number) for c in re.findall(r"JM\d{3}", m.group(1)) if c == code}
    return out


@pytest.mark.parametrize("fixture", FIXTURE_FILES, ids=lambda p: p.name)
def test_fixture_fires_exactly_on_marked_lines(fixture: Path) -> None:
    code = fixture.name[:5]
    result = plan(fixture, select=[code])
    assert {(f.code, f.line) for f in result.findings} == marks(fixture, code)
    assert result.skipped == []


def test_every_rule_has_a_fixture_that_fires() -> None:
    for rule in all_rules():
        assert any(marks(p, rule.code) for p in FIXTURE_FILES if p.name.startswith(rule.code)), rule.code


def test_rule_records_follow_the_conventions() -> None:
    rules = all_rules()
    assert len({r.code for r in rules}) == len(rules) and len({r.name for r in rules}) == len(rules)
    for r in rules:
        assert re.fullmatch(r"JM[1-5]\d\d", r.code) and re.fullmatch(r"[a-z0-9]+(-[a-z0-9]+)*", r.name)
        assert r.summary and r.explanation and r.example and r.fix


def apply_edits(text: str, edits: list[Edit]) -> str:
    """Apply edits back to front; two edits of one file must never overlap."""
    ordered = sorted(edits, key=lambda e: (e.start, e.end), reverse=True)
    limit = len(text) + 1
    for e in ordered:
        assert e.end <= limit, f"overlapping edits at {e}"
        text = text[: e.start] + e.replacement + text[e.end :]
        limit = e.start
    return text


def apply_all(root: Path, result: PlanResult) -> None:
    by_file: dict[str, list[Edit]] = {}
    for f in result.findings:
        if f.applicability is not Applicability.MANUAL:
            assert f.edits, f"{f.code} at {f.path}:{f.line} is {f.applicability.value} without edits"
            by_file.setdefault(f.path, []).extend(f.edits)
        else:
            assert not f.edits
    for rel, edits in by_file.items():
        path = root / rel
        text, encoding = decode_bytes(path.read_bytes(), language_of(rel))
        assert encoding == result.encodings[rel]
        path.write_bytes(apply_edits(text, edits).encode(encoding))


def test_applying_every_fix_leaves_only_manual_findings(tmp_path: Path) -> None:
    root = tmp_path / "repo"
    shutil.copytree(FIXTURES, root)
    first = plan(root)
    assert any(f.applicability is Applicability.SAFE for f in first.findings)
    assert any(f.applicability is Applicability.UNSAFE for f in first.findings)
    apply_all(root, first)
    again = plan(root)
    leftovers = [
        (f.code, f.path, f.line) for f in again.findings if f.applicability is not Applicability.MANUAL
    ]
    assert leftovers == []
    # Every manual finding was already in the first plan, except JM502: the renamed v3 code that still
    # encodes without a task is what a person must finish (issue 12: never a false zero after `apply`).
    before = {(f.code, f.path) for f in first.findings}
    new = {(f.code, f.path) for f in again.findings} - before
    assert {code for code, _ in new} == {"JM502"}
    for py in root.glob("*.py"):
        ast.parse(py.read_text(encoding="utf-8"))  # the rewritten Python still parses
    assert "jina-embeddings-v3" in (root / "JM101.py").read_text(encoding="utf-8")


def test_widths_count_only_when_the_project_uses_a_v2_model_of_that_width(tmp_path: Path) -> None:
    (tmp_path / "schema.sql").write_text("CREATE TABLE t (embedding vector(768));\n")
    (tmp_path / "settings.env").write_text("EMBEDDING_DIM=768\n")
    assert plan(tmp_path).findings == []  # a 768 column alone could be any model
    (tmp_path / "code.py").write_text('MODEL = "jina-embeddings-v2-base-code"\n')
    assert {f.code for f in plan(tmp_path).findings} == {"JM104"}  # base-code keeps its 768 index
    (tmp_path / "app.py").write_text('MODEL = "jinaai/jina-embeddings-v2-base-en"\n')
    found = plan(tmp_path).findings
    width = [f for f in found if f.code in ("JM401", "JM403")]
    assert [(f.code, f.path, f.line) for f in width] == [
        ("JM401", "schema.sql", 1),
        ("JM403", "settings.env", 1),
    ]
    assert "jina-embeddings-v2-base-en" in width[0].message and width[0].edits[0].replacement == "1024"
    assert "dimensions=768" in width[0].fix_title


def test_select_and_ignore_take_codes_and_prefixes() -> None:
    target = FIXTURES / "JM201.py"
    assert {f.code for f in plan(target, select=["JM2"]).findings} == {"JM201"}
    assert {f.code for f in plan(target).findings} == {"JM101", "JM201"}
    assert {f.code for f in plan(target, ignore=["JM1"]).findings} == {"JM201"}
    assert plan(target, select=["JM1"], ignore=["JM101"]).findings == []
    with pytest.raises(UsageError, match="JM999"):
        plan(target, select=["JM999"])


def test_result_is_sorted_and_carries_notes_and_hashes() -> None:
    result = plan(FIXTURES)
    keys = [(f.path, f.line, f.column) for f in result.findings]
    assert keys == sorted(keys)
    assert result.notes[0] == ORDERING_RULE and LICENCE_V3_NOTE in result.notes  # JM308 proposes local v3
    assert set(result.file_hashes) == {f.path for f in result.findings} == set(result.encodings)
    assert all(len(h) == 64 for h in result.file_hashes.values())
    assert result.files_scanned == sum(1 for p in FIXTURES.rglob("*") if p.is_file())  # JM505_project/ too
    first = result.findings[0]
    assert first.to_dict()["applicability"] in ("safe", "unsafe", "manual") and first.rule


def test_ids_that_cannot_simply_be_renamed_are_manual() -> None:
    by_line = {f.line: f for f in plan(FIXTURES / "JM101.py", select=["JM101"]).findings}
    source = (FIXTURES / "JM101.py").read_text(encoding="utf-8").splitlines()

    def finding(marker: str) -> Applicability:
        return by_line[next(i for i, s in enumerate(source, 1) if s.startswith(marker))].applicability

    assert finding("MODEL =") is Applicability.UNSAFE
    assert finding("HF_ID =") is Applicability.UNSAFE
    assert finding("MIRROR =") is Applicability.MANUAL  # Xenova has no v3 mirror
    assert finding("XENOVA_AT_RUNTIME =") is Applicability.MANUAL  # "Xenova/{}".format(...)
    assert finding("JINAAI_AT_RUNTIME =") is Applicability.UNSAFE
    assert finding("PINNED =") is Applicability.MANUAL  # revision= pins a v2 commit


PIECES = [
    "jina-embeddings-v2-base-en",
    "jinaai/",
    "Xenova/",
    "jina_ai/",
    "jina/",
    "jina-embeddings-v2-",
    "{",
    "}",
    "(",
    ")",
    "[",
    "]",
    '"',
    "'",
    "`",
    "\\",
    ",",
    ":",
    "=",
    " ",
    "\n",
    "\r\n",
    "\r",
    "768",
    "512",
    "vector(",
    "size: ",
    "dims",
    "dense_vector",
    "api.jina.ai/v1/embeddings",
    "JSON.stringify(",
    "-d '",
    "normalized",
    "encoding_format",
    "task",
    "model",
    "new JinaEmbeddings(",
    "JinaEmbeddings(",
    "requests.post(",
    "json=",
    "text2vec-jinaai",
    '"service": "jinaai"',
    "base_url=https://api.jina.ai",
    "é",
    "日本",
    "\t",
    "#",
    "//",
    "def f():\n    return ",
    "assert x.shape[1] == ",
    "EMBEDDING_DIM=",
    "np.zeros((n, ",
    "embed_query(",
    "%pip",
]


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    parts=st.lists(st.sampled_from(PIECES), max_size=40),
    suffix=st.sampled_from([".py", ".ts", ".yaml", ".sh", ".sql", ".env", ".md", ".json", ".ipynb"]),
)
def test_no_input_crashes_plan(tmp_path: Path, parts: list[str], suffix: str) -> None:
    text = "".join(parts)
    if suffix == ".ipynb":  # a well-formed notebook around the random code (broken JSON is tested elsewhere)
        text = json.dumps({"cells": [{"cell_type": "code", "source": [text]}], "metadata": {}})
    path = tmp_path / f"f{suffix}"
    path.write_text(text, encoding="utf-8", newline="")
    result = plan(path)
    decoded = decode_bytes(path.read_bytes(), language_of(path.name))[0]
    for f in result.findings:  # every position and edit points inside the file
        assert 1 <= f.line <= f.end_line and f.column >= 1
        assert all(0 <= e.start <= e.end <= len(decoded) for e in f.edits)


def test_edits_of_different_rules_on_one_payload_compose(tmp_path: Path) -> None:
    source = (
        "import requests\n"
        "def index_documents(docs):\n"
        '    a = requests.post("https://api.jina.ai/v1/embeddings",'
        ' json={"model": "jina-embeddings-v2-base-en", "normalized": True})\n'
        "    b = requests.post('https://api.jina.ai/v1/embeddings', json={'normalized': True,\n"
        "                      'model': 'jina-embeddings-v2-base-en', 'encoding_format': 'float',"
        " 'input': docs})\n"
    )
    path = tmp_path / "p.py"
    path.write_text(source, encoding="utf-8")
    fixed = apply_edits(source, [e for f in plan(path).findings for e in f.edits])
    assert fixed.splitlines()[2:] == [
        '    a = requests.post("https://api.jina.ai/v1/embeddings", json={"task": "retrieval.passage", '
        '"model": "jina-embeddings-v3"})',
        "    b = requests.post('https://api.jina.ai/v1/embeddings', json={'task': 'retrieval.passage',",
        "                      'model': 'jina-embeddings-v3', 'embedding_type': 'float', 'input': docs})",
    ]
