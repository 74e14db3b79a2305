"""docs/rules.md documents exactly the registered rules: what each flags, why, an example, the fix."""

from __future__ import annotations

import re
from pathlib import Path

from jmigrate.rules.registry import all_rules

DOC = Path(__file__).resolve().parent.parent / "docs" / "rules.md"


def sections() -> dict[str, str]:
    text = DOC.read_text(encoding="utf-8")
    heads = list(re.finditer(r"^### (JM\d{3}) (\S+)$", text, re.M))
    out = {}
    for i, m in enumerate(heads):
        end = heads[i + 1].start() if i + 1 < len(heads) else text.find("\n## ", m.end())
        out[f"{m.group(1)} {m.group(2)}"] = text[m.end() : end]
    return out


def test_every_registered_rule_is_documented_and_nothing_else() -> None:
    assert list(sections()) == [f"{r.code} {r.name}" for r in all_rules()]


def test_each_section_says_why_example_fix_and_applicability() -> None:
    docs = sections()
    for r in all_rules():
        body = docs[f"{r.code} {r.name}"]
        for label in ("**Why:**", "**Example:**", "**Fix:**", f"**Applicability:** {r.applicability.value}"):
            assert label in body, (r.code, label)
        assert r.example in body and r.summary[1:] in body
