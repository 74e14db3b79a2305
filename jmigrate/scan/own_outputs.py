"""jmigrate's own outputs (plan JSON, SARIF, markdown reports, reindex manifests) found in a scanned tree.

They quote v2 model names and widths by design: reporting them would make `plan` count its own reports, and
`apply` would rewrite them. The README's own example writes `jmigrate.sarif` into the scanned folder, so they
are recognised by content, not by name, and reported as skipped (one count in the text report).
"""

from __future__ import annotations

import re

_HEAD = 4096  # every marker sits in the first lines of the file
_JSON_TOOL = re.compile(rb'"tool"\s*:\s*"jmigrate"')
_SARIF = re.compile(rb'"\$schema"\s*:\s*"[^"]*sarif')
_SARIF_DRIVER = re.compile(rb'"driver"\s*:\s*\{\s*"name"\s*:\s*"jmigrate"')
_MANIFEST = re.compile(rb'"format"\s*:\s*"jmigrate-index"')
_MARKDOWN = "## Jina Embeddings v2 → v3 migration".encode()
# What a saved text report starts with (`jmigrate plan . > plan.txt`) is the renderer's summary line.
_TEXT = re.compile(rb"^jmigrate plan\b")


def own_output(data: bytes) -> str | None:
    """Which jmigrate output `data` is ("plan JSON", "SARIF report", ...), or None."""
    head = data[:_HEAD].lstrip(b"\xef\xbb\xbf \t\r\n")
    if head.startswith(b"{"):
        if _JSON_TOOL.search(head):
            return "plan JSON"
        if _SARIF.search(head) and _SARIF_DRIVER.search(data[: 64 * 1024]):
            return "SARIF report"
        if _MANIFEST.search(head):
            return "reindex manifest"
        return None
    if head.startswith(_MARKDOWN):
        return "markdown report"
    if _TEXT.match(head):
        return "text report"
    return None
