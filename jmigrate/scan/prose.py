"""Which parts of a file are not code: prose, comments, docstrings and captured logs (issue 12).

A v2 model named there is a *mention*, not a finding: nothing runs it, so a migration does not have to
edit it and `apply` must never rewrite it (rewriting "we used v2 before" turns history into a false
statement). `plan` reports mentions in a list of their own (`PlanResult.mentions`).

What counts as not code, by file kind:
- Markdown / reStructuredText: everything outside code blocks (prose, headings, tables, links, inline code,
  front matter). Fenced / indented / `::` blocks are code, with their own comments found by the block's
  language; blocks of output (```text, ```console lines without a prompt, ```log, log records with a
  timestamp or a level) are logs.
- Python: `#` comments (commented-out code too: it does not run), docstrings and other bare string
  statements, strings passed as help=/description=/title= (argparse, click, typer, pydantic).
- JS/TS `//` and `/* */` (`/** */` is a docstring), SQL `--`, `#` in shell, YAML, TOML, .env, Dockerfile;
  `description:`/`help:`/`title:` values in JS objects, YAML, TOML and JSON.
- HTML: text between tags and `<!-- -->`; tags, `<script>`, `<style>`, `<pre>` and `<code>` are code.
- README/CHANGELOG-like .txt files are prose, `.log` files are logs; notebook outputs are logs.
Only the part of a line after a trailing comment is a comment: the code before it still counts.

Every scan here is one linear pass and runs only for files that produced a finding.
"""

from __future__ import annotations

import ast
import bisect
import re
from collections.abc import Iterable
from dataclasses import dataclass
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from jmigrate.scan.context import FileContext
    from jmigrate.scan.python import PyModule

PROSE, COMMENT, DOCSTRING, LOG = "prose", "comment", "docstring", "log"
KINDS = (PROSE, COMMENT, DOCSTRING, LOG)

# Keyword arguments and keys whose string is text for people (help screens, API docs, schemas).
DESCRIBING_KEYS = frozenset(
    {"help", "description", "title", "summary", "epilog", "usage", "describe", "short_help", "long_help",
     "example", "examples"}
)

# A log record: a timestamp or a level at the start of the line (logging, loguru, glog, uvicorn, tqdm-free).
_LOG_LINE = re.compile(
    r"""\s*(?:
        \[?\d{4}-\d{2}-\d{2}[ T]\d{1,2}:\d{2}            # 2024-05-01 12:00 / [2024-05-01T12:00
      | \[?\d{1,2}:\d{2}:\d{2}\b                          # 12:00:01
      | \[?\s*(?:TRACE|DEBUG|INFO|NOTICE|WARN|WARNING|ERROR|CRITICAL|FATAL)\b\s*[\]:|\-]  # INFO: / [INFO]
      | [IWEF]\d{4}\s+\d{2}:\d{2}                         # glog: I0501 12:00
    )""",
    re.X,
)
# A console prompt: what follows it is a command someone typed (code); lines without one are output.
_PROMPT = re.compile(
    r"^\s*(?:\$|%|>>>|\.\.\.|>|PS\s[^>\n]*>|In\s*\[\d*\]:|\(\S+\)\s*\$|[\w.@-]+(?::[^\s$#]*)?[$#])(?:\s|$)"
)

# Fenced-block info strings (lower case, first word, braces and dots stripped).
_HASH = {"python", "py", "python3", "py3", "ipython", "ipython3", "jupyter", "sh", "bash", "zsh", "shell",
         "fish", "yaml", "yml", "toml", "env", "dotenv", "dockerfile", "docker", "containerfile", "ini",
         "cfg", "conf", "properties", "make", "makefile", "r", "ruby", "rb", "perl", "powershell", "ps1",
         "pwsh", "nginx", "hcl", "terraform", "tf", "julia", "cmake", "requirements", "pip", "procfile"}
