"""Shared by the vector-width rules (JM401-JM403): is this 768/512 the width of a v2 model in use?

A width counts only when a v1/v2 model that v3 replaces is named in the same file (any context) or, for
contexts that are unmistakably a vector schema (a vector column, an index definition, an EMBEDDING_DIM
setting), anywhere in the scanned project. A width whose own block (the dict, call, config section or
settings group around it) names a model belongs to that model: tied when it is a replaced v1/v2 model of
that width (or v3 after `apply`, while the project still has v2 widths), never when it is only
jina-embeddings-v2-base-code or a model of another width. Other 768s and 512s (chunk sizes, token limits,
image sizes, HNSW parameters, hidden sizes) are never findings. `jmigrate.scan.prefilter.width_in_context`
decides which files without a model name reach these rules: a new spelling of a width must be added there.

Python widths are judged per literal, by the role the literal plays (`python_widths`): JM402 reports those
in a store schema, JM403 the rest, so one literal is never reported twice.
"""

from __future__ import annotations

import ast
import bisect
import re
from dataclasses import dataclass

from jmigrate.models import MODELS, V3
from jmigrate.scan.context import FileContext, replaced_dims
from jmigrate.scan.finding import Applicability, Edit, Finding
from jmigrate.scan.memo import per_text
from jmigrate.scan.python import PyModule, call_name, dict_key, last_part
from jmigrate.scan.text import balanced_end, legacy_model_mentions

# A name that says "the width of an embedding": EMBEDDING_DIM, VECTOR_SIZE, emb_dim, DIMS, n_dims,
# embeddingDimensions, EMB_SIZE, vec_len...
WIDTH_NAME = re.compile(
    r"(?i)(emb\w*?_?(dim|size|width|len)|vec(tor)?s?_?(dim|size|width|len)|^(n_|num_)?dims?$|"
    r"^dimension(ality)?$|^d_?model_out$|dim\w*?_vec(tor)?s?$|^num_?dimensions?$)"
)
# Names that hold a width-looking number that is not a vector width (EMBED_BATCH_SIZE, embedding_max_len).
NOT_WIDTH_NAME = re.compile(r"(?i)batch|chunk|token|overlap|max_?len|limit|window|seq|cache|pool|timeout")
# Generic keys: a width only inside a store schema (JM402) or next to the model they belong to.
GENERIC_KEYS = frozenset({"dim", "dims", "dimension", "size", "vector_size", "d", "f"})


def width_name(name: str | None) -> bool:
    """EMBEDDING_DIM-like (never `dimensions`, the v3 request parameter that keeps a schema on purpose)."""
    if not name or name.lower() == "dimensions":
        return False
    return WIDTH_NAME.search(name) is not None and NOT_WIDTH_NAME.search(name) is None


def _specific(name: str) -> bool:
    """A width name that is not also a generic key (`embed_dim`, not `dim`): a keyword or dict key so
    named is a width wherever it is; `dim`/`size` only in a schema or next to their model."""
    return width_name(name) and name.lower() not in GENERIC_KEYS


def v3_only_elsewhere(ctx: FileContext, width: int) -> bool:
    """Is `width` tied only because the project names v3 (no v1/v2 model of that width anywhere), in a file
    that does not name v3? Then only settings that say what they size are reported (EMBEDDING_DIM=768 left
    after the model was renamed); a FAISS `dimension = 512` of a project that uses v3 is some other
    vector's. Vector schemas still are (a `vector(768)` column beside v3 is unfinished migration work)."""
    return (
        width not in ctx.legacy_dims
        and width not in replaced_dims(ctx.project.legacy_models)
        and V3 not in ctx.src.text
    )


def tied(ctx: FileContext, width: int, strong: bool) -> bool:
    if ctx.language == "python" and width not in _code_dims(ctx) and _loads_other_model(ctx):
        return False  # this file's own embedding model is another one: the width is that model's
    if width not in ctx.legacy_dims and any(
        MODELS[m].replacement is None and MODELS[m].dims == width for m in ctx.models
    ):
        return False  # the file's model of that width is base-code, which stays on v2 with its index
    return width in ctx.legacy_dims or (strong and width in ctx.project.legacy_dims)


# Calls that load an embedding model by id: a file that loads another model (all-mpnet-base-v2, codebert,
# nomic-embed-text) sizes its schemas for that model, even when the project uses v2 elsewhere.
_LOADERS = frozenset({
    "SentenceTransformer", "from_pretrained", "HuggingFaceEmbeddings", "HuggingFaceEmbedding",
    "HuggingFaceBgeEmbeddings", "SentenceTransformerEmbeddings", "TextEmbedding", "FastEmbedEmbeddings",
    "OllamaEmbeddings", "OllamaEmbedding",
})


