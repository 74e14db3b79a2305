"""Just enough JavaScript/TypeScript scoping for the text rules: which `{ ... }` block an offset is in, and
which declaration a name used at an offset refers to, with a flag saying whether that is certain.

No parser: the text is tokenised for strings, template literals and comments (so braces inside them do
not count) and names are resolved by block containment. Every approximation errs towards "not certain",
and an uncertain payload gets manual findings, never an automatic edit.
"""

from __future__ import annotations

import bisect
import re
from dataclasses import dataclass

from jmigrate.scan.memo import per_text

# In code: comments, quoted strings (up to the end of the line when unterminated), a template literal's
# opening backtick, braces. Everything else is skipped by the regex engine.
_CODE = re.compile(r"//[^\n]*|/\*.*?(?:\*/|\Z)|'(?:[^'\\\n]|\\.)*'?|\"(?:[^\"\\\n]|\\.)*\"?|`|\{|\}", re.S)
# Inside a template literal: an escape, the closing backtick, or a `${` substitution.
_TEMPLATE = re.compile(r"\\.|`|\$\{", re.S)


@dataclass(frozen=True)
class Blocks:
    """The `{ ... }` pairs of a text (object literals included), sorted by their opening offset."""

    opens: list[int]
    closes: list[int]
    parent: list[int]  # index of the enclosing pair, -1 at top level

    def innermost(self, offset: int) -> int:
        """Index of the innermost pair strictly containing `offset`; -1 at top level."""
        i = bisect.bisect_left(self.opens, offset) - 1
        while i >= 0 and self.closes[i] <= offset:
            i = self.parent[i]
        return i

    def contains(self, outer: int, inner: int) -> bool:
        """Is pair `inner` (or top level, -1) inside pair `outer` (-1: the whole text)?"""
        while inner != -1 and inner != outer:
            inner = self.parent[inner]
        return inner == outer


@per_text()
def blocks(text: str) -> Blocks:
    """One linear pass over `text` (cached: every rule asks about the same file)."""
    opens: list[int] = []
    closes: list[int] = []
    parent: list[int] = []
    stack: list[int] = []  # pair indexes; -2 marks a template substitution `${`
    pos, n = 0, len(text)
    in_template = False
    while pos < n:
        if in_template:
            m = _TEMPLATE.search(text, pos)
            if m is None:
                break
            pos = m.end()
            if m.group() == "`":
                in_template = False
            elif m.group() == "${":
                stack.append(-2)
                in_template = False
            continue
        m = _CODE.search(text, pos)
        if m is None:
            break
        pos, tok = m.end(), m.group()
        if tok == "{":
            enclosing = next((s for s in reversed(stack) if s >= 0), -1)
            opens.append(m.start())
            closes.append(n)  # until its "}" is seen
            parent.append(enclosing)
            stack.append(len(opens) - 1)
        elif tok == "}":
            if not stack:
                continue
            top = stack.pop()
            if top == -2:
                in_template = True
            else:
                closes[top] = m.start()
        elif tok == "`":
            in_template = True
    return Blocks(opens, closes, parent)


@dataclass(frozen=True)
class Binding:
    kind: str  # "let" (also const, class fields), "var", "assign", "param"
    at: int  # offset of the name
    value_at: int  # offset of the initialiser after `=` (-1: none, e.g. a parameter)
    block: int  # the pair it is scoped to (-1: top level)


_PARAMS = re.compile(r"\(([^()]*)\)\s*(?::\s*[\w$<>\[\]., |]+\s*)?(=>|\{)")


_DECL = re.compile(r"\b(const|let|var)\s+([A-Za-z_$][\w$]*)\s*(?::[^=;\n]*)?(=(?![=>])\s*)?")
_ASSIGN = re.compile(r"(?<![\w$.])([A-Za-z_$][\w$]*)\s*(=(?![=>])\s*|=>)")
_WORD = re.compile(r"[A-Za-z_$][\w$]*")


