"""The tree walk: what `plan` reads, what it skips (and says so), and positions in the file as stored."""

from __future__ import annotations

import ast
import os
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from jmigrate.errors import InputError
from jmigrate.scan.finding import Applicability
from jmigrate.scan.plan import plan
from jmigrate.scan.walk import RawFile, decode_bytes, walk

V2 = "jina-embeddings-v2-base-en"
LINE = f'MODEL = "{V2}"\n'


def write(root: Path, rel: str, content: str | bytes) -> Path:
    path = root / rel
    path.parent.mkdir(parents=True, exist_ok=True)
    if isinstance(content, bytes):
        path.write_bytes(content)
    else:
        path.write_text(content, encoding="utf-8")
    return path


def found_paths(root: Path) -> set[str]:
    """Files the walk read and found a model in (a .log file's model is a mention, not a finding)."""
    result = plan(root)
    return {f.path for f in result.findings} | {m.path for m in result.mentions}


def test_gitignore_files_are_honoured_including_nested_ones(tmp_path: Path) -> None:
    write(tmp_path, ".gitignore", "build/\n*.log\n!keep.log\n")
    write(tmp_path, "app.py", LINE)
    write(tmp_path, "build/gen.py", LINE)
    write(tmp_path, "run.log", V2)
    write(tmp_path, "keep.log", V2)
    write(tmp_path, "pkg/.gitignore", "secret.py\n/local/\n")
    write(tmp_path, "pkg/secret.py", LINE)
    write(tmp_path, "pkg/local/x.py", LINE)
    write(tmp_path, "pkg/mod.py", LINE)
    write(tmp_path, "other/secret.py", LINE)  # the nested .gitignore only covers its own folder
    write(tmp_path, "other/local/x.py", LINE)  # "/local/" is anchored to pkg/
    assert found_paths(tmp_path) == {
        "app.py",
        "keep.log",
        "pkg/mod.py",
        "other/secret.py",
        "other/local/x.py",
    }


def test_vcs_dependency_and_virtualenv_folders_are_skipped(tmp_path: Path) -> None:
    write(tmp_path, "src/app.py", LINE)
    for folder in (
        ".git",
        "node_modules/pkg",
        ".venv/lib",
        "venv",
        "env",
        "__pycache__",
        "lib/site-packages/x",
    ):
        write(tmp_path, f"{folder}/copy.py", LINE)
    write(tmp_path, "myenv/pyvenv.cfg", "home = /usr/bin\n")  # a virtualenv under any name
    write(tmp_path, "myenv/lib/copy.py", LINE)
    assert found_paths(tmp_path) == {"src/app.py"}


def test_a_git_file_of_a_worktree_or_submodule_is_not_scanned(tmp_path: Path) -> None:
    # `git worktree add` and submodules leave a `.git` FILE (`gitdir: <path>`) whose path may name the
    # model (issue 12: a checkout folder named after v2 gave two findings on that line).
    write(tmp_path, "app.py", LINE)
    write(tmp_path, ".git", f"gitdir: /repos/{V2}/.git/worktrees/x\n")
    write(tmp_path, "vendor/sub/.git", f"gitdir: ../../.git/modules/{V2}\n")
    os.symlink(tmp_path / "app.py", tmp_path / "vendor" / ".git")  # a link named .git: not followed either
    result = plan(tmp_path)
    assert {f.path for f in result.findings} == {"app.py"}
    assert not [s for s in result.skipped if ".git" in s.path]
    assert not [m for m in result.mentions if ".git" in m.path]


def test_binary_and_huge_files_become_skipped_notes(tmp_path: Path) -> None:
    write(tmp_path, "model.bin", b"\x00\x01" + V2.encode())
    write(tmp_path, "big.txt", V2 + " " * 3000)
    write(tmp_path, "small.txt", V2)
    result = plan(tmp_path, max_file_size=1000)
    assert {f.path for f in result.findings} == {"small.txt"}
    reasons = {s.path: s.reason for s in result.skipped}
    assert reasons["model.bin"].startswith("binary")
    assert reasons["big.txt"].startswith("too large (0.0 MB > 0.001 MB)")
    assert result.files_scanned == 1


@pytest.mark.skipif(os.name == "nt", reason="symlinks")
def test_symlinks_are_not_followed_and_loops_do_not_hang(tmp_path: Path) -> None:
    outside = tmp_path / "outside"
    write(outside, "leak.py", LINE)
    root = tmp_path / "root"
    write(root, "pkg/app.py", LINE)
    (root / "escape").symlink_to(outside)
    (root / "escape.py").symlink_to(outside / "leak.py")
    (root / "pkg" / "loop").symlink_to(root)
    (root / "self").symlink_to(root / "self")
    (root / "dangling.py").symlink_to(root / "missing.py")
    (root / "alias.py").symlink_to(root / "pkg" / "app.py")  # inside: scanned once, at its real path
    result = plan(root)
    assert [f.path for f in result.findings] == ["pkg/app.py"]
    reasons = {s.path: s.reason for s in result.skipped}
    assert "leaves the scanned folder" in reasons["escape"]
    assert "leaves the scanned folder" in reasons["escape.py"]
    assert "loop" in reasons["pkg/loop"]
    assert "loop" in reasons["self"] or "broken" in reasons["self"]
    assert "broken" in reasons["dangling.py"]
    assert "alias.py" not in reasons


