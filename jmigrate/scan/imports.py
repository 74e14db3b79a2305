"""Files that never say "jina" but use a v2 model another module of the repository defines.

`from app.settings import EMBED_MODEL` then `SentenceTransformer(EMBED_MODEL)`, or `from .models import
encoder` then `encoder.encode(question)`: the file holds no Jina name, so the byte prefilter drops it. The
modules that define such names are parsed anyway (they name the model), so while they are planned their
exports are recorded: module-level names whose statement names a v1/v2 model, and, one step on, names
bound from those (`encoder = SentenceTransformer(MODEL)`, `def get_db(): ... embeddings ...`). After the
walk, a Python file is parsed only if its bytes hold both the name of an exporting module (`settings`) and
one of that module's exported names (`EMBED_MODEL`): substring tests on files already read once, so the
cost stays linear and files without a reason are still never parsed.
"""

from __future__ import annotations

import ast
from bisect import bisect_left
from collections.abc import Collection
from pathlib import PurePosixPath

from jmigrate.models import V3
from jmigrate.scan.context import FileContext
from jmigrate.scan.envfiles import is_env_file, legacy_env_pairs
from jmigrate.scan.text import model_matches

_MAX_EXPORTING = 256  # exporting modules remembered (each adds substring tests per unparsed Python file)


def module_key(path: str) -> str:
    """The last part of a module's dotted name: "settings" for app/settings.py, "app" for app/__init__.py."""
    p = PurePosixPath(path)
    return p.parent.name if p.stem == "__init__" else p.stem


def _bound(stmt: ast.stmt) -> list[str]:
    if isinstance(stmt, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
        return [stmt.name]
    targets = stmt.targets if isinstance(stmt, ast.Assign) else [stmt.target] if isinstance(
        stmt, ast.AnnAssign
    ) else []
    return [t.id for t in targets if isinstance(t, ast.Name)]


def exports(ctx: FileContext, env_keys: Collection[str] = ()) -> frozenset[str]:
    """Module-level names of this Python module that carry a legacy model (see the module docstring), or
    read an environment variable whose .env value in the repository names one (`os.getenv("EMBED_MODEL")`)."""
    mod = ctx.py
    if mod is None or ctx.cell_map is not None:
        return frozenset()
    text = ctx.src.text
    spans = [(m.start, m.end) for m in model_matches(text)]
    # v3 too: after `apply` renamed the model, the importers' unfinished v3 code (an encode() without a
    # task, BERT tokens with v3's tokenizer) must still be seen, or a second plan reports a false zero.
    at = text.find(V3)
    while at >= 0:
        spans.append((at, at + len(V3)))
        at = text.find(V3, at + 1)
    for key in {k2 for k in env_keys for k2 in (k, k.lower())}:  # a settings field: embed_model
        at = text.find(key)
        while at >= 0:
            spans.append((at, at + len(key)))
            at = text.find(key, at + 1)
    if not spans:
        return frozenset()
    out: set[str] = set()
    rest: list[tuple[ast.stmt, list[str]]] = []
    starts = sorted(s for s, _ in spans)  # bisected per statement: a scan per statement was quadratic
    for stmt in mod.tree.body:
        names = _bound(stmt)
        if not names:
            continue
        lo, hi = mod.span(stmt)
        i = bisect_left(starts, lo)
        if i < len(starts) and starts[i] < hi:
            out.update(names)
        else:
            rest.append((stmt, names))
    if out:
        for stmt, names in rest:  # one step on: bound from an exported name
            if {n.split(".", 1)[0] for n in mod.names_in(stmt)} & out:
                out.update(names)
    return frozenset(out)


class ImportIndex:
    """Exporting modules seen so far, and the byte test for files that do not say "jina"."""

    def __init__(self) -> None:
        self.by_key: dict[bytes, set[bytes]] = {}
        self.env_keys: dict[str, set[str]] = {}
        self.global_embedder = False  # .env variables whose value names a legacy model
        self.models: dict[bytes, set[str]] = {}  # the legacy models each exporting module names

    def add(self, ctx: FileContext) -> None:
        if ctx.language == "python" and ctx.models and "Settings.embed_model" in ctx.src.text:
            self.global_embedder = True  # LlamaIndex's global embedder may be a v2 model (see wanted())
        if ctx.language == "env" or is_env_file(ctx.src.path.rsplit("/", 1)[-1]):
            self._add_env(ctx)
            return
        if len(self.by_key) >= _MAX_EXPORTING or ctx.language != "python":
            return
        # pydantic settings fields name the variable in lower case (embed_model for EMBED_MODEL)
        read = [k for k in self.env_keys if k in ctx.src.text or k.lower() in ctx.src.text]
        names = exports(ctx, read)
        if names:
            key = module_key(ctx.src.path).encode()
            self.by_key.setdefault(key, set()).update(n.encode() for n in names)
            self.models.setdefault(key, set()).update(ctx.models)
            for k in read:
                self.models[key] |= self.env_keys[k]

    def _add_env(self, ctx: FileContext) -> None:
        """`EMBED_MODEL=jinaai/jina-embeddings-v2-base-en` in a .env file (or a compose `environment:` entry,
        a Dockerfile ENV): Python files reading that variable are parsed (and the modules exporting it are
        followed in turn)."""
        for key, values in legacy_env_pairs(ctx.src.text).items():
            self.env_keys.setdefault(key, set()).update(values)

    def size(self) -> int:
        return sum(len(v) for v in self.by_key.values()) + len(self.env_keys)

    def __bool__(self) -> bool:
        return bool(self.by_key or self.env_keys or self.global_embedder)

    def wanted(self, data: bytes) -> bool:
        """Whether a Python file's bytes may import an exported name (then it is parsed)."""
        if self.global_embedder and (b"VectorStoreIndex" in data or b"load_index_from_storage" in data):
            return True  # builds a LlamaIndex index with the project's global Settings.embed_model
        if self.env_keys and (b"getenv" in data or b"environ" in data or b"Settings" in data):
            if any(k.encode() in data or k.lower().encode() in data for k in self.env_keys):
                return True
        if b"import" not in data:
            return False
        return any(key in data and any(n in data for n in names) for key, names in self.by_key.items())

    def models_for(self, data: bytes) -> set[str]:
        """The legacy models of the exporting modules a wanted file's bytes name (for its vector widths)."""
        out: set[str] = set()
        if b"getenv" in data or b"environ" in data or b"Settings" in data:
            for k, models in self.env_keys.items():
                if k.encode() in data or k.lower().encode() in data:
                    out |= models
        for key, names in self.by_key.items():
            if key in data and any(n in data for n in names):
                out |= self.models.get(key, set())
        return out
