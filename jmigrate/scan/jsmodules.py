"""The JavaScript/TypeScript modules of one repository, followed through their imports (issue 12).

Real projects keep the v2 model id in one module (`export const MODELS = {jina: {id: "..."}}`), load it in
another (`pipeline("feature-extraction", MODELS.jina.id)`), wrap the embedding in an exported helper
(`export async function embed(texts)`) and call that helper from a third for documents and a fourth for
queries. This module follows those links, soundly and in linear time:

- values: string literals, object literals (tables), `const`s bound once (jsscope), destructuring
  (`const { id } = TABLE[key]`), members and literal subscripts, `process.env.X ?? "..."` / `|| "..."` (the
  default), ES imports (`import { A as B }`, default, `* as ns`), CommonJS (`require("./m")`, `.A`,
  `module.exports = {...}`, `exports.A = ...`) and re-exports; anything else is unknown, never a guess.
  Only relative specifiers that name one file of the scanned tree are followed.
- embedders: transformers.js `pipeline("feature-extraction", <v1/v2 id>)` and the names bound to it, and
  requests to /v1/embeddings that JM201 reports (v2/unknown model, no task).
- helpers: functions whose body runs such an embedder or calls another helper (one level of wrappers per
  pass, to a fixed depth); their calls, in the same module or in importers, with the side each call serves.

Files that never say "jina" are read only when their bytes name an exporting module and one of its exported
names (`ImportTest.wanted`), so a tree without such links costs nothing more.
"""

from __future__ import annotations

import posixpath
import re
from collections.abc import Iterator
from dataclasses import dataclass, field

from jmigrate.models import MODELS, V3, Model
from jmigrate.scan import jsscope
from jmigrate.scan.memo import per_text
from jmigrate.scan.tasks import CLASSIFICATION, MATCHING, PASSAGE, QUERY, SEPARATION, TaskGuess, decide
from jmigrate.scan.text import balanced_end, model_matches, text_requests

EXTENSIONS = (".ts", ".tsx", ".js", ".jsx", ".mjs", ".cjs", ".mts", ".cts")
_DEPTH = 24  # steps followed for one value (imports, names, members): more is a cycle

_IDENT = r"[A-Za-z_$][\w$]*"
_SPEC = r"""["'](\.{1,2}/[^"'\n]*)["']"""
_IMPORT = re.compile(r"(?m)^\s*import\s+(?!type\b)([^'\";]*?)\s+from\s+" + _SPEC)
_REQUIRE_DECL = re.compile(
    rf"\b(?:const|let|var)\s+(\{{[^{{}}]*\}}|{_IDENT})\s*=\s*require\(\s*" + _SPEC + r"\s*\)"
)
_EXPORT_DECL = re.compile(rf"(?m)^\s*export\s+(?:declare\s+)?(?:const|let|var|class)\s+({_IDENT})")
_CLASS_DECL = re.compile(rf"\bclass\s+({_IDENT})(?:\s+extends\s+[\w$.]+)?\s*\{{")
# `await X.getInstance(...)`: the transformers.js singleton pattern (a class holding the pipeline).
_SINGLETON = re.compile(rf"\b(?:const|let|var)\s+({_IDENT})\s*=\s*await\s+({_IDENT})\s*\.\s*{_IDENT}\s*\(")
_EXPORT_FUNC = re.compile(rf"(?m)^\s*export\s+(default\s+)?(?:async\s+)?function\s*\*?\s*({_IDENT})?\s*\(")
_EXPORT_DEFAULT = re.compile(r"(?m)^\s*export\s+default\s+(?!async\b|function\b|class\b)")
_EXPORT_LIST = re.compile(r"(?m)^\s*export\s*\{([^{}]*)\}\s*(?:from\s+" + _SPEC + r")?")
_EXPORT_STAR = re.compile(r"(?m)^\s*export\s*\*\s*from\s+" + _SPEC)
_MODULE_EXPORTS = re.compile(r"\bmodule\.exports\s*=\s*(?!=)")
_EXPORTS_MEMBER = re.compile(rf"\b(?:module\.)?exports\.({_IDENT})\s*=\s*(?!=)")
_DESTRUCTURE = re.compile(r"\b(?:const|let|var)\s*\{([^{}]*)\}\s*=\s*(?!require\b)")
_FUNC_DECL = re.compile(rf"\b(?:async\s+)?function\s*\*?\s*({_IDENT})\s*\(")
_PIPELINE = re.compile(r"\bpipeline\s*\(\s*(this\s*\.\s*[\w$]+|[\w$]+|([\"'`])[\w-]+\2)\s*,\s*")
_TASKS = ("feature-extraction", "embeddings")
_OBJ_KEY = re.compile(rf"""(?:"([^"\\\n]*)"|'([^'\\\n]*)'|({_IDENT}|\d+))\s*:(?!:)""")
_ACCESS = re.compile(
    rf"""\s*(?:\?\.|\.)\s*({_IDENT})|\s*(?:\?\.)?\[\s*(?:"([^"\\\n]*)"|'([^'\\\n]*)')\s*\]"""
)
_ENV_DEFAULT = re.compile(rf"\s*\.\s*env\s*(?:\.\s*{_IDENT}|\[[^\]\n]*\])\s*(?:\?\?|\|\|)\s*")
_ALIAS = re.compile(
    rf"\b(?:const|let|var)\s+({_IDENT})\s*=\s*await\s+(?:this\s*\.\s*)?({_IDENT})\s*(?:;|\r?\n)"
)
_CALLED = re.compile(rf"(?<![\w$.])(?:this\s*\.\s*)?({_IDENT})\s*(?:\?\.)?\s*\(")


