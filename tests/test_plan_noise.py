"""Issue 12, less noise: a concise one-line-per-finding format and skipped binaries as one count."""

from __future__ import annotations

import re
from pathlib import Path


def test_concise_format_is_one_line_per_finding(tmp_path: Path, cli) -> None:
    (tmp_path / "app.py").write_text('M = "jina-embeddings-v2-base-en"\nN = "jina-embeddings-v2-small-en"\n')
    res = cli("plan", tmp_path, "--format", "concise")
    assert res.code == 1
    lines = res.out.splitlines()
    assert len(lines) == 2
    assert all(re.fullmatch(r"app\.py:\d+:\d+: JM101 \[!\] .+", line) for line in lines)


def test_skipped_binaries_are_one_count_unless_verbose(tmp_path: Path, cli) -> None:
    (tmp_path / "app.py").write_text('M = "jina-embeddings-v2-base-en"\n')
    for i in range(3):
        (tmp_path / f"img{i}.bin").write_bytes(b"\x89PNG\x00\x00")
    quiet = cli("plan", tmp_path).out
    assert "3 binary files (--verbose lists them)" in quiet and "img0.bin" not in quiet
    verbose = cli("plan", tmp_path, "--verbose").out
    assert all(f"img{i}.bin: binary" in verbose for i in range(3))
