"""Prose, comments, docstrings, help texts and captured logs that name a v2 model are mentions, not findings
(issue 12): reported apart, never rewritten by `apply`, never a reason for exit status 1."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from test_notebook import lines, notebook

from jmigrate.scan.apply import apply
from jmigrate.scan.finding import Mention
from jmigrate.scan.plan import plan
from jmigrate.scan.render import render
from jmigrate.scan.render.plan_json import plan_from_dict, plan_to_dict, validate_plan
from jmigrate.scan.render.sarif import sarif_log

V2 = "jina-embeddings-v2-base-en"
SMALL = "jina-embeddings-v2-small-en"
FIXTURES = Path(__file__).resolve().parent.parent / "fixtures" / "rules"


def where(found: list[Mention]) -> set[tuple[int, str]]:
    return {(m.line, m.kind) for m in found}


def test_markdown_prose_links_tables_and_logs_are_mentions_code_blocks_are_findings(tmp_path: Path) -> None:
    shutil_copy(FIXTURES / "JM101_docs.md", tmp_path / "README.md")
    result = plan(tmp_path)
    assert {f.line for f in result.findings} == {15, 19, 24, 28, 42, 47}
    assert where(result.mentions) == {
        (1, "prose"),  # heading
        (3, "prose"),  # a link to the model card (name and URL)
        (4, "prose"),  # inline code in a sentence
        (8, "prose"),  # a table row
        (14, "comment"),  # a comment inside a ```python block
        (29, "log"),  # ```console output (no prompt)
        (33, "log"),  # ```text output
        (37, "log"),  # ```log
        (41, "log"),  # a log record inside an unlabelled block
        (49, "log"),  # a log record pasted into prose
    }
    assert {m.model for m in result.mentions} == {V2, SMALL}
    link = [m for m in result.mentions if m.line == 3]
    assert len(link) == 2  # the link text and the model-card URL


def shutil_copy(src: Path, dst: Path) -> None:
    dst.write_bytes(src.read_bytes())


def test_rst_prose_directives_and_literal_blocks(tmp_path: Path) -> None:
    shutil_copy(FIXTURES / "JM101_guide.rst", tmp_path / "guide.rst")
    result = plan(tmp_path)
    assert {f.line for f in result.findings} == {9, 13, 19}
    assert where(result.mentions) == {(4, "prose"), (8, "comment"), (17, "log"), (21, "prose")}


def test_python_comments_docstrings_and_help_texts(tmp_path: Path) -> None:
    shutil_copy(FIXTURES / "JM101_comments.py", tmp_path / "app.py")
    result = plan(tmp_path, select=["JM101"])
    assert {f.line for f in result.findings} == {10, 11, 19}
    assert where(result.mentions) == {
        (1, "docstring"),  # no model on line 1, but the docstring goes on: see line 3
        (3, "docstring"),
        (9, "comment"),  # commented-out code does not run
        (10, "comment"),  # a trailing comment: the code before it is still a finding
        (15, "docstring"),
        (16, "prose"),  # description=
        (20, "prose"),  # help=
        (22, "prose"),  # help=f"..."
        (24, "docstring"),  # a bare string statement
    } - {(1, "docstring")}


def test_js_yaml_dockerfile_sql_comments(tmp_path: Path) -> None:
    for name in ("JM101_comments.ts", "JM101_comments.yaml", "JM101.dockerfile"):
        shutil_copy(FIXTURES / name, tmp_path / name)
    (tmp_path / "schema.sql").write_text(
        f"-- vectors of {V2}\nCREATE TABLE docs (model text DEFAULT '{V2}'); /* not {SMALL} */\n"
    )
    result = plan(tmp_path, select=["JM101"])
    findings = {(f.path, f.line) for f in result.findings}
    assert findings == {
        ("JM101_comments.ts", 7),
        ("JM101_comments.ts", 8),
        ("JM101_comments.ts", 10),  # after a description value on the same line: code
        ("JM101_comments.ts", 11),
        ("JM101_comments.yaml", 4),
        ("JM101_comments.yaml", 9),
        ("JM101.dockerfile", 3),
        ("JM101.dockerfile", 4),
        ("schema.sql", 2),
    }
    assert {(m.path, m.line, m.kind) for m in result.mentions} == {
        ("JM101_comments.ts", 3, "docstring"),  # /** */
        ("JM101_comments.ts", 5, "comment"),  # commented-out code
        ("JM101_comments.ts", 6, "comment"),  # /* */
        ("JM101_comments.ts", 7, "comment"),  # trailing // after code
        ("JM101_comments.ts", 9, "prose"),  # description: in an object
        ("JM101_comments.ts", 10, "prose"),
        ("JM101_comments.yaml", 2, "comment"),
        ("JM101_comments.yaml", 4, "comment"),
        ("JM101_comments.yaml", 5, "prose"),  # description:
        ("JM101_comments.yaml", 7, "prose"),  # a block scalar under help:
        ("JM101.dockerfile", 5, "comment"),
        ("schema.sql", 1, "comment"),
        ("schema.sql", 2, "comment"),
    }


def test_text_html_and_log_files(tmp_path: Path) -> None:
    (tmp_path / "README.txt").write_text(f"This tool embeds with {V2}.\n")
    (tmp_path / "run.log").write_text(f"loading {V2}\n")
    (tmp_path / "requirements.txt").write_text(f"# we pin {V2} in code\nsentence-transformers\n")
    (tmp_path / "Makefile").write_text(f"MODEL ?= {V2}\n")
    (tmp_path / "worker.out").write_text(f"2024-05-01 12:00:01 INFO loaded {V2}\n")
    (tmp_path / "docs.mdx").write_text(f"Uses {V2}.\n\n```python\nM = \"{V2}\"\n```\n")
    (tmp_path / "schema.py").write_text(
        f'from pydantic import Field\nmodel: str = Field("{V2}", examples=["{SMALL}"])\n'
    )
    (tmp_path / "index.html").write_text(
        "<html><body>\n"
        f"<p>Embeddings by {V2}.</p>\n"
        f"<!-- was {SMALL} -->\n"
        f'<select><option value="{V2}">v2</option></select>\n'
        f'<script>\n// {SMALL}\nconst m = "{V2}";\n</script>\n'
        f"<pre><code>model = \"{V2}\"</code></pre>\n"
        "</body></html>\n"
    )
    result = plan(tmp_path, select=["JM101"])
    assert {(f.path, f.line) for f in result.findings} == {
        ("Makefile", 1),
        ("docs.mdx", 4),
        ("schema.py", 2),
        ("index.html", 4),
        ("index.html", 7),
        ("index.html", 9),
    }
    assert {(m.path, m.line, m.kind) for m in result.mentions} == {
        ("README.txt", 1, "prose"),
        ("run.log", 1, "log"),
        ("worker.out", 1, "log"),
        ("docs.mdx", 1, "prose"),
        ("schema.py", 2, "prose"),
        ("requirements.txt", 1, "comment"),
        ("index.html", 2, "prose"),
        ("index.html", 3, "comment"),
        ("index.html", 6, "comment"),
    }


def test_notebook_markdown_cells_and_outputs_are_mentions(tmp_path: Path) -> None:
    nb = json.loads(
        notebook(
            ("markdown", lines(f"# Using {V2}\n\n```python\nmodel_id = \"jinaai/{V2}\"\n```\n")),
            ("code", lines(f'# name = "{SMALL}"\nmodel = load("jinaai/{V2}")  # not {SMALL}\n'
                           f"!huggingface-cli download jinaai/{V2}\n")),
        )
    )
    nb["cells"][1]["outputs"] = [
        {"output_type": "stream", "name": "stderr", "text": [f"Downloading jinaai/{V2}\n"]},
        {"output_type": "execute_result", "data": {"text/plain": [f"'{V2}'"]}, "metadata": {},
         "execution_count": 1},
    ]
    text = json.dumps(nb, indent=1) + "\n"
    path = tmp_path / "demo.ipynb"
    path.write_text(text)
    result = plan(path, select=["JM101"])
    at = {n: i for i, n in enumerate(text.splitlines(), start=1)}

    def line_of(needle: str) -> int:
        return next(n for line, n in at.items() if needle in line)

    assert {(f.cell, f.cell_line) for f in result.findings} == {(1, 4), (2, 2), (2, 3)}
    # The code block in the Markdown cell is rewritten inside the JSON like a code cell; the prose is not.
    apply(result, unsafe=True)
    cells = json.loads(path.read_text())["cells"]
    v3_block = '```python\nmodel_id = "jinaai/jina-embeddings-v3"\n```\n'
    assert "".join(cells[0]["source"]) == f"# Using {V2}\n\n" + v3_block
    assert f"Downloading jinaai/{V2}" in cells[1]["outputs"][0]["text"][0]
    assert {(m.cell, m.line, m.kind) for m in result.mentions} == {
        (1, line_of(f"# Using {V2}"), "prose"),
        (2, line_of(f'# name = \\"{SMALL}'), "comment"),
        (2, line_of(f"# not {SMALL}"), "comment"),
        (2, line_of(f"Downloading jinaai/{V2}"), "log"),
        (2, line_of(f"\"'{V2}'\""), "log"),
    }


def test_mentions_are_never_rewritten_and_do_not_fail_the_plan(
    tmp_path: Path, cli: Callable[..., Any]
) -> None:
    (tmp_path / "NOTES.md").write_text(f"We moved from {V2} to a newer model.\n")
    (tmp_path / "app.py").write_text(f'# MODEL = "{V2}"\nMODEL = "jina-embeddings-v3"\n')
    before = {p.name: p.read_bytes() for p in tmp_path.iterdir()}
    result = plan(tmp_path)
    assert result.findings == [] and len(result.mentions) == 2
    report = apply(result, unsafe=True)
    assert report.changed == []
    assert {p.name: p.read_bytes() for p in tmp_path.iterdir()} == before
    run = cli("plan", str(tmp_path))
    assert run.code == 0
    assert "2 mentions of v2 models in prose, comments and logs (not code): --verbose lists them" in run.out
    assert "NOTES.md:1:15" not in run.out
    verbose = cli("plan", str(tmp_path), "--verbose")
    assert verbose.code == 0 and "NOTES.md:1:15  prose  jina-embeddings-v2-base-en" in verbose.out
    as_json = cli("plan", str(tmp_path), "-f", "json")
    assert as_json.code == 0 and "; 2 mentions in prose, comments and logs (not findings)" in as_json.err
    assert cli("apply", str(tmp_path), "--unsafe").code == 0
    assert {p.name: p.read_bytes() for p in tmp_path.iterdir()} == before


def test_apply_unsafe_then_plan_leaves_the_mentions_alone(tmp_path: Path) -> None:
    shutil_copy(FIXTURES / "JM101_docs.md", tmp_path / "README.md")
    shutil_copy(FIXTURES / "JM101_comments.py", tmp_path / "app.py")
    first = plan(tmp_path)
    apply(first, unsafe=True)
    again = plan(tmp_path)
    assert [f for f in again.findings if f.code == "JM101"] == []
    # The prose still says what it said (columns after a rewritten id on the same line move).
    assert [(m.path, m.line, m.kind, m.model) for m in again.mentions] == [
        (m.path, m.line, m.kind, m.model) for m in first.mentions
    ]
    assert "an earlier draft used `jina-embeddings-v2-small-en`" in (tmp_path / "README.md").read_text()


@pytest.mark.parametrize("fmt", ["json", "markdown", "sarif", "concise"])
def test_every_format_keeps_mentions_out_of_the_findings(tmp_path: Path, fmt: str) -> None:
    (tmp_path / "README.md").write_text(f"Uses {V2}.\n\n```python\nM = \"{V2}\"\n```\n")
    result = plan(tmp_path)
    out = render(result, fmt)
    if fmt == "json":
        data = json.loads(out)
        validate_plan(data)
        assert data["summary"]["mentions"] == 1 and data["summary"]["findings"] == 1
        assert data["mentions"] == [
            {"path": "README.md", "line": 1, "column": 6, "kind": "prose", "model": V2, "cell": None}
        ]
        again = plan_from_dict(data)
        assert again.mentions == result.mentions and plan_to_dict(again) == data
    elif fmt == "markdown":
        assert "1 mention of v2 models in prose, comments and logs (not code)" in out
        assert "README.md:1:6  prose" in out
    elif fmt == "sarif":
        run = sarif_log(result)["runs"][0]
        assert [r["locations"][0]["physicalLocation"]["region"]["startLine"] for r in run["results"]] == [4]
        assert run["properties"]["mentions"] == 1
    else:
        assert out.count("\n") == 1 and ":4:" in out


def test_a_plan_saved_before_mentions_existed_still_loads(tmp_path: Path) -> None:
    (tmp_path / "a.py").write_text(f'M = "{V2}"\n')
    data = plan_to_dict(plan(tmp_path))
    del data["mentions"], data["summary"]["mentions"]
    from jmigrate.scan.render.plan_json import plan_checksum

    data["checksum"] = plan_checksum(data)
    assert plan_from_dict(data).mentions == []


def test_inline_code_is_prose_unless_it_is_a_command(tmp_path: Path) -> None:
    (tmp_path / "README.md").write_text(
        "Install:\n"
        f"- `jinaai/{V2}` ([model card](https://huggingface.co/jinaai/{V2}))\n"
        f"- run `ollama pull jina/{SMALL}` first\n"
        f"- or set `EMBED_MODEL={V2}` in `.env`\n"
    )
    result = plan(tmp_path)
    assert {(f.line, f.code) for f in result.findings} == {(3, "JM311"), (4, "JM101")}
    assert where(result.mentions) == {(2, "prose")}


def test_a_json_block_introduced_as_a_response_is_output(tmp_path: Path) -> None:
    (tmp_path / "API.md").write_text(
        "The service returns:\n\n"
        f'```json\n{{"model": "{V2}", "dimension": 768}}\n```\n\n'
        "Send this body:\n\n"
        f'```json\n{{"model": "{V2}", "input": ["hi"]}}\n```\n\n'
        "#### `GET /stats`\nStatistics of the index.\n\n"
        f'```json\n{{"model": "{V2}", "dimension": 768}}\n```\n'
    )
    result = plan(tmp_path)
    assert {f.line for f in result.findings} == {10}
    assert where(result.mentions) == {(4, "log"), (17, "log")}


def test_python_docstring_usage_examples_and_commented_template_lines(tmp_path: Path) -> None:
    (tmp_path / "client.py").write_text(
        '"""\n'
        "curl http://127.0.0.1:8000/v1/embeddings \\\n"
        f'  -d \'{{"model": "jinaai/{SMALL}", "input": "hi"}}\'\n'
        '"""\n'
        "\n\n"
        "def setup():\n"
        f'    """Write an .env sample for {V2}."""\n'
        '    sample = """\n'
        "EMBED_MODEL=jina-embeddings-v3\n"
        f"# EMBED_MODEL={V2}\n"
        '"""\n'
        "    return sample\n"
    )
    result = plan(tmp_path, select=["JM101"])
    assert {f.line for f in result.findings} == {3}  # the curl example users copy
    assert where(result.mentions) == {(8, "docstring"), (11, "comment")}


