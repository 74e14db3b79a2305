"""Jupyter notebooks: cells scanned as Python, positions and edits mapped back to the .ipynb JSON text."""

from __future__ import annotations

import ast
import json
from pathlib import Path
from typing import Any

from jmigrate.scan.finding import Applicability, Edit
from jmigrate.scan.plan import plan

V2 = "jina-embeddings-v2-base-en"


def notebook(*cells: tuple[str, str | list[str]], ensure_ascii: bool = False) -> str:
    def cell(kind: str, source: str | list[str]) -> dict[str, Any]:
        lines = source if isinstance(source, str) else source
        out: dict[str, Any] = {"cell_type": kind, "metadata": {}, "source": lines}
        if kind == "code":
            out.update(execution_count=None, outputs=[])
        return out

    nb = {
        "cells": [cell(k, s) for k, s in cells],
        "metadata": {"language_info": {"name": "python"}},
        "nbformat": 4,
        "nbformat_minor": 5,
    }
    return json.dumps(nb, indent=1, ensure_ascii=ensure_ascii) + "\n"


def lines(source: str) -> list[str]:
    return source.splitlines(keepends=True)


def apply(text: str, edits: list[Edit]) -> str:
    for e in sorted(edits, key=lambda e: e.start, reverse=True):
        text = text[: e.start] + e.replacement + text[e.end :]
    return text


def test_code_cell_findings_point_at_the_json_line_and_the_cell(tmp_path: Path) -> None:
    code = (
        "!pip install sentence-transformers\n"
        "%time x = 1\n"
        "from sentence_transformers import SentenceTransformer\n"
        f'model = SentenceTransformer("jinaai/{V2}", trust_remote_code=True)\n'
        "vectors = model.encode(queries)"
    )
    text = notebook(("markdown", ["# Search demo\n"]), ("code", lines(code)))
    (tmp_path / "demo.ipynb").write_text(text, encoding="utf-8")
    result = plan(tmp_path)
    assert result.skipped == []  # magics do not make the cell a syntax error
    model = next(f for f in result.findings if f.code == "JM101")
    assert (model.cell, model.cell_line) == (2, 4)
    json_line = text.splitlines()[model.line - 1]
    assert json_line[model.column - 1 :].startswith(f"jinaai/{V2}")
    assert model.recommendation["task"] == "retrieval.query"
    assert "model.encode() on line 5 of cell 2" in model.recommendation["task_reason"]
    loader = next(f for f in result.findings if f.code == "JM308")
    assert loader.cell == 2 and loader.cell_line == 4


def test_edits_apply_to_the_json_text_through_escapes(tmp_path: Path) -> None:
    code = 'label = "caf\u00e9 \\"quoted\\" \\\\ tab\\t"; m = "' + V2 + '"\nprint(m)'
    for ensure_ascii in (False, True):
        text = notebook(("code", lines(code)), ensure_ascii=ensure_ascii)
        path = tmp_path / f"nb_{ensure_ascii}.ipynb"
        path.write_text(text, encoding="utf-8")
        finding = next(f for f in plan(path).findings if f.code == "JM101")
        json_line = text.splitlines()[finding.line - 1]
        assert json_line[finding.column - 1 :].startswith(V2)
        fixed = apply(text, finding.edits)
        source = "".join(json.loads(fixed)["cells"][0]["source"])
        assert source == code.replace(V2, "jina-embeddings-v3")
        path.write_text(fixed, encoding="utf-8")
        assert [f.code for f in plan(path).findings] == []


def test_an_edit_across_two_json_strings_becomes_manual(tmp_path: Path) -> None:
    code = (
        "import requests\n"
        "def search(q):\n"
        '    body = {"model": "jina-embeddings-v3", "task": "retrieval.query",\n'
        '            "normalized": True,\n'
        '            "input": [q]}\n'
        '    return requests.post("https://api.jina.ai/v1/embeddings", json=body)\n'
    )
    path = tmp_path / "req.ipynb"
    path.write_text(notebook(("code", lines(code))), encoding="utf-8")
    [finding] = plan(path).findings
    # Deleting the entry spans two source lines, i.e. two JSON strings: no exact edit, so manual.
    assert finding.code == "JM202" and finding.applicability is Applicability.MANUAL and not finding.edits
    assert "edit this notebook cell by hand" in finding.fix_title
    assert (finding.cell, finding.cell_line) == (1, 4)


