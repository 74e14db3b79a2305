"""Python call sites that create a Jina embedder or send an embeddings request (shared by JM2xx-JM5xx)."""

from __future__ import annotations

import ast
import re
from dataclasses import dataclass
from functools import cached_property, lru_cache
from pathlib import Path

from jmigrate.models import MODELS, V3, Model
from jmigrate.scan.context import FileContext
from jmigrate.scan.finding import Edit
from jmigrate.scan.python import PyModule, call_name, dict_key, kwarg, last_part
from jmigrate.scan.text import ModelMatch, balanced_end, model_matches

# Constructor (last part of the called name) -> integration kind.
KINDS = {
    "JinaEmbeddings": "langchain",
    "JinaEmbedding": "llamaindex",
    "JinaTextEmbedder": "haystack-text",
    "JinaDocumentEmbedder": "haystack-document",
    "JinaEmbeddingFunction": "chroma",  # "milvus" when the file imports pymilvus
    "SentenceTransformer": "sentence-transformers",
    "from_pretrained": "transformers",
    "TextEmbedding": "fastembed",
    "embedding": "litellm",
    "aembedding": "litellm",
    # Embedders that load or call the model by name with no task of their own (JM501 follows their uses).
    "OllamaEmbeddings": "ollama",
    "OllamaEmbedding": "ollama",
    "HuggingFaceEmbedding": "llamaindex-hf",
    "HuggingFaceEmbeddings": "langchain-hf",
    "SentenceTransformerEmbeddings": "langchain-hf",
}
# Integrations whose default model is a v2 model: no model argument still means v2.
DEFAULT_V2 = {"langchain": "jina-embeddings-v2-base-en", "chroma": "jina-embeddings-v2-base-en"}
MODEL_KWARGS = ("model_name", "model", "model_id", "model_name_or_path", "pretrained_model_name_or_path")


_EMBEDDINGS_PATH = re.compile(r"(?:^|/)embeddings(?:[/?#\"']|$)")


@dataclass
class PyRequest:
    call: ast.Call
    payload: ast.Dict | None
    # False when the payload is a name bound more than once where the request can see it: the dict found
    # may not be the one sent, so its findings are manual.
    certain: bool = True


@dataclass
class Site:
    call: ast.Call
    kind: str
    model: Model | None  # the legacy model it uses (None: not a legacy model)
    model_node: ast.AST | None  # where the model is given (None: the integration's default)

    @property
    def is_default_model(self) -> bool:
        return self.model is not None and self.model_node is None


def _model_arg(call: ast.Call) -> ast.AST | None:
    kw = kwarg(call, *MODEL_KWARGS)
    if kw is not None:
        return kw.value
    return call.args[0] if call.args else None


_ENV_GETTERS = {"getenv", "get", "environ.get", "os.getenv", "os.environ.get", "config", "env"}


def string_value(mod: PyModule, node: ast.AST | None, depth: int = 0) -> str | None:
    """The string a model argument evaluates to, when the module alone says so (a small, sound constant
    propagation): a literal, a name bound once, a parameter's default, `os.getenv("X", default)` (the
    default is what runs when X is unset), an f-string or `"...{}".format(...)` of such values, a literal
    dict indexed by a literal key, and `settings.NAME` for a NAME assigned once in a class or at module
    level. None whenever any piece is unknown: never a guess."""
    if node is None or depth > 6:
        return None
    value = mod.constant_value(node)
    if isinstance(value, str):
        return value
    if isinstance(node, ast.Name):
        bound, certain = mod.resolve_name(node)
        if certain and bound is not None and bound is not node:
            return string_value(mod, bound, depth + 1)
        return _parameter_default(mod, node, depth) or _imported_constant(mod, node.id)
    if isinstance(node, ast.JoinedStr):
        parts = []
        for v in node.values:
            inner = v.value if isinstance(v, ast.FormattedValue) else v
            s = string_value(mod, inner, depth + 1)
            if s is None or (isinstance(v, ast.FormattedValue) and (v.format_spec or v.conversion != -1)):
                return None
            parts.append(s)
        return "".join(parts)
    if isinstance(node, ast.Call):
        name = call_name(node)
        if isinstance(node.func, ast.Attribute) and node.func.attr == "format" and not node.keywords:
            template = string_value(mod, node.func.value, depth + 1)
            args = [string_value(mod, a, depth + 1) for a in node.args]
            if template is None or None in args or "{" in template.replace("{}", ""):
                return None
            return template.format(*args)
        if name in _ENV_GETTERS or name.endswith(("getenv", "environ.get")):
            return string_value(mod, node.args[1], depth + 1) if len(node.args) == 2 else None
        return None
    if isinstance(node, ast.BinOp) and isinstance(node.op, ast.Add):
        left, right = string_value(mod, node.left, depth + 1), string_value(mod, node.right, depth + 1)
        return left + right if left is not None and right is not None else None
    if isinstance(node, ast.Subscript) and isinstance(node.value, ast.Name):
        table, certain = mod.resolve_name(node.value)
        key = mod.constant_value(node.slice)
        if certain and isinstance(table, ast.Dict) and isinstance(key, str):
            i = dict_key(table, key)
            return string_value(mod, table.values[i], depth + 1) if i is not None else None
        return None
    if isinstance(node, ast.Attribute):
        return _attribute_value(mod, node.attr, depth)
    return None