_SLASH = {"js", "javascript", "ts", "typescript", "jsx", "tsx", "mjs", "cjs", "node", "jsonc", "json5",
          "go", "golang", "rust", "rs", "java", "kotlin", "kt", "swift", "c", "cpp", "c++", "cs", "csharp",
          "php", "dart", "scala", "groovy", "vue", "svelte", "proto", "protobuf", "graphql", "gql", "deno"}
_SQL = {"sql", "postgres", "postgresql", "psql", "plpgsql", "mysql", "sqlite", "pgsql", "cypher", "hive"}
_OTHER_CODE = {"json", "http", "xml", "html", "csv", "diff", "patch", "curl", "lua", "elixir", "haskell",
               "ocaml", "bat", "cmd", "batch", "tsv", "jinja", "jinja2", "j2", "handlebars", "hbs",
               "mdx", "zig", "nim", "matlab", "vb", "fortran"}
_SESSION = {"console", "shell-session", "sh-session", "shellsession", "bash-session", "terminal", "term",
            "pycon", "doscon", "ps1con", "pwsh-session", "ipython-console"}
_OUTPUT = {"text", "txt", "plaintext", "plain", "output", "out", "stdout", "stderr", "result", "results",
           "none", "nohighlight", "raw", "ansi"}
_LOGS = {"log", "logs", "accesslog", "traceback", "pytb", "py3tb", "pytb3"}
_DIAGRAMS = {"mermaid", "plantuml", "dot", "graphviz", "math", "latex", "tex", "markdown", "md", "rst"}

_PROSE_TXT = re.compile(
    r"(?i)^(?:readme|changelog|changes|history|news|notes?|authors|contributing|license|licence|notice|"
    r"citation|todo|faq|usage|install(?:ation)?)\b[^/]*\.(?:txt|text)$"
)


@dataclass(frozen=True)
class Regions:
    """Sorted, non-overlapping (start, end, kind) spans of a text that are not code."""

    starts: list[int]
    ends: list[int]
    kinds: list[str]

    @classmethod
    def of(cls, spans: Iterable[tuple[int, int, str]]) -> Regions:
        merged: list[tuple[int, int, str]] = []
        for s, e, k in sorted(spans):
            if e <= s:
                continue
            if merged and s < merged[-1][1]:  # overlap: the earlier (outer) span wins
                if e > merged[-1][1] and merged[-1][2] == k:
                    merged[-1] = (merged[-1][0], e, k)
                continue
            merged.append((s, e, k))
        return cls([s for s, _, _ in merged], [e for _, e, _ in merged], [k for _, _, k in merged])

    def span_at(self, offset: int) -> tuple[int, int, str] | None:
        i = bisect.bisect_right(self.starts, offset) - 1
        if i >= 0 and offset < self.ends[i]:
            return self.starts[i], self.ends[i], self.kinds[i]
        return None

    def kind_at(self, offset: int) -> str | None:
        i = bisect.bisect_right(self.starts, offset) - 1
        if i >= 0 and offset < self.ends[i]:
            return self.kinds[i]
        return None


def kind_at(ctx: FileContext, offset: int) -> str | None:
    """prose / comment / docstring / log when `offset` of the context's text is not code, else None."""
    if ctx.language == "python":
        return _python_kind(ctx, offset)
    if ctx.not_code is None:
        ctx.not_code = regions(ctx.src.text, ctx.language, ctx.src.path)
    return ctx.not_code.kind_at(offset)


# --- line helpers ------------------------------------------------------------------------------------

def _lines(text: str, lo: int = 0, hi: int | None = None) -> Iterable[tuple[int, int]]:
    """(start, end) of each line in text[lo:hi], end excluding the newline."""
    hi = len(text) if hi is None else hi
    pos = lo
    while pos < hi:
        nl = text.find("\n", pos, hi)
        end = hi if nl < 0 else nl
        yield pos, end
        pos = end + 1


