"""The data `plan` produces: findings (what is tied to v2 and what to do) and the edits that fix them."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from enum import Enum
from typing import Any


class Applicability(str, Enum):
    SAFE = "safe"  # applied by `apply` / shown by `plan --diff`
    UNSAFE = "unsafe"  # changes behaviour; applied only with --unsafe
    MANUAL = "manual"  # no automatic edit: a person must decide


@dataclass(frozen=True)
class Edit:
    """Replace the text between two positions of one file.

    Offsets are character offsets into the file's decoded text (as stored: CRLF kept), so edits can
    be applied back to front without re-parsing. `apply` re-checks the file text before writing.
    """

    start: int
    end: int
    replacement: str


@dataclass
class Finding:
    code: str  # "JM101"
    rule: str  # kebab-case name of the pattern flagged, e.g. "v2-model-name"
    path: str  # relative to the scanned root, POSIX separators
    line: int  # 1-based, in the file as stored
    column: int  # 1-based, in characters
    end_line: int
    end_column: int
    message: str  # what is wrong
    fix_title: str  # what to do
    applicability: Applicability
    edits: list[Edit] = field(default_factory=list)
    # Recommended v3 settings for a call site: {"model", "task", "task_reason", "dimensions", ...}
    recommendation: dict[str, Any] = field(default_factory=dict)
    cell: int | None = None  # notebooks: 1-based index of the cell among all cells
    cell_line: int | None = None  # 1-based line inside that cell

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["applicability"] = self.applicability.value
        return d


@dataclass(frozen=True)
class Mention:
    """A legacy model named where nothing runs it: prose, a comment, a docstring or help text, captured
    output. Not a finding: reported apart, never rewritten, never a reason for exit status 1."""

    path: str
    line: int  # 1-based, in the file as stored (notebooks: the line of the .ipynb)
    column: int
    kind: str  # "prose" | "comment" | "docstring" | "log"
    model: str  # the model named, e.g. "jina-embeddings-v2-base-en"
    cell: int | None = None  # notebooks: 1-based index of the cell


@dataclass(frozen=True)
class SkippedFile:
    """A file `plan` could not read or parse: reported, never a crash."""

    path: str
    reason: str  # one line: "binary", "too large (12.3 MB > 2 MB)", "syntax error at line 4", ...


@dataclass
class PlanResult:
    """Everything `jmigrate.plan()` returns; the CLI renders it, `apply` consumes it."""

    root: str  # absolute path that was scanned
    findings: list[Finding]
    skipped: list[SkippedFile]
    files_scanned: int
    bytes_scanned: int
    # sha256 of the bytes of every file that has findings, so `apply` can refuse a file changed since.
    file_hashes: dict[str, str] = field(default_factory=dict)
    # Migration-wide notes (ordering rule, licence note, ...) shown once at the top of a report.
    notes: list[str] = field(default_factory=list)
    # Encoding each file with findings was decoded with ("utf-8", "utf-8-sig" when it has a BOM, "cp1252",
    # a PEP 263 declaration...): edit offsets index that decoded text; encode with it again when writing.
    encodings: dict[str, str] = field(default_factory=dict)
    # Vector stores found on disk (`jmigrate.scan.stores.StoreInfo.to_dict()`, paths relative to root):
    # rows, dims, likely model and the `jmigrate reindex` command that re-embeds each.
    stores: list[dict[str, Any]] = field(default_factory=list)
    # Legacy models named in prose, comments, docstrings and logs: not code, so not findings (issue 12).
    mentions: list[Mention] = field(default_factory=list)
