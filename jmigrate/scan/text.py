"""Line and regex scanning shared by the rules: model-name matching (every file kind) and the small helpers
the JS/TS, SQL, YAML, TOML, JSON, .env, shell, Dockerfile and Markdown checks use.

Model names come from `jmigrate.models`; nothing here hard-codes a model fact.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass
from functools import lru_cache

from jmigrate.models import MODELS, V3, Model, legacy_models
from jmigrate.scan.memo import per_text


@lru_cache(maxsize=1)
def _legacy_re() -> re.Pattern[str]:
    names = sorted((m.name for m in legacy_models()), key=len, reverse=True)
    # The pattern starts with a literal ("jina-embedding") so the regex engine can skip ahead quickly; an
    # "org/" prefix (Hugging Face id, LiteLLM provider, Ollama namespace, folder) is read backwards after.
    return re.compile("(?P<name>" + "|".join(map(re.escape, names)) + r")(?P<tail>[\w\-.]*)")


_ORG_CHARS = frozenset("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_.-")


# A v2 id with a part filled in at run time: "jina-embeddings-v2-{size}-en", "jina-embeddings-v2-" + size.
PARTIAL_V2 = re.compile(r"jina-embeddings-v2-(?!(?:small|base)-(?:en|de|es|zh|code)(?![A-Za-z0-9]))")


def mentions_jina(data: bytes) -> bool:
    """Cheap test before any decoding or parsing: a file that never says "jina" has no finding of ours
    except a vector width. Plain substring tests run at memchr speed (a case-insensitive regex does not);
    the three spellings cover model ids, class names (JinaEmbeddings) and settings (JINA_API_KEY)."""
    return b"jina" in data or b"Jina" in data or b"JINA" in data


# Org prefixes for which "<org>/jina-embeddings-v3" is a real id: Jina's HF org and LiteLLM's provider.
REWRITABLE_ORGS = frozenset({"", "jinaai", "jina_ai"})


@dataclass(frozen=True)
class ModelMatch:
    model: Model
    org: str  # "" when bare
    start: int  # start of the whole id (org included)
    name_start: int
    end: int  # end of the model name (a tail like "-onnx" is not included)
    tail: str  # characters glued to the name ("" normally)

    @property
    def rewritable(self) -> bool:
        """True when swapping the name for v3 yields an id that exists (not a folder, mirror or tag)."""
        return self.org in REWRITABLE_ORGS and not self.tail

    def replacement(self) -> str:
        return V3


def model_matches(text: str) -> Iterator[ModelMatch]:
    for m in _legacy_re().finditer(text):
        name_start = m.start("name")
        org, start = "", name_start
        if name_start > 1 and text[name_start - 1] == "/":
            i = name_start - 1
            while i > 0 and text[i - 1] in _ORG_CHARS:
                i -= 1
            org, start = text[i : name_start - 1], i
        yield ModelMatch(MODELS[m.group("name")], org, start, name_start, m.end("name"), m.group("tail"))


def legacy_model_mentions(text: str) -> list[tuple[str, int, int]]:
    return [(m.model.name, m.name_start, m.end) for m in model_matches(text)]


def line_of(text: str, offset: int) -> tuple[int, int]:
    """(start, end) offsets of the line holding `offset` (end excludes the newline)."""
    start = text.rfind("\n", 0, offset) + 1
    end = text.find("\n", offset)
    end = len(text) if end < 0 else end
    if end > start and text[end - 1] == "\r":
        end -= 1
    return start, end


def balanced_end(text: str, open_at: int) -> int:
    """Offset just past the bracket matching text[open_at] ('{', '(' or '['), skipping quoted strings.

    Returns -1 when unbalanced. Good enough for JS/JSON/shell payloads; Python goes through `ast`.
    """
    pairs = {"{": "}", "(": ")", "[": "]"}
    stack = [pairs[text[open_at]]]
    i, n = open_at + 1, len(text)
    while i < n:
        c = text[i]
        if c in "\"'`":
            j = i + 1
            while j < n and text[j] != c:
                j += 2 if text[j] == "\\" else 1
            i = j + 1
            continue
        if c in pairs:
            stack.append(pairs[c])
        elif c in ")}]":
            if c != stack[-1]:
                return -1
            stack.pop()
            if not stack:
                return i + 1
        i += 1
    return -1


def window(text: str, offset: int, before: int = 400, after: int = 400) -> str:
    return text[max(0, offset - before) : offset + after]


# --- embeddings requests outside Python (fetch, axios, curl) ------------------------------------------

_ENDPOINT = re.compile(r"api\.jina\.ai/v1/embeddings")
_CURL_DATA = re.compile(r"""(?:-d|--data(?:-raw|-binary)?)\s+(['"])\s*(\{)""")
_KEY = re.compile(r"""(?P<q>["']?)(?P<key>[A-Za-z_]\w*)(?P=q)\s*:\s*""")
_IDENT = re.compile(r"[A-Za-z_$][\w$]*")
# Keys of a request-options object (fetch, ky, got, axios config) whose value is the payload.
_BODY_KEYS = ("body", "json", "data")
# An object entry: `key:` / `"key":`, or a shorthand `{ body }` (group 3).
_ENTRY = re.compile(r"""(["']?)([A-Za-z_$][\w$]*)\1\s*:(?!:)|(?<=[{,])\s*([A-Za-z_$][\w$]*)\s*(?=[,}])""")


@dataclass(frozen=True)
class TextRequest:
    """A request to the embeddings endpoint found by scanning text, with its JSON/JS object payload."""

    url_start: int
    url_end: int
    body_start: int  # offset of "{" (-1 when the payload is not visible)
    body_end: int  # offset just past "}"
    # False when the payload was reached through a name bound more than once where the request is made:
    # it may not be the payload sent, so its findings are manual (never an automatic edit).
    certain: bool = True

    def keys(self, text: str) -> dict[str, tuple[int, int, int]]:
        """Top-level-ish keys of the payload: name -> (key start, value start, value end)."""
        if self.body_start < 0:
            return {}
        out: dict[str, tuple[int, int, int]] = {}
        body = text[self.body_start : self.body_end]
        for m in _KEY.finditer(body):
            value_start = m.end()
            v = value_start
            if v < len(body) and body[v] in "{[":
                end = balanced_end(body, v)
                v = end if end > 0 else v + 1
            else:
                while v < len(body) and body[v] not in ",}\n":
                    if body[v] in "\"'":
                        close = body.find(body[v], v + 1)
                        v = close if close > 0 else v
                    v += 1
            out.setdefault(
                m.group("key"),
                (
                    self.body_start + m.start(),
                    self.body_start + value_start,
                    self.body_start + len(body[:v].rstrip()),
                ),
            )
        return out


_COMMAND_SPAN = 20_000


def _command_bounds(text: str, offset: int) -> tuple[int, int]:
    """The shell command around `offset`: lines joined by trailing backslashes."""

    def continued(line_end: int) -> bool:  # does the line ending at `line_end` go on to the next one?
        i = line_end - 1 if line_end > 0 and text[line_end - 1] == "\r" else line_end
        return i > 0 and text[i - 1] == "\\"

    # Bounded both ways: a command longer than this is not one a person typed, and an unbounded search in a
    # one-line (minified) file would be repeated for every endpoint mention in it.
    lo, hi = max(0, offset - _COMMAND_SPAN), min(len(text), offset + _COMMAND_SPAN)
    start = text.rfind("\n", lo, offset)
    while start > lo and continued(start):
        start = text.rfind("\n", lo, start)
    start = max(start + 1, lo)
    end = text.find("\n", offset, hi)
    while end >= 0 and continued(end):
        end = text.find("\n", end + 1, hi)
    return start, hi if end < 0 else end


@per_text()
def _text_requests(text: str) -> tuple[TextRequest, ...]:
    from jmigrate.scan import jsscope

    out: list[TextRequest] = []
    for m in _ENDPOINT.finditer(text):
        literal = _string_around(text, m.start(), m.end())
        if literal is None:  # not in a quoted string: a shell command (curl) or prose
            lo, hi = _command_bounds(text, m.start())
            data = _CURL_DATA.search(text, lo, hi)
            start = data.start(2) if data else -1
            end = balanced_end(text, start) if start >= 0 else -1
            out.append(TextRequest(m.start(), m.end(), start if end > 0 else -1, end))
            continue
        q_open, q_close = literal
        before = _skip_back(text, q_open)
        if before >= 0 and text[before] == "(":  # fetch("…/embeddings", …) / axios.post("…", …)
            out.append(_call_request(text, m.start(), m.end(), q_close + 1))
            continue
        # const URL = "…/embeddings": the requests are the calls that pass URL, resolved by scope.
        decl = re.search(r"(?:const|let|var)\s+([A-Za-z_$][\w$]*)\s*(?::[^=;\n]*)?=\s*\Z",
                         text[max(0, q_open - 200) : q_open])
        uses: list[TextRequest] = []
        if decl:
            name = decl.group(1)
            for use in re.finditer(rf"\(\s*({re.escape(name)})\s*,", text):
                value_at, _ = jsscope.resolve(text, name, use.start(1))
                if value_at == q_open:
                    uses.append(_call_request(text, use.start(1), use.end(1), use.end(1)))
        out.extend(uses or [TextRequest(m.start(), m.end(), -1, -1)])
    return tuple(out)


def text_requests(text: str) -> list[TextRequest]:
    """Requests to the embeddings endpoint in a non-Python file, each with its payload object when the
    text shows which one it is (cached: JM201-JM203 all ask about the same file)."""
    return list(_text_requests(text))


def _string_around(text: str, start: int, end: int) -> tuple[int, int] | None:
    """(opening quote, closing quote) of the one-line string literal holding text[start:end], if any."""
    line_start = text.rfind("\n", max(0, start - 300), start) + 1
    for i in range(start - 1, max(line_start, start - 300) - 1, -1):
        if text[i] in "\"'`":
            close = text.find(text[i], end, end + 300)
            return (i, close) if close >= 0 else None
        if text[i] in " \t,;(){}":
            return None
    return None


def _skip_back(text: str, i: int) -> int:
    i -= 1
    while i >= 0 and text[i] in " \t\r\n":
        i -= 1
    return i


def _call_request(text: str, url_start: int, url_end: int, after: int) -> TextRequest:
    """The request whose URL argument ends at `after`: the payload is the next argument, or the body/json/
    data entry of an options object there; names are followed to their declaration by scope."""
    i = after
    while i < len(text) and text[i] in " \t\r\n":
        i += 1
    if i >= len(text) or text[i] != ",":
        return TextRequest(url_start, url_end, -1, -1)
    # Python-like snippets in docs: requests.post("…", json={…}); the option name is skipped.
    kw = re.compile(r"\s*(?:json|data|content)\s*=\s*").match(text, i + 1)
    start, certain = _payload_at(text, kw.end() if kw else i + 1, options=not kw, depth=0)
    end = balanced_end(text, start) if start >= 0 else -1
    if end < 0:
        return TextRequest(url_start, url_end, -1, -1)
    return TextRequest(url_start, url_end, start, end, certain)


def _payload_at(text: str, i: int, *, options: bool, depth: int) -> tuple[int, bool]:
    """Offset of the payload object the expression at `i` evaluates to (-1: not visible), and whether the
    names followed on the way resolved for certain."""
    from jmigrate.scan import jsscope

    while i < len(text) and text[i] in " \t\r\n":
        i += 1
    if i >= len(text) or depth > 4:
        return -1, False
    if text[i] == "{":
        end = balanced_end(text, i)
        if options and end > 0:  # an options object: the payload is its body/json/data entry
            for key, value_at in _top_level_entries(text, i, end):
                if key in _BODY_KEYS:
                    return _payload_at(text, value_at, options=False, depth=depth + 1)
        return i, True
    if text.startswith("JSON.stringify(", i):
        return _payload_at(text, i + len("JSON.stringify("), options=False, depth=depth + 1)
    ident = _IDENT.match(text, i)
    if ident:
        value_at, certain = jsscope.resolve(text, ident.group(), i)
        if value_at < 0:
            return -1, False
        start, inner = _payload_at(text, value_at, options=options, depth=depth + 1)
        return start, certain and inner
    return -1, False


def _top_level_entries(text: str, start: int, end: int) -> list[tuple[str, int]]:
    """(key, value offset) of an object literal's own entries; a shorthand `{ body }` gives the key's own
    offset as its value (the name is the value)."""
    from jmigrate.scan import jsscope

    b = jsscope.blocks(text)
    own = b.innermost(start + 1)
    out: list[tuple[str, int]] = []
    for m in _ENTRY.finditer(text[start:end]):
        at = start + m.start()
        if b.innermost(at) != own:
            continue
        if m.group(2):
            out.append((m.group(2), start + m.end()))
        else:
            out.append((m.group(3), start + m.start(3)))
    return out


def delete_entry_span(
    text: str, key_start: int, value_end: int, body_start: int, body_end: int
) -> tuple[int, int]:
    """Span that removes `key: value` from a JS/JSON object together with one separating comma."""
    j = value_end
    while j < body_end and text[j] in " \t":
        j += 1
    if j < body_end and text[j] == ",":
        j += 1
        while j < body_end and text[j] in " \t":
            j += 1
        return key_start, j
    i = key_start
    while i > body_start + 1 and text[i - 1] in " \t\r\n":
        i -= 1
    if text[i - 1] == ",":
        return i - 1, value_end
    return key_start, value_end
