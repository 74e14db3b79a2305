"""JS/TS across modules (issue 12): model ids from imported tables, transformers.js pipelines, and request
helpers followed to their callers with the side each call serves (jmigrate/scan/jsmodules.py)."""

from __future__ import annotations

import re
import shutil
from pathlib import Path

import pytest

from jmigrate.scan.jsmodules import JsProject, call_side
from jmigrate.scan.plan import plan
from jmigrate.scan.tasks import MATCHING, PASSAGE, QUERY

FIXTURES = Path(__file__).resolve().parent.parent / "fixtures" / "rules"
PROJECT = FIXTURES / "JM505_project"
MARK = re.compile(r"//\s*(JM\d{3}(?:[ ,]+JM\d{3})*)\s*$")


def _marks(root: Path) -> set[tuple[str, str, int]]:
    out = set()
    for path in sorted(p for p in root.rglob("*") if p.is_file()):
        rel = path.relative_to(root).as_posix()
        for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1):
            m = MARK.search(line)
            if m:
                out |= {(c, rel, number) for c in re.findall(r"JM\d{3}", m.group(1))}
    return out


def test_project_fixture_fires_exactly_on_marked_lines_across_modules() -> None:
    result = plan(PROJECT, select=["JM1", "JM201", "JM301", "JM315", "JM505"], stores=False)
    assert {(f.code, f.path, f.line) for f in result.findings} == _marks(PROJECT)
    assert result.skipped == []


def test_each_caller_gets_its_side_and_the_helper_asks_for_a_task_parameter() -> None:
    result = plan(PROJECT, select=["JM201", "JM315", "JM505"], stores=False)
    by = {(f.code, f.path, f.line): f for f in result.findings}
    assert by[("JM505", "ingest.ts", 5)].recommendation["task"] == PASSAGE
    assert by[("JM505", "search.js", 5)].recommendation["task"] == QUERY
    assert by[("JM505", "worker.js", 5)].recommendation["task"] == PASSAGE
    assert by[("JM505", "chat.mjs", 5)].recommendation["task"] == QUERY
    helper = by[("JM201", "api.js", 6)]
    assert "task parameter" in helper.message and helper.edits == []
    assert "worker.js:5" in helper.fix_title and "chat.mjs:5" in helper.fix_title
    extractor = by[("JM505", "embedder.ts", 8)]
    assert "parameter" in extractor.fix_title and extractor.recommendation["task"] is None
    # The model id came from config.ts through a re-export and a destructuring with a rename.
    assert by[("JM315", "embedder.ts", 5)].recommendation["from_model"] == "jina-embeddings-v2-small-en"
    # The singleton class of web/extractor.js (static fields read through `this.`), imported by default.
    assert by[("JM315", "web/extractor.js", 11)].recommendation["from_model"] == "jina-embeddings-v2-base-zh"
    assert "jina-embeddings-v2-base-zh" in by[("JM505", "web/route.js", 6)].message


def test_files_without_a_link_to_the_jina_modules_are_not_read(tmp_path: Path) -> None:
    shutil.copytree(PROJECT, tmp_path / "p")
    # store.js and unrelated.ts name neither an exporting module nor its names: never parsed, no findings.
    result = plan(tmp_path / "p", stores=False)
    assert not {f.path for f in result.findings} & {"store.js", "unrelated.ts", "models.ts"}


def test_one_side_helper_gets_that_task_as_an_edit(tmp_path: Path) -> None:
    (tmp_path / "embed.js").write_text(
        'const axios = require("axios");\n'
        "async function embed(text) {\n"
        '  const r = await axios.post("https://api.jina.ai/v1/embeddings", {\n'
        '    model: "jina-embeddings-v2-base-en",\n'
        "    input: [text],\n"
        "  });\n"
        "  return r.data.data[0].embedding;\n"
        "}\n"
        "module.exports = embed;\n",
        encoding="utf-8",
    )
    (tmp_path / "ask.js").write_text(
        'const embed = require("./embed");\n'
        "async function ask(db, q) {\n"
        "  const v = await embed(q);\n"
        '  return db.search("kb", { vector: v });\n'
        "}\n"
        "module.exports = { ask };\n",
        encoding="utf-8",
    )
    result = plan(tmp_path, select=["JM201", "JM505"], stores=False)
    [f] = result.findings
    assert (f.code, f.path, f.line) == ("JM201", "embed.js", 3)
    assert f.recommendation["task"] == QUERY and "ask.js:3" in f.fix_title
    assert any('task: "retrieval.query"' in e.replacement for e in f.edits)


