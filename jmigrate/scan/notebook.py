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
from dataclasses import dataclass
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
    cell_start: int  # offset in the cell text
    cell_end: int
    raw_start: int  # offset in the JSON text of the string body
    offsets: list[int]  # decoded char -> offset inside the body


@dataclass
class CellMap:
    """Maps offsets in one cell's source text to offsets/positions in the notebook's JSON text."""

    cell: int  # 1-based index among all cells
    notebook: Source
    pieces: list[_Piece]

    def _raw(self, offset: int) -> int:
        starts = [p.cell_start for p in self.pieces]
        i = max(0, bisect.bisect_right(starts, offset) - 1)
        p = self.pieces[i]
        return p.raw_start + p.offsets[min(offset - p.cell_start, len(p.offsets) - 1)]

    def position(self, offset: int) -> tuple[int, int]:
        return self.notebook.position(self._raw(offset))

    def map_edits(self, edits: list[Edit]) -> list[Edit] | None:
        """Edits in JSON-text offsets with JSON-escaped replacements; None if one spans two source strings."""
        out = []
        for e in edits:
            piece = next((p for p in self.pieces if p.cell_start <= e.start and e.end <= p.cell_end), None)
            if piece is None:
                return None
            body = json.dumps(e.replacement, ensure_ascii=False)[1:-1]
            out.append(
                Edit(
                    piece.raw_start + piece.offsets[e.start - piece.cell_start],
                    piece.raw_start + piece.offsets[e.end - piece.cell_start],
                    body,
                )
            )
        return out


@dataclass
class Cell:
    source: Source  # the cell text (path = the notebook's path, language python/markdown)
    cell_map: CellMap


def notebook_cells(nb_source: Source) -> list[Cell]:
    """Code and markdown cells of a notebook; raises NotebookError for broken JSON or a non-notebook."""
    try:
        nb = _load(nb_source.text)
    except (ValueError, RecursionError) as e:
        raise NotebookError(f"invalid notebook JSON ({str(e).splitlines()[0][:80]})") from None
    if not isinstance(nb, dict) or not isinstance(nb.get("cells"), list):
        raise NotebookError("not a Jupyter notebook (no 'cells' list)")
    lang = str(((nb.get("metadata") or {}).get("language_info") or {}).get("name") or "python").lower()
    cells: list[Cell] = []
    for index, cell in enumerate(nb["cells"], start=1):
        if not isinstance(cell, dict):
            continue
        kind = cell.get("cell_type")
        if kind not in ("code", "markdown"):
            continue
        parts = cell.get("source", [])
        parts = [parts] if isinstance(parts, str) else parts
        if not all(isinstance(p, _PosStr) for p in parts):
            continue
        pieces, pos = [], 0
        for p in parts:
            raw = nb_source.text[p.raw_start : p.raw_end]
            pieces.append(_Piece(pos, pos + len(p), p.raw_start, _raw_offsets(raw)))
            pos += len(p)
        if not pieces:
            continue
        language = ("python" if lang == "python" else "text") if kind == "code" else "markdown"
        text = "".join(parts)
        cells.append(
            Cell(
                Source(nb_source.path, text, language, nb_source.encoding), CellMap(index, nb_source, pieces)
            )
        )
    return cells