@dataclass(frozen=True)
class Pipeline:
    """A transformers.js feature-extraction pipeline of a legacy model."""

    path: str
    at: int  # offset of `pipeline`
    model: Model


@dataclass(frozen=True)
class Func:
    path: str
    name: str
    body: tuple[int, int]  # `{` .. just past `}` (an expression body: the expression)


@dataclass(frozen=True)
class Cls:
    path: str
    body: tuple[int, int]


Value = str | dict[str, object] | Pipeline | Func | Cls


@dataclass
class Embed:
    """One place that embeds texts: a request, an extractor call, or a call of a helper."""

    path: str
    at: int
    end: int
    kind: str  # "request", "extractor", "helper"
    model: Model | None  # None: a request whose model is not known
    helper: str = ""  # the helper called (kind "helper"): "path:name"


@dataclass(frozen=True)
class Export:
    kind: str  # "local" (a name of the module), "value" (an expression at `at`), "reexport"
    name: str = ""  # the local name, or the name in `target` for a re-export
    at: int = -1
    target: str | None = None


@dataclass
class Module:
    path: str
    text: str
    imports: dict[str, tuple[str | None, str]] = field(default_factory=dict)  # local -> (path, name|"*")
    exports: dict[str, Export] = field(default_factory=dict)
    stars: list[str | None] = field(default_factory=list)  # `export * from` targets


def _names(clause: str, sep: str) -> Iterator[tuple[str, str]]:
    """(imported, local) pairs of `{ A, B as C }` (sep "as") or `{ A, B: C }` (sep ":")."""
    for part in clause.strip().strip("{}").split(","):
        part = part.strip()
        if not part or part.startswith(("type ", "...")):
            continue
        bits = [b.strip() for b in part.split(sep, 1)]
        src, local = bits[0], bits[-1]
        local = local.split("=", 1)[0].strip()
        if re.fullmatch(_IDENT, src) and re.fullmatch(_IDENT, local):
            yield src, local


