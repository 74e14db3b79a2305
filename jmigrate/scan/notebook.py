"""Jupyter notebooks: scan code cells as Python (markdown cells as text) and map every cell position and
edit back to the notebook's JSON text, so findings point at the .ipynb line and edits apply to the file.

Positions of JSON strings come from the stdlib decoder itself (its pure-Python scanner calls
`parse_string` with the offset of each string), so no second JSON parser is written here.
"""

from __future__ import annotations

import bisect
import json
import json.decoder
import json.scanner
import re
from dataclasses import dataclass, field
from functools import cached_property
from typing import Any

from jmigrate.scan.finding import Edit
from jmigrate.scan.walk import Source


class NotebookError(Exception):
    """The .ipynb is not JSON, or not a notebook."""


class _PosStr(str):
    """A decoded JSON string that remembers where its body (between the quotes) sits in the JSON text."""

    raw_start: int
    raw_end: int


def _parse_string(s: str, end: int, strict: bool = True) -> tuple[str, int]:
    value, stop = json.decoder.scanstring(s, end, strict)  # type: ignore[attr-defined]
    out = _PosStr(value)
    out.raw_start, out.raw_end = end, stop - 1
    return out, stop


def _load(text: str) -> Any:
    decoder = json.JSONDecoder()
    decoder.parse_string = _parse_string  # type: ignore[attr-defined]
    decoder.scan_once = json.scanner.py_make_scanner(decoder)  # type: ignore[attr-defined]
    return decoder.decode(text)


def _raw_offsets(raw: str) -> list[int]:
    """For the body of a JSON string literal: offset in `raw` of each decoded character, plus the end."""
    out: list[int] = []
    i, n = 0, len(raw)
    while i < n:
        out.append(i)
        if raw[i] != "\\":
            i += 1
        elif raw[i + 1] != "u":
            i += 2
        else:
            code = int(raw[i + 2 : i + 6], 16)
            # A surrogate pair decodes to one character spanning two \u escapes.
            if (
                0xD800 <= code < 0xDC00
                and raw.startswith("\\u", i + 6)
                and 0xDC00 <= int(raw[i + 8 : i + 12], 16) < 0xE000
            ):
                i += 12
            else:
                i += 6
    out.append(n)
    return out


_MAGIC = re.compile(r"^([ \t]*)[%!?]", re.M)


def mask_magics(code: str) -> str:
    """Turn IPython magics and shell escapes (`%pip`, `!ollama pull ...`) into comments of the same length,
    so the cell parses as Python and every offset stays valid."""
    return _MAGIC.sub(lambda m: m.group(1) + "#", code)


@dataclass
class _Piece:
    start: int  # offset in the unit's text
    end: int
    raw_start: int  # offset in the JSON text of the string body
    offsets: list[int]  # decoded char -> offset inside the body


@dataclass
class CellMap:
    """Maps offsets in the text of one unit (one cell, or all code cells joined by newlines so that names
    flow from cell to cell) to the cell, the line in the cell and offsets/positions in the JSON text."""

    notebook: Source
    pieces: list[_Piece]
    cells: list[tuple[int, int]]  # (offset in the unit text where the cell starts, 1-based cell index)

    @cached_property
    def _piece_starts(self) -> list[int]:
        # Built once: rebuilding it for every finding made notebooks with many cells quadratic.
        return [p.start for p in self.pieces]

    @cached_property
    def _cell_starts(self) -> list[int]:
        return [c for c, _ in self.cells]

    def _raw(self, offset: int) -> int:
        i = max(0, bisect.bisect_right(self._piece_starts, offset) - 1)
        p = self.pieces[i]
        return p.raw_start + p.offsets[min(max(offset - p.start, 0), len(p.offsets) - 1)]

    def position(self, offset: int) -> tuple[int, int]:
        return self.notebook.position(self._raw(offset))

    def locate(self, text: str, offset: int) -> tuple[int, int]:
        """(cell index, 1-based line inside that cell) of an offset in the unit text."""
        i = max(0, bisect.bisect_right(self._cell_starts, offset) - 1)
        cell_start, cell = self.cells[i]
        return cell, text.count("\n", cell_start, offset) + 1

    def map_edits(self, edits: list[Edit]) -> list[Edit] | None:
        """Edits in JSON-text offsets with JSON-escaped replacements; None if one spans two source strings."""
        out = []
        for e in edits:
            i = bisect.bisect_right(self._piece_starts, e.start) - 1
            # Pieces of one cell are contiguous; an empty piece may share its start with the next one.
            piece = next(
                (p for p in self.pieces[max(0, i - 1) : i + 2] if p.start <= e.start and e.end <= p.end), None
            )
            if piece is None:
                return None
            body = json.dumps(e.replacement, ensure_ascii=False)[1:-1]
            out.append(
                Edit(
                    piece.raw_start + piece.offsets[e.start - piece.start],
                    piece.raw_start + piece.offsets[e.end - piece.start],
                    body,
                )
            )
        return out