def _code_dims(ctx: FileContext) -> set[int]:
    """Widths of the replaced models named by string literals of the module (not by comments)."""
    cached = ctx.__dict__.get("_code_dims")
    if cached is None:
        mod = ctx.py
        names: set[str] = set()
        if mod is not None:
            for n in mod.of_type(ast.Constant):
                if isinstance(n.value, str) and "jina" in n.value:
                    names |= {m for m, _, _ in legacy_model_mentions(n.value)}
        cached = ctx.__dict__["_code_dims"] = replaced_dims(names)
    return cached


def _loads_other_model(ctx: FileContext) -> bool:
    """Does the module load an embedding model whose id is known and is not a Jina model?"""
    cached = ctx.__dict__.get("_other_model")
    if cached is None:
        from jmigrate.rules._sites import MODEL_KWARGS, string_value

        cached = False
        mod = ctx.py
        for call in mod.calls if mod is not None else []:
            name = call_name(call)
            if last_part(name) not in _LOADERS or re.search(r"(?i)tokeni[sz]er|processor|config", name):
                continue  # a tokenizer for chunking says nothing about the vectors' model
            kw = next((k for k in call.keywords if k.arg in MODEL_KWARGS), None)
            arg = kw.value if kw is not None else (call.args[0] if call.args else None)
            value = string_value(mod, arg) if mod is not None else None
            if isinstance(value, str) and value and "jina" not in value.lower():
                cached = True
                break
        ctx.__dict__["_other_model"] = cached
    return bool(cached)


def block_tie(ctx: FileContext, models: set[str], v3: bool, width: int) -> bool | None:
    """The verdict of the models a width's own block names: True (a replaced model of that width, or v3
    while the project keeps a v2 width it does not request), False (only other models: base-code, another
    width), None (the block names no model: the usual rules decide)."""
    if any(MODELS[m].replacement and MODELS[m].dims == width for m in models):
        return True
    if v3 and width in ctx.project.legacy_dims:
        return True
    return False if models or v3 else None


def text_block_tie(ctx: FileContext, block: str, width: int) -> bool | None:
    """`block_tie` for a block of text (a config section, an object literal)."""
    return block_tie(ctx, {m for m, _, _ in legacy_model_mentions(block)}, V3 in block, width)


def width_finding(ctx: FileContext, start: int, end: int, width: int, what: str) -> Finding:
    """Finding for the digits of `width` at text[start:end]; the fix writes v3's default width."""
    def of_width(names: set[str]) -> list[str]:
        return sorted(m for m in names if MODELS[m].dims == width and MODELS[m].replacement)

    # The file's own models of that width first, else the project's (a file naming small-en may hold a
    # 768 schema of the project's base-en); none at all: only v3 is left.
    models = of_width(ctx.models | ctx.imported_models) or of_width(ctx.project.legacy_models)
    v3 = MODELS[V3].dims
    if models:
        message = f"{what} of width {width}, the width of {', '.join(models)}"
    else:  # only v3 left in the project: the schema still has the v2 width
        message = (
            f"{what} of width {width} (a v2 width) while the project uses {V3}, which returns {v3} "
            f"unless dimensions={width} is requested"
        )
    return ctx.finding(
        start,
        end,
        message,
        f"Change it to {v3} and rebuild the index (schema migration), or keep {width} and request "
        f"dimensions={width} from v3; either way re-embed everything",
        Applicability.UNSAFE,
        [Edit(start, end, str(v3))],
        {"dimensions": {"default": v3, "keep_schema": width}, "model": V3},
    )


# --- Python: the role of each width literal ---------------------------------------------------------------

# Constructor (last part of the called name) -> keyword that holds the width (and positional index as a
# fallback): store schemas, reported by JM402.
SCHEMA_CALLS: dict[str, tuple[str, int | None]] = {
    "VectorParams": ("size", None),
    "FieldSchema": ("dim", None),
    "add_field": ("dim", None),  # pymilvus CollectionSchema.add_field / MilvusClient schemas
    "MilvusVectorStore": ("dim", None),  # LlamaIndex
    "create_index": ("dimension", None),
    "create_collection": ("dimension", None),
    "ServerlessSpec": ("dimension", None),
    "IndexFlatIP": ("d", 0),
    "IndexFlatL2": ("d", 0),
    "IndexHNSWFlat": ("d", 0),
    "IndexFlat": ("d", 0),
    "IndexLSH": ("d", 0),
    "IndexScalarQuantizer": ("d", 0),
    "IndexPQ": ("d", 0),
    "IndexIVFFlat": ("d", 1),
    "IndexIVFPQ": ("d", 1),
    "AnnoyIndex": ("f", 0),
    "list_": ("list_size", 1),
    "Index": ("dim", None),
    "FixedSizeListArray": ("list_size", None),
}
# A dict is a store schema when one of its keys or string values says so (Elasticsearch/OpenSearch
# mappings, Qdrant REST bodies, Redis field attributes, Milvus field dicts).
_SCHEMA_DICT_WORDS = re.compile(
    r"(?i)^(dense_vector|knn_vector|distance|distance_metric|metric|similarity|space_type|float32|"
    r"float_vector|floatvector|vector|vectors|hnsw|flat|algorithm|vector_index)$"
)
_SCHEMA_DICT_KEYS = frozenset({"size", "dims", "dim", "dimension", "vector_size", "numdimensions"})
_ENV_GETTERS = ("getenv", "get", "setdefault", "int", "float", "str", "Field", "config", "env")
# Wrappers a width passes through unchanged: int("768"), os.getenv("X", "768"), Field(default=768).
_CONVERTERS = frozenset({"int", "float", "str"})
_SHAPE_CALLS = {"zeros", "empty", "ones", "rand", "randn", "reshape", "full", "ndarray", "normal", "random"}
_ASSERT_CALLS = frozenset({"assertEqual", "assertEquals", "assert_equal", "assert_array_equal", "equal"})
_SUBJECT_NAME = re.compile(r"(?i)emb|vec")
_ENCODE_CALL = re.compile(r"(?i)encode|embed")