def test_crlf_markdown_and_rst(tmp_path: Path) -> None:
    (tmp_path / "a.md").write_bytes(f"Uses {V2}.\r\n\r\n```python\r\nM = \"{V2}\"\r\n```\r\n".encode())
    (tmp_path / "b.rst").write_bytes(f"Uses {V2}::\r\n\r\n    M = \"{V2}\"\r\n".encode())
    result = plan(tmp_path, select=["JM101"])
    assert {(f.path, f.line) for f in result.findings} == {("a.md", 4), ("b.rst", 3)}
    assert {(m.path, m.line) for m in result.mentions} == {("a.md", 1), ("b.rst", 1)}


_PIECES = [
    "```", "```python", "```console", "~~~", "    ", "\t", "`", "# ", "// ", "/*", "*/", "--", "'", '"',
    '"""', "::", ".. code-block:: python", ">>> ", "$ ", "INFO: ", "2024-01-01 10:00 ", "description: ",
    "<!--", "-->", "<script>", "</script>", "<pre>", "- ", "|", "\n", "\r\n", " ", V2, "x",
]
_NAMES = [
    "a.md", "a.rst", "a.ts", "a.yaml", "a.toml", "a.json", "a.sql", "a.sh", "a.html", "a.txt", "NEWS.txt",
]