def test_single_string_sources_and_markdown_cells(tmp_path: Path) -> None:
    text = notebook(("markdown", f"We used {V2} before."), ("code", f'M = "{V2}"'))
    path = tmp_path / "s.ipynb"
    path.write_text(text, encoding="utf-8")
    found = plan(path).findings
    # The markdown cell is prose: not a finding, never rewritten (issue 12).
    assert [(f.code, f.cell, f.cell_line) for f in found] == [("JM101", 2, 1)]
    fixed = apply(text, [e for f in found for e in f.edits])
    assert [c["source"] for c in json.loads(fixed)["cells"]] == [
        f"We used {V2} before.",
        'M = "jina-embeddings-v3"',
    ]


def test_broken_notebooks_are_skipped(tmp_path: Path) -> None:
    (tmp_path / "broken.ipynb").write_text('{"cells": [{"source": "jina', encoding="utf-8")
    (tmp_path / "odd.ipynb").write_text('{"jina": 1}', encoding="utf-8")
    code = f'x = "{V2}"\ndef f(:\n'
    (tmp_path / "syntax.ipynb").write_text(notebook(("code", lines(code))), encoding="utf-8")
    result = plan(tmp_path)
    reasons = {s.path: s.reason for s in result.skipped}
    assert reasons["broken.ipynb"].startswith("invalid notebook JSON")
    assert reasons["odd.ipynb"].startswith("not a Jupyter notebook")
    assert reasons["syntax.ipynb"].startswith("cell 1: syntax error at line 2")
    [finding] = result.findings
    assert finding.path == "syntax.ipynb" and finding.applicability is Applicability.MANUAL


def test_names_flow_from_cell_to_cell(tmp_path: Path) -> None:
    text = notebook(
        (
            "code",
            lines(
                "from sentence_transformers import SentenceTransformer, util\n"
                f'm = SentenceTransformer("jinaai/{V2}")'
            ),
        ),
        ("markdown", ["Compare tickets\n"]),
        ("code", lines("v = m.encode(tickets)\nscores = util.cos_sim(v, v)")),
    )
    (tmp_path / "x.ipynb").write_text(text, encoding="utf-8")
    model = next(f for f in plan(tmp_path).findings if f.code == "JM101")
    assert (model.cell, model.cell_line) == (1, 2)
    assert model.recommendation["task"] == "text-matching"
    assert "util.cos_sim() on line 2 of cell 3" in model.recommendation["task_reason"]


def test_a_broken_cell_does_not_cost_the_other_cells_their_fixes(tmp_path: Path) -> None:
    text = notebook(("code", [f'A = "{V2}"']), ("code", ["def broken(:\n"]), ("code", [f'B = "{V2}"']))
    path = tmp_path / "y.ipynb"
    path.write_text(text, encoding="utf-8")
    result = plan(path)
    assert [(f.cell, f.applicability) for f in result.findings] == [
        (1, Applicability.UNSAFE),
        (3, Applicability.UNSAFE),
    ]
    assert [s.reason for s in result.skipped] == ["cell 2: syntax error at line 1: invalid syntax"]


def test_applying_every_notebook_fix_gives_parsing_cells_and_only_manual_findings(tmp_path: Path) -> None:
    code = (
        "import requests\n"
        "def index_docs(docs):\n"
        "    return requests.post('https://api.jina.ai/v1/embeddings', json={'model': "
        f"'{V2}', 'input': docs, 'normalized': True, 'encoding_format': 'float'}})\n"
    )
    second = (
        "from langchain_community.embeddings import JinaEmbeddings\n"
        f"emb = JinaEmbeddings(model_name='{V2}')\n"
    )
    path = tmp_path / "fix.ipynb"
    path.write_text(
        notebook(("code", lines(code)), ("code", lines(second)), ensure_ascii=True), encoding="utf-8"
    )
    first = plan(path)
    assert {f.code for f in first.findings} == {"JM101", "JM201", "JM202", "JM203", "JM301"}
    edits = [e for f in first.findings for e in f.edits]
    fixed = apply(path.read_text(encoding="utf-8"), edits)
    path.write_text(fixed, encoding="utf-8")
    for cell in json.loads(fixed)["cells"]:
        ast.parse("".join(cell["source"]))
    again = plan(path)
    # JM301 was about the v2 model; on v3 the Python LangChain class still sends no task, which a person
    # must finish (JM502, manual): never a false zero after apply (issue 12).
    assert [(f.code, f.applicability.value) for f in again.findings] == [("JM502", "manual")]
    assert "'task': 'retrieval.passage'" in "".join(json.loads(fixed)["cells"][0]["source"])