def _imported_constant(mod: PyModule, name: str) -> str | None:
    """`from .config import MODEL` / `from app.settings import MODEL`: the string MODEL is assigned once at
    module level in that file of the scanned repository (a literal only; anything else is unknown)."""
    root = mod.__dict__.get("project_root")
    if not root:
        return None
    for stmt in mod.tree.body:
        if not isinstance(stmt, ast.ImportFrom) or not any(
            a.name == name and a.asname is None for a in stmt.names
        ):
            continue
        parts = (stmt.module or "").split(".") if stmt.module else []
        if stmt.level:
            base = Path(root, mod.src.path).parent
            for _ in range(stmt.level - 1):
                base = base.parent
            bases = [base]
        else:
            bases = [Path(root), Path(root, "src")]
        for b in bases:
            for candidate in (b.joinpath(*parts).with_suffix(".py"), b.joinpath(*parts, "__init__.py")):
                value = _module_constant_of(candidate, root, name)
                if value is not None:
                    return value
    return None


def _module_constant_of(p: Path, root: str, name: str) -> str | None:
    try:
        if p.is_symlink() or not p.is_file() or not p.resolve().is_relative_to(Path(root).resolve()):
            return None
        st = p.stat()
    except (OSError, ValueError):
        return None
    if st.st_size > 1 << 20:
        return None
    # Keyed by size and mtime: `apply` may have rewritten the module since (a stale v2 value: false alarm).
    return _module_constant(str(p), st.st_mtime_ns, st.st_size, name)


@lru_cache(maxsize=256)
def _module_constant(path: str, mtime_ns: int, size: int, name: str) -> str | None:
    try:
        tree = ast.parse(Path(path).read_bytes())
    except (OSError, SyntaxError, ValueError):
        return None
    values = [
        s.value
        for s in tree.body
        if isinstance(s, ast.Assign) and any(isinstance(t, ast.Name) and t.id == name for t in s.targets)
    ]
    if len(values) == 1 and isinstance(values[0], ast.Constant) and isinstance(values[0].value, str):
        return values[0].value
    return None


def _parameter_default(mod: PyModule, name: ast.Name, depth: int) -> str | None:
    """`def load(model=MODEL): SentenceTransformer(model)`: the default, unless the function rebinds it."""
    fn = mod.enclosing_function(name)
    if fn is None:
        return None
    a = fn.args
    positional = [*a.posonlyargs, *a.args]
    defaults: dict[str, ast.AST] = {
        arg.arg: d for arg, d in zip(positional[len(positional) - len(a.defaults) :], a.defaults, strict=True)
    }
    defaults |= {arg.arg: d for arg, d in zip(a.kwonlyargs, a.kw_defaults, strict=True) if d is not None}
    if name.id not in defaults:
        return None
    rebound = [
        n
        for n in ast.walk(fn)
        if isinstance(n, ast.Name) and n.id == name.id and isinstance(n.ctx, ast.Store)
    ]
    return None if rebound else string_value(mod, defaults[name.id], depth + 1)