class JsProject:
    """The JS/TS modules of the tree that `plan` read, and what flows between them."""

    def __init__(self, paths: set[str]) -> None:
        self.paths = paths  # every JS/TS file of the tree (read or not): where specifiers may point
        self.modules: dict[str, Module] = {}
        self._helpers: dict[str, dict[str, list[Embed]]] | None = None
        self._callers: dict[str, list[Embed]] | None = None
        self._pipelines: dict[str, list[tuple[Pipeline, list[str], list[tuple[int, int]]]]] = {}

    # --- modules ------------------------------------------------------------------------------------

    def add(self, path: str, text: str) -> None:
        self.modules[path] = self._parse(path, text)
        self._helpers = self._callers = None
        self._pipelines = {}

    def _resolve_spec(self, importer: str, spec: str) -> str | None:
        base = posixpath.normpath(posixpath.join(posixpath.dirname(importer), spec))
        stem, ext = posixpath.splitext(base)
        candidates = [base] if ext in EXTENSIONS else []
        if ext in (".js", ".jsx", ".mjs", ".cjs"):  # TS sources import their own output name
            candidates += [stem + e for e in (".ts", ".tsx", ".mts", ".cts")]
        candidates += [base + e for e in EXTENSIONS] + [base + "/index" + e for e in EXTENSIONS]
        found = [c for c in candidates if c in self.paths]
        return found[0] if found else None

    def _parse(self, path: str, text: str) -> Module:
        mod = Module(path, text)
        for m in _IMPORT.finditer(text):
            target = self._resolve_spec(path, m.group(2))
            clause = m.group(1).strip()
            ns = re.search(rf"\*\s*as\s+({_IDENT})", clause)
            if ns:
                mod.imports[ns.group(1)] = (target, "*")
            braces = re.search(r"\{[^{}]*\}", clause)
            if braces:
                for src, local in _names(braces.group(), "as"):
                    mod.imports[local] = (target, src)
            default = re.match(rf"({_IDENT})\s*(?:,|$)", clause)
            if default:
                mod.imports[default.group(1)] = (target, "default")
        for m in _REQUIRE_DECL.finditer(text):
            target = self._resolve_spec(path, m.group(2))
            if m.group(1).startswith("{"):
                for src, local in _names(m.group(1), ":"):
                    mod.imports[local] = (target, src)
            else:
                mod.imports[m.group(1)] = (target, "*")
        for m in _EXPORT_DECL.finditer(text):
            mod.exports[m.group(1)] = Export("local", m.group(1))
        for m in _EXPORT_FUNC.finditer(text):
            name = m.group(2)
            if name:
                mod.exports[name] = Export("local", name)
            if m.group(1):
                mod.exports["default"] = (Export("local", name) if name
                                          else Export("value", at=text.find("function", m.start())))
        for m in _EXPORT_DEFAULT.finditer(text):
            mod.exports["default"] = Export("value", at=m.end())
        for m in _EXPORT_LIST.finditer(text):
            target = self._resolve_spec(path, m.group(2)) if m.group(2) else None
            for src, local in _names(m.group(1), "as"):
                mod.exports[local] = (
                    Export("reexport", src, target=target) if m.group(2) else Export("local", src)
                )
        mod.stars = [self._resolve_spec(path, m.group(1)) for m in _EXPORT_STAR.finditer(text)]
        for m in _MODULE_EXPORTS.finditer(text):
            mod.exports["default"] = Export("value", at=m.end())
            if text.startswith("{", m.end()):
                for key, value_at in _object_entries(text, m.end()):
                    mod.exports.setdefault(key, Export("value", at=value_at))
        for m in _EXPORTS_MEMBER.finditer(text):
            mod.exports[m.group(1)] = Export("value", at=m.end())
        return mod

    # --- values -------------------------------------------------------------------------------------

    def export(self, path: str | None, name: str, depth: int = 0) -> Value | None:
        """The value module `path` exports as `name` ("*": the module object, CommonJS default first)."""
        mod = self.modules.get(path or "")
        if mod is None or depth > _DEPTH:
            return None
        if name == "*":
            if "default" in mod.exports and _MODULE_EXPORTS.search(mod.text):
                return self.export(path, "default", depth + 1)
            return {k: _Lazy(self, path, k, depth + 1) for k in mod.exports}
        how = mod.exports.get(name)
        if how is None:
            for star in mod.stars:
                v = self.export(star, name, depth + 1)
                if v is not None:
                    return v
            return None
        if how.kind == "local":
            return self.name_value(mod, how.name, -1, depth + 1)
        if how.kind == "reexport":
            return self.export(how.target, how.name, depth + 1)
        return self.value(mod, how.at, depth + 1)

    def name_value(self, mod: Module, name: str, use_at: int, depth: int = 0) -> Value | None:
        """What `name` holds at `use_at` (-1: at module level, e.g. an export), when certain."""
        if depth > _DEPTH:
            return None
        text = mod.text
        at = use_at if use_at >= 0 else len(text)
        func = _function_named(text, name)
        if func is not None and not jsscope.bindings(text, name):
            return Func(mod.path, name, func)
        classes = _class_index(text).get(name, [])
        if len(classes) == 1 and not jsscope.bindings(text, name):
            end = balanced_end(text, classes[0])
            return Cls(mod.path, (classes[0], end)) if end > 0 else None
        value_at, certain = jsscope.resolve(text, name, at)
        if value_at >= 0:
            return self.value(mod, value_at, depth + 1) if certain else None
        if name in mod.imports and not jsscope.bindings(text, name):
            target, src = mod.imports[name]
            return self.export(target, src, depth + 1)
        d = _destructured(text, name, at)
        if d is not None:
            source_at, key = d
            source = self.value(mod, source_at, depth + 1)
            return _member(source, key)
        return None

    def value(self, mod: Module, at: int, depth: int = 0) -> Value | None:
        """The value of the expression at `at` in `mod`, when every piece of it is known."""
        text = mod.text
        n = len(text)
        while at < n and text[at] in " \t\r\n":
            at += 1
        if at >= n or depth > _DEPTH:
            return None
        if text.startswith("await", at) and not text[at + 5 : at + 6].isalnum():
            return self.value(mod, at + 5, depth + 1)
        c = text[at]
        current: Value | None
        end: int
        if c in "\"'`":
            close = text.find(c, at + 1)
            if close < 0 or "\n" in text[at:close] and c != "`":
                return None
            raw = text[at + 1 : close]
            if "\\" in raw or (c == "`" and "${" in raw):
                return None
            current, end = raw, close + 1
        elif c == "{":
            close = balanced_end(text, at)
            if close < 0:
                return None
            entries = _object_entries(text, at)
            current = {k: _Lazy(self, mod.path, None, depth + 1, mod, v) for k, v in entries}
            end = close
        else:
            head = re.compile(_IDENT).match(text, at)
            if head is None:
                return None
            word, end = head.group(), head.end()
            if word == "process" and re.match(r"\s*\.\s*env\b", text[end:]):
                # process.env.X ?? "default" / || "default": the default is what runs when X is unset.
                m = _ENV_DEFAULT.match(text, end)
                return self.value(mod, m.end(), depth + 1) if m else None
            if word == "require":
                m = re.compile(r"\s*\(\s*" + _SPEC + r"\s*\)").match(text, end)
                if m is None:
                    return None
                current, end = self.export(self._resolve_spec(mod.path, m.group(1)), "*", depth + 1), m.end()
            elif word == "pipeline":
                return _pipeline_at(self, mod, at, depth)
            elif word == "this":
                field_at = _class_field(text, at)
                if field_at is None:
                    return None
                current, end = self.value(mod, field_at[0], depth + 1), field_at[1]
            elif word in ("async", "function") or re.match(r"\s*=>", text[end:]):
                return _function_value(mod, at)
            else:
                current = self.name_value(mod, word, at, depth + 1)
        while current is not None:
            m = _ACCESS.match(text, end)
            if m is None:
                break
            current, end = _member(current, m.group(1) or m.group(2) or m.group(3) or ""), m.end()
        return current if _ends_here(text, end, current) else None

    def string(self, path: str, at: int) -> str | None:
        mod = self.modules.get(path)
        v = self.value(mod, at) if mod else None
        return v if isinstance(v, str) else None

    # --- embedders and helpers ----------------------------------------------------------------------

    def pipelines(self, path: str) -> list[tuple[Pipeline, list[str], list[tuple[int, int]]]]:
        """The legacy pipelines of a module: each with the names bound to it and its extractor calls."""
        mod = self.modules.get(path)
        if mod is None:
            return []
        if path not in self._pipelines:
            self._pipelines[path] = _pipelines(self, mod)
        return self._pipelines[path]

    def embeds(self, path: str) -> list[Embed]:
        """Direct embedding sites of a module: v2 requests and extractor calls."""
        mod = self.modules.get(path)
        if mod is None:
            return []
        out = []
        text = mod.text
        for req in text_requests(text):
            model = _request_model(self, mod, req)
            if model is not False:
                known = model if isinstance(model, Model) else None
                out.append(Embed(path, req.url_start, req.url_end, "request", known))
        for p, calls in self.extractor_calls(path):
            out += [Embed(path, s, e, "extractor", p.model) for s, e in calls]
        return out

    def extractor_calls(self, path: str) -> list[tuple[Pipeline, list[tuple[int, int]]]]:
        """Calls that embed through a legacy pipeline: names bound to it in this module, and names bound
        to `await Singleton.getInstance()` of a class (here or imported) whose body builds one."""
        mod = self.modules.get(path)
        if mod is None:
            return []
        out = [(p, calls) for p, _, calls in self.pipelines(path)]
        text = mod.text
        for m in _SINGLETON.finditer(text):
            cls = self.name_value(mod, m.group(2), m.start(2))
            if not isinstance(cls, Cls):
                continue
            held = [p for p, _, _ in self.pipelines(cls.path) if cls.body[0] < p.at < cls.body[1]]
            if len(held) != 1 or len(jsscope.bindings(text, m.group(1))) != 1:
                continue
            calls = [(c.start(), c.end() - 1) for c in
                     re.compile(rf"(?<![\w$.]){re.escape(m.group(1))}\s*\(").finditer(text, m.end())]
            out.append((held[0], calls))
        return out

    def helpers(self) -> dict[str, dict[str, list[Embed]]]:
        """path -> function name -> the embedding sites in its body (helpers calling helpers included)."""
        if self._helpers is not None:
            return self._helpers
        found: dict[str, dict[str, list[Embed]]] = {}
        for path, mod in self.modules.items():
            for e in self.embeds(path):
                fn = _enclosing_function(mod.text, e.at)
                if fn is not None:
                    found.setdefault(path, {}).setdefault(fn, []).append(e)
        self._helpers = found
        return found

    def _helper_calls(self, mod: Module, helpers: dict[str, dict[str, list[Embed]]]) -> Iterator[Embed]:
        text = mod.text
        local = helpers.get(mod.path, {})
        for m in _CALLED.finditer(text):
            name = m.group(1)
            if _defines(text, m.end() - 1) or text[max(0, m.start() - 9) : m.start()].rstrip().endswith(
                "function"
            ):
                continue
            key = None
            if name in local and not m.group().startswith("this"):
                if _function_named(text, name) is not None and not jsscope.bindings(text, name):
                    key = (mod.path, name)
                else:
                    v = self.name_value(mod, name, m.start(1))
                    if isinstance(v, Func):
                        key = (mod.path, name)
            elif name in mod.imports:
                v = self.name_value(mod, name, m.start(1))
                if isinstance(v, Func) and v.name in helpers.get(v.path, {}):
                    key = (v.path, v.name)
            if key is None:
                continue
            sites = helpers[key[0]][key[1]]
            yield _call_of(mod.path, m.start(1), m.end(1), key, sites)
        for m in _MEMBER_CALL.finditer(text):  # ns.helper(...) with ns an imported module
            if m.group(1) not in mod.imports or mod.imports[m.group(1)][1] != "*":
                continue
            v = _member(self.name_value(mod, m.group(1), m.start(1)), m.group(2))
            if isinstance(v, Func) and v.name in helpers.get(v.path, {}):
                yield _call_of(mod.path, m.start(1), m.end(2), (v.path, v.name), helpers[v.path][v.name])

    def callers(self) -> dict[str, list[Embed]]:
        """"path:name" of a helper -> the calls of it (same module or importers)."""
        if self._callers is not None:
            return self._callers
        helpers = self.helpers()
        out: dict[str, list[Embed]] = {}
        for mod in self.modules.values():
            for call in self._helper_calls(mod, helpers):
                out.setdefault(call.helper, []).append(call)
        self._callers = out
        return out

    def helper_of(self, path: str, at: int) -> str | None:
        """"path:name" of the helper function holding offset `at`, if it is one."""
        mod = self.modules.get(path)
        if mod is None:
            return None
        fn = _enclosing_function(mod.text, at)
        return f"{path}:{fn}" if fn is not None and fn in self.helpers().get(path, {}) else None

    def sides(self, helper: str) -> list[tuple[Embed, TaskGuess]]:
        """Each call of a helper with the task its use suggests (callers' callers are not followed)."""
        out = []
        for call in self.callers().get(helper, []):
            mod = self.modules[call.path]
            out.append((call, call_side(mod.text, call.at, call.end)))
        return out

    def exported_names(self, path: str) -> set[str]:
        """Names a module exports that carry a legacy model (a value or a helper): what importers use."""
        mod = self.modules.get(path)
        if mod is None:
            return set()
        helpers = self.helpers().get(path, {})
        out = set()
        every = self.helpers()
        for name, how in mod.exports.items():
            if how.kind == "local" and how.name in helpers:
                out.add(name)
                continue
            v = self.export(path, name)
            if isinstance(v, Func) and v.name in every.get(v.path, {}) or _carries_model(v, self):
                out.add(name)
        return out


