"""The `plan()` library call: walk a tree, run the selected rules on every relevant file, return findings.

Files are read as bytes and only decoded and parsed when a cheap byte search says a rule could fire, which
keeps `plan` close to `grep` speed on trees that have nothing to do with Jina.
"""

from __future__ import annotations

import hashlib
import os
import re
from collections.abc import Iterable
from pathlib import Path
from typing import TYPE_CHECKING, Any

from jmigrate.errors import InputError
from jmigrate.models import LICENCE_V3_NOTE, ORDERING_RULE, V3
from jmigrate.rules.registry import Rule, select_rules
from jmigrate.scan.context import FileContext, ProjectFacts, findings_sorted
from jmigrate.scan.finding import Applicability, Finding, Mention, PlanResult, SkippedFile
from jmigrate.scan.imports import ImportIndex

if TYPE_CHECKING:
    from jmigrate.rules._crossmod import CrossModule
from jmigrate.scan.notebook import NotebookError, notebook_units
from jmigrate.scan.own_outputs import own_output
from jmigrate.scan.prefilter import legacy_widths, sniff_tree, width_in_context, width_number
from jmigrate.scan.tasks import helper_guess
from jmigrate.scan.walk import DEFAULT_MAX_FILE_SIZE, DecodeError, RawFile, Source, decode_bytes

# `dimensions=768`, `"dimensions": 768`, `dimensions: 768`: a width requested from v3 on purpose.
_DIMENSIONS = re.compile(r"""(?i)\bdimensions["']?\s*[=:]\s*["']?(\d{2,5})\b""")

_JS_HOPS = 3  # modules between a file that names Jina and the farthest importer followed