def _attribute_value(mod: PyModule, attr: str, depth: int) -> str | None:
    """`settings.EMBED_MODEL`: the one assignment of that name in a class body or at module level."""
    found: list[ast.AST] = []
    bodies: list[list[ast.stmt]] = [mod.tree.body, *(c.body for c in mod.of_type(ast.ClassDef))]
    for body in bodies:
        for stmt in body:
            if isinstance(stmt, ast.Assign):
                if any(isinstance(t, ast.Name) and t.id == attr for t in stmt.targets):
                    found.append(stmt.value)
            elif isinstance(stmt, ast.AnnAssign) and isinstance(stmt.target, ast.Name):
                if stmt.target.id == attr and stmt.value is not None:
                    found.append(stmt.value)
    return string_value(mod, found[0], depth + 1) if len(found) == 1 else None


def model_of(mod: PyModule, node: ast.AST | None, maybe: bool = False) -> Model | None | str:
    """The legacy model a model argument names; "v3"/"other" for known non-legacy values; None if unknown.
    With `maybe`, a value that is not certain counts when every value it may take names that model."""
    value = string_value(mod, node)
    if not isinstance(value, str):
        return _possible_model(mod, node) if maybe else None
    for m in model_matches(value):
        return m.model
    return "v3" if V3 in value else "other"


_LOCAL = {"sentence-transformers", "transformers", "fastembed"}


def _user_class(mod: PyModule, call: ast.Call) -> bool:
    """`JinaEmbedding(...)` where JinaEmbedding is a class of the scanned repository (defined in this module
    or imported from one of its modules), not the integration of that name."""
    if not isinstance(call.func, ast.Name):
        return False
    name = call.func.id
    memo: dict[str, bool] = mod.__dict__.setdefault("_user_classes", {})
    if name not in memo:  # once per name: a module may call the class many times
        memo[name] = _user_class_named(mod, name)
    return memo[name]


def _user_class_named(mod: PyModule, name: str) -> bool:
    if any(isinstance(s, ast.ClassDef) and s.name == name for s in mod.tree.body):
        return True
    root = mod.__dict__.get("project_root")
    if not root:
        return False
    from jmigrate.rules._calls import module_paths

    for stmt in mod.tree.body:
        if isinstance(stmt, ast.ImportFrom) and any((a.asname or a.name) == name for a in stmt.names):
            return any(p.is_file() for p in module_paths(mod.src.path, root, stmt.module or "", stmt.level))
    return False


def _possible_model(mod: PyModule, node: ast.AST | None) -> Model | None:
    """When no single value is certain: the legacy model every known value of the argument names (values a
    run may take: branches, `or`, instantiation arguments, objects built with keyword fields, settings of
    other modules; see rules/_calls.py). None when a known value is another model or v3."""
    if node is None:
        return None
    from jmigrate.rules._calls import OPAQUE, flow_with_root

    flow = flow_with_root(mod)
    found, _ = flow.values(node)
    if OPAQUE in flow.origin(node):
        return None  # model = pick(model): what reaches the call is not known
    models = set()
    for value in found:
        matches = [m.model for m in model_matches(value)]
        if not matches:
            return None
        models.update(matches)
    return next(iter(models)) if len(models) == 1 else None