def _hash_comment_start(text: str, start: int, end: int, *, line_start_only: bool = False) -> int:
    """Offset of the `#` that starts a comment on the line text[start:end], or -1. A `#` counts at the start
    of the line or after whitespace, outside quotes (so `a#b`, URLs with anchors and "#" in strings don't)."""
    quote = ""
    i = start
    while i < end:
        c = text[i]
        if quote:
            if c == "\\":
                i += 2
                continue
            if c == quote:
                quote = ""
        elif c in "\"'":
            quote = c
        elif c == "#" and (i == start or text[i - 1] in " \t"):
            if not line_start_only or not text[start:i].strip():
                return i
        i += 1
    return -1


def _hash_comments(
    text: str, lo: int, hi: int, *, line_start_only: bool = False
) -> list[tuple[int, int, str]]:
    out = []
    for s, e in _lines(text, lo, hi):
        if "#" in text[s:e]:
            at = _hash_comment_start(text, s, e, line_start_only=line_start_only)
            if at >= 0:
                out.append((at, e, COMMENT))
    return out


# Comments, and the strings and template literals that may hold `//` or `/*` without starting one.
_C_TOKENS = re.compile(
    r"//[^\n]*|/\*.*?(?:\*/|\Z)|'(?:[^'\\\n]|\\.)*'?|\"(?:[^\"\\\n]|\\.)*\"?|`(?:[^`\\]|\\.)*`?", re.S
)


def _c_comments(text: str, lo: int, hi: int) -> list[tuple[int, int, str]]:
    """`//` and `/* */` comments of JS/TS-like code outside strings and template literals (`/** */` is a
    docstring). A template literal is skipped whole, substitutions included: they rarely hold comments."""
    out: list[tuple[int, int, str]] = []
    for m in _C_TOKENS.finditer(text, lo, hi):
        tok = m.group()
        if tok.startswith("//"):
            out.append((m.start(), m.end(), COMMENT))
        elif tok.startswith("/*"):
            doc = tok.startswith("/**") and tok != "/**/"
            out.append((m.start(), m.end(), DOCSTRING if doc else COMMENT))
    return out


_SQL_TOKENS = re.compile(r"--|/\*|'|\"")


def _sql_comments(text: str, lo: int, hi: int) -> list[tuple[int, int, str]]:
    out: list[tuple[int, int, str]] = []
    pos = lo
    while pos < hi:
        m = _SQL_TOKENS.search(text, pos, hi)
        if m is None:
            break
        tok, at = m.group(), m.start()
        if tok == "--":
            nl = text.find("\n", at, hi)
            end = hi if nl < 0 else nl
            out.append((at, end, COMMENT))
            pos = end
        elif tok == "/*":
            close = text.find("*/", at + 2, hi)
            end = hi if close < 0 else close + 2
            out.append((at, end, COMMENT))
            pos = end
        else:
            close = text.find(tok, at + 1, hi)
            pos = hi if close < 0 else close + 1
    return out


# `description: ...`, `"help": "..."`, `title = "..."`: the value is text for people.
_DESCRIBING = re.compile(
    r"""(?:^|[\s{,(])["']?(?:""" + "|".join(sorted(DESCRIBING_KEYS)) + r""")["']?\s*[:=]\s*(?=\S)""",
    re.I,
)
_BLOCK_SCALAR = re.compile(r"[|>][+-]?\d*\s*(?:#.*)?$")


# A quoted value: to its closing quote (triple quotes may span lines), escapes skipped.
_QUOTED = re.compile(
    r"\"\"\"(?:[^\\]|\\.)*?(?:\"\"\"|\Z)|'''(?:[^\\]|\\.)*?(?:'''|\Z)|`(?:[^`\\]|\\.)*`?"
    r"|\"(?:[^\"\\\n]|\\.)*\"?|'(?:[^'\\\n]|\\.)*'?",
    re.S,
)


