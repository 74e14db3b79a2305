"""What a rule sees: one decoded file (or notebook cell), its parsed Python if any, and project facts."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from jmigrate.models import MODELS, V3
from jmigrate.scan.finding import Applicability, Edit, Finding, Mention
from jmigrate.scan.text import PARTIAL_V2, legacy_model_mentions, line_of, model_matches
from jmigrate.scan.walk import Source

if TYPE_CHECKING:
    from jmigrate.scan.jsmodules import JsProject
    from jmigrate.scan.notebook import CellMap
    from jmigrate.scan.prose import Regions
    from jmigrate.scan.python import PyModule
    from jmigrate.scan.tasks import TaskGuess


@dataclass
class ProjectFacts:
    """Facts gathered over the whole tree before project-level rules run."""

    # Legacy models (being replaced) named anywhere in the project, by name.
    legacy_models: set[str] = field(default_factory=set)
    # jina-embeddings-v3 is named somewhere (after `apply` renamed the models, say), and the widths some
    # file requests from it with `dimensions` (an explicit 768 keeps a 768 schema on purpose).
    v3_named: bool = False
    root: str = ""  # the scanned folder: where imports between the project's modules are resolved
    # The JS/TS modules read, followed through their imports (scan/jsmodules.py); None: no JS/TS with Jina.
    js: JsProject | None = None
    v3_dimensions: set[int] = field(default_factory=set)
    # Where env files are looked for (scan/envfiles.py): the scanned folder; "" when one file is planned.
    env_root: str = ""
    # Embedding helpers (functions that embed their argument through a v2 model), by (path, name, line):
    # the calls of each anywhere in the repository with the side each serves ("app/ingest.py:12", guess),
    # and how to re-word the helper's own findings once every call is known (plan.py, after the walk).
    helper_uses: dict[tuple[str, str, int], list[tuple[str, TaskGuess]]] = field(default_factory=dict)
    helper_findings: dict[tuple[str, str, int], list[Callable[[TaskGuess], None]]] = field(
        default_factory=dict
    )

    @property
    def legacy_dims(self) -> set[int]:
        """Widths a vector schema of this project must not keep: those of its legacy models and, once it
        uses v3, the old v2 widths it does not request from v3 (a 768 schema receiving 1024-d vectors)."""
        dims = replaced_dims(self.legacy_models)
        if self.v3_named:
            dims |= replaced_dims({m for m in MODELS if MODELS[m].generation == "v2"}) - self.v3_dimensions
        return dims


def replaced_dims(models: set[str]) -> set[int]:
    """Widths of those models that are replaced (not base-code) and differ from v3's default width."""
    v3 = MODELS[V3].dims
    return {MODELS[m].dims for m in models if MODELS[m].replacement and MODELS[m].dims != v3}