def plan(
    path: str | Path,
    *,
    select: Iterable[str] = (),
    ignore: Iterable[str] = (),
    max_file_size: int = DEFAULT_MAX_FILE_SIZE,
    stores: bool = True,
    price_per_mtok: float | None = None,
) -> PlanResult:
    """Find every place under `path` tied to Jina Embeddings v1/v2 and what to do about it.

    `select` / `ignore` take rule codes or prefixes ("JM1", "JM101"). With `stores`, vector stores on disk
    are reported too (headers only; `price_per_mtok` prices their re-embedding). Nothing in the tree is
    imported or executed. Raises InputError when `path` does not exist, UsageError for an unknown rule code.
    """
    root = Path(path)
    if not root.exists():
        raise InputError(f"no such file or folder: {path}")
    root = root.resolve()
    rules = select_rules(select, ignore)
    file_rules = [r for r in rules if not r.project_level]
    project_rules = [r for r in rules if r.project_level]
    project = ProjectFacts(root=str(root if root.is_dir() else root.parent))
    project.env_root = str(root) if root.is_dir() else ""

    findings: list[Finding] = []
    mentions: list[Mention] = []
    skipped: list[SkippedFile] = []
    hashes: dict[str, str] = {}
    encodings: dict[str, str] = {}
    # Files that may hold a vector width; judged once the project's legacy models are known.
    deferred: list[tuple[RawFile, list[FileContext] | None]] = []
    # Python files that do not say "jina": parsed after the walk only if they import a name of a module
    # that defines a v2 model (scan/imports.py).
    exporting = ImportIndex()
    unparsed: list[RawFile] = []
    # One embedder used across modules (JM501 and the task advice follow the imports: rules/_crossmod.py).
    from jmigrate.rules._crossmod import CrossModule

    cross = CrossModule(project.root)
    kept: dict[str, tuple[RawFile, list[FileContext]]] = {}
    # JS/TS: files naming Jina wait until the walk is over (a helper's findings depend on its callers in
    # other modules); the others are read again only if they import from those (scan/jsmodules.py).
    js_paths: set[str] = set()
    js_waiting: list[tuple[RawFile, list[FileContext]]] = []
    js_stubs: list[RawFile] = []
    files = size = 0

    for sniffed in sniff_tree(root, max_file_size, legacy_widths() if project_rules else frozenset()):
        if isinstance(sniffed, SkippedFile):
            skipped.append(sniffed)
            continue
        files += 1
        size += sniffed.size
        item = sniffed.raw()
        if item.language == "js":
            js_paths.add(item.path)
        if sniffed.data is None:
            # Names no model: only a width next to a vector/schema key can make a finding here. Keep the
            # name, not the bytes: the second test below drops most without a second read.
            if sniffed.width_hint:
                deferred.append((item, None))
            if item.language == "python":
                unparsed.append(item)
            if item.language == "js":
                js_stubs.append(item)
            continue
        kind = own_output(sniffed.data)
        if kind is not None:  # a report of an earlier run: never a finding, never rewritten by apply
            skipped.append(SkippedFile(item.path, f"jmigrate output ({kind})"))
            continue
        dims = sniffed.width_hint
        contexts = _contexts(item, skipped)
        if not contexts:
            continue
        found: list[Finding] = []
        for ctx in contexts:
            ctx.project = project
            if ctx.language == "log":  # a notebook's outputs: what it printed says nothing about the code
                found += _run(file_rules, ctx, mentions)
                continue
            project.legacy_models |= ctx.models
            if V3 in ctx.src.text:
                project.v3_named = True
            project.v3_dimensions |= {int(d) for d in _DIMENSIONS.findall(ctx.src.text)}
            if item.language != "js":
                found += _run(file_rules, ctx, mentions)
            exporting.add(ctx)
            if cross.see(ctx):
                kept[item.path] = (item, contexts)  # its findings may gain a JM501 after the walk
        if dims:
            deferred.append((item, contexts))
        if item.language == "js":
            js_waiting.append((item, contexts))
            continue
        _note_syntax_errors(item, contexts, skipped)
        _record(item, contexts, found, findings, hashes, encodings)

    if js_waiting:
        _javascript(js_paths, js_waiting, js_stubs, file_rules, project, deferred, skipped, findings, hashes,
                    encodings, mentions)
    if exporting and unparsed:
        _importers(
            unparsed, exporting, file_rules, project, deferred, skipped, findings, hashes, encodings, cross
        )
    for ctx, extra in cross.finish(findings, any(r.code == "JM501" for r in file_rules)):
        item, contexts = kept[ctx.src.path]
        _record(item, contexts, [extra], findings, hashes, encodings)
    _helper_sides(project)

    # Widths (768, 512) count only once we know which legacy models the project uses.
    widths = project.legacy_dims
    if widths and project_rules:
        for item, known in deferred:
            contexts = known or []
            if known is None:
                try:
                    data = Path(item.abs_path).read_bytes()
                except OSError:
                    continue
                if not width_in_context(data, widths, item.path):
                    continue
                kind = own_output(data)
                if kind is not None:
                    skipped.append(SkippedFile(item.path, f"jmigrate output ({kind})"))
                    continue
                item = RawFile(item.path, item.abs_path, data)
                contexts = _contexts(item, skipped)
            for ctx in contexts:
                ctx.project = project
            found = [f for ctx in contexts for f in _run(project_rules, ctx, mentions)]
            if known is None:
                _note_syntax_errors(item, contexts, skipped)
            _record(item, contexts, found, findings, hashes, encodings)

    notes: list[str] = []
    if findings:
        notes.append(ORDERING_RULE)
    if any(f.recommendation.get("licence") for f in findings):
        notes.append(LICENCE_V3_NOTE)
    return PlanResult(
        root=str(root),
        findings=findings_sorted(findings),
        skipped=sorted(skipped, key=lambda s: s.path),
        files_scanned=files,
        bytes_scanned=size,
        file_hashes=dict(sorted(hashes.items())),
        notes=notes,
        encodings=dict(sorted(encodings.items())),
        stores=_stores(root, price_per_mtok) if stores else [],
        mentions=sorted(set(mentions), key=lambda m: (m.path, m.line, m.column, m.model)),
    )