_MEMBER_CALL = re.compile(rf"(?<![\w$.])({_IDENT})\s*\.\s*({_IDENT})\s*\(")


def _call_of(path: str, at: int, end: int, key: tuple[str, str], sites: list[Embed]) -> Embed:
    models = {s.model for s in sites if s.model is not None}
    model = next(iter(models)) if len(models) == 1 else None
    return Embed(path, at, end, "helper", model, f"{key[0]}:{key[1]}")


def _defines(text: str, paren: int) -> bool:
    """`name(...) {`: a method definition, not a call."""
    close = balanced_end(text, paren)
    return close > 0 and re.compile(r"\s*(?::[^;{}=()]*)?\{").match(text, close) is not None


class _Lazy:
    """An object-literal entry evaluated on first use (tables can be large; most entries are never read)."""

    def __init__(self, project: JsProject, path: str | None, name: str | None, depth: int,
                 mod: Module | None = None, at: int = -1) -> None:
        self.project, self.path, self.name, self.depth = project, path, name, depth
        self.mod, self.at = mod, at

    def get(self) -> Value | None:
        if self.mod is not None:
            return self.project.value(self.mod, self.at, self.depth)
        return self.project.export(self.path, self.name or "", self.depth)


_TS_TAIL = re.compile(r"[ \t]*(?:!|\bas\s+const\b|\bas\s+[\w$.<>\[\]]+)?[ \t]*")
_CONTINUES = re.compile(r"\s*(?:[-+*/%?.&|^<>=(\[]|instanceof\b|in\b)")