@dataclass
class CellSource(Source):
    """A unit of notebook text; places are given as cells and lines inside them."""

    cell_map: CellMap | None = None

    def where(self, offset: int) -> str:
        assert self.cell_map is not None
        cell, line = self.cell_map.locate(self.text, offset)
        return f"line {line} of cell {cell}"


@dataclass
class Notebook:
    code: CellSource | None  # all code cells joined: names defined in one cell are used in the next
    code_cells: list[CellSource]  # the same cells one by one (when the joined code does not parse)
    markdown: list[CellSource]
    problems: list[str] = field(default_factory=list)  # parts of the JSON left out, one line each
    # The text a code cell printed when it last ran (streams, text results, tracebacks): captured output,
    # never code (language "log").
    outputs: list[CellSource] = field(default_factory=list)


def _unit(nb_source: Source, cells: list[tuple[int, list[_PosStr]]], language: str) -> CellSource:
    pieces: list[_Piece] = []
    starts: list[tuple[int, int]] = []
    chunks: list[str] = []
    pos = 0
    for index, parts in cells:
        if chunks:  # cells are joined by a newline that belongs to no cell (edits across it stay manual)
            chunks.append("\n")
            pos += 1
        starts.append((pos, index))
        for p in parts:
            raw = nb_source.text[p.raw_start : p.raw_end]
            pieces.append(_Piece(pos, pos + len(p), p.raw_start, _raw_offsets(raw)))
            chunks.append(p)
            pos += len(p)
    text = "".join(chunks)
    return CellSource(
        nb_source.path, text, language, nb_source.encoding, cell_map=CellMap(nb_source, pieces, starts)
    )


def notebook_units(nb_source: Source) -> Notebook:
    """The code and markdown of a notebook; raises NotebookError for broken JSON or a non-notebook."""
    try:
        nb = _load(nb_source.text)
    except (ValueError, RecursionError) as e:
        raise NotebookError(f"invalid notebook JSON ({str(e).splitlines()[0][:80]})") from None
    if not isinstance(nb, dict) or not isinstance(nb.get("cells"), list):
        raise NotebookError("not a Jupyter notebook (no 'cells' list)")
    # Every level below is the user's JSON: any value may have any type (`"metadata": "x"`, `"source": 5`).
    info = _as_dict(_as_dict(nb.get("metadata")).get("language_info")).get("name")
    lang = info.lower() if isinstance(info, str) and info else "python"
    code_language = "python" if lang == "python" else "text"
    code: list[tuple[int, list[_PosStr]]] = []
    markdown: list[CellSource] = []
    outputs: list[CellSource] = []
    problems: list[str] = []
    for index, cell in enumerate(nb["cells"], start=1):
        kind = cell.get("cell_type") if isinstance(cell, dict) else None
        if kind not in ("code", "markdown") or not isinstance(kind, str):
            continue
        assert isinstance(cell, dict)
        parts = cell.get("source", [])
        parts = [parts] if isinstance(parts, str) else parts
        if not isinstance(parts, list) or not all(isinstance(p, _PosStr) for p in parts):
            problems.append(f"cell {index}: 'source' is not text (cell not scanned)")
            continue
        if not parts:
            continue
        if kind == "code":
            code.append((index, parts))
            outputs += [_unit(nb_source, [(index, texts)], "log") for texts in _output_texts(cell)]
        else:
            markdown.append(_unit(nb_source, [(index, parts)], "markdown"))
    return Notebook(
        _unit(nb_source, code, code_language) if code else None,
        [_unit(nb_source, [c], code_language) for c in code],
        markdown,
        problems,
        outputs,
    )


# Output mime types that hold text a person reads (images and widgets are left alone).
_TEXT_MIMES = ("text/plain", "text/markdown", "text/html", "text/latex")


def _output_texts(cell: dict[str, Any]) -> list[list[_PosStr]]:
    out: list[list[_PosStr]] = []
    outputs = cell.get("outputs")
    for o in outputs if isinstance(outputs, list) else []:
        o = _as_dict(o)
        data = _as_dict(o.get("data"))
        for value in (o.get("text"), o.get("traceback"), *(data.get(m) for m in _TEXT_MIMES)):
            parts = [value] if isinstance(value, str) else value
            if isinstance(parts, list) and parts and all(isinstance(p, _PosStr) for p in parts):
                out.append(parts)
    return out


def _as_dict(value: object) -> dict[str, Any]:
    return value if isinstance(value, dict) else {}