def test_undecodable_python_and_syntax_errors_are_skipped_not_crashes(tmp_path: Path) -> None:
    write(tmp_path, "bad_utf8.py", b'# jina\nMODEL = "caf\xe9 ' + V2.encode() + b'"\n')
    write(tmp_path, "broken.py", f'M = "{V2}"\ndef f(:\n    pass\n')
    write(tmp_path, "ok.py", LINE)
    result = plan(tmp_path)
    reasons = {s.path: s.reason for s in result.skipped}
    assert "cannot decode Python source" in reasons["bad_utf8.py"]
    assert reasons["broken.py"].startswith("syntax error at line 2")
    assert "findings reported without fixes" in reasons["broken.py"]
    broken = [f for f in result.findings if f.path == "broken.py"]
    assert broken and all(f.applicability is Applicability.MANUAL and not f.edits for f in broken)
    assert any(f.path == "ok.py" and f.edits for f in result.findings)


def test_declared_and_fallback_encodings_are_used_and_reported(tmp_path: Path) -> None:
    write(tmp_path, "latin.py", b'# -*- coding: latin-1 -*-\nNAME = "caf\xe9"; M = "' + V2.encode() + b'"\n')
    # (not notes.txt: a notes/README-like .txt file is prose, its models are mentions without encodings)
    write(tmp_path, "models.txt", b"caf\xe9 \x80 " + V2.encode())
    write(tmp_path, "bom.py", b"\xef\xbb\xbf" + LINE.encode())
    result = plan(tmp_path)
    assert result.encodings == {"bom.py": "utf-8-sig", "latin.py": "iso-8859-1", "models.txt": "cp1252"}
    latin = next(f for f in result.findings if f.path == "latin.py")
    assert (latin.line, latin.column) == (2, len('NAME = "café"; M = "') + 1)
    bom = next(f for f in result.findings if f.path == "bom.py")
    assert (bom.line, bom.column) == (1, 10)  # the BOM is not a column
    text, encoding = decode_bytes((tmp_path / "models.txt").read_bytes())
    assert text.encode(encoding) == (tmp_path / "models.txt").read_bytes()


def test_positions_are_characters_in_the_file_as_stored(tmp_path: Path) -> None:
    # CRLF line ends count as one line break; columns are characters, not UTF-8 bytes (ast reports bytes).
    source = f'# encoding ok\r\nlabel = "naïve café 日本"; m = SentenceTransformer("jinaai/{V2}")\r\n'
    write(tmp_path, "app.py", source.encode("utf-8"))
    findings = plan(tmp_path).findings
    model = next(f for f in findings if f.code == "JM101")
    loader = next(f for f in findings if f.code == "JM308")
    line2 = source.split("\r\n")[1]
    assert (model.line, model.column) == (2, line2.index("jinaai/") + 1)
    assert (loader.line, loader.column) == (2, line2.index("SentenceTransformer") + 1)
    text, _ = decode_bytes((tmp_path / "app.py").read_bytes(), "python")
    edit = model.edits[0]
    assert text[edit.start : edit.end] == V2 and "\r\n" in text


def test_walk_yields_sorted_relative_posix_paths(tmp_path: Path) -> None:
    write(tmp_path, "b/z.py", "x")
    write(tmp_path, "a.py", "x")
    write(tmp_path, "b/a.py", "x")
    paths = [item.path for item in walk(tmp_path) if isinstance(item, RawFile)]
    assert paths == ["a.py", "b/a.py", "b/z.py"]


def test_a_single_file_can_be_planned_and_a_missing_path_is_an_input_error(tmp_path: Path) -> None:
    path = write(tmp_path, "one.py", LINE)
    assert [f.path for f in plan(path).findings] == ["one.py"]
    with pytest.raises(InputError, match="no such file"):
        plan(tmp_path / "missing")


@settings(max_examples=60, deadline=None)
@given(
    prefix=st.text(alphabet=st.characters(blacklist_categories=("Cs", "Cc")), max_size=12),
    word=st.text(alphabet="aé日𝄞 b", min_size=1, max_size=8),
)
def test_ast_byte_columns_convert_to_character_offsets(prefix: str, word: str) -> None:
    # ast reports UTF-8 byte columns; Source.offset must agree with the stdlib's own segment extraction.
    from jmigrate.scan.python import PyModule
    from jmigrate.scan.walk import Source

    source = f"x = {prefix!r}; y = [{word!r}, {word!r}]\r\nz = f({word!r})\n"
    mod = PyModule.parse(Source("t.py", source, "python"))
    for node in ast.walk(mod.tree):
        if isinstance(node, ast.Constant):
            start, end = mod.span(node)
            assert source[start:end] == ast.get_source_segment(source, node)


def test_gitignore_files_above_the_root_apply_inside_a_repository(tmp_path: Path) -> None:
    repo = tmp_path / "repo"
    (repo / ".git").mkdir(parents=True)
    write(repo, ".gitignore", "generated/\n")
    write(repo, "services/.gitignore", "api/*.tmp.py\n")
    write(repo, "services/api/generated/client.py", LINE)
    write(repo, "services/api/cache.tmp.py", LINE)
    write(repo, "services/api/app.py", LINE)
    assert found_paths(repo / "services" / "api") == {"app.py"}
    # Outside a repository, a .gitignore in a folder above the scanned one is not applied.
    plain = tmp_path / "plain"
    write(plain, ".gitignore", "*.py\n")
    write(plain, "sub/app.py", LINE)
    assert found_paths(plain / "sub") == {"app.py"}
    # A folder the repository ignores is still scanned when it is the one asked for.
    write(repo, "services/api/generated/more.py", LINE)
    assert found_paths(repo / "services" / "api" / "generated") == {"client.py", "more.py"}