def _described_values(text: str, lo: int, hi: int, *, yaml: bool) -> list[tuple[int, int, str]]:
    """Values of describing keys: a quoted value to its closing quote (code after it on the line stays code:
    `{description: "…", model: "…"}`); in YAML an unquoted value to the end of its line, a block scalar
    with its indented lines."""
    out: list[tuple[int, int, str]] = []
    lines = list(_lines(text, lo, hi)) if yaml else None
    starts = [s for s, _ in lines] if lines is not None else []
    for m in _DESCRIBING.finditer(text, lo, hi):
        quoted = _QUOTED.match(text, m.end(), hi)
        if quoted is not None:
            out.append((m.end(), quoted.end(), PROSE))
            continue
        if not yaml:
            continue  # `description: DESC`: a name, i.e. code
        nl = text.find("\n", m.end(), hi)
        end = hi if nl < 0 else nl
        if lines is not None and _BLOCK_SCALAR.match(text, m.end(), end):
            line_start = text.rfind("\n", lo, m.start()) + 1
            indent = len(text[line_start:end]) - len(text[line_start:end].lstrip())
            i = bisect.bisect_right(starts, m.start())
            while i < len(lines):
                s, e = lines[i]
                body = text[s:e]
                if body.strip() and len(body) - len(body.lstrip()) <= indent:
                    break
                end = e
                i += 1
        out.append((m.end(), end, PROSE))
    return out


# --- Markdown and reStructuredText ----------------------------------------------------------------------

# A block after a line like "Response:", "Example output", "it returns" / "you will see" is output.
_OUTPUT_LEAD = re.compile(
    r"(?i)\b(?:responses?|outputs?|returns?|results?|prints?|(?:you(?:'ll| will| should)? )(?:see|get))\b"
)
_GET = re.compile(r"\bGET\s+/")
_DATA_OR_UNLABELLED = {"", "json", "jsonc", "json5"}
_FENCE = re.compile(r"^[ \t]*(?:>[ \t]*)*(`{3,}|~{3,})[ \t]*\{?\.?([^\s`{}]*)")
_RST_DIRECTIVE = re.compile(r"^[ \t]*\.\.[ \t]+(?:code-block|code|sourcecode|highlight)::[ \t]*(\S*)", re.I)
_RST_LITERAL_END = re.compile(r"::\s*$")
_LIST_ITEM = re.compile(r"^[ \t]*(?:[-*+]|\d+[.)])[ \t]")


def _block_spans(text: str, lo: int, hi: int, lang: str) -> list[tuple[int, int, str]]:
    """Not-code spans inside a code block of language `lang` (text[lo:hi] is its content)."""
    lang = lang.lower()
    if lang in _HASH:
        return _hash_comments(text, lo, hi) + _log_lines(text, lo, hi, prompt=False)
    if lang in _SLASH:
        return _c_comments(text, lo, hi)
    if lang in _SQL:
        return _sql_comments(text, lo, hi)
    if lang in _OTHER_CODE:
        return []
    if lang in _LOGS:
        return [(lo, hi, LOG)]
    if lang in _DIAGRAMS:
        return [(lo, hi, PROSE)]
    if lang in _SESSION or lang in _OUTPUT:
        return _log_lines(text, lo, hi, prompt=True)
    # Unlabelled (or a language we do not know): code, except lines that are log records or whole-line
    # comments.
    return _log_lines(text, lo, hi, prompt=False) + _hash_comments(text, lo, hi, line_start_only=True)


def _log_lines(text: str, lo: int, hi: int, *, prompt: bool) -> list[tuple[int, int, str]]:
    """Lines of output: log records always; with `prompt`, every line that is not a typed command."""
    out = []
    for s, e in _lines(text, lo, hi):
        line = text[s:e]
        if not line.strip():
            continue
        if prompt:
            if not _PROMPT.match(line):
                out.append((s, e, LOG))
        elif _LOG_LINE.match(line):
            out.append((s, e, LOG))
    return out