def _project(files: dict[str, str]) -> JsProject:
    js = JsProject(set(files))
    for path, text in files.items():
        js.add(path, text)
    return js


@pytest.mark.parametrize(
    ("config", "use", "expected"),
    [
        ('export const M = "jina-embeddings-v2-base-en";', 'import { M } from "./config";\nf(M);', "base-en"),
        ('export default { m: "jina-embeddings-v2-base-de" };', 'import c from "./config";\nf(c.m);',
         "base-de"),
        ('module.exports = { m: "jina-embeddings-v2-base-es" };', 'const c = require("./config");\nf(c.m);',
         "base-es"),
        ('exports.m = "jina-embeddings-v2-base-zh";', 'f(require("./config").m);', "base-zh"),
        ('export const T = { "a b": { id: "jina-embeddings-v2-small-en" } };',
         'import * as c from "./config";\nconst { id } = c.T["a b"];\nf(id);', "small-en"),
        ('export const M = process.env.M ?? "jina-embeddings-v2-base-en";',
         'import { M } from "./config.js";\nf(M);', "base-en"),
        ('export const M = process.env.M || "jina-embeddings-v2-base-en";',
         'const { M: model } = require("./config");\nf(model);', "base-en"),
    ],
)
def test_values_follow_imports(config: str, use: str, expected: str) -> None:
    js = _project({"src/config.ts": config, "src/use.ts": use})
    mod = js.modules["src/use.ts"]
    v = js.value(mod, mod.text.index("f(") + 2)
    assert isinstance(v, str) and v.endswith(expected)


@pytest.mark.parametrize(
    "use",
    [
        'import { M } from "./config";\nf(M + "-x");',  # an expression: unknown
        'import { M } from "./config";\nlet N = M;\nN = other;\nf(N);',  # rebound: unknown
        'import { M } from "./missing";\nf(M);',  # not a file of the tree
        'import { M } from "pkg/config";\nf(M);',  # a package, not a relative module
        'const M = process.env.M;\nf(M);',  # no default
    ],
)
def test_unknown_values_stay_unknown(use: str) -> None:
    js = _project({"src/config.ts": 'export const M = "jina-embeddings-v2-base-en";', "src/use.ts": use})
    mod = js.modules["src/use.ts"]
    assert js.value(mod, mod.text.index("f(") + 2) is None


def test_call_side_reads_the_enclosing_function_first_then_names() -> None:
    text = (
        "async function a(chunks) {\n  const v = await emb(chunks);\n  await db.upsert(v);\n}\n"
        "async function b(x): Promise<void> {\n  const v = await emb(x);\n  return db.search(v);\n}\n"
        "async function c(x) {\n  const v = await emb(x);\n  return cosineSimilarity(v, w);\n}\n"
        "async function d(question) {\n  return emb(question);\n}\n"
    )
    sides = [call_side(text, m.start(), m.end()).task for m in re.finditer(r"emb\(", text)]
    assert sides == [PASSAGE, QUERY, MATCHING, QUERY]


def test_request_model_is_resolved_through_imports(tmp_path: Path) -> None:
    (tmp_path / "settings.js").write_text(
        'export const EMBED = process.env.EMBED ?? "jina-embeddings-v2-base-de";\n'
        'export const CLIP = "jina-clip-v2";\n',
        encoding="utf-8",
    )
    (tmp_path / "client.js").write_text(
        'import { EMBED, CLIP } from "./settings.js";\n'
        'const URL = "https://api.jina.ai/v1/embeddings";\n'
        "export const a = (t) => fetch(URL, { body: JSON.stringify({ model: EMBED, input: t }) });\n"
        "export const b = (t) => fetch(URL, { body: JSON.stringify({ model: CLIP, input: t }) });\n",
        encoding="utf-8",
    )
    [f] = plan(tmp_path, select=["JM201"], stores=False).findings
    # The bilingual model's advice, found through the import; the CLIP request is not a v2 embedding.
    assert f.line == 3 and f.recommendation["from_model"] == "jina-embeddings-v2-base-de"
