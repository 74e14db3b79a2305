"""Walk a tree for `plan`: which files to read, how to decode them, and how to turn offsets into positions.

Honours .gitignore files (nested ones too), skips VCS/dependency/virtualenv folders, binaries, huge files
and symlinks. Symlinks are never followed: a link inside the root points at something that is scanned at
its real path anyway, a link that leaves the root must not be read (and `apply` must not write through it),
and not following links makes loops impossible. Unreadable files become `SkippedFile`s, never exceptions.
"""

from __future__ import annotations

import bisect
import codecs
import os
import re
import tokenize
from collections.abc import Iterator
from dataclasses import dataclass, field
from io import BytesIO
from pathlib import Path
from typing import NamedTuple

import pathspec

from jmigrate.scan.finding import SkippedFile

DEFAULT_MAX_FILE_SIZE = 2_000_000
# Version-control metadata, never the user's code: skipped whether a folder, a file or a link.
VCS_NAMES = frozenset({".git", ".hg", ".svn"})
BINARY_SNIFF_BYTES = 8192

# Folders that never hold the user's own code or vector stores (one list for the code walk and the store
# walk). Virtualenvs are also recognised by their pyvenv.cfg.
SKIP_DIRS = frozenset(
    {
        ".git",
        ".hg",
        ".svn",
        "node_modules",
        ".venv",
        "venv",
        "env",
        "__pycache__",
        "site-packages",
        ".tox",
        ".nox",
        ".mypy_cache",
        ".pytest_cache",
        ".ruff_cache",
        ".jmigrate-work",  # reindex's scratch folder inside an index
    }
)

# File kinds the rules understand, by suffix; anything else that is text is scanned as plain text.
LANGUAGES: dict[str, str] = {
    ".py": "python",
    ".pyi": "python",
    ".ipynb": "notebook",
    ".js": "js",
    ".mjs": "js",
    ".cjs": "js",
    ".jsx": "js",
    ".ts": "js",
    ".tsx": "js",
    ".mts": "js",
    ".cts": "js",
    ".sql": "sql",
    ".yaml": "yaml",
    ".yml": "yaml",
    ".toml": "toml",
    ".json": "json",
    ".sh": "shell",
    ".bash": "shell",
    ".zsh": "shell",
    ".env": "env",
    ".md": "markdown",
    ".markdown": "markdown",
    ".rst": "markdown",
    ".mdx": "markdown",  # Markdown with JSX (Docusaurus, Next.js docs)
    ".qmd": "markdown",  # Quarto
    ".rmd": "markdown",  # R Markdown
}

_NEWLINE = re.compile(r"\r\n|\r|\n")


def language_of(rel_path: str) -> str:
    name = rel_path.rsplit("/", 1)[-1]
    if name == "Dockerfile" or name.startswith("Dockerfile.") or name.endswith(".dockerfile"):
        return "dockerfile"
    if name == ".env" or name.startswith(".env."):
        return "env"
    return LANGUAGES.get(os.path.splitext(name)[1].lower(), "text")


class DecodeError(Exception):
    """Raised by `decode_bytes` when the bytes are not text in any encoding we accept."""


def decode_bytes(data: bytes, language: str = "text") -> tuple[str, str]:
    """Decode file bytes; returns (text, encoding). Re-encoding the text with `encoding` gives the bytes back.

    UTF-8 (a BOM is kept out of the text: the "utf-8-sig" codec adds it back). Python files follow their
    PEP 263 coding declaration and are refused if they don't decode with it (they would not run either).
    Other files fall back to cp1252, then latin-1 (which decodes anything), and the encoding says so.
    """
    if language == "python":
        try:
            encoding, _ = tokenize.detect_encoding(BytesIO(data).readline)
            return data.decode(encoding), encoding
        except (SyntaxError, UnicodeDecodeError, LookupError) as e:
            raise DecodeError(f"cannot decode Python source ({type(e).__name__})") from None
    if data.startswith(codecs.BOM_UTF8):
        try:
            return data.decode("utf-8-sig"), "utf-8-sig"
        except UnicodeDecodeError:
            raise DecodeError("invalid UTF-8 after a UTF-8 byte-order mark") from None
    for encoding in ("utf-8", "cp1252", "latin-1"):
        try:
            return data.decode(encoding), encoding
        except UnicodeDecodeError:
            continue
    raise DecodeError("undecodable")  # unreachable: latin-1 decodes every byte


