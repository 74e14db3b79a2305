"""`plan` on hostile trees: broken stores, malformed notebooks, deep folders, FIFOs and links, huge files.

Problems inside the user's files are findings or skipped files with a reason, never a crash, a hang or
an exit code that means something else (130 is "interrupted").
"""

from __future__ import annotations

import contextlib
import io
import json
import os
import re
import subprocess
import sys
import zipfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from jmigrate.scan.plan import plan
from jmigrate.scan.stores import discover_stores

V2_LINE = 'MODEL = "jina-embeddings-v2-base-en"\n'


def _cap_memory() -> None:
    # A regression that reads /dev/zero must fail this test, not exhaust the shared machine's memory.
    import resource

    resource.setrlimit(resource.RLIMIT_AS, (3 << 30, 3 << 30))


def jmigrate(*args: str, cwd: Path, timeout: float = 120) -> subprocess.CompletedProcess[str]:
    # The timeout only stops a hang from blocking the suite; nothing here asserts on time.
    return subprocess.run(
        [sys.executable, "-m", "jmigrate", *args],
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=timeout,
        preexec_fn=_cap_memory if sys.platform == "linux" else None,
    )


# --- stores: damaged files of every kind are notes or nothing, never a crash -----------------------


def _npy_bytes(arr: np.ndarray) -> bytes:
    buf = io.BytesIO()
    np.save(buf, arr)
    return buf.getvalue()


def _npz_bytes() -> bytes:
    buf = io.BytesIO()
    np.savez(buf, emb=np.zeros((3, 64), np.float32))
    return buf.getvalue()


def _parquet_bytes() -> bytes:
    buf = io.BytesIO()
    vecs = pa.FixedSizeListArray.from_arrays(pa.array(np.zeros(3 * 64, np.float32)), 64)
    pq.write_table(pa.table({"text": ["a", "b", "c"], "embedding": vecs}), buf)
    return buf.getvalue()


def _arrow_bytes() -> bytes:
    sink = io.BytesIO()
    vecs = pa.FixedSizeListArray.from_arrays(pa.array(np.zeros(3 * 64, np.float32)), 64)
    table = pa.table({"text": ["a", "b", "c"], "embedding": vecs})
    with pa.ipc.new_file(sink, table.schema) as w:
        w.write_table(table)
    return sink.getvalue()


GOOD = {
    "v.npy": _npy_bytes(np.zeros((3, 64), np.float32)),
    "v.npz": _npz_bytes(),
    "v.parquet": _parquet_bytes(),
    "v.arrow": _arrow_bytes(),
    "v.faiss": b"IxFI" + (64).to_bytes(4, "little") + (3).to_bytes(8, "little") + b"\0" * 32,
    "v.jsonl": (json.dumps({"text": "a", "embedding": [0.5] * 64}) + "\n").encode(),
}