def _ends_here(text: str, end: int, current: object) -> bool:
    """Is the expression over at `end` (`a + b`, `f(x)`, `a ? b : c` make the value unknown)? `?? x` and
    `|| x` after a non-empty string still give that string."""
    end = _TS_TAIL.match(text, end).end()  # type: ignore[union-attr]
    if text.startswith(("??", "||"), end):
        return isinstance(current, str) and current != ""
    if end < len(text) and text[end] in "\r\n":
        m = _CONTINUES.match(text, end)
        return m is None or text[m.end() - 1] in "\r\n"
    return end >= len(text) or text[end] in ",;)}]:"


def _member(v: object, key: str) -> Value | None:
    if not isinstance(v, dict):
        return None
    item = v.get(key)
    if isinstance(item, _Lazy):
        return item.get()
    return item if isinstance(item, (str, dict, Pipeline, Func, Cls)) else None


def _carries_model(v: object, project: JsProject, depth: int = 0) -> bool:
    if isinstance(v, str):
        return any(True for _ in model_matches(v))
    if isinstance(v, Pipeline):
        return True
    if isinstance(v, Cls):
        return any(v.body[0] < p.at < v.body[1] for p, _, _ in project.pipelines(v.path))
    if isinstance(v, dict) and depth < 3:
        return any(_carries_model(_member(v, k), project, depth + 1) for k in list(v)[:200])
    return False


def _class_field(text: str, at: int) -> tuple[int, int] | None:
    """`this.NAME` at `at` inside a class: (offset of the one `[static] NAME = value` field initialiser of
    that class, offset just past `this.NAME`)."""
    m = re.compile(rf"this\s*\.\s*({_IDENT})").match(text, at)
    if m is None:
        return None
    b = jsscope.blocks(text)
    i = b.innermost(at)
    while i != -1 and not re.search(rf"\bclass\s+{_IDENT}(?:\s+extends\s+[\w$.]+)?\s*\Z",
                                    text[max(0, b.opens[i] - 200) : b.opens[i]]):
        i = b.parent[i]
    if i == -1:
        return None
    field = re.compile(rf"(?m)^\s*(?:(?:static|readonly|public|private|protected)\s+)*{re.escape(m.group(1))}"
                       rf"\s*(?::[^=;\n]*)?=(?![=>])\s*")
    hits = [f.end() for f in field.finditer(text, b.opens[i], b.closes[i]) if b.innermost(f.start()) == i]
    return (hits[0], m.end()) if len(hits) == 1 else None


def _object_entries(text: str, open_at: int) -> list[tuple[str, int]]:
    """(key, value offset) of the object literal opening at `open_at` (own entries; shorthand `{ a }` gives
    the name's offset)."""
    end = balanced_end(text, open_at)
    if end < 0:
        return []
    b = jsscope.blocks(text)
    own = b.innermost(open_at + 1)
    out = []
    i = open_at + 1
    while i < end - 1:
        m = _OBJ_KEY.search(text, i, end - 1)
        if m is None:
            break
        i = m.end()
        if b.innermost(m.start()) != own:
            continue
        j = m.start() - 1
        while j > open_at and text[j] in " \t\r\n":
            j -= 1
        if text[j] not in "{,":
            continue
        out.append((m.group(1) if m.group(1) is not None else m.group(2) if m.group(2) is not None
                    else m.group(3), m.end()))
    for m in re.finditer(rf"(?<=[{{,])\s*({_IDENT})\s*(?=[,}}])", text[open_at:end]):
        at = open_at + m.start(1)
        if b.innermost(at) == own:
            out.append((m.group(1), at))
    return out


@per_text()
def _class_index(text: str) -> dict[str, list[int]]:
    """Class name -> offsets of the `{` of each `class Name {` (one pass, cached per text)."""
    out: dict[str, list[int]] = {}
    for m in _CLASS_DECL.finditer(text):
        out.setdefault(m.group(1), []).append(m.end() - 1)
    return out


@per_text()
def _function_index(text: str) -> dict[str, list[int]]:
    """Name -> offsets of the `(` of each `function name(` declaration (one pass, cached per text)."""
    out: dict[str, list[int]] = {}
    for m in _FUNC_DECL.finditer(text):
        out.setdefault(m.group(1), []).append(m.end() - 1)
    return out


def _function_named(text: str, name: str) -> tuple[int, int] | None:
    """Body of the one `function name(...) {...}` declaration in the text (None: none, or several)."""
    found = _function_index(text).get(name, [])
    if len(found) != 1:
        return None
    return _body_after_params(text, found[0])


