"""The rule registry: a `Rule` record per code, filled by the `@rule` decorator in each rule module."""

from __future__ import annotations

import importlib
import pkgutil
import re
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from jmigrate.scan.finding import Applicability, Finding

if TYPE_CHECKING:
    from jmigrate.scan.context import FileContext

Check = Callable[["FileContext"], Iterable[Finding]]

_CODE = re.compile(r"JM[1-9]\d\d")
_NAME = re.compile(r"[a-z0-9]+(-[a-z0-9]+)*")


@dataclass(frozen=True)
class Rule:
    code: str  # "JM101": JM + 3 digits, grouped by hundreds (1 model names, 2 HTTP, 3 integrations, ...)
    name: str  # kebab-case, names the pattern flagged ("v2-model-name"), not the remedy
    summary: str  # one line, for `jmigrate rules`
    explanation: str  # why it matters (docs/rules.md)
    example: str  # a line that fires
    fix: str  # what the fix does, for the docs
    applicability: Applicability  # the usual applicability of its findings
    languages: frozenset[str]  # file kinds it looks at ("python", "js", ... or "*" for all text)
    check: Check
    # Rules that need the whole project first (dimensions tied to a v2 model) run after the others.
    project_level: bool = False

    def applies_to(self, language: str) -> bool:
        return "*" in self.languages or language in self.languages


_RULES: dict[str, Rule] = {}


def rule(
    *,
    code: str,
    name: str,
    summary: str,
    explanation: str,
    example: str,
    fix: str,
    applicability: Applicability,
    languages: Iterable[str],
    project_level: bool = False,
) -> Callable[[Check], Check]:
    """Register the decorated check function as rule `code`."""

    def register(check: Check) -> Check:
        if not _CODE.fullmatch(code) or not _NAME.fullmatch(name):
            raise ValueError(f"bad rule code or name: {code} {name}")
        if code in _RULES:
            raise ValueError(f"rule {code} registered twice")
        def stamped(ctx: FileContext) -> Iterator[Finding]:
            for finding in check(ctx):
                finding.code, finding.rule = code, name
                yield finding

        _RULES[code] = Rule(
            code,
            name,
            summary,
            explanation,
            example,
            fix,
            applicability,
            frozenset(languages),
            stamped,
            project_level,
        )
        return check

    return register


_loaded = False


def _load_all() -> None:
    # Once per process: `get_rule` runs for every finding, and listing the package each time was a tenth
    # of `plan` on a large tree.
    global _loaded
    if _loaded:
        return
    _loaded = True
    # The rule modules are found in this folder by name (a plugin registry: the rules import the registry,
    # never the other way round).
    for info in pkgutil.iter_modules([str(Path(__file__).parent)]):
        if re.fullmatch(r"jm\d{3}_\w+", info.name):
            importlib.import_module(f"jmigrate.rules.{info.name}")


def all_rules() -> list[Rule]:
    """Every registered rule, sorted by code (importing the rule modules on first use)."""
    _load_all()
    return [_RULES[c] for c in sorted(_RULES)]


def get_rule(code: str) -> Rule:
    _load_all()
    return _RULES[code]


def select_rules(select: Iterable[str] = (), ignore: Iterable[str] = ()) -> list[Rule]:
    """Rules chosen by code or prefix ("JM1", "JM101"); empty `select` means all. Unknown codes raise."""
    from jmigrate.errors import UsageError

    rules = all_rules()
    select, ignore = (
        [s.strip().upper() for s in select if s.strip()],
        [s.strip().upper() for s in ignore if s.strip()],
    )
    for prefix in (*select, *ignore):
        if not any(r.code.startswith(prefix) for r in rules):
            raise UsageError(f"no rule matches {prefix!r}; see `jmigrate rules`")
    return [
        r
        for r in rules
        if (not select or any(r.code.startswith(p) for p in select))
        and not any(r.code.startswith(p) for p in ignore)
    ]