class Sites:
    """All Jina call sites of one parsed module."""

    def __init__(self, ctx: FileContext, mod: PyModule) -> None:
        self.ctx, self.mod = ctx, mod

    @cached_property
    def embedders(self) -> list[Site]:
        out = []
        milvus = "pymilvus" in self.ctx.src.text
        for call in self.mod.calls:
            kind = KINDS.get(last_part(call_name(call)))
            if kind is None:
                continue
            if kind == "chroma" and milvus:
                kind = "milvus"
            if _user_class(self.mod, call):
                continue  # the project's own class that happens to share an integration's name
            node = _model_arg(call)
            # Integrations follow every value the argument may take; local loaders (JM308-JM310, whose
            # calls JM504 follows that way) only a certain one.
            model = model_of(self.mod, node, maybe=kind not in _LOCAL)
            if isinstance(model, Model) and model.replacement is None:
                continue  # base-code stays on v2 (JM104 says so)
            if isinstance(model, Model):
                out.append(Site(call, kind, model, node))
            elif node is None and kind in DEFAULT_V2:
                out.append(Site(call, kind, MODELS[DEFAULT_V2[kind]], None))
        return out

    def of_kind(self, *kinds: str) -> list[Site]:
        return [s for s in self.embedders if s.kind in kinds]

    @cached_property
    def requests(self) -> list[PyRequest]:
        """HTTP POSTs to Jina's embeddings endpoint and their payload dict literal (if visible)."""
        mod, text = self.mod, self.ctx.src.text
        out = []
        for call in mod.calls:
            name = call_name(call)
            if last_part(name) not in ("post", "request", "fetch"):
                continue
            url_kw = kwarg(call, "url")
            # post(url, ...) / request("POST", url, ...)
            url_at = 1 if last_part(name) == "request" else 0
            url_expr = url_kw.value if url_kw else (call.args[url_at] if len(call.args) > url_at else None)
            url = mod.constant_value(url_expr)
            if isinstance(url_expr, ast.JoinedStr):
                url = mod.segment(url_expr)
            # /v1/embeddings, not ColBERT's /v1/multi-embeddings (another model family, no v2 finding)
            if not isinstance(url, str) or not _EMBEDDINGS_PATH.search(url):
                continue
            # A relative URL ("/embeddings" on a client with a Jina base_url) counts when the file names Jina.
            if "jina.ai" not in url and (url.lstrip("f\"'").startswith("http") or "api.jina.ai" not in text):
                continue
            body = kwarg(call, "json", "data", "content")
            payload, certain = mod.resolve_dict(body.value) if body else (None, False)
            out.append(PyRequest(call, payload, certain))
        return out


def dict_entry_span(mod: PyModule, d: ast.Dict, i: int) -> tuple[int, int]:
    """Span to delete entry `i` of a dict literal, with the comma that separates it from its neighbour."""
    key, value = d.keys[i], d.values[i]
    assert key is not None
    start, end = mod.start(key), mod.end(value)
    text = mod.src.text
    if i + 1 < len(d.keys):  # remove up to the next key, so the next entry takes this one's place
        nxt = d.keys[i + 1]
        return start, mod.start(nxt) if nxt is not None else mod.start(d.values[i + 1])
    if i > 0:  # last entry: remove from the end of the previous value
        return mod.end(d.values[i - 1]), end
    # Only entry: remove it and a trailing comma, if any.
    j = end
    while j < len(text) and text[j] in " \t":
        j += 1
    return start, j + 1 if j < len(text) and text[j] == "," else end


def add_dict_entry(mod: PyModule, d: ast.Dict, key: str, value: str, before: int | None = None) -> Edit:
    """Insert `"key": "value"` into a non-empty dict literal (string-quote style kept): in front of entry
    `before` (the model, which no rule deletes), else after the last entry.

    An insertion in front of a key never starts where another rule's deletion starts (a deletion that
    reaches the model key ends there), so applying edits back to front cannot lose it.
    """
    anchor = d.keys[before] if before is not None else None
    sample = d.keys[before if before is not None else -1] or d.values[-1]
    quote = "'" if mod.segment(sample).startswith("'") else '"'
    pair = f"{quote}{key}{quote}: {quote}{value}{quote}"
    if anchor is not None:
        return insert_before_key(mod.src.text, mod.start(anchor), pair)
    return Edit(mod.end(d.values[-1]), mod.end(d.values[-1]), f", {pair}")


def add_keyword(mod: PyModule, call: ast.Call, name: str, value: str) -> Edit:
    """Insert `name="value"` as the last argument of a call."""
    args: list[ast.AST] = [*call.args, *call.keywords]
    if not args:
        pos = mod.end(call) - 1  # just before ")"
        return Edit(pos, pos, f'{name}="{value}"')
    last = max(args, key=lambda a: mod.end(a))
    pos = mod.end(last)
    return Edit(pos, pos, f', {name}="{value}"')


def string_key(d: ast.Dict, key: str) -> ast.Constant | None:
    i = dict_key(d, key)
    k = d.keys[i] if i is not None else None
    return k if isinstance(k, ast.Constant) else None