def _body_after_params(text: str, paren: int) -> tuple[int, int] | None:
    close = balanced_end(text, paren)
    if close < 0:
        return None
    m = re.compile(r"[^{;=]{0,200}?(=>\s*)?\{").match(text, close)
    if m is None:
        return None
    body = m.end() - 1
    end = balanced_end(text, body)
    return (body, end) if end > 0 else None


def _function_value(mod: Module, at: int) -> Func | None:
    text = mod.text
    paren = text.find("(", at, at + 200)
    arrow_param = re.compile(rf"(?:async\s+)?({_IDENT})\s*=>\s*").match(text, at)
    if arrow_param:
        start = arrow_param.end()
        end = balanced_end(text, start) if text.startswith("{", start) else text.find("\n", start)
        return Func(mod.path, "", (start, end if end > 0 else len(text)))
    if paren < 0:
        return None
    body = _body_after_params(text, paren)
    return Func(mod.path, "", body) if body else None


@per_text()
def _destructure_index(text: str) -> dict[str, list[tuple[int, str, int]]]:
    """Local name -> (offset of the value, key, offset of the declaration) of each `const { key: name } =`."""
    out: dict[str, list[tuple[int, str, int]]] = {}
    for m in _DESTRUCTURE.finditer(text):
        for src, local in _names(m.group(1), ":"):
            out.setdefault(local, []).append((m.end(), src, m.start()))
    return out


def _destructured(text: str, name: str, use_at: int) -> tuple[int, str] | None:
    """`const { key: name } = EXPR` (or `{ name }`) before `use_at`, the only binding of `name`: (offset of
    EXPR, key)."""
    hits = [h for h in _destructure_index(text).get(name, []) if h[2] < use_at]
    if len(hits) != 1:
        return None
    b = jsscope.blocks(text)
    value_at, key, decl_at = hits[0]
    if not b.contains(b.innermost(decl_at), b.innermost(use_at)):
        return None
    return value_at, key


def _pipeline_at(project: JsProject, mod: Module, at: int, depth: int) -> Pipeline | None:
    m = _PIPELINE.match(mod.text, at)
    if m is None or project.value(mod, m.start(1), depth + 1) not in _TASKS:
        return None
    v = project.value(mod, m.end(), depth + 1)
    if not isinstance(v, str):
        return None
    found = list(model_matches(v))
    if found:
        return Pipeline(mod.path, at, found[0].model)
    # After the model was renamed, the pipeline is still unfinished: it cannot select a v3 task.
    return Pipeline(mod.path, at, MODELS[V3]) if v.split("/")[-1] == V3 else None


def _pipelines(project: JsProject, mod: Module) -> list[tuple[Pipeline, list[str], list[tuple[int, int]]]]:
    text = mod.text
    out = []
    for m in _PIPELINE.finditer(text):
        p = _pipeline_at(project, mod, m.start(), 0)
        if p is None:
            continue
        # The names that hold it: `const x = [await] pipeline(...)`, `x = ...`, `this.x = ...`, and one
        # step of aliasing (`const extractor = await extractorPromise`).
        before = text[max(0, m.start() - 120) : m.start()]
        bound = re.search(rf"(?:\bthis\s*\.\s*)?({_IDENT})\s*(?::[^=\n]*)?=\s*(?:await\s+)?\(?\s*\Z", before)
        names = [bound.group(1)] if bound else []
        for alias in _ALIAS.finditer(text):
            if alias.group(2) in names and alias.group(1) not in names:
                names.append(alias.group(1))
        calls = []
        for name in names:
            if not _only_pipeline(project, mod, name, m.start(), p):
                continue
            for c in re.finditer(rf"(?<![\w$.])(?:this\s*\.\s*)?{re.escape(name)}\s*\(", text):
                if c.start() <= m.start() <= c.end():
                    continue
                calls.append((c.start(), c.end() - 1))
        out.append((p, names, calls))
    return out


def _only_pipeline(project: JsProject, mod: Module, name: str, use_at: int, p: Pipeline) -> bool:
    """Every binding of `name` that holds a value holds this pipeline (or an alias of it)."""
    text = mod.text
    for x in jsscope.bindings(text, name):
        if x.value_at < 0:
            continue  # `let extractor;` / a parameter
        v = project.value(mod, x.value_at)
        if isinstance(v, Pipeline):
            if v != p:
                return False
            continue
        if not re.compile(rf"\s*await\s+(?:this\s*\.\s*)?{_IDENT}\s*[;\n]").match(text, x.value_at - 1):
            return False
    if re.search(rf"\bthis\s*\.\s*{re.escape(name)}\s*=(?!=)", text):
        for a in re.finditer(rf"\bthis\s*\.\s*{re.escape(name)}\s*=(?!=)\s*", text):
            v = project.value(mod, a.end())
            if v != p:
                return False
    return True


def _request_model(project: JsProject, mod: Module, req: object) -> Model | None | bool:
    """The legacy model a request sends (None: unknown), or False when the request is not one JM201
    reports (it sends a task, or another model)."""
    text = mod.text
    keys = req.keys(text)  # type: ignore[attr-defined]
    if "task" in keys:
        return False
    if "model" not in keys:
        return None
    raw = text[keys["model"][1] : keys["model"][2]].strip()
    value = project.value(mod, keys["model"][1])
    s = value if isinstance(value, str) else raw.strip("\"'`")
    found = list(model_matches(s))
    if found:
        return found[0].model
    if isinstance(value, str) and value == V3:
        return None  # a v3 request without a task is unfinished (JM201): still an embedder of both sides
    if isinstance(value, str) and value.startswith("jina-"):
        return False  # v3 (JM201 says so) or another Jina family: not a v2 embedder
    return None