def _importers(
    unparsed: list[RawFile],
    exporting: ImportIndex,
    rules: list[Rule],
    project: ProjectFacts,
    deferred: list[tuple[RawFile, list[FileContext] | None]],
    skipped: list[SkippedFile],
    findings: list[Finding],
    hashes: dict[str, str],
    encodings: dict[str, str],
    cross: CrossModule,
) -> None:
    """Parse and check the Python files without a Jina name that import a v2 name of another module."""
    waiting = {item.path: i for i, (item, known) in enumerate(deferred) if known is None}
    # A file parsed here may export in turn (config.py reads EMBED_MODEL from .env; app.py imports it from
    # config): a few rounds over the files still unparsed, each only when the previous one added exports.
    todo = unparsed
    for _ in range(3):
        size = exporting.size()
        todo = _importers_round(
            todo, exporting, rules, project, deferred, waiting, skipped, findings, hashes, encodings, cross
        )
        if not todo or exporting.size() == size:
            break


def _importers_round(
    unparsed: list[RawFile],
    exporting: ImportIndex,
    rules: list[Rule],
    project: ProjectFacts,
    deferred: list[tuple[RawFile, list[FileContext] | None]],
    waiting: dict[str, int],
    skipped: list[SkippedFile],
    findings: list[Finding],
    hashes: dict[str, str],
    encodings: dict[str, str],
    cross: CrossModule,
) -> list[RawFile]:
    left: list[RawFile] = []
    for stub in unparsed:
        try:
            data = Path(stub.abs_path).read_bytes()
        except OSError:
            continue
        if not exporting.wanted(data):
            left.append(stub)
            continue
        item = RawFile(stub.path, stub.abs_path, data)
        contexts = _contexts(item, skipped)
        found: list[Finding] = []
        imported = exporting.models_for(data)
        for ctx in contexts:
            ctx.project = project
            ctx.imported_models = imported  # its widths tie to the imported model like a named one
            found += _run(rules, ctx, [])  # no model name in these files, so no mention either
            cross.see(ctx)
            exporting.add(ctx)
        _note_syntax_errors(item, contexts, skipped)
        if item.path in waiting:  # the width pass reuses the parse
            deferred[waiting[item.path]] = (item, contexts)
        elif width_number(legacy_widths()).search(data):  # `assert v.shape == (1, 768)` has no key
            deferred.append((item, contexts))
        _record(item, contexts, found, findings, hashes, encodings)
    return left


def _javascript(
    paths: set[str],
    waiting: list[tuple[RawFile, list[FileContext]]],
    stubs: list[RawFile],
    rules: list[Rule],
    project: ProjectFacts,
    deferred: list[tuple[RawFile, list[FileContext] | None]],
    skipped: list[SkippedFile],
    findings: list[Finding],
    hashes: dict[str, str],
    encodings: dict[str, str],
    mentions: list[Mention],
) -> None:
    """Link the JS/TS modules that name Jina to the files importing from them, then run the rules on all."""
    from jmigrate.scan.jsmodules import ImportTest, JsProject

    js = project.js = JsProject(paths)
    for item, contexts in waiting:
        js.add(item.path, contexts[0].src.text)
    waiting = list(waiting)
    loaded: set[str] = set()
    for _ in range(_JS_HOPS):  # an importer may export a helper of its own: a few hops, each one linear
        test = ImportTest(js)
        if not test:
            break
        new = 0
        for stub in stubs:
            if stub.path in loaded:
                continue
            try:
                data = Path(stub.abs_path).read_bytes()
            except OSError:
                continue
            if not test.wanted(data):
                continue
            loaded.add(stub.path)
            item = RawFile(stub.path, stub.abs_path, data)
            contexts = _contexts(item, skipped)
            if contexts:
                js.add(item.path, contexts[0].src.text)
                waiting.append((item, contexts))
                new += 1
        if not new:
            break
    places = {item.path: i for i, (item, known) in enumerate(deferred) if known is None}
    for item, contexts in waiting:
        found: list[Finding] = []
        for ctx in contexts:
            ctx.project = project
            found += _run(rules, ctx, mentions)
        _note_syntax_errors(item, contexts, skipped)
        if item.path in loaded and item.path in places:  # the width pass reuses the decoded text
            deferred[places[item.path]] = (item, contexts)
        _record(item, contexts, found, findings, hashes, encodings)