# Inline code in prose: `jinaai/jina-embeddings-v2-base-en` alone is a name in a sentence (prose), but a
# command or an assignment (`ollama pull jina/...`, `model="..."`, `SentenceTransformer("...")`) is what
# a user types or copies: code.
_INLINE_CODE = re.compile(r"(`+)(.+?)\1")
_INLINE_COMMAND = re.compile(r"\S\s+\S|=|\(")


def _prose_lines(text: str, lo: int, hi: int) -> list[tuple[int, int, str]]:
    """Prose, except lines that are log records pasted into it and inline code that is a command."""
    out = []
    start = lo
    for s, e in _lines(text, lo, hi):
        if _LOG_LINE.match(text, s, e):
            out.append((start, s, PROSE))
            out.append((s, e, LOG))
            start = e
        elif "`" in text[s:e] and e - s < 10_000:  # (a minified line is not prose worth splitting)
            for m in _INLINE_CODE.finditer(text, s, e):
                if _INLINE_COMMAND.search(m.group(2).strip()):
                    out.append((start, m.start(), PROSE))
                    start = m.end()
    out.append((start, hi, PROSE))
    return out


def _markdown(text: str, rst: bool) -> list[tuple[int, int, str]]:
    out: list[tuple[int, int, str]] = []
    lines = list(_lines(text))
    n = len(lines)
    prose_from = 0
    i = 0
    prev_blank = True
    prev_list = False  # the paragraph before this line is a list item: its indented lines continue it
    lead = ""  # the last prose line or heading before a block
    heading = ""  # the last heading: a JSON block under "GET /stats" is what the endpoint answers
    # Front matter (--- YAML ---) at the very top: site/model-card metadata, read by people and tools
    # that do not embed anything.
    if n and text[lines[0][0] : lines[0][1]].strip() == "---" and not rst:
        for j in range(1, n):
            if text[lines[j][0] : lines[j][1]].strip() in ("---", "..."):
                i = j + 1
                break
    while i < n:
        s, e = lines[i]
        line = text[s:e]
        stripped = line.strip()
        block: tuple[int, int, int, str] | None = None  # (content start, content end, next line, lang)
        fence = None if rst else _FENCE.match(line)
        if fence:
            mark = fence.group(1)
            j = i + 1
            while j < n:
                inner = text[lines[j][0] : lines[j][1]].strip().lstrip(">").strip()
                if inner.startswith(mark[0] * len(mark)) and not inner.strip(mark[0]):
                    break
                j += 1
            content_start = lines[i + 1][0] if i + 1 < n else e
            content_end = lines[j][0] if j < n else len(text)
            lang = fence.group(2)
            if lang.lower() in _DATA_OR_UNLABELLED and (_OUTPUT_LEAD.search(lead) or _GET.search(heading)):
                lang = "log"  # "The API returns:" then a JSON block: a sample response, not code
            block = (content_start, content_end, min(j + 1, n), lang)
        elif rst and (_RST_DIRECTIVE.match(line) or _RST_LITERAL_END.search(line)):
            directive = _RST_DIRECTIVE.match(line)
            lang = directive.group(1) if directive else ""
            indent = len(line) - len(line.lstrip())
            j = i + 1
            last = i
            while j < n:  # the block: blank lines and lines indented deeper than the directive/paragraph
                body = text[lines[j][0] : lines[j][1]]
                if body.strip():
                    if len(body) - len(body.lstrip()) <= indent:
                        break
                    last = j
                j += 1
            if last > i:
                # A directive's own options (`:linenos:`) are part of the block: harmless.
                block = (lines[i + 1][0], lines[last][1], last + 1, lang)
                if not directive:  # "text::" ends a prose line: the prose part stays prose
                    out += _prose_lines(text, prose_from, e)
                    prose_from = e
        elif (
            not rst
            and prev_blank
            and not prev_list
            and (line.startswith("    ") or line.startswith("\t"))
            and stripped
        ):
            j = i
            last = i
            while j < n:
                body = text[lines[j][0] : lines[j][1]]
                if body.strip() and not (body.startswith("    ") or body.startswith("\t")):
                    break
                if body.strip():
                    last = j
                j += 1
            block = (s, lines[last][1], last + 1, "")
        elif rst and stripped.startswith(">>> "):  # a doctest: code until a blank line
            j = i
            while j < n and text[lines[j][0] : lines[j][1]].strip():
                j += 1
            block = (s, lines[j - 1][1], j, "pycon")
        if block is not None:
            content_start, content_end, nxt, lang = block
            if not (fence or (rst and _RST_DIRECTIVE.match(line))):
                out += _prose_lines(text, prose_from, min(s, content_start))
            else:
                out += _prose_lines(text, prose_from, content_start)
            out += _block_spans(text, content_start, content_end, lang)
            prose_from = content_end
            i = nxt
            prev_blank, prev_list, lead = True, False, ""
            continue
        if stripped:
            if _LIST_ITEM.match(line):
                prev_list = True
            elif prev_blank and not line.startswith((" ", "\t")):
                prev_list = False
        prev_blank = not stripped
        if stripped:
            lead = stripped
            if stripped.startswith("#"):
                heading = stripped
        i += 1
    out += _prose_lines(text, prose_from, len(text))
    return out