def _damaged() -> list[tuple[str, bytes]]:
    cases: list[tuple[str, bytes]] = []
    for name, data in GOOD.items():
        cases.append((name, b""))  # empty
        cases += [(name, data[:cut]) for cut in (1, 6, 10, 16, len(data) // 2, len(data) - 1)]
        cases.append((name, b"\xff\xfe garbage \x00" * 7))
    cases += [
        ("v.npy", b"\x93NUMPY\x01\x00\x10\x00{'descr': 'zz'}\n"),  # bad header dict
        ("v.npy", b"\x93NUMPY\x09\x09"),  # unknown version
        ("v.npy", _npy_bytes(np.array([{"a": 1}], dtype=object))),  # object array: never unpickled
        ("v.npz", b"PK\x03\x04" + b"\0" * 30),  # a zip header and nothing
        ("v.jsonl", b'{"embedding": [1e999, "x"]}\n'),
        ("v.jsonl", b"[1, 2, 3]\n"),
        ("v.jsonl", b'{"embedding": ' + b"[" * 5000 + b"\n"),  # nesting past the recursion limit
        ("chroma.sqlite3", b"SQLite format 3\x00" + b"\x00" * 84),
        ("chroma.sqlite3", b"not a database at all"),
    ]
    return cases


@pytest.mark.parametrize("name,data", _damaged(), ids=lambda v: v if isinstance(v, str) else f"{len(v)}B")
def test_a_damaged_store_file_never_crashes_discovery(tmp_path: Path, name: str, data: bytes) -> None:
    (tmp_path / name).write_bytes(data)
    stores = discover_stores(tmp_path)
    for s in stores:
        assert s.kind == "unreadable" or s.rows is not None or s.dims is not None
        if s.kind == "unreadable":
            assert s.notes and s.notes[0].startswith("cannot read")


def test_a_damaged_lance_folder_is_reported_by_layout(tmp_path: Path) -> None:
    (tmp_path / "db" / "docs.lance" / "_versions").mkdir(parents=True)
    (tmp_path / "db" / "docs.lance" / "_versions" / "1.manifest").write_bytes(b"\x00garbage")
    (stores,) = discover_stores(tmp_path)
    assert stores.kind == "lancedb"


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    name=st.sampled_from(sorted(GOOD)),
    cut=st.integers(min_value=0, max_value=400),
    noise=st.binary(max_size=64),
    at=st.integers(min_value=0, max_value=400),
)
def test_fuzzed_store_headers_never_crash(tmp_path: Path, name: str, cut: int, noise: bytes, at: int) -> None:
    data = GOOD[name][:cut] if cut < len(GOOD[name]) else GOOD[name]
    data = data[:at] + noise + data[at + len(noise) :]
    (tmp_path / name).write_bytes(data)
    discover_stores(tmp_path)


def test_an_empty_npy_is_a_note_and_plan_still_reports(tmp_path: Path) -> None:
    # numpy raises EOFError for an empty .npy; Click turned it into "Aborted" and exit 130 with no output.
    (tmp_path / "empty.npy").write_bytes(b"")
    (tmp_path / "app.py").write_text(V2_LINE)
    result = plan(tmp_path)
    assert [s["kind"] for s in result.stores] == ["unreadable"]
    assert result.findings
    cli = jmigrate("plan", ".", "--format", "json", cwd=tmp_path)
    assert cli.returncode == 1, cli.stderr  # findings remain
    assert json.loads(cli.stdout)["findings"]
    cli = jmigrate("apply", ".", cwd=tmp_path)
    assert cli.returncode in (0, 1), cli.stderr


# --- notebooks ------------------------------------------------------------------------------------

CELL = {"cell_type": "code", "source": V2_LINE, "metadata": {}, "outputs": []}


@pytest.mark.parametrize(
    "nb",
    [
        {"cells": [CELL], "metadata": "x"},
        {"cells": [CELL], "metadata": {"language_info": "python"}},
        {"cells": [CELL], "metadata": {"language_info": {"name": 3}}},
        {"cells": [{"cell_type": "code", "source": 5}, CELL], "metadata": {}},
        {"cells": [{"cell_type": "code", "source": ["a", 5]}, CELL], "metadata": {}},
        {"cells": [{"cell_type": "markdown", "source": {"x": 1}}, CELL]},
        {"cells": [{"cell_type": ["code"], "source": "x"}, 7, None, CELL]},
        {"cells": [{"cell_type": "code", "source": None}, CELL]},
    ],
)
def test_malformed_notebooks_are_scanned_or_skipped(tmp_path: Path, nb: dict[str, object]) -> None:
    (tmp_path / "n.ipynb").write_text(json.dumps(nb))
    result = plan(tmp_path)
    # The well-formed cell is still scanned; the broken parts are left out without a crash.
    assert {f.code for f in result.findings} >= {"JM101"}


@pytest.mark.parametrize("text", ['{"cells": 5}', "[1, 2]", '"cells"', '{"cells": [], "metadata": []}'])
def test_notebooks_that_are_not_notebooks_are_skipped(tmp_path: Path, text: str) -> None:
    (tmp_path / "n.ipynb").write_text(text + " jina")
    result = plan(tmp_path)
    assert result.findings == []


# --- deep trees -----------------------------------------------------------------------------------


def _deep(root: Path, depth: int) -> Path:
    # Built relative to a changing folder: absolute paths this deep are over PATH_MAX.
    fd = os.open(root, os.O_RDONLY)
    try:
        for _ in range(depth):
            os.mkdir("d", dir_fd=fd)
            nxt = os.open("d", os.O_RDONLY, dir_fd=fd)
            os.close(fd)
            fd = nxt
        with open(os.open("m.py", os.O_WRONLY | os.O_CREAT, 0o644, dir_fd=fd), "w") as f:
            f.write(V2_LINE)
    finally:
        os.close(fd)
    return root


def _remove_deep(root: Path, depth: int) -> None:
    # shutil.rmtree (and pytest's tmp_path clean-up) recurse once per level: undo `_deep` by hand.
    fds = [os.open(root, os.O_RDONLY)]
    for _ in range(depth):
        fds.append(os.open("d", os.O_RDONLY, dir_fd=fds[-1]))
    os.unlink("m.py", dir_fd=fds[-1])
    while len(fds) > 1:
        os.close(fds.pop())
        os.rmdir("d", dir_fd=fds[-1])
    os.close(fds[0])


def test_a_tree_deeper_than_the_recursion_limit(tmp_path: Path) -> None:
    depth = sys.getrecursionlimit() + 100
    _deep(tmp_path, depth)
    try:
        result = plan(tmp_path)
    finally:
        _remove_deep(tmp_path, depth)
    # Either found at its (long) path or skipped with a reason: never a RecursionError.
    assert len(result.findings) + len(result.skipped) >= 1
    for f in result.findings:
        assert f.path.count("/") == depth


# --- FIFOs, devices and links: only regular files inside the root are read ----------------------


@pytest.mark.skipif(not hasattr(os, "mkfifo"), reason="no FIFOs here")
@pytest.mark.parametrize("name", ["data.jsonl", "v.npy", "v.parquet", "v.arrow", "chroma.sqlite3", "v.faiss"])
def test_a_fifo_named_like_a_store_does_not_hang_plan(tmp_path: Path, name: str) -> None:
    os.mkfifo(tmp_path / name)
    (tmp_path / "app.py").write_text(V2_LINE)
    cli = jmigrate("plan", ".", "--format", "json", cwd=tmp_path, timeout=60)
    assert cli.returncode == 1, cli.stderr
    assert json.loads(cli.stdout)["stores"] == []


STORE_NAMES = ["vectors.jsonl", "v.npy", "v.parquet", "v.arrow", "v.faiss", "chroma.sqlite3"]


@pytest.mark.parametrize("name", STORE_NAMES)
def test_links_to_devices_are_not_read(tmp_path: Path, name: str) -> None:
    (tmp_path / name).symlink_to("/dev/zero")
    cli = jmigrate("plan", ".", "--format", "json", cwd=tmp_path, timeout=60)
    assert cli.returncode == 0, cli.stderr
    assert json.loads(cli.stdout)["stores"] == []


def test_links_to_stores_outside_the_root_are_not_read(tmp_path: Path) -> None:
    outside, root = tmp_path / "outside", tmp_path / "root"
    outside.mkdir()
    root.mkdir()
    np.save(outside / "v.npy", np.zeros((3, 64), np.float32))
    (root / "v.npy").symlink_to(outside / "v.npy")
    (root / "linked").symlink_to(outside, target_is_directory=True)
    assert discover_stores(root) == []
    # The same store inside the root is found once, at its real path (a link to it adds nothing).
    np.save(root / "real.npy", np.zeros((3, 64), np.float32))
    (root / "alias.npy").symlink_to(root / "real.npy")
    assert [Path(s.path).name for s in discover_stores(root)] == ["real.npy"]


def test_a_jsonl_store_with_an_endless_first_line_is_read_with_bounded_memory(tmp_path: Path) -> None:
    # 64 MiB without a newline: the first line is cut at a bound, not read whole (and not parsed).
    with open(tmp_path / "big.jsonl", "wb") as f:
        f.write(b'{"embedding": [' + b"0.1, " * ((64 << 20) // 5))
    import tracemalloc

    tracemalloc.start()
    try:
        discover_stores(tmp_path)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert peak < 32 << 20


def test_a_manifest_link_next_to_a_parquet_store_is_not_followed(tmp_path: Path) -> None:
    (tmp_path / "v.parquet").write_bytes(_parquet_bytes())
    (tmp_path / "manifest.json").symlink_to("/dev/zero")
    (store,) = discover_stores(tmp_path)
    assert store.kind == "parquet"


def test_zip_bombs_in_npz_are_not_inflated(tmp_path: Path) -> None:
    # An .npz member whose header claims a normal array: only the header is read, whatever follows.
    with zipfile.ZipFile(tmp_path / "v.npz", "w", zipfile.ZIP_DEFLATED) as z:
        header = _npy_bytes(np.zeros((2, 64), np.float32))[:128]
        z.writestr("emb.npy", header + b"\0" * (32 << 20))
    import tracemalloc

    tracemalloc.start()
    try:
        (store,) = discover_stores(tmp_path)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert store.dims == 64 and peak < 16 << 20


# --- names resolve by scope: an edit never lands in another request's payload ----------------------

JS_TWO_PAYLOADS = """\
async function openaiEmbed(t) {
  const payload = { model: "text-embedding-3-small", input: t, encoding_format: "float", normalized: true };
  return fetch("https://api.openai.com/v1/embeddings", { method: "POST", body: JSON.stringify(payload) });
}

async function jinaEmbed(t) {
  const payload = {model: "jina-embeddings-v2-base-en", input: t, encoding_format: "float", normalized: true};
  return fetch("https://api.jina.ai/v1/embeddings", {
    method: "POST",
    body: JSON.stringify(payload),
  });
}
"""

# The URL in a constant at the top: the request is the call that passes it, not the text after it.
JS_URL_CONSTANT = """\
const JINA_URL = "https://api.jina.ai/v1/embeddings";
const OPENAI_URL = "https://api.openai.com/v1/embeddings";
async function openaiEmbed(t) {
  const payload = {model: "text-embedding-3-small", input: t, encoding_format: "float", normalized: true};
  return fetch(OPENAI_URL, { method: "POST", body: JSON.stringify(payload) });
}
async function jinaEmbed(t) {
  const payload = {model: "jina-embeddings-v2-base-en", input: t, encoding_format: "float", normalized: true};
  const body = JSON.stringify(payload);
  return fetch(JINA_URL, { method: "POST", body });
}
"""

PY_TWO_PAYLOADS = """\
import requests


def openai_embed(t):
    payload = {"model": "text-embedding-3-small", "input": t, "encoding_format": "float", "normalized": True}
    return requests.post("https://api.openai.com/v1/embeddings", json=payload)


def helper():
    def inner():
        payload = {"model": "x", "input": [], "encoding_format": "float", "normalized": True}
        return payload
    return inner


payload = {"model": "jina-embeddings-v2-base-en", "input": [], "encoding_format": "float", "normalized": True}
requests.post("https://api.jina.ai/v1/embeddings", json=payload)
"""


def _apply_safe(root: Path) -> None:
    from jmigrate.scan.apply import apply

    apply(plan(root))


@pytest.mark.parametrize("name,text", [("client.js", JS_TWO_PAYLOADS), ("client.ts", JS_TWO_PAYLOADS),
                                       ("const.js", JS_URL_CONSTANT), ("client.py", PY_TWO_PAYLOADS)])
def test_a_payload_name_resolves_to_its_own_scope(tmp_path: Path, name: str, text: str) -> None:
    (tmp_path / name).write_text(text)
    _apply_safe(tmp_path)
    after = (tmp_path / name).read_text()
    openai_lines = [ln for ln in after.splitlines() if "text-embedding-3-small" in ln or '"x"' in ln]
    assert openai_lines and all("encoding_format" in ln and "normalized" in ln for ln in openai_lines)
    (jina_line,) = [ln for ln in after.splitlines() if "jina-embeddings-v2-base-en" in ln]
    assert "encoding_format" not in jina_line and "embedding_type" in jina_line
    assert "normalized" not in jina_line


JS_UNSURE = {
    # Declared twice where the request can see it (var redeclaration; a reassignment): which one is sent
    # depends on the run, so nothing is edited for it automatically.
    "redeclared.js": """\
var payload = { model: "jina-embeddings-v2-base-en", input: t, encoding_format: "float" };
if (other) { var payload = { model: "text-embedding-3-small", input: t, encoding_format: "float" }; }
fetch("https://api.jina.ai/v1/embeddings", { method: "POST", body: JSON.stringify(payload) });
""",
    "reassigned.js": """\
let payload = { model: "jina-embeddings-v2-base-en", input: t, encoding_format: "float" };
if (useOpenAI) payload = { model: "text-embedding-3-small", input: t, encoding_format: "float" };
fetch("https://api.jina.ai/v1/embeddings", { method: "POST", body: JSON.stringify(payload) });
""",
    "param.js": """\
const payload = { model: "jina-embeddings-v2-base-en", input: t, encoding_format: "float" };
function send(payload) {
  return fetch("https://api.jina.ai/v1/embeddings", { method: "POST", body: JSON.stringify(payload) });
}
""",
}
PY_UNSURE = {
    "branches.py": """\
import requests
if use_openai:
    payload = {"model": "text-embedding-3-small", "input": t, "encoding_format": "float"}
else:
    payload = {"model": "jina-embeddings-v2-base-en", "input": t, "encoding_format": "float"}
requests.post("https://api.jina.ai/v1/embeddings", json=payload)
""",
    "param.py": """\
import requests
payload = {"model": "jina-embeddings-v2-base-en", "input": t, "encoding_format": "float"}
def send(payload):
    return requests.post("https://api.jina.ai/v1/embeddings", json=payload)
""",
}


@pytest.mark.parametrize("name", sorted({**JS_UNSURE, **PY_UNSURE}))
def test_an_ambiguous_payload_name_gives_manual_findings_only(tmp_path: Path, name: str) -> None:
    text = {**JS_UNSURE, **PY_UNSURE}[name]
    (tmp_path / name).write_text(text)
    result = plan(tmp_path, select=["JM2"])
    assert all(f.applicability.value == "manual" and not f.edits for f in result.findings), [
        (f.code, f.applicability.value) for f in result.findings
    ]
    _apply_safe(tmp_path)
    assert (tmp_path / name).read_text() == text


def test_jm501_js_looks_for_uses_in_the_embedders_own_scope(tmp_path: Path) -> None:
    # The old LangChain.js API (`modelName`: no task sent; the current class sends one per side).
    # Two functions, each with its own `embeddings`: one stores documents, the other searches. Neither
    # instance serves both sides.
    (tmp_path / "rag.ts").write_text("""\
export async function ingest(docs) {
  const embeddings = new JinaEmbeddings({ modelName: "jina-embeddings-v2-base-en" });
  return embeddings.embedDocuments(docs);
}
export async function ask(q) {
  const embeddings = new JinaEmbeddings({ modelName: "jina-embeddings-v2-base-en" });
  return embeddings.embedQuery(q);
}
""")
    assert plan(tmp_path, select=["JM501"]).findings == []
    (tmp_path / "one.ts").write_text("""\
const embeddings = new JinaEmbeddings({ modelName: "jina-embeddings-v2-base-en" });
await embeddings.embedDocuments(docs);
await embeddings.embedQuery(q);
""")
    assert [f.path for f in plan(tmp_path, select=["JM501"]).findings] == ["one.ts"]


# --- plan is linear in the number of findings ---------------------------------------------------
# Counted, not timed: Python function calls (sys.setprofile) and the characters handed to the regex
# engine (every search/finditer/... of jmigrate's patterns and of `re`'s functions is given a string and
# a range: their total is what the engine may scan). A file 4x larger with 4x the findings must cost
# about 4x, not 16x (rescanning the file for every finding made a 400 KB JSONL take 324 s).


def _file(kind: str, k: int) -> tuple[str, str]:
    if kind == "jsonl":
        rows = (json.dumps({"id": i, "model": "jina-embeddings-v2-base-en", "text": "a"}) for i in range(k))
        return "data.jsonl", "\n".join(rows) + "\n"
    if kind == "minified.js":
        return "app.min.js", "".join(
            f'function f{i}(t){{return fetch("https://api.jina.ai/v1/embeddings",{{method:"POST",'
            f'body:JSON.stringify({{model:"jina-embeddings-v2-base-en",input:t,normalized:true}})}})}};'
            f'var e{i}=new JinaEmbeddings({{model:"jina-embeddings-v2-base-en"}});e{i}.embedQuery(t);'
            for i in range(k)
        )
    if kind == "python":
        return "app.py", "import requests\n" + "".join(
            f"def f{i}(t):\n    r = requests.post('https://api.jina.ai/v1/embeddings', json={{'model': "
            f"'jina-embeddings-v2-base-en', 'input': t, 'normalized': True}})\n    return r.json()\n"
            for i in range(k)
        )
    if kind == "python-local":  # JM504's value flow: self.model in each class, helper calls (issue 12)
        return "local.py", (
            "from sentence_transformers import SentenceTransformer\n"
            "MODEL = 'jinaai/jina-embeddings-v2-base-en'\n"
        ) + "".join(
            f"class E{i}:\n    def __init__(self, name=MODEL):\n"
            f"        self.model = SentenceTransformer(name, trust_remote_code=True)\n"
            f"    def embed(self, texts):\n        return self.model.encode(texts)\n"
            f"def use{i}(docs):\n    e = E{i}()\n    return e.embed(docs)\n"
            for i in range(k)
        )
    if kind == "notebook":
        source = [["m = 'jina-embeddings-v2-base-en'\n", f"v{i} = embed(m)\n"] for i in range(k)]
        cells = [{"cell_type": "code", "metadata": {}, "outputs": [], "source": s} for s in source]
        return "nb.ipynb", json.dumps({"cells": cells, "metadata": {}, "nbformat": 4, "nbformat_minor": 5})
    assert kind == "shell"
    return "embed.sh", "".join(
        f"curl https://api.jina.ai/v1/embeddings -d '{{\"model\": \"jina-embeddings-v2-base-en\", "
        f"\"input\": [\"{i}\"], \"normalized\": true}}'\n"
        for i in range(k)
    )


class _Counting:
    """A compiled pattern that adds up the characters the regex engine works through: from the start
    position to the end of the match a search finds (to the end of the range when none), the whole range
    for finditer/findall/sub/split, the match itself for match/fullmatch."""

    def __init__(self, pattern: re.Pattern[str], counter: list[int]) -> None:
        self._p, self._c = pattern, counter

    def __getattr__(self, name: str) -> object:
        attr = getattr(self._p, name)
        if name not in ("search", "match", "fullmatch", "finditer", "findall", "sub", "subn", "split"):
            return attr

        def counted(*args: Any, **kwargs: Any) -> object:
            if name in ("sub", "subn"):
                self._c[0] += len(args[1])
                return attr(*args, **kwargs)
            text: str = args[0]
            pos = int(args[1]) if len(args) > 1 and name != "split" else 0
            end = min(int(args[2]), len(text)) if len(args) > 2 and name != "split" else len(text)
            result = attr(*args, **kwargs)
            if name in ("search", "match", "fullmatch"):
                stop = result.end() if result is not None else (end if name == "search" else pos + 1)
                self._c[0] += max(1, stop - pos)
            else:
                self._c[0] += max(0, end - pos)
            return result

        return counted


@contextlib.contextmanager
def _count_regex_work(counter: list[int]) -> Iterator[None]:
    import jmigrate

    real_compile = re.compile
    patched: list[tuple[object, str, object]] = []

    def wrap(value: object) -> object:
        if isinstance(value, re.Pattern) and isinstance(value.pattern, str):
            return _Counting(value, counter)
        if isinstance(value, tuple) and any(isinstance(v, (re.Pattern, tuple)) for v in value):
            return tuple(wrap(v) for v in value)
        return value

    for name, module in list(sys.modules.items()):
        if name.startswith(("jmigrate.scan", "jmigrate.rules")) and module is not None:
            for attr, value in list(vars(module).items()):
                new = wrap(value)
                if new is not value:
                    patched.append((module, attr, value))
                    setattr(module, attr, new)
    for fn in ("search", "match", "fullmatch", "finditer", "findall"):
        real = getattr(re, fn)
        patched.append((re, fn, real))
        setattr(re, fn, lambda p, s, *a, _f=fn, **k: getattr(_Counting(real_compile(p), counter), _f)(s, *a,
                                                                                                **k))
    patched.append((re, "compile", real_compile))
    re.compile = lambda p, *a, **k: wrap(real_compile(p, *a, **k))  # type: ignore[assignment]
    from jmigrate.scan import text

    text._legacy_re.cache_clear()  # compiled again through the counting re.compile
    try:
        yield
    finally:
        for module, attr, value in reversed(patched):
            setattr(module, attr, value)
        text._legacy_re.cache_clear()
    assert jmigrate  # the package stays importable


def _cost(root: Path) -> tuple[int, int, int]:
    calls = [0]
    chars = [0]

    def profile(frame: object, event: str, arg: object) -> None:
        if event in ("call", "c_call"):
            calls[0] += 1

    with _count_regex_work(chars):
        sys.setprofile(profile)
        try:
            result = plan(root, stores=False)
        finally:
            sys.setprofile(None)
    return calls[0], chars[0], len(result.findings)


@pytest.mark.parametrize("kind", ["jsonl", "minified.js", "python", "python-local", "notebook", "shell"])
def test_plan_cost_grows_linearly_with_findings(tmp_path: Path, kind: str) -> None:
    costs = []
    for k in (60, 240):
        root = tmp_path / str(k)
        root.mkdir()
        name, text = _file(kind, k)
        (root / name).write_text(text)
        plan(root, stores=False)  # warm: rule modules imported, patterns compiled
        costs.append(_cost(root))
    (calls1, chars1, found1), (calls4, chars4, found4) = costs
    assert found1 >= 60 and found4 >= 4 * found1 * 0.9
    # Linear: about 4x. A rescan per finding: about 16x.
    assert calls4 / calls1 < 6, (calls1, calls4)
    assert chars4 / chars1 < 6, (chars1, chars4)


def test_task_inference_keeps_same_named_variables_of_different_functions_apart(tmp_path: Path) -> None:
    # Two functions, each with its own `emb`: one embeds documents, the other queries. Neither instance
    # serves both sides, and each call site gets its own task.
    (tmp_path / "rag.py").write_text("""\
from langchain_community.embeddings import JinaEmbeddings


def ingest(docs):
    emb = JinaEmbeddings(model_name="jina-embeddings-v2-base-en")
    return emb.embed_documents(docs)


def ask(q):
    emb = JinaEmbeddings(model_name="jina-embeddings-v2-base-en")
    return emb.embed_query(q)
""")
    result = plan(tmp_path, select=["JM301", "JM501"])
    assert [f.code for f in result.findings] == ["JM301", "JM301"]
    assert [f.recommendation["task"] for f in result.findings] == ["retrieval.passage", "retrieval.query"]