@per_text()
def _binding_index(text: str) -> dict[str, tuple[Binding, ...]]:
    """Every declaration, assignment and parameter of every name, in one pass over the text (looking a
    name up is then a dictionary access, however many names a rule asks about)."""
    b = blocks(text)
    found: dict[str, list[Binding]] = {}
    seen: set[int] = set()
    for m in _DECL.finditer(text):
        at = m.start(2)
        kind = "var" if m.group(1) == "var" else "let"
        value_at = m.end() if m.group(3) else -1
        found.setdefault(m.group(2), []).append(Binding(kind, at, value_at, b.innermost(at)))
        seen.add(at)
    for m in _ASSIGN.finditer(text):
        if m.start() in seen:
            continue
        kind = "param" if m.group(2) == "=>" else "assign"  # `name => ...`: an arrow function's parameter
        found.setdefault(m.group(1), []).append(
            Binding(kind, m.start(), -1 if kind == "param" else m.end(), b.innermost(m.start()))
        )
    # Parameters: the words in `( ... )` followed by `{` or `=>` (also matches `if (name) {`: harmless, since
    # one more binding only makes a resolution uncertain).
    for m in _PARAMS.finditer(text):
        body = m.end() - 1 if m.group(2) == "{" else m.start()
        block = b.innermost(body + 1)
        for w in set(_WORD.findall(m.group(1))):
            found.setdefault(w, []).append(Binding("param", m.start(1), -1, block))
    return {k: tuple(sorted(v, key=lambda x: x.at)) for k, v in found.items()}


def bindings(text: str, name: str) -> tuple[Binding, ...]:
    """Every place `name` is declared, assigned or taken as a parameter."""
    return _binding_index(text).get(name, ())


_NOT_FUNCTIONS = frozenset({"if", "for", "while", "switch", "catch", "with"})


def opening_paren(text: str, close: int, reach: int = 2000) -> int | None:
    """Where the `(` matching the `)` at `close` is, looking back at most `reach` characters (bounded, so
    a file of unbalanced parentheses stays linear); None when it is not found."""
    depth, j = 0, close
    while j >= max(0, close - reach):
        depth += {")": 1, "(": -1}.get(text[j], 0)
        if depth == 0:
            return j
        j -= 1
    return None


@per_text()
def function_blocks(text: str) -> tuple[bool, ...]:
    """For each pair: is it the body of a function, arrow function or method (what `var` is scoped to)?
    Unsure cases say no, which widens a `var`'s scope: more bindings seen, never fewer."""
    b = blocks(text)
    out = []
    for at in b.opens:
        i = at - 1
        while i >= 0 and text[i] in " \t\r\n":
            i -= 1
        if i >= 1 and text[i - 1 : i + 1] == "=>":
            out.append(True)
            continue
        if i < 0 or text[i] != ")":
            out.append(False)
            continue
        j = opening_paren(text, i)
        word = re.search(r"([\w$]+)\s*\Z", text[max(0, j - 100) : j]) if j is not None else None
        out.append(bool(word) and word.group(1) not in _NOT_FUNCTIONS)  # type: ignore[union-attr]
    return tuple(out)


def _function_of(text: str, block: int) -> int:
    """The innermost function body holding pair `block` (-1: the top level)."""
    b, fn = blocks(text), function_blocks(text)
    while block != -1 and not fn[block]:
        block = b.parent[block]
    return block


def resolve(text: str, name: str, use_at: int) -> tuple[int, bool]:
    """(offset of the value `name` holds at `use_at`, certain). -1 when no declaration is visible.

    Certain only when exactly one binding can reach the use: one `const`/`let`/`var` with an initialiser,
    declared before the use in a block that contains it, and no assignment or parameter of that name
    in a block that contains the use or is inside the declaration's block.
    """
    b = blocks(text)
    use_block = b.innermost(use_at)
    relevant: list[Binding] = []
    use_fn = _function_of(text, use_block)
    for x in bindings(text, name):
        if x.kind in ("let", "param"):
            ok = b.contains(x.block, use_block)
        else:
            # var is function-scoped (hoisted), and an assignment changes whatever binding it sees: either
            # one's function holding the other's counts.
            fn = _function_of(text, x.block)
            ok = b.contains(fn, use_block) or b.contains(use_fn, x.block)
        if ok:
            relevant.append(x)
    decls = [x for x in relevant if x.kind in ("let", "var") and x.value_at >= 0 and x.at < use_at]
    if not decls:
        return -1, False
    # The innermost, latest declaration before the use is the best guess when it is not certain.
    best = max(decls, key=lambda x: (_depth(b, x.block), x.at))
    return best.value_at, len(relevant) == 1


def _depth(b: Blocks, i: int) -> int:
    d = 0
    while i != -1:
        i, d = b.parent[i], d + 1
    return d