_HEAD = re.compile(
    rf"(?:\bfunction\s*\*?\s*({_IDENT})\s*\([^()]*(?:\([^()]*\)[^()]*)*\)"
    rf"|\b(?:const|let|var)\s+({_IDENT})\s*(?::[^=]*)?=\s*(?:async\s+)?"
    rf"(?:function\s*\*?\s*{_IDENT}?\s*)?\([^()]*(?:\([^()]*\)[^()]*)*\)"
    rf"|\b(?:const|let|var)\s+({_IDENT})\s*=\s*(?:async\s+)?{_IDENT}"
    rf"|^\s*(?:(?:public|private|protected|static|async|export|default)\s+)*({_IDENT})\s*\([^()]*\))"
    rf"\s*(?::[^{{=;]*)?\s*(?:=>\s*)?\Z",
    re.M,
)
_ANY_FUNCTION = re.compile(r"(?:\)|=>)\s*(?::[^{};=]*)?\s*(?:=>\s*)?\Z")
_KEYWORDS = frozenset({"if", "for", "while", "switch", "catch", "with", "return", "await"})


def _enclosing_function(text: str, at: int) -> str | None:
    """Name of the named function (declaration, arrow/function expression bound to a const/let/var, or a
    method) whose body holds `at`, looking through anonymous callbacks; None at module level."""
    b = jsscope.blocks(text)
    i = b.innermost(at)
    while i != -1:
        m = _HEAD.search(text[max(0, b.opens[i] - 400) : b.opens[i]])
        name = next((g for g in m.groups() if g), None) if m else None
        if name is not None and name not in _KEYWORDS:
            return name
        i = b.parent[i]
    return None


def _function_span(text: str, at: int) -> tuple[int, int]:
    """The body of the innermost function (named or not) holding `at`; the whole text at module level."""
    b = jsscope.blocks(text)
    i = b.innermost(at)
    while i != -1:
        if _is_function_body(text, b.opens[i]):
            return b.opens[i], b.closes[i]
        i = b.parent[i]
    return 0, len(text)


_RETURN_TYPE = re.compile(r"\)\s*:\s*[^{};=()]*\Z")


def _is_function_body(text: str, brace: int) -> bool:
    """Does the `{` at `brace` open a function body (`) {`, `=> {`, `): T {`), not an if/for/while block?"""
    i = brace - 1
    while i >= 0 and text[i] in " \t\r\n":
        i -= 1
    if i >= 1 and text[i - 1 : i + 1] == "=>":
        return True
    if i < 0:
        return False
    if text[i] != ")":
        m = _RETURN_TYPE.search(text, max(0, i - 200), i + 1)
        if m is None:
            return False
        i = m.start()
    j = jsscope.opening_paren(text, i)
    if j is None:
        return False
    word = re.search(r"([\w$]+)\s*\Z", text[max(0, j - 100) : j])
    return word is None or word.group(1) not in _KEYWORDS


# --- the side a call serves ------------------------------------------------------------------------

_STORE = re.compile(r"(?i)\.\s*(?:upsert\w*|add(?:Documents|Vectors|Texts)|insert\w*|fromDocuments|fromTexts|"
                    r"index)\s*\(|\binsert\s+into\b|\bupsert\w*\s*\(")
_SEARCH = re.compile(r"(?i)\.\s*(?:search\w*|query\w*|similaritySearch\w*|asRetriever|knn\w*|retrieve\w*)"
                     r"\s*\(|"
                     r"<=>|<->|<#>|\b(?:search|retrieve)\w*\s*\(")
_SIMILAR = re.compile(r"(?i)\bcos_?sim\w*|\bcosine\w*|\bsimilarity\b|\bdedup\w*|\bdot\s*\(")
_CLUSTER = re.compile(r"(?i)\bk-?means\w*|\bhdbscan\b|\bcluster\w*|\bumap\b|\btsne\b")
_CLASSIFY = re.compile(r"(?i)\bclassif\w*|\bzero-?shot\b")
_QUERY_NAMES = re.compile(r"(?i)quer(?:y|ies)|question|prompt|search|ask\b|message|\bq\b")
_PASSAGE_NAMES = re.compile(
    r"(?i)chunk|doc(?:ument)?s?\b|documents|passage|article|corpus|page|content|ingest"
)


def call_side(text: str, at: int, end: int) -> TaskGuess:
    """The task for the vectors of the call at `at`: what the enclosing function does with them (stores,
    searches, compares, clusters), else the names around the call (`createEmbedding(query)`)."""
    lo, hi = _function_span(text, at)
    body = text[lo:hi]
    line = text.count("\n", 0, at) + 1
    signals: list[tuple[str, str]] = []
    for regex, task, what in ((_STORE, PASSAGE, "stored with"), (_SEARCH, QUERY, "searched with"),
                              (_SIMILAR, MATCHING, "compared with"), (_CLUSTER, SEPARATION, "clustered with"),
                              (_CLASSIFY, CLASSIFICATION, "classified with")):
        m = regex.search(body)
        if m:
            signals.append((task, f"vectors {what} {m.group().strip(' .(')} in the same function (line "
                                  f"{text.count(chr(10), 0, lo + m.start()) + 1})"))
    tasks = {t for t, _ in signals}
    if len(tasks) == 1:
        return decide(signals[:1])
    # The call's own line: the variable it assigns and its arguments.
    ls, le = text.rfind("\n", 0, at) + 1, text.find("\n", end)
    around = text[ls : le if le >= 0 else len(text)]
    q, p = _QUERY_NAMES.search(around), _PASSAGE_NAMES.search(around)
    if q and not p:
        return TaskGuess(QUERY, f"embeds a query ('{q.group()}' on line {line})")
    if p and not q:
        return TaskGuess(PASSAGE, f"embeds documents ('{p.group()}' on line {line})")
    if signals:
        return decide(signals)
    return TaskGuess(None, f"no use of the vectors found around the call on line {line}")