@pytest.mark.slow
@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(st.sampled_from(_PIECES), max_size=60), st.sampled_from(_NAMES))
def test_regions_are_sorted_disjoint_spans_inside_the_text(pieces: list[str], name: str) -> None:
    from jmigrate.scan.prose import KINDS, regions
    from jmigrate.scan.walk import language_of

    text = "".join(pieces)
    r = regions(text, language_of(name), name)
    assert all(k in KINDS for k in r.kinds)
    spans = list(zip(r.starts, r.ends, strict=True))
    assert all(0 <= s < e <= len(text) for s, e in spans)
    assert all(e1 <= s2 for (_, e1), (s2, _) in zip(spans, spans[1:], strict=False))


@pytest.mark.slow
@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(st.sampled_from(_PIECES), max_size=40), st.sampled_from([*_NAMES, "a.py"]))
def test_every_model_named_is_a_finding_or_a_mention_never_lost(pieces: list[str], name: str) -> None:
    import tempfile

    from jmigrate.scan.text import model_matches
    from jmigrate.scan.walk import Source

    text = "".join(pieces)
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / name
        path.write_bytes(text.encode())
        result = plan(path, select=["JM101"])
        src = Source(name, path.read_bytes().decode(), "text")
        named = {src.position(m.start) for m in model_matches(src.text)}
    reported = {(f.line, f.column) for f in result.findings} | {(m.line, m.column) for m in result.mentions}
    assert reported == named