# --- HTML ---------------------------------------------------------------------------------------------

_HTML_TOKENS = re.compile(r"<!--|<(script|style|pre|code|textarea)\b|<", re.I)


def _html(text: str) -> list[tuple[int, int, str]]:
    out: list[tuple[int, int, str]] = []
    pos, n = 0, len(text)
    while pos < n:
        m = _HTML_TOKENS.search(text, pos)
        if m is None:
            out.append((pos, n, PROSE))
            break
        out.append((pos, m.start(), PROSE))
        if m.group() == "<!--":
            close = text.find("-->", m.end())
            end = n if close < 0 else close + 3
            out.append((m.start(), end, COMMENT))
            pos = end
            continue
        tag_end = text.find(">", m.end())
        tag_end = n if tag_end < 0 else tag_end + 1
        if m.group(1):  # code up to the closing tag; a script's comments are comments
            name = m.group(1).lower()
            closing = re.compile(rf"</{name}\s*>", re.I).search(text, tag_end)
            if name == "script":
                out += _c_comments(text, tag_end, closing.start() if closing else n)
            pos = n if closing is None else closing.end()
        else:
            pos = tag_end
    return out


# --- per file kind ------------------------------------------------------------------------------------

def regions(text: str, language: str, path: str = "") -> Regions:
    """The not-code spans of a whole file (`kind_at` keeps them on the file's context: every finding of a
    file asks)."""
    name = path.rsplit("/", 1)[-1]
    lower = name.lower()
    spans: list[tuple[int, int, str]]
    if language == "markdown":
        spans = _markdown(text, rst=lower.endswith(".rst"))
    elif language == "js":
        spans = _c_comments(text, 0, len(text)) + _described_values(text, 0, len(text), yaml=False)
    elif language == "sql":
        spans = _sql_comments(text, 0, len(text))
    elif language in ("yaml", "toml"):
        spans = _hash_comments(text, 0, len(text)) + _described_values(
            text, 0, len(text), yaml=language == "yaml"
        )
    elif language == "json":
        spans = _described_values(text, 0, len(text), yaml=False)
    elif language in ("shell", "env", "dockerfile"):
        spans = _hash_comments(text, 0, len(text))
    elif language == "log":
        spans = [(0, len(text), LOG)]
    elif lower.endswith((".html", ".htm", ".xhtml")):
        spans = _html(text)
    elif lower.endswith((".log", ".out")) or ".log." in lower:
        spans = [(0, len(text), LOG)]
    elif _PROSE_TXT.match(name) or lower.endswith((".adoc", ".asciidoc", ".textile", ".org")):
        spans = _prose_lines(text, 0, len(text))
    else:  # other text (Makefiles, .cfg, .ini, requirements): whole-line `#` comments and log records
        spans = _hash_comments(text, 0, len(text), line_start_only=True) + _log_lines(
            text, 0, len(text), prompt=False
        )
    return Regions.of(spans)


