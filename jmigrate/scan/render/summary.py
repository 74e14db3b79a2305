"""What every report shows first: the migration checklist and the counts, computed once for all formats."""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass
from typing import Any

from jmigrate.models import LICENCE_V3_NOTE, MATRYOSHKA_DIMS, MODELS, ORDERING_RULE, TASKS, V3
from jmigrate.scan.finding import Applicability, Finding, Mention, PlanResult


def sorted_findings(result: PlanResult) -> list[Finding]:
    return sorted(result.findings, key=lambda f: (f.path, f.line, f.column, f.code))


def migration_checklist(result: PlanResult) -> list[str]:
    """The steps of a v2 -> v3 migration that apply to what was found, in order, then any notes the rules
    added (without repeats). A step no finding calls for is left out (issue 12: a checklist of everything
    reads as noise)."""
    v3 = MODELS[V3]
    # Widths a v2/v1 schema may already have that v3 can produce through Matryoshka truncation.
    keep = sorted(
        {
            m.dims
            for m in MODELS.values()
            if m.is_legacy and m.replacement and m.dims in MATRYOSHKA_DIMS and m.dims != v3.dims
        }
    )
    keep_text = " or ".join(f"dimensions={d}" for d in keep)
    code_models = [m.name for m in MODELS.values() if m.is_legacy and m.replacement is None]
    query, passage = TASKS["retrieval.query"], TASKS["retrieval.passage"]
    codes = {f.code for f in result.findings}
    moving = codes - {"JM104"}  # anything but the code model, which stays
    items = []
    if moving or legacy_stores(result):
        items.append(ORDERING_RULE)
    if moving:
        items.append(
            f"Pass a task on every v3 call: {passage.name} for {passage.use}, {query.name} for {query.use}; "
            "one encoder instance cannot serve both sides of asymmetric retrieval."
        )
    widths = any(c.startswith("JM4") for c in codes) or any(
        "keep_schema" in (f.recommendation.get("dimensions") or {}) for f in result.findings
    )
    if widths or legacy_stores(result):
        items.append(
            f"v3 returns {v3.dims} dimensions: resize vector columns and collections to {v3.dims}, or "
            f"request {keep_text} to keep the current schema (the vectors still change, so re-index anyway)."
        )
    if codes & {"JM202", "JM203", "JM204"}:
        items.append(
            "Drop `normalized` from API payloads (v3 vectors are normalised) and never send OpenAI's "
            "`encoding_format` to the Jina API."
        )
    if any(f.recommendation.get("licence") for f in result.findings):
        items.append(LICENCE_V3_NOTE)
    if code_models and "JM104" in codes:
        items.append(f"Keep {', '.join(code_models)} for code corpora: {MODELS[code_models[0]].note}.")
    for note in result.notes:
        if note not in items:
            items.append(note)
    return items


@dataclass(frozen=True)
class Summary:
    files_scanned: int
    bytes_scanned: int
    files_with_findings: int
    findings: int
    by_applicability: dict[str, int]
    by_code: dict[str, int]
    rule_names: dict[str, str]
    skipped: int
    mentions: int = 0

    @property
    def fixable(self) -> int:
        return self.by_applicability[Applicability.SAFE.value]


def summarize(result: PlanResult) -> Summary:
    by_app = Counter(f.applicability.value for f in result.findings)
    by_code = Counter(f.code for f in result.findings)
    return Summary(
        files_scanned=result.files_scanned,
        bytes_scanned=result.bytes_scanned,
        files_with_findings=len({f.path for f in result.findings}),
        findings=len(result.findings),
        by_applicability={a.value: by_app.get(a.value, 0) for a in Applicability},
        by_code=dict(sorted(by_code.items())),
        rule_names={f.code: f.rule for f in sorted_findings(result)},
        skipped=len(result.skipped),
        mentions=len(result.mentions),
    )


def mentions_line(result: PlanResult) -> str:
    """The one line a report gives to mentions (models named where nothing runs them)."""
    n = len(result.mentions)
    generations = {MODELS[m.model].generation for m in result.mentions if m.model in MODELS}
    models = "v2 models" if generations <= {"v2"} else "v1/v2 models"
    return f"{n} mention{'s' * (n != 1)} of {models} in prose, comments and logs (not code)"


def mention_text(m: Mention) -> str:
    cell = f" (cell {m.cell})" if m.cell is not None else ""
    return f"{m.path}:{m.line}:{m.column}{cell}  {m.kind}  {m.model}"


def _value(v: Any) -> str:
    if isinstance(v, dict):
        return " / ".join(f"{k} {_value(x)}" for k, x in v.items())
    if isinstance(v, (list, tuple)):
        return ", ".join(map(_value, v))
    return str(v)


def recommendation_text(finding: Finding) -> str:
    """One line: the v3 settings recommended for a call site, model and task (with its reason) first."""
    rec = {k: v for k, v in finding.recommendation.items() if v not in (None, "", [], {})}
    parts = []
    if "model" in rec:
        parts.append(f"model={_value(rec.pop('model'))}")
    task, reason = rec.pop("task", None), rec.pop("task_reason", None)
    if task:
        parts.append(f"task={_value(task)}" + (f" ({reason})" if reason else ""))
    elif reason:
        parts.append(str(reason))
    parts.extend(f"{k}={_value(v)}" for k, v in rec.items())
    return "; ".join(parts)


def human_size(n: int) -> str:
    for unit in ("B", "KB", "MB"):
        if n < 1000:
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1000  # type: ignore[assignment]
    return f"{n:.1f} GB"


def location_text(finding: Finding) -> str:
    loc = f"{finding.line}:{finding.column}"
    if finding.cell is not None:
        loc += f" (cell {finding.cell}" + (f", line {finding.cell_line})" if finding.cell_line else ")")
    return loc


def legacy_stores(result: PlanResult) -> list[dict[str, Any]]:
    """Stores that likely hold v1/v2 vectors to re-embed (not ones that may already be v3)."""
    out = []
    for store in result.stores:
        likely = [MODELS[m] for m in store.get("likely_models", []) if m in MODELS]
        if any(m.is_legacy and m.replacement for m in likely) and not any(m.name == V3 for m in likely):
            out.append(store)
    return out


def store_lines(store: dict[str, Any]) -> list[str]:
    """Human lines for one store found on disk (the same words in text and markdown reports)."""
    from jmigrate.scan.stores import StoreInfo

    return StoreInfo(**store).describe()