@dataclass
class FileContext:
    src: Source
    project: ProjectFacts = field(default_factory=ProjectFacts)
    cell_map: CellMap | None = None  # set for notebook cells: positions/edits map back to the JSON
    _py: PyModule | None = None
    _parsed: bool = False
    syntax_error: str | None = None
    _models: set[str] | None = None
    reported: int = 0  # findings built from this context
    # Legacy models of the repository modules this file imports a v2 name from (`from config import MODEL`
    # in a file that never says "jina"): its widths are tied to them as if it named them.
    imported_models: set[str] = field(default_factory=set)
    # Not-code spans (prose, comments, docstrings, logs), worked out when the first finding asks.
    not_code: Regions | None = None
    # Findings a rule built on text that is not code (by id): `plan` reports them as `mentions` instead.
    not_code_findings: set[int] = field(default_factory=set)
    mentions: list[Mention] = field(default_factory=list)

    @property
    def language(self) -> str:
        return self.src.language

    @property
    def py(self) -> PyModule | None:
        """The parsed module (Python files and notebook cells); None if it does not parse."""
        if not self._parsed:
            self._parsed = True
            if self.language == "python":
                from jmigrate.scan.python import PyModule

                try:
                    if self.cell_map is not None:
                        from jmigrate.scan.notebook import mask_magics

                        self._py = PyModule.parse(self.src, mask_magics(self.src.text))
                    else:
                        self._py = PyModule.parse(self.src)
                    # Read by the data flow to follow `from .config import MODEL` into the repository.
                    self._py.__dict__["project_root"] = self.project.root
                    self._py.__dict__["env_root"] = self.project.env_root
                except SyntaxError as e:
                    self.syntax_error = f"syntax error at line {e.lineno}: {e.msg}"
                except (ValueError, RecursionError) as e:  # NUL bytes, absurd nesting
                    self.syntax_error = f"cannot parse ({type(e).__name__})"
        return self._py

    @property
    def models(self) -> set[str]:
        """Legacy (v1/v2) model names mentioned anywhere in this file's text."""
        if self._models is None:
            self._models = {m for m, _, _ in legacy_model_mentions(self.src.text)}
        return self._models

    @property
    def legacy_dims(self) -> set[int]:
        """Widths of this file's legacy models that v3 does not keep by default (those it names, and those of
        the repository modules it imports a v2 name from: scan/imports.py)."""
        return replaced_dims(self.models | self.imported_models)

    def finding(
        self,
        start: int,
        end: int,
        message: str,
        fix_title: str,
        applicability: Applicability,
        edits: Sequence[Edit] = (),
        recommendation: dict[str, Any] | None = None,
    ) -> Finding:
        """Build a finding from character offsets into `src.text` (cell text for notebooks). The rule's
        code and name are stamped by the registry on what its check yields (a rule never repeats them)."""
        from jmigrate.scan.prose import kind_at

        kind = kind_at(self, start)
        if applicability is not Applicability.MANUAL and not edits:
            applicability = Applicability.MANUAL  # nothing to apply: a person decides
        if applicability is Applicability.MANUAL:
            edits = ()
        line, column = self.src.position(start)
        end_line, end_column = self.src.position(end)
        cell = cell_line = None
        edit_list = list(edits)
        if self.cell_map is not None:
            cell, cell_line = self.cell_map.locate(self.src.text, start)
            line, column = self.cell_map.position(start)
            end_line, end_column = self.cell_map.position(end)
            mapped = self.cell_map.map_edits(edit_list)
            if mapped is None and edit_list:
                # An edit that cannot be expressed exactly inside the notebook's JSON strings.
                applicability, mapped = Applicability.MANUAL, []
                fix_title += " (edit this notebook cell by hand)"
            edit_list = mapped or []
        finding = Finding(
            code="",
            rule="",
            path=self.src.path,
            line=line,
            column=column,
            end_line=end_line,
            end_column=end_column,
            message=message,
            fix_title=fix_title,
            applicability=applicability,
            edits=edit_list,
            recommendation=recommendation or {},
            cell=cell,
            cell_line=cell_line,
        )
        if kind is None:
            self.reported += 1
        else:
            self.not_code_findings.add(id(finding))
            self.mentions.extend(self.mentions_at(start, end, kind))
        return finding

    def mentions_at(self, start: int, end: int, kind: str) -> list[Mention]:
        """The legacy models named in text[start:end] (a partial v2 id counts), as mentions of `kind`."""
        text = self.src.text
        lo, hi = line_of(text, start)
        found = [
            (lo + m.start, m.model.name)
            for m in model_matches(text[lo:hi])
            if lo + m.start < end and lo + m.end > start
        ]
        if not found:
            partial = PARTIAL_V2.search(text, start, max(end, start + 19))
            if partial is not None:
                found = [(partial.start(), text[partial.start() : partial.end()] + "*")]
        out = []
        for at, name in found:
            if self.cell_map is not None:
                line, column = self.cell_map.position(at)
                cell = self.cell_map.locate(text, at)[0]
            else:
                (line, column), cell = self.src.position(at), None
            out.append(Mention(self.src.path, line, column, kind, name, cell))
        return out


def findings_sorted(findings: Iterable[Finding]) -> list[Finding]:
    return sorted(findings, key=lambda f: (f.path, f.line, f.column, f.code))