# --- Python (the parsed module knows what a string is for) --------------------------------------------

_MAGIC_LINE = re.compile(r"[ \t]*[%!?]")
_STRING = "string"  # internal: a Python string literal, judged by the parsed module
# Comments and string literals, triple quotes first (a prefix such as f or rb is left out of the span). One
# regex pass: asking the parsed module whether an offset outside any string is in one walks back over many
# strings, which made files dense with findings slow.
_PY_TOKENS = re.compile(
    r"#[^\n]*|'''(?:[^\\]|\\.)*?(?:'''|\Z)|\"\"\"(?:[^\\]|\\.)*?(?:\"\"\"|\Z)"
    r"|'(?:[^'\\\n]|\\.)*'?|\"(?:[^\"\\\n]|\\.)*\"?",
    re.S,
)


def _python_regions(text: str) -> Regions:
    return Regions.of(
        (m.start(), m.end(), COMMENT if m.group().startswith("#") else _STRING)
        for m in _PY_TOKENS.finditer(text)
    )


def _python_kind(ctx: FileContext, offset: int) -> str | None:
    text = ctx.src.text
    line_start = text.rfind("\n", 0, offset) + 1
    if ctx.cell_map is not None and _MAGIC_LINE.match(text, line_start):
        return None  # `!huggingface-cli download ...`, `%pip install`: shell the notebook runs
    if ctx.not_code is None:
        ctx.not_code = _python_regions(text)
    span = ctx.not_code.span_at(offset)
    if span is None or span[2] != _STRING:
        return None if span is None else span[2]
    string_start = span[0]
    if line_start > string_start and text[line_start:offset].lstrip().startswith("#"):
        # A `#` line inside a multi-line string: a commented-out line of the file or snippet it holds
        # (an .env sample written by a setup script, a config template).
        return COMMENT
    mod = ctx.py
    node = mod.string_at(offset) if mod is not None else None
    kind = None if mod is None or node is None else _python_string_kind(mod, node)
    if kind == DOCSTRING and _command_paragraph(text, line_start, string_start):
        return None  # a docstring's usage example (`curl ...`, `$ ...`, `>>> ...`): what users copy
    return kind


# The first line of a usage example in a docstring: a prompt or a command users type.
_COMMAND = re.compile(
    r"[ \t]*(?:[rRuUbBfF]{0,2}(?:\"\"\"|'''))?[ \t]*"
    r"(?:\$\s|>>>\s|(?:curl|wget|http|https|docker|ollama|pip3?|python3?|uv|llm|npx|npm|export"
    r"|huggingface-cli|hf|jmigrate|litellm)\s)"
)


def _command_paragraph(text: str, line_start: int, lo: int) -> bool:
    """Does the paragraph holding the line at `line_start` (lines back to a blank one, not before `lo`, the
    string's start) begin with a command?"""
    start = line_start
    while start > lo:
        prev = max(text.rfind("\n", lo, start - 1) + 1, lo)
        if not text[prev : start - 1].strip(" \t\r\"'"):
            break
        start = prev
    return _COMMAND.match(text, start) is not None


def _python_string_kind(mod: PyModule, node: ast.AST) -> str | None:
    for parent in mod.ancestors(node):
        if isinstance(parent, ast.Expr):  # a statement that is only a string: a docstring, never run
            return DOCSTRING
        if isinstance(parent, ast.keyword):
            return PROSE if parent.arg in DESCRIBING_KEYS else None
        if not isinstance(parent, (ast.JoinedStr, ast.FormattedValue, ast.BinOp, ast.List, ast.Tuple)):
            return None
        if isinstance(parent, ast.BinOp) and not isinstance(parent.op, (ast.Add, ast.Mod)):
            return None
    return None