def _helper_sides(project: ProjectFacts) -> None:
    """Every call of each embedding helper is known now, in whatever module it is: the helper's own findings
    (its embedding call, request, model id) say the sides those calls serve, merged."""
    for key, rebuilds in project.helper_findings.items():
        uses = project.helper_uses.get(key)
        if uses:
            guess = helper_guess(key[1], uses)
            for rebuild in rebuilds:
                rebuild(guess)


def _stores(root: Path, price_per_mtok: float | None) -> list[dict[str, Any]]:
    # A walk of its own: stores are binary and often git-ignored, both of which the code walk skips.
    from jmigrate.scan.stores import discover_stores

    found = []
    for info in discover_stores(root, price_per_mtok=price_per_mtok):
        d = info.to_dict()
        d["path"] = Path(os.path.relpath(info.path, root)).as_posix()
        found.append(d)
    return found


def _note_syntax_errors(item: RawFile, contexts: list[FileContext], skipped: list[SkippedFile]) -> None:
    broken = [c for c in contexts if c.syntax_error]
    if not broken:
        return
    reason = "; ".join(
        (f"cell {c.cell_map.cells[0][1]}: " if c.cell_map else "") + str(c.syntax_error) for c in broken
    )
    if any(c.reported for c in broken):
        reason += "; findings reported without fixes"
    skipped.append(SkippedFile(item.path, reason))


def _contexts(item: RawFile, skipped: list[SkippedFile]) -> list[FileContext]:
    try:
        text, encoding = decode_bytes(item.data, item.language)
    except DecodeError as e:
        skipped.append(SkippedFile(item.path, str(e)))
        return []
    src = Source(item.path, text, item.language, encoding)
    if item.language != "notebook":
        return [FileContext(src)]
    try:
        nb = notebook_units(src)
    except NotebookError as e:
        skipped.append(SkippedFile(item.path, str(e)))
        return []
    if nb.problems:
        skipped.append(SkippedFile(item.path, "; ".join(nb.problems)))
    # Markdown cells are scanned as Markdown: their prose ("we used v2 before", links to model cards) and
    # the cells' outputs are mentions, never rewritten (issue 12: rewriting them turned history into false
    # statements and counted as false alarms); a code block in a Markdown cell is code.
    markdown = [FileContext(c, cell_map=c.cell_map) for c in (*nb.markdown, *nb.outputs)]
    if nb.code is None:
        return markdown
    joined = FileContext(nb.code, cell_map=nb.code.cell_map)
    if joined.language != "python" or joined.py is not None:
        return [joined, *markdown]
    # One cell does not parse: scan cell by cell so only that cell loses its fixes.
    return [*(FileContext(c, cell_map=c.cell_map) for c in nb.code_cells), *markdown]


def _run(rules: list[Rule], ctx: FileContext, mentions: list[Mention]) -> list[Finding]:
    """The rules' findings on one context; what they found in prose, comments and logs goes to `mentions`."""
    out: list[Finding] = []
    if ctx.language == "python":
        ctx.py  # noqa: B018 -- parse now so a syntax error is reported even if no Python rule runs
    for rule in rules:
        if rule.applies_to(ctx.language):
            out.extend(rule.check(ctx))
    if ctx.not_code_findings:
        out = [f for f in out if id(f) not in ctx.not_code_findings]
        ctx.not_code_findings.clear()
    mentions.extend(ctx.mentions)
    ctx.mentions.clear()
    if ctx.syntax_error:
        # The file does not parse now, so no rewrite of it can be checked: report, don't fix.
        for f in out:
            f.applicability, f.edits = Applicability.MANUAL, []
    return out


def _record(
    item: RawFile,
    contexts: list[FileContext],
    found: list[Finding],
    findings: list[Finding],
    hashes: dict[str, str],
    encodings: dict[str, str],
) -> None:
    if not found:
        return
    findings.extend(found)
    hashes[item.path] = hashlib.sha256(item.data).hexdigest()
    encodings[item.path] = contexts[0].src.encoding