@dataclass(frozen=True)
class PyWidth:
    """A width literal of a Python module that a rule reports: where its digits are and why."""

    rule: str  # "JM402" (store schema) or "JM403" (code and settings)
    width: int
    start: int
    end: int
    what: str


def python_widths(ctx: FileContext) -> list[PyWidth]:
    """Every reportable width literal of the module (computed once per context, shared by JM402/JM403)."""
    cached = ctx.__dict__.get("_py_widths")
    if cached is None:
        cached = ctx.__dict__["_py_widths"] = list(_python_widths(ctx))
    return cached


def _literals(mod: PyModule, widths: set[int]) -> list[tuple[ast.Constant, int]]:
    """Integer literals equal to a width, and strings that are exactly one (`os.getenv("DIM", "768")`)."""
    out = []
    for n in mod.of_type(ast.Constant):
        if type(n.value) is int and n.value in widths:
            out.append((n, n.value))
        elif isinstance(n.value, str) and len(n.value) < 8:
            digits = n.value.strip()
            # ASCII only: "¹".isdigit() is true and int() refuses it.
            if digits.isascii() and digits.isdigit() and int(digits) in widths:
                out.append((n, int(digits)))
    return out


def _digits(mod: PyModule, node: ast.Constant, width: int) -> tuple[int, int]:
    start, end = mod.span(node)
    if isinstance(node.value, str):  # the digits inside the quotes ("0768" whole)
        digits = node.value.strip()
        at = mod.src.text.find(digits, start + 1, end)
        return (at, at + len(digits)) if at >= 0 else (start, end)
    return start, end


def _python_widths(ctx: FileContext) -> list[PyWidth]:
    mod = ctx.py
    if mod is None:
        return []
    widths = ctx.legacy_dims | ctx.project.legacy_dims
    out: list[PyWidth] = []
    for node, width in _literals(mod, widths):
        found = _role(ctx, mod, node, width)
        if found is not None:
            rule, what = found
            if rule == "JM403" and v3_only_elsewhere(ctx, width) and not _SUBJECT_NAME.search(
                _setting_name(mod, node) or ""
            ):
                continue
            start, end = _digits(mod, node, width)
            out.append(PyWidth(rule, width, start, end, what))
    return out


def _carried(mod: PyModule, node: ast.AST) -> tuple[ast.AST, str | None]:
    """Climb from a literal through the calls that hand it on unchanged: `int(...)`, `os.getenv("KEY",
    default)`, `Field(default=...)`. Returns the outermost such expression and the env key, if any."""
    key = None
    while True:
        p = mod.parent(node)
        if isinstance(p, ast.keyword) and p.arg == "default":
            call = mod.parent(p)
            if isinstance(call, ast.Call) and last_part(call_name(call)) in _ENV_GETTERS:
                key = key or _env_key(mod, call)
                node = call
                continue
            return node, key
        if not isinstance(p, ast.Call) or node not in p.args:
            return node, key
        name = last_part(call_name(p))
        i = p.args.index(node)
        if name in _CONVERTERS and i == 0:
            node = p
        elif name in ("getenv", "get", "setdefault") and i == 1 and "environ" in call_name(p) + name:
            key, node = key or _env_key(mod, p), p
        elif name == "getenv" and i == 1:
            key, node = key or _env_key(mod, p), p
        elif name == "Field" and i == 0:
            node = p
        else:
            return node, key


def _env_key(mod: PyModule, call: ast.Call) -> str | None:
    value = mod.constant_value(call.args[0]) if call.args else None
    return value if isinstance(value, str) else None