class ImportTest:
    """The byte test for JS/TS files that do not say "jina": do they name a module that exports a v2 value
    or helper, and one of those names?"""

    def __init__(self, project: JsProject) -> None:
        self.by_key: dict[bytes, set[bytes]] = {}
        for path in project.modules:
            names = project.exported_names(path)
            if not names:
                continue
            stem = posixpath.basename(path).rsplit(".", 1)[0]
            if stem == "index":
                stem = posixpath.basename(posixpath.dirname(path)) or stem
            self.by_key.setdefault(stem.encode(), set()).update(n.encode() for n in names)

    def __bool__(self) -> bool:
        return bool(self.by_key)

    def wanted(self, data: bytes) -> bool:
        if b"import" not in data and b"require" not in data and b"from" not in data:
            return False
        # A default export is imported under any name: the module's name alone must appear then.
        return any(key in data and (b"default" in names or any(n in data for n in names))
                   for key, names in self.by_key.items())


# --- what the rules ask ----------------------------------------------------------------------------

_FILE_SIGNALS = ((_STORE, PASSAGE, "stored with"), (_SEARCH, QUERY, "searched with"),
                 (_SIMILAR, MATCHING, "compared with"), (_CLUSTER, SEPARATION, "clustered with"),
                 (_CLASSIFY, CLASSIFICATION, "classified with"))


@per_text()
def _file_signals(text: str) -> tuple[tuple[str, str], ...]:
    signals = []
    for regex, task, what in _FILE_SIGNALS:
        m = regex.search(text)
        if m:
            line = text.count("\n", 0, m.start()) + 1
            signals.append((task, f"vectors {what} {m.group().strip(' .(')} on line {line}"))
    return tuple(signals)


@dataclass(frozen=True)
class HelperUse:
    """How a helper's vectors are used: the task for its embedding site, and each caller with its side."""

    guess: TaskGuess
    several: bool  # its callers serve more than one side: the task must become a parameter
    calls: tuple[tuple[Embed, TaskGuess], ...]


def _where(project: JsProject, e: Embed) -> str:
    return f"{e.path}:{project.modules[e.path].text.count(chr(10), 0, e.at) + 1}"


def helper_use(project: JsProject, helper: str) -> HelperUse | None:
    """The sides a helper serves, from its callers: what their functions do with the vectors first, then
    the names at the call (`embed(query)`, `embed(chunks)`). None when nothing calls it."""
    calls = tuple(project.sides(helper))
    if not calls:
        return None
    evidence = {g.task for _, g in calls if g.signals and g.task}
    named = {g.task for _, g in calls if g.task}
    tasks = evidence or named
    if len(tasks) >= 2:
        sides = "; ".join(f"{_where(project, c)} ({g.task or 'unclear'})" for c, g in calls)
        return HelperUse(TaskGuess(None, f"serves several sides through its callers: {sides}"), True, calls)
    if len(tasks) == 1:
        task = next(iter(tasks))
        where = ", ".join(_where(project, c) for c, g in calls if g.task == task)
        reason = next(g.reason for _, g in calls if g.task == task)
        return HelperUse(TaskGuess(task, f"its callers ({where}): {reason}", [(task, reason)]), False, calls)
    return HelperUse(TaskGuess(None, "no use of the vectors found at its callers"), False, calls)


def helper_guess(project: JsProject, path: str, at: int) -> HelperUse | None:
    """How the helper holding offset `at` is used by its callers (None: not in a helper, or no callers)."""
    helper = project.helper_of(path, at)
    return helper_use(project, helper) if helper else None


def site_guess(project: JsProject, path: str, at: int, end: int) -> tuple[TaskGuess, HelperUse | None]:
    """The task for an embedding site (request or extractor call): from the callers of the helper that holds
    it when they say, else from its own function, else from the whole file, else from names."""
    helper = project.helper_of(path, at)
    use = helper_use(project, helper) if helper else None
    if use is not None and (use.several or use.guess.task):
        return use.guess, use
    text = project.modules[path].text
    own = call_side(text, at, end)
    if own.signals and own.task:
        return own, use
    signals = list(_file_signals(text))
    if signals:
        return decide(signals), use
    if use is not None:
        named = {g.task for _, g in use.calls if g.task}
        if len(named) == 1:
            task = next(iter(named))
            return TaskGuess(task, next(g.reason for _, g in use.calls if g.task == task), []), use
    return own if own.task else decide([]), use


_SINGLE: dict[tuple[str, int], JsProject] = {}


def project_of(ctx_path: str, text: str, project: JsProject | None) -> JsProject:
    """The repository's project when `plan` built one holding this file, else a project of this file
    alone (a rule run on a single file)."""
    if project is not None and ctx_path in project.modules and project.modules[ctx_path].text is text:
        return project
    key = (ctx_path, id(text))
    hit = _SINGLE.get(key)
    if hit is not None and hit.modules[ctx_path].text is text:
        return hit
    single = JsProject({ctx_path})
    single.add(ctx_path, text)
    _SINGLE.clear()  # one file at a time: keep the last
    _SINGLE[key] = single
    return single