@dataclass
class Source:
    """One decoded file (or one notebook cell) and the mapping from character offsets to positions."""

    path: str  # relative to the root, POSIX separators
    text: str
    language: str
    encoding: str = "utf-8"
    _line_starts: list[int] = field(default_factory=list, repr=False)

    @property
    def line_starts(self) -> list[int]:
        if not self._line_starts:
            self._line_starts = [0] + [m.end() for m in _NEWLINE.finditer(self.text)]
        return self._line_starts

    def position(self, offset: int) -> tuple[int, int]:
        """1-based (line, column in characters) of a character offset."""
        starts = self.line_starts
        i = bisect.bisect_right(starts, offset) - 1
        return i + 1, offset - starts[i] + 1

    def offset(self, line: int, utf8_col: int) -> int:
        """Character offset of an `ast` position: 1-based line, column in UTF-8 bytes (as `ast` reports)."""
        start = self.line_starts[line - 1]
        if utf8_col == 0:
            return start
        # Slice a generous window of the line; only non-ASCII lines need the byte->char conversion.
        chunk = self.text[start : start + utf8_col]
        if chunk.isascii():
            return start + utf8_col
        return start + len(
            self.text[start : start + 4 * utf8_col]
            .encode("utf-8")[:utf8_col]
            .decode("utf-8", errors="ignore")
        )

    def where(self, offset: int) -> str:
        """A place for people: "line 14" (notebook cells say which cell)."""
        return f"line {self.position(offset)[0]}"

    def line_text(self, line: int) -> str:
        starts = self.line_starts
        end = starts[line] if line < len(starts) else len(self.text)
        return self.text[starts[line - 1] : end].rstrip("\r\n")


class FilePath(NamedTuple):
    """A file the walker accepts, not read yet."""

    path: str  # relative, POSIX
    abs_path: str


@dataclass
class RawFile:
    """A file the walker accepted: its bytes are read, decoding is left to the caller (often not needed)."""

    path: str  # relative, POSIX
    abs_path: str
    data: bytes
    # Worked out from the name on first use: most files are dropped by a byte test before anyone asks.
    _language: str | None = field(default=None, repr=False)

    @property
    def language(self) -> str:
        if self._language is None:
            self._language = language_of(self.path)
        return self._language


@dataclass
class _Ignore:
    base: str  # folder of the .gitignore, relative to the root ("" for the root), with a trailing "/"
    spec: pathspec.GitIgnoreSpec
    # For a .gitignore above the root (scanning a sub-folder of a repository): the root's path relative
    # to that .gitignore's folder, put in front of the candidate path.
    prefix: str = ""


def _load_gitignore(folder: str, base: str) -> _Ignore | None:
    try:
        with open(os.path.join(folder, ".gitignore"), encoding="utf-8", errors="replace") as f:
            lines = f.read().splitlines()
    except OSError:
        return None
    return _Ignore(base, pathspec.GitIgnoreSpec.from_lines(lines)) if lines else None


def _ignored(rel: str, is_dir: bool, ignores: list[_Ignore]) -> bool:
    # Patterns of a nested .gitignore are relative to its own folder; deeper files get the last word.
    candidate = rel + "/" if is_dir else rel
    verdict = False
    for ig in ignores:
        if not candidate.startswith(ig.base):
            continue
        sub = ig.prefix + candidate[len(ig.base) :]
        result = ig.spec.check_file(sub)
        if result.include is not None:
            verdict = bool(result.include)
    return verdict


def walk(root: str | Path, max_file_size: int = DEFAULT_MAX_FILE_SIZE) -> Iterator[RawFile | SkippedFile]:
    """Yield every candidate file under `root` (sorted, deterministic) or a SkippedFile saying why not."""
    for entry in walk_paths(root):
        yield entry if isinstance(entry, SkippedFile) else read_file(entry, max_file_size)


def walk_paths(root: str | Path) -> Iterator[FilePath | SkippedFile]:
    """The files `walk` would read, without reading them (`read_file` does): `plan` hands them to
    worker processes on large trees."""
    root_path = Path(root).resolve()
    if root_path.is_file():
        yield FilePath(root_path.name, str(root_path))
        return
    yield from _walk_dir(str(root_path), "", _parent_gitignores(root_path))


def _parent_gitignores(root: Path) -> list[_Ignore]:
    """The .gitignore files between the repository's top folder (the one holding .git) and the root."""
    out: list[_Ignore] = []
    for parent in root.parents:
        ig = _load_gitignore(str(parent), "")
        if ig is not None:
            ig.prefix = root.relative_to(parent).as_posix() + "/"
            out.append(ig)
        if (parent / ".git").exists():
            out.reverse()  # outermost first: deeper files get the last word
            # A folder the user names explicitly is scanned even if the repository ignores it.
            verdicts = [
                r.include for r in (ig.spec.check_file(ig.prefix) for ig in out) if r.include is not None
            ]
            return [] if verdicts and verdicts[-1] else out
    return []  # not inside a repository: a .gitignore above the root is not ours to apply