def _comment_says_jina(mod: PyModule, node: ast.AST) -> bool:
    """A trailing comment on the literal's line that ties it to Jina (`D = 768  # jina v2 width`)."""
    text = mod.src.text
    end = mod.end(node)
    line_end = text.find("\n", end)
    rest = text[end : line_end if line_end >= 0 else len(text)]
    hash_at = rest.find("#")
    return hash_at >= 0 and "jina" in rest[hash_at:].lower()


def _models_in(mod: PyModule, container: ast.AST) -> tuple[set[str], bool]:
    """Models named by the string values of a call's arguments, a dict's values or a class body's
    assignments (names followed as the loaders' data flow does); once per container, however many widths
    it holds (a dict of a thousand model widths is read once, not once per width)."""
    from jmigrate.rules._sites import string_value

    cache: dict[int, tuple[set[str], bool]] = mod.__dict__.setdefault("_width_models", {})
    key = id(container)
    if key in cache:
        return cache[key]
    if isinstance(container, ast.Call):
        nodes: list[ast.AST] = [*container.args, *(k.value for k in container.keywords)]
    elif isinstance(container, ast.Dict):
        nodes = list(container.values)
    elif isinstance(container, (ast.Tuple, ast.List)):
        nodes = list(container.elts)
    elif isinstance(container, ast.arguments):
        nodes = [*container.defaults, *(d for d in container.kw_defaults if d is not None)]
    elif isinstance(container, ast.ClassDef):
        nodes = [
            s.value
            for s in container.body
            if isinstance(s, (ast.Assign, ast.AnnAssign)) and s.value is not None
        ]
    else:
        nodes = []
    models: set[str] = set()
    v3 = False
    for n in nodes:
        value = string_value(mod, n)
        if isinstance(value, str):
            models |= {m for m, _, _ in legacy_model_mentions(value)}
            v3 = v3 or V3 in value
    cache[key] = (models, v3)
    return models, v3