def site_span(sites: Sites, site: Site) -> tuple[int, int]:
    """Where an integration finding points: the called name (`JinaEmbeddings` in `JinaEmbeddings(...)`)."""
    return sites.mod.span(site.call.func)


@dataclass(frozen=True)
class JsEmbedder:
    """`new JinaEmbeddings({...})` in JS/TS (LangChain.js) on a legacy model."""

    start: int  # of `new`
    model: Model
    var: str | None  # the const/let/var it is assigned to
    var_start: int
    scope: tuple[int, int]  # the block the variable is declared in: where its uses are looked for
    # `modelName:` is the old @langchain/community API, which sends model and input only (no task).
    old_api: bool = False


_JS_NEW = re.compile(r"(?:(?:const|let|var)\s+([\w$]+)\s*=\s*)?(?P<new>new)\s+JinaEmbeddings\s*\(\s*(\{)?")


_JS_MODEL_NAME = re.compile(r"\bmodel(?:Name)?\s*:\s*([A-Za-z_$][\w$]*)\s*[,}]")


def _js_const_model(text: str, options: str) -> list[ModelMatch]:
    """`{ model: MODEL }` with `const MODEL = "jina-embeddings-v2-..."` bound once in the file."""
    m = _JS_MODEL_NAME.search(options)
    if m is None:
        return []
    name = re.escape(m.group(1))
    bindings = re.findall(rf"\b(?:const|let|var)\s+{name}\s*=\s*([\"'`])([^\"'`\n]*)\1", text)
    if len(bindings) != 1 or len(re.findall(rf"\b{name}\s*=[^=]", text)) != 1:
        return []  # rebound somewhere: which value is used depends on the run
    return list(model_matches(bindings[0][1]))


_JS_MODEL_KEY = re.compile(r"\bmodel(?:Name)?\s*:\s*")


def _js_imported_model(ctx: FileContext, start: int, end: int) -> list[ModelMatch]:
    """`{ model: X }` where X is followed through the repository's JS/TS modules (an imported constant, a
    table entry, a `process.env.X ?? "..."` default): scan/jsmodules.py."""
    from jmigrate.scan.jsmodules import project_of

    text = ctx.src.text
    m = _JS_MODEL_KEY.search(text, start, end)
    if m is None:
        return []
    value = project_of(ctx.src.path, text, ctx.project.js).string(ctx.src.path, m.end())
    return list(model_matches(value)) if value else []


def js_embedders(ctx: FileContext) -> list[JsEmbedder]:
    """LangChain.js embedders of a JS/TS file (shared by JM301 and JM501)."""
    if ctx.language != "js":
        return []
    from jmigrate.scan import jsscope

    text = ctx.src.text
    out = []
    for m in _JS_NEW.finditer(text):
        end = balanced_end(text, m.start(3)) if m.group(3) else -1
        models = list(model_matches(text[m.start(3) : end])) if end > 0 else []
        if not models and end > 0:
            models = _js_const_model(text, text[m.start(3) : end])
        if not models and end > 0:
            models = _js_imported_model(ctx, m.start(3), end)
        if not models:
            continue
        b = jsscope.blocks(text)
        block = b.innermost(m.start())
        scope = (b.opens[block], b.closes[block]) if block >= 0 else (0, len(text))
        old = re.search(r"\bmodelName\s*:", text[m.start(3) : end]) is not None
        out.append(JsEmbedder(m.start("new"), models[0].model, m.group(1), m.start(1), scope, old))
    return out


def python_sites(ctx: FileContext, *kinds: str) -> tuple[Sites | None, list[Site]]:
    mod = ctx.py
    if mod is None:
        return None, []
    sites = Sites(ctx, mod)
    return sites, sites.of_kind(*kinds)


def insert_before_key(text: str, at: int, pair: str) -> Edit:
    """Insert `pair` in front of the key at `at`: on a line of its own when that key starts its line."""
    line_start = text.rfind("\n", 0, at) + 1
    indent = text[line_start:at]
    if not indent.strip():
        newline = "\r\n" if text[max(0, line_start - 2) : line_start] == "\r\n" else "\n"
        return Edit(at, at, f"{pair},{newline}{indent}")
    return Edit(at, at, f"{pair}, ")