def skip_folder(entry: os.DirEntry[str]) -> bool:
    """A folder that never holds the user's own code or stores (both walks use this one test)."""
    return entry.name in SKIP_DIRS or os.path.exists(os.path.join(entry.path, "pyvenv.cfg"))


def _walk_dir(folder: str, rel: str, ignores: list[_Ignore]) -> Iterator[FilePath | SkippedFile]:
    # An explicit stack, not recursion: a tree ~1,000 folders deep must not hit Python's recursion limit.
    # Each frame holds one folder's sorted entries, so the order is the same depth-first order as before.
    stack: list[tuple[str, list[_Ignore], Iterator[os.DirEntry[str]]]] = []

    def enter(folder: str, rel: str, ignores: list[_Ignore]) -> SkippedFile | None:
        ig = _load_gitignore(folder, rel + "/" if rel else "")
        if ig is not None:
            ignores = [*ignores, ig]
        try:
            with os.scandir(folder) as it:
                entries = sorted(it, key=lambda e: e.name)
        except OSError as e:
            return SkippedFile(rel or ".", f"cannot list folder ({e.strerror})")
        stack.append((rel, ignores, iter(entries)))
        return None

    if (problem := enter(folder, rel, ignores)) is not None:
        yield problem
    while stack:
        rel, ignores, entries = stack[-1]
        entry = next(entries, None)
        if entry is None:
            stack.pop()
            continue
        child = f"{rel}/{entry.name}" if rel else entry.name
        if entry.name in VCS_NAMES:
            # Whatever its type: a worktree's or submodule's `.git` is a FILE (`gitdir: <path>`), and a
            # path in it may name the model (a false alarm on real code, issue 12).
            continue
        try:
            if entry.is_symlink():
                yield from _symlink(entry.path, child, ignores)
                continue
            is_dir = entry.is_dir(follow_symlinks=False)
        except OSError as e:
            yield SkippedFile(child, f"cannot stat ({e.strerror})")
            continue
        if is_dir:
            if skip_folder(entry) or _ignored(child, True, ignores):
                continue
            if (problem := enter(entry.path, child, ignores)) is not None:
                yield problem
        elif entry.is_file(follow_symlinks=False) and not _ignored(child, False, ignores):
            yield FilePath(child, entry.path)


def _symlink(path: str, rel: str, ignores: list[_Ignore]) -> Iterator[SkippedFile]:
    if _ignored(rel, os.path.isdir(path), ignores):
        return
    try:
        target = os.path.realpath(path, strict=True)
    except (OSError, RuntimeError):
        # realpath(strict=True) raises for dangling links and for links that point back at themselves.
        yield SkippedFile(rel, "broken symlink or symlink loop")
        return
    root = path[: len(path) - len(rel)].rstrip(os.sep)
    if os.path.commonpath([root, target]) != root:
        yield SkippedFile(rel, "symlink that leaves the scanned folder (not followed)")
    elif os.path.isdir(path) and os.path.commonpath([target, path]) == target:
        yield SkippedFile(rel, "symlink loop (points at a parent folder; not followed)")
    # A link to something inside the root: its target is scanned at its real path.


def read_file(file: FilePath, max_file_size: int = DEFAULT_MAX_FILE_SIZE) -> RawFile | SkippedFile:
    """The file's bytes, or why it is skipped (too large, binary, unreadable)."""
    rel = file.path
    try:
        # Read one byte past the limit instead of stat-ing every file first: a stat call per file was a
        # third of the walk on a large tree, and only oversized files need their real size (for the message).
        with open(file.abs_path, "rb") as f:
            data = f.read(max_file_size + 1)
            if len(data) > max_file_size:
                size = os.fstat(f.fileno()).st_size
                return SkippedFile(rel, f"too large ({size / 1e6:.1f} MB > {max_file_size / 1e6:g} MB)")
    except OSError as e:
        return SkippedFile(rel, f"cannot read ({e.strerror})")
    if data.find(b"\0", 0, BINARY_SNIFF_BYTES) != -1:  # find() with bounds: no copy of the prefix
        return SkippedFile(rel, "binary (NUL byte in the first 8 KiB)")
    return RawFile(rel, file.abs_path, data)