def _role(ctx: FileContext, mod: PyModule, literal: ast.Constant, width: int) -> tuple[str, str] | None:
    """(rule, what) when this literal is a v2 width to report, else None."""
    node, env_key = _carried(mod, literal)
    parent = mod.parent(node)
    commented = _comment_says_jina(mod, node)
    strong_env = env_key is not None and width_name(env_key)

    if isinstance(parent, ast.arguments):  # def __init__(self, embedding_dim: int = 768)
        param = _parameter_of(parent, node)
        if width_name(param) or strong_env or commented:
            return ("JM403", f"default of {param}") if tied(ctx, width, True) else None
        # def __init__(self, model="<v2 id>", dimensions=768): the default model's default width. Only
        # positively: another model's default beside an EMBEDDING_DIM-named one does not clear it (the
        # callers may pass the v2 id).
        models, _ = _models_in(mod, parent)
        generic = (param or "").lower() in ("dimensions", *GENERIC_KEYS)
        if generic and any(MODELS[m].replacement and MODELS[m].dims == width for m in models):
            return ("JM403", f"default of {param}") if tied(ctx, width, True) else None
        return None

    if isinstance(parent, ast.Dict) and node in parent.keys and node is literal:
        # {"VECTOR_SIZES": {768: "JINA"}}: a width as the key of a table named like widths.
        if width_name(_dict_name(mod, parent)):
            return ("JM403", "width table key") if tied(ctx, width, True) else None
        return None

    if isinstance(parent, ast.keyword) and parent.arg:
        call = mod.parent(parent)
        assert isinstance(call, ast.Call)
        name = last_part(call_name(call))
        if parent.arg in _LENGTH_KWARGS:  # conlist(float, min_length=768), Field(..., max_length=768)
            if node is literal and _vector_field(mod, call):
                return ("JM403", f"{parent.arg} of a vector field") if tied(ctx, width, True) else None
            return None
        if name in SCHEMA_CALLS and SCHEMA_CALLS[name][0] == parent.arg and node is literal:
            return ("JM402", f"{name}() schema") if tied(ctx, width, True) else None
        models, v3 = _models_in(mod, call)
        verdict = block_tie(ctx, models, v3, width)
        if verdict is not None:
            ok = verdict and (width_name(parent.arg) or parent.arg.lower() in GENERIC_KEYS)
            return ("JM403", f"{name}({parent.arg}=...)") if ok else None
        if _specific(parent.arg) or strong_env or commented:
            return ("JM403", f"{parent.arg}= setting") if tied(ctx, width, True) else None
        if parent.arg.lower() in ("dim", "dims", "dimension") and tied(ctx, width, False):
            return "JM403", f"{name}({parent.arg}=...)"
        return None

    if isinstance(parent, (ast.Tuple, ast.List)) and node is literal:
        # ("jinaai/jina-embeddings-v2-small-en", 512): a model and its width side by side.
        models, _ = _models_in(mod, parent)
        if models:  # (v3 beside a number is no evidence: after `apply`, ("<v3>", 512) may be a chunk size)
            return ("JM403", "width beside its model") if block_tie(ctx, models, False, width) else None

    if isinstance(parent, ast.Call) and node is literal and node in parent.args:
        name = last_part(call_name(parent))
        models, _ = _models_in(mod, parent)
        if models and name not in SCHEMA_CALLS:
            # Provider("jinaai/jina-embeddings-v2-small-en", 512, ...): the width of the model passed with it.
            return ("JM403", "width beside its model") if block_tie(ctx, models, False, width) else None
        pos = SCHEMA_CALLS.get(name, ("", None))[1]
        if pos is not None and parent.args.index(node) == pos:
            return ("JM402", f"{name}() schema") if tied(ctx, width, True) else None
        pinecone = "pinecone" in call_name(parent).lower()
        if name == "create_index" and parent.args.index(node) == 1 and pinecone:
            return ("JM402", "Pinecone create_index() schema") if tied(ctx, width, True) else None
        return _shape_role(ctx, mod, parent, node, width)

    if isinstance(parent, ast.Dict) and node in parent.values:
        i = parent.values.index(node)
        key_node = parent.keys[i]
        key = mod.constant_value(key_node) if key_node is not None else None
        if not isinstance(key, str):
            return None
        if _schema_dict(mod, parent) and key.lower() in _SCHEMA_DICT_KEYS:
            return ("JM402", "vector schema") if tied(ctx, width, True) else None
        key_models = {m for m, _, _ in legacy_model_mentions(key)}
        if key_models or V3 in key:  # {"jina-embeddings-v2-base-en": 768}: that model's width
            return ("JM403", "width of a model") if block_tie(ctx, key_models, V3 in key, width) else None
        models, v3 = _models_in(mod, parent)
        if key == "dimensions":  # {"identifier": "<v2 id>", "dimensions": 768}: the model's own width
            ok = any(MODELS[m].replacement and MODELS[m].dims == width for m in models)
            return ("JM403", "model width") if ok and tied(ctx, width, True) else None
        verdict = block_tie(ctx, models, v3, width)
        if verdict is not None:
            ok = verdict and (width_name(key) or key.lower() in GENERIC_KEYS)
            return ("JM403", f"setting {key!r}") if ok else None
        if _specific(key) or strong_env or width_name(_dict_name(mod, parent)):
            return ("JM403", f"setting {key!r}") if tied(ctx, width, True) else None
        return None

    if isinstance(parent, (ast.Assign, ast.AnnAssign)) and parent.value is node:
        targets = parent.targets if isinstance(parent, ast.Assign) else [parent.target]
        names = [_target_name(t) for t in targets]
        if any(width_name(n) for n in names) or strong_env or commented:
            if _class_tie(ctx, mod, parent, width) is False:
                return None
            return ("JM403", f"constant {names[0] or 'value'}") if tied(ctx, width, True) else None
        if id(node) in _schema_bound(mod):  # d = 768 ... faiss.IndexFlatIP(d)
            what = f"constant {names[0] or 'value'} (a vector schema's width)"
            return ("JM403", what) if tied(ctx, width, True) else None
        return None

    if isinstance(parent, ast.Return) and node is literal:
        fn = mod.enclosing_function(parent)
        if fn is not None and re.search(r"(?i)dim|embed|size|width", fn.name):
            return ("JM403", f"{fn.name}() result") if tied(ctx, width, False) else None
        return None

    if isinstance(parent, ast.BinOp) and isinstance(parent.op, ast.Mult) and node is literal:
        # [0.0] * 768: a zero vector of the model's width (a fallback for empty texts); not padding
        # arithmetic inside a larger expression.
        other = parent.left if parent.right is node else parent.right
        if (
            isinstance(other, ast.List)
            and len(other.elts) == 1
            and isinstance(other.elts[0], ast.Constant)
            and type(other.elts[0].value) in (int, float)
            and not isinstance(mod.parent(parent), ast.BinOp)
        ):
            return ("JM403", "zero vector") if tied(ctx, width, False) else None
        return None

    return _compare_role(ctx, mod, literal, width)


_LENGTH_KWARGS = frozenset({"min_length", "max_length", "min_items", "max_items"})


def _vector_field(mod: PyModule, call: ast.Call) -> bool:
    """A pydantic list-of-floats field: `conlist(float, ...)`, or a call assigned to a field named like a
    vector (`embedding: list[float] = Field(..., min_length=768)`)."""
    if last_part(call_name(call)) == "conlist" and call.args:
        item = call.args[0]
        return isinstance(item, ast.Name) and item.id == "float"
    for p in mod.ancestors(call):
        if isinstance(p, (ast.Assign, ast.AnnAssign)):
            targets = p.targets if isinstance(p, ast.Assign) else [p.target]
            return any(_SUBJECT_NAME.search(_target_name(t) or "") for t in targets)
        if isinstance(p, ast.stmt):
            return False
    return False


# Vector columns as Python calls: pgvector's SQLAlchemy Vector(768) / Django VectorField(dimensions=768).
_COLUMN_CALLS: dict[str, tuple[str, int | None]] = {
    "Vector": ("dim", 0),
    "HALFVEC": ("dim", 0),
    "VectorField": ("dimensions", None),
    "HalfVectorField": ("dimensions", None),
}


def _schema_bound(mod: PyModule) -> set[int]:
    """Values bound to names that a store schema takes as its width (`d = 768; faiss.IndexFlatIP(d)`,
    `SIZE = 768; VectorParams(size=SIZE)`), by id: one pass over the module's calls, followed by scope."""
    cached: set[int] | None = mod.__dict__.get("_schema_bound")
    if cached is not None:
        return cached
    out: set[int] = set()
    for call in mod.calls:
        name = last_part(call_name(call))
        spec = SCHEMA_CALLS.get(name) or _COLUMN_CALLS.get(name)
        if spec is None:
            continue
        key, pos = spec
        kw = next((k for k in call.keywords if k.arg == key), None)
        positional = call.args[pos] if pos is not None and len(call.args) > pos else None
        arg = kw.value if kw is not None else positional
        if isinstance(arg, ast.Name):
            bound, certain = mod.resolve_name(arg)
            if certain and bound is not None:
                out.add(id(bound))
    mod.__dict__["_schema_bound"] = out
    return out


def _setting_name(mod: PyModule, literal: ast.AST) -> str | None:
    """The name a width literal is bound to: assignment target, keyword, dict key or parameter."""
    node, _ = _carried(mod, literal)
    p = mod.parent(node)
    if isinstance(p, ast.Assign) and p.targets:
        return _target_name(p.targets[0])
    if isinstance(p, ast.AnnAssign):
        return _target_name(p.target)
    if isinstance(p, ast.keyword):
        return p.arg
    if isinstance(p, ast.arguments):
        return _parameter_of(p, node)
    if isinstance(p, ast.Dict) and node in p.values:
        key = p.keys[p.values.index(node)]
        value = mod.constant_value(key) if key is not None else None
        return value if isinstance(value, str) else None
    return None


def _parameter_of(a: ast.arguments, default: ast.AST) -> str | None:
    positional = [*a.posonlyargs, *a.args]
    for arg, d in zip(positional[len(positional) - len(a.defaults) :], a.defaults, strict=True):
        if d is default:
            return arg.arg
    for arg, kd in zip(a.kwonlyargs, a.kw_defaults, strict=True):
        if kd is default:
            return arg.arg
    return None


def _dict_name(mod: PyModule, d: ast.Dict) -> str | None:
    """What a dict literal is called: its key in the dict holding it, or the name it is assigned to."""
    p = mod.parent(d)
    if isinstance(p, ast.Dict) and d in p.values:
        key = p.keys[p.values.index(d)]
        value = mod.constant_value(key) if key is not None else None
        return value if isinstance(value, str) else None
    if isinstance(p, ast.Assign) and len(p.targets) == 1:
        return _target_name(p.targets[0])
    if isinstance(p, ast.AnnAssign):
        return _target_name(p.target)
    if isinstance(p, ast.keyword):
        return p.arg
    return None


def _target_name(t: ast.AST) -> str | None:
    if isinstance(t, ast.Name):
        return t.id
    if isinstance(t, ast.Attribute):
        return t.attr
    return None


def _class_tie(ctx: FileContext, mod: PyModule, stmt: ast.AST, width: int) -> bool | None:
    """A setting in a class body (pydantic settings, a config class) belongs to the model the class names."""
    cls = mod.parent(stmt)
    if not isinstance(cls, ast.ClassDef):
        return None
    models, v3 = _models_in(mod, cls)
    return block_tie(ctx, models, v3, width)


def _schema_dict(mod: PyModule, d: ast.Dict) -> bool:
    """Does this dict (or the dict holding it) look like a store schema? (Once per dict.)"""
    cache: dict[int, bool] = mod.__dict__.setdefault("_width_schema", {})
    if id(d) not in cache:
        cache[id(d)] = _schema_words(mod, d)
    return cache[id(d)]


def _schema_words(mod: PyModule, d: ast.Dict) -> bool:
    for dd in (d, mod.parent(d)):
        if not isinstance(dd, ast.Dict):
            continue
        for k, v in zip(dd.keys, dd.values, strict=True):
            for n in (k, v):
                value = mod.constant_value(n) if n is not None else None
                if isinstance(value, str) and _SCHEMA_DICT_WORDS.match(value):
                    return True
                if isinstance(n, ast.Attribute) and _SCHEMA_DICT_WORDS.match(n.attr):
                    return True  # DataType.FLOAT_VECTOR
    return False


def _shape_role(
    ctx: FileContext, mod: PyModule, call: ast.Call, node: ast.AST, width: int
) -> tuple[str, str] | None:
    name = last_part(call_name(call))
    if name in _ASSERT_CALLS and len(call.args) >= 2 and node is call.args[1]:
        return ("JM403", "assertion") if _subject(mod, call.args[0]) and tied(ctx, width, False) else None
    if name not in _SHAPE_CALLS:
        return None
    args = call.args
    if len(args) == 1 and all(k.arg == "dtype" for k in call.keywords):
        # np.zeros(768): a zero vector of the model's width.
        return ("JM403", "array shape") if name != "reshape" and tied(ctx, width, False) else None
    # A 2-D shape (n, width): (512, 512, 3) images and square matrices are not embeddings.
    square = isinstance(args[0], ast.Constant) and args[0].value == width if args else False
    if len(args) == 2 and args[1] is node and not square:
        return ("JM403", "array shape") if tied(ctx, width, False) else None
    return None


def _compare_role(
    ctx: FileContext, mod: PyModule, literal: ast.Constant, width: int
) -> tuple[str, str] | None:
    """Shapes and lengths: `np.zeros((n, 768))`, `assert v.shape == (1, 768)`, `assert len(v) == 768`,
    `self.assertEqual(len(v), 768)` (for vectors: names like emb/vec or values of an encode call)."""
    node: ast.AST = literal
    parent = mod.parent(node)
    if isinstance(parent, ast.Tuple) and parent.elts and parent.elts[-1] is node:
        elts = parent.elts
        holder = mod.parent(parent)
        if isinstance(holder, ast.Call) and last_part(call_name(holder)) in _SHAPE_CALLS:
            square = len(elts) >= 2 and isinstance(elts[-2], ast.Constant) and elts[-2].value == width
            if len(elts) == 2 and not square:
                return ("JM403", "array shape") if tied(ctx, width, False) else None
            return None
        node, parent = parent, holder
    if isinstance(parent, ast.Compare) and len(parent.comparators) == 1:
        # `assert len(vec) == 768`, and the same check as a condition: `if len(vec) != 768: raise ...` (there
        # only of one vector: `if len(embeddings) >= 512` counts a batch).
        other = parent.left if parent.comparators[0] is node else parent.comparators[0]
        asserted = isinstance(mod.parent(parent), ast.Assert)
        if _subject(mod, other) and (asserted or _one_vector(other)):
            return ("JM403", "assertion" if asserted else "width check") if tied(ctx, width, False) else None
        return None
    if isinstance(parent, ast.Slice) and parent.upper is node and parent.lower is None:
        # vec[:768]: a vector cut to the v2 width (not `embeddings[:512]`, the first 512 of a batch).
        holder = mod.parent(parent)
        if isinstance(holder, ast.Subscript) and _subject(mod, holder.value) and _one_vector(holder.value):
            return ("JM403", "vector slice") if tied(ctx, width, False) else None
        return None
    if isinstance(parent, ast.Call) and last_part(call_name(parent)) in _ASSERT_CALLS:
        others = [a for a in parent.args[:2] if a is not node]
        if len(parent.args) >= 2 and others and _subject(mod, others[0]):
            return ("JM403", "assertion") if tied(ctx, width, False) else None
    return None


def _subject(mod: PyModule, node: ast.AST) -> bool:
    """Is this `len(v)`, `v.shape`, `v.shape[i]` or `v` for a vector v (by name, or the value of an
    encode/embed call)? A `dim`-named value (`assert dim == 768`) counts too."""
    if isinstance(node, ast.Call) and call_name(node) == "len" and node.args:
        node = node.args[0]
    if isinstance(node, ast.Name) and width_name(node.id):
        return True
    while isinstance(node, (ast.Subscript, ast.Attribute)):
        if isinstance(node, ast.Attribute) and width_name(node.attr):
            return True
        node = node.value
    if isinstance(node, ast.Name) and _SUBJECT_NAME.search(node.id):
        return True
    return _encoded(mod, node, 0)


def _one_vector(node: ast.AST) -> bool:
    """Does this expression measure one vector rather than a batch: `x.shape[-1]`, `x.shape[1]`, `len(x[i])`,
    or `len(v)` / `v` for a singular name (`embedding`, `vec`; `embeddings` is a list of them)?"""
    if isinstance(node, ast.Call) and call_name(node) == "len" and node.args:
        node = node.args[0]
        if isinstance(node, ast.Subscript) and not isinstance(node.slice, ast.Slice):
            return True
    shape = isinstance(node, ast.Subscript) and isinstance(node.value, ast.Attribute)
    if shape and node.value.attr == "shape":  # type: ignore[attr-defined]
        index = node.slice  # type: ignore[attr-defined]
        return isinstance(index, ast.UnaryOp) or (isinstance(index, ast.Constant) and index.value != 0)
    name = node.attr if isinstance(node, ast.Attribute) else node.id if isinstance(node, ast.Name) else ""
    return bool(name) and not name.lower().endswith("s")


_WRAPPERS = frozenset({"list", "tuple", "array", "asarray", "stack", "vstack", "tensor"})


def _encoded(mod: PyModule, node: ast.AST | None, depth: int) -> bool:
    """Is this the value of an encode/embed call: directly, wrapped (`list(m.embed_multi(...))`,
    `np.array(...)`), through a name bound to one, or a loop variable over one?"""
    if node is None or depth > 4:
        return False
    while isinstance(node, ast.Await):
        node = node.value
    if isinstance(node, ast.Call):
        name = call_name(node)
        if _ENCODE_CALL.search(name):
            return True
        return last_part(name) in _WRAPPERS and bool(node.args) and _encoded(mod, node.args[0], depth + 1)
    if isinstance(node, ast.Subscript):
        return _encoded(mod, node.value, depth + 1)
    if not isinstance(node, ast.Name):
        return False
    for p in mod.ancestors(node):  # `for floats in outputs:` around the use
        if isinstance(p, (ast.For, ast.AsyncFor)) and isinstance(p.target, ast.Name):
            if p.target.id == node.id:
                return _encoded(mod, p.iter, depth + 1)
        if isinstance(p, (ast.FunctionDef, ast.AsyncFunctionDef, ast.Lambda, ast.ClassDef)):
            break
    bound, _certain = mod.resolve_name(node)
    return bound is not None and bound is not node and _encoded(mod, bound, depth + 1)


def dict_entry(mod: PyModule, d: ast.Dict, key: str) -> ast.AST | None:
    i = dict_key(d, key)
    return d.values[i] if i is not None else None


# --- text: the block around a key ------------------------------------------------------------------

_BLOCK_LINES = 200
_BRACE_WINDOW = 2000


@dataclass(frozen=True)
class _Rows:
    """Per line of a text (once per file): start offset, and the rows that bound its indented block: the
    nearest row above that is less indented or a `[section]` header, and the first row below that is less
    indented (or, for an unindented row, a `[section]` header). Two linear stack passes, so a flat file
    of thousands of settings costs one pass, not one walk per setting."""

    starts: list[int]
    up: list[int]  # -1: none
    down: list[int]  # len(rows): none


@per_text()
def _rows(text: str) -> _Rows:
    lines = text.split("\n")
    starts = [0]
    for line in lines[:-1]:
        starts.append(starts[-1] + len(line) + 1)
    n = len(lines)
    indent = [len(x) - len(x.lstrip()) if x.strip() else -1 for x in lines]  # -1: blank
    header = [x.lstrip().startswith("[") for x in lines]
    up = [-1] * n
    stack: list[int] = []  # non-blank rows, strictly increasing indents
    last_header = -1
    for r in range(n):
        if indent[r] >= 0:
            own = indent[r]
            while stack and indent[stack[-1]] >= own:
                stack.pop()
            up[r] = max(stack[-1] if stack else -1, last_header)
            stack.append(r)
        else:
            up[r] = last_header
        if header[r] and indent[r] >= 0:
            last_header = r
    down = [n] * n
    stack = []
    next_header = n
    for r in range(n - 1, -1, -1):
        own = max(indent[r], 0)
        while stack and indent[stack[-1]] >= own:
            stack.pop()
        below = stack[-1] if stack else n
        down[r] = min(below, next_header) if own == 0 else below
        if indent[r] >= 0:
            stack.append(r)
            if header[r]:
                next_header = r
    return _Rows(starts, up, down)


def enclosing_block(text: str, offset: int, lead: int = 80) -> str:
    """The object (`{...}` and the `lead` characters before it: its key) or the indented block (parent key
    and siblings) around a key, so that `size: 768` counts only next to vector words of the same schema.
    Which model a block names is asked with lead=0: the entry before it in a one-line table is not it."""
    lo, depth, i = max(0, offset - _BRACE_WINDOW), 0, offset
    while True:  # back over the braces only (a file without braces costs two searches)
        o, c = text.rfind("{", lo, i), text.rfind("}", lo, i)
        if o < 0 and c < 0:
            break
        if c > o:
            depth, i = depth + 1, c
        elif depth == 0:
            end = balanced_end(text, o)
            return text[max(0, o - lead) : end if end > 0 else offset + 300]
        else:
            depth, i = depth - 1, o
    rows = _rows(text)
    row = bisect.bisect_right(rows.starts, offset) - 1
    # At most _BLOCK_LINES lines each way: a flat file is one huge "block".
    top = max(rows.up[row], row - _BLOCK_LINES, 0)
    bottom = min(rows.down[row] - 1, row + _BLOCK_LINES, len(rows.starts) - 1)
    end = rows.starts[bottom + 1] - 1 if bottom + 1 < len(rows.starts) else len(text)
    return text[rows.starts[top] : end]
