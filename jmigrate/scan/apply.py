"""Turn a plan's edits into changed files: `diff()` shows them, `apply()` writes them safely.

Safety rules (each one tested in tests/test_apply.py):
- every file is checked before anything is written: its bytes must still hash to what `plan` saw,
  its path must stay inside the root (no absolute paths, no `..`, no symlink that leaves the root),
  the edits must fit the text and, for Python / JSON / notebooks / TOML, the result must still parse;
  if any file fails a check nothing at all is written;
- edits are applied back to front on the decoded text, so the bytes outside the edits (encoding,
  byte-order mark, CRLF line endings) are kept exactly;
- each file is written atomically: a temporary file in the same folder, given the original's owner,
  group, extended attributes (ACLs) and mode, then fsync and `os.replace`. A file with hard links, or one
  whose owner/attributes the running user cannot give a new file, is rewritten in place instead (after a
  durable backup of the old bytes, removed on success), so links, owner and attributes stay
  (tests/test_apply_ownership.py).
"""

from __future__ import annotations

import ast
import contextlib
import difflib
import errno
import hashlib
import json
import os
import re
import stat
import tempfile
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath, PureWindowsPath

from jmigrate.errors import InputError, JMigrateError, StaleFileError
from jmigrate.scan.finding import Applicability, Edit, Finding, PlanResult
from jmigrate.scan.walk import DecodeError, decode_bytes, language_of

_BARE_LF = re.compile(r"(?<!\r)\n")


@dataclass(frozen=True)
class DecodedFile:
    """A file's text exactly as the rules saw it, and the encoding that turns it back into the same bytes."""

    text: str  # no byte-order mark (the "utf-8-sig" codec writes it back); CR/LF exactly as stored
    encoding: str

    def encode(self, text: str, name: str) -> bytes:
        try:
            return text.encode(self.encoding)
        except UnicodeEncodeError as e:
            raise InputError(f"{name}: the new text cannot be written in its encoding {self.encoding}") from e


def decode_file(data: bytes, rel: str, encoding: str | None = None) -> DecodedFile:
    """Decode as the scanner did (the encoding it recorded, else its rules), so edit offsets mean the same
    characters here as in `plan`."""
    if encoding is not None:
        try:
            return DecodedFile(data.decode(encoding), encoding)
        except (UnicodeDecodeError, LookupError) as e:
            raise StaleFileError(f"{rel}: no longer decodes as {encoding}; plan again") from e
    try:
        text, encoding = decode_bytes(data, language_of(rel))
    except DecodeError as e:
        raise InputError(f"{rel}: {e}") from e
    return DecodedFile(text, encoding)


@dataclass(frozen=True)
class FileChange:
    path: str
    findings: list[Finding]  # the findings whose edits were applied
    edits: int


@dataclass
class ApplyReport:
    """What `apply()` (or a dry run) did: files changed, and the findings still open afterwards."""

    changed: list[FileChange] = field(default_factory=list)
    # Not applied: manual findings, unsafe ones without --unsafe, and findings whose edits overlapped
    # an edit applied before them (planning again after this apply picks those up).
    remaining: list[Finding] = field(default_factory=list)
    conflicts: list[Finding] = field(default_factory=list)
    written: bool = False

    @property
    def fixed(self) -> int:
        return sum(len(c.findings) for c in self.changed)


@dataclass(frozen=True)
class _Prepared:
    rel: str
    target: Path  # real path inside the root (symlinks inside the root resolved)
    original: bytes
    old: DecodedFile
    new_text: str
    new_bytes: bytes
    findings: list[Finding]
    edits: int


def is_applicable(finding: Finding, unsafe: bool) -> bool:
    if not finding.edits:
        return False
    if finding.applicability is Applicability.SAFE:
        return True
    return unsafe and finding.applicability is Applicability.UNSAFE


def check_relative_path(rel: str) -> None:
    """Refuse a plan path that could point outside the root before it is ever joined to it."""
    p = PurePosixPath(rel)
    if (
        not rel
        or "\x00" in rel
        or "\\" in rel
        or p.is_absolute()
        or PureWindowsPath(rel).drive
        or ".." in p.parts
        or rel == "."
    ):
        raise InputError(f"refusing path {rel!r}: plan paths must be relative to the root, without '..'")


def scan_base(root: str | Path) -> Path:
    """The folder finding paths are relative to: the root itself, or its folder when a file was planned."""
    path = Path(root)
    return path.parent if path.is_file() else path


def resolve_inside(root: Path, rel: str) -> Path:
    """The real path of `rel` under `root`; an error if it (or a symlink on the way) leaves the root.

    When `root` is a single file, that file is the only path allowed.
    """
    check_relative_path(rel)
    if Path(root).is_file():
        if rel != Path(root).name:
            raise InputError(f"refusing {rel}: the plan was made for the single file {root}")
        root = Path(root).parent
    real_root = Path(os.path.realpath(root))
    real = Path(os.path.realpath(real_root / rel))
    if not real.is_relative_to(real_root):
        raise InputError(f"refusing {rel}: it resolves outside {real_root} (through a symlink)")
    return real


def _overlaps(a: Edit, b: Edit) -> bool:
    if a == b:
        return False  # two findings proposing the same edit: apply it once
    if a.start == a.end == b.start == b.end:
        return True  # two different insertions at one point: order would be a guess
    return a.start < b.end and b.start < a.end


def _select_edits(
    findings: list[Finding], size: int, rel: str
) -> tuple[list[Finding], list[Finding], list[Edit]]:
    """Pick the findings whose edits fit together; the first one (by position) wins an overlap."""
    accepted: list[Finding] = []
    conflicts: list[Finding] = []
    edits: list[Edit] = []
    for f in sorted(findings, key=lambda f: (min(e.start for e in f.edits), f.line, f.column, f.code)):
        for e in f.edits:
            if not 0 <= e.start <= e.end <= size:
                raise StaleFileError(
                    f"{rel}: an edit of {f.code} at {f.line}:{f.column} lies outside the file; plan again"
                )
        own = list(dict.fromkeys(f.edits))
        if any(_overlaps(a, b) for i, a in enumerate(own) for b in own[i + 1 :]) or any(
            _overlaps(a, b) for a in own for b in edits
        ):
            conflicts.append(f)
            continue
        accepted.append(f)
        edits.extend(e for e in own if e not in edits)
    return accepted, conflicts, edits


def apply_edits(text: str, edits: Iterable[Edit]) -> str:
    """Apply non-overlapping edits. Line endings inside replacements follow the file's (CRLF stays CRLF)."""
    crlf = "\r\n" in text and text.count("\r\n") == text.count("\n")
    out = text
    # Back to front, so the offsets of the edits not yet applied stay valid.
    for e in sorted(edits, key=lambda e: (e.start, e.end), reverse=True):
        repl = _BARE_LF.sub("\r\n", e.replacement) if crlf else e.replacement
        out = out[: e.start] + repl + out[e.end :]
    return out


def _python_error(text: str) -> str | None:
    try:
        ast.parse(text)
    except (SyntaxError, ValueError) as e:
        return f"line {getattr(e, 'lineno', '?')}: {getattr(e, 'msg', e)}"
    return None


def _notebook_cells(text: str) -> list[str]:
    nb = json.loads(text)
    cells = nb.get("cells", []) if isinstance(nb, dict) else []
    out = []
    for c in cells:
        if isinstance(c, dict) and c.get("cell_type") == "code":
            src = c.get("source", "")
            out.append("".join(src) if isinstance(src, list) else str(src))
    return out


def syntax_problem(rel: str, old: str, new: str) -> str | None:
    """Why the edited text is broken, or None. Only formats that parsed before are held to it."""
    suffix = PurePosixPath(rel).suffix.lower()
    if suffix in (".py", ".pyi"):
        err = _python_error(new)
        return f"the edited Python does not parse ({err})" if err else None
    if suffix in (".json", ".ipynb"):
        try:
            json.loads(old)
        except ValueError:
            return None
        try:
            new_cells = _notebook_cells(new) if suffix == ".ipynb" else []
        except ValueError as e:
            return f"the edited JSON does not parse ({e})"
        if suffix == ".ipynb":
            old_cells = _notebook_cells(old)
            for i, (a, b) in enumerate(zip(old_cells, new_cells, strict=False), start=1):
                # Cells with IPython magics never parsed as Python; only hold the others to it.
                if _python_error(a) is None and (err := _python_error(b)) is not None:
                    return f"code cell {i} no longer parses ({err})"
        return None
    if suffix == ".toml":
        try:
            import tomllib
        except ImportError:  # Python 3.10: no TOML parser in the standard library
            return None
        try:
            tomllib.loads(old)
        except ValueError:
            return None
        try:
            tomllib.loads(new)
        except ValueError as e:
            return f"the edited TOML does not parse ({e})"
    return None


def _prepare(result: PlanResult, unsafe: bool, report: ApplyReport) -> list[_Prepared]:
    """Check every file and compute its new text; raise before anything is written if one fails."""
    root = Path(result.root)
    by_file: dict[str, list[Finding]] = {}
    for f in result.findings:
        if is_applicable(f, unsafe):
            by_file.setdefault(f.path, []).append(f)
        else:
            report.remaining.append(f)
    prepared: list[_Prepared] = []
    problems: list[JMigrateError] = []
    for rel in sorted(by_file):
        try:
            target = resolve_inside(root, rel)
            expected = result.file_hashes.get(rel)
            if expected is None:
                raise StaleFileError(f"{rel}: the plan has no hash for this file; plan again")
            try:
                original = target.read_bytes()
            except OSError as e:
                raise StaleFileError(f"{rel}: cannot be read any more ({e.strerror}); plan again") from e
            if hashlib.sha256(original).hexdigest() != expected:
                raise StaleFileError(f"{rel}: changed since it was planned; plan again")
            old = decode_file(original, rel, result.encodings.get(rel))
            accepted, conflicts, edits = _select_edits(by_file[rel], len(old.text), rel)
            new_text = apply_edits(old.text, edits)
            problem = syntax_problem(rel, old.text, new_text)
            if problem:
                raise InputError(f"{rel}: {problem}; not applying (please report this rule bug)")
            new_bytes = old.encode(new_text, rel)
        except JMigrateError as e:
            problems.append(e)
            continue
        report.conflicts.extend(conflicts)
        report.remaining.extend(conflicts)
        if new_text != old.text:
            prepared.append(_Prepared(rel, target, original, old, new_text, new_bytes, accepted, len(edits)))
    if problems:
        more = f" (and {len(problems) - 1} more)" if len(problems) > 1 else ""
        error = StaleFileError if all(isinstance(p, StaleFileError) for p in problems) else InputError
        raise error(f"nothing written: {problems[0]}{more}")
    return prepared


def write_atomic(path: Path, data: bytes, expected_sha256: str | None = None) -> None:
    """Replace (or create) `path` with `data`, keeping what identifies and protects the file.

    Normally through a temporary file in the same folder (fsync, `os.replace`) that is first given the old
    file's owner, group, extended attributes (POSIX ACLs live there) and mode, so a reader sees the old
    file or the new one and nothing else changes. When the new file cannot carry the same identity (a
    hard link elsewhere would keep the old text; a user who may write the file but not chown it would
    become its owner; an attribute cannot be copied), the file is rewritten in place instead: see
    `_write_in_place`.

    With `expected_sha256`, the file is hashed again just before the swap so that an editor saving
    the file while we worked is not overwritten.
    """
    try:
        st: os.stat_result | None = path.stat()
    except FileNotFoundError:  # a new file (a report)
        st = None
    if st is not None and st.st_nlink > 1:
        _write_in_place(path, data, expected_sha256)
        return
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".jmigrate-tmp")
    try:
        with os.fdopen(fd, "wb") as fh:
            fh.write(data)
            fh.flush()
            os.fsync(fh.fileno())
            if st is not None and not _same_identity(fh.fileno(), path, st):
                raise _NeedsInPlace
        if st is None:  # the permissions a plain open() would give it
            umask = os.umask(0)
            os.umask(umask)
            os.chmod(tmp, 0o666 & ~umask)
        if expected_sha256 is not None and hashlib.sha256(path.read_bytes()).hexdigest() != expected_sha256:
            raise StaleFileError(f"{path.name}: changed while jmigrate was writing it; plan again")
        os.replace(tmp, path)
    except _NeedsInPlace:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        _write_in_place(path, data, expected_sha256)
        return
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        raise
    _fsync_dir(path.parent)


class _NeedsInPlace(Exception):
    """The temporary file cannot be given the original's owner, group or attributes."""


def _same_identity(fd: int, original: Path, st: os.stat_result) -> bool:
    """Give the open temporary file `original`'s owner, group, extended attributes and mode (in that
    order: chown clears set-id bits, and setting an ACL rewrites the group bits). False if one cannot be
    copied."""
    mine = os.fstat(fd)
    try:
        if (mine.st_uid, mine.st_gid) != (st.st_uid, st.st_gid):
            os.fchown(fd, st.st_uid, st.st_gid)
        if hasattr(os, "listxattr"):
            try:
                names = os.listxattr(original)
            except OSError as e:  # a file system without extended attributes has none to keep
                if e.errno not in (errno.ENOTSUP, errno.EOPNOTSUPP):
                    raise
                names = []
            for name in names:
                os.setxattr(fd, name, os.getxattr(original, name))
        os.fchmod(fd, stat.S_IMODE(st.st_mode))
    except OSError:
        return False
    return True


def _write_in_place(path: Path, data: bytes, expected_sha256: str | None) -> None:
    """Rewrite the file's own inode, so its hard links, owner, group, mode and attributes stay as they are.

    Not atomic for readers, so it is made recoverable: the old bytes are first written and fsynced to a
    private backup next to the file; the backup is removed once the new bytes are on disk. If writing
    fails, the old bytes are put back; if even that fails, the error names the backup.
    """
    old = path.read_bytes()
    if expected_sha256 is not None and hashlib.sha256(old).hexdigest() != expected_sha256:
        raise StaleFileError(f"{path.name}: changed while jmigrate was writing it; plan again")
    fd, backup = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".jmigrate-backup")
    with os.fdopen(fd, "wb") as fh:  # mkstemp: mode 0600, readable by nobody else
        fh.write(old)
        fh.flush()
        os.fsync(fh.fileno())
    _fsync_dir(path.parent)
    try:
        _overwrite(path, data)
    except BaseException:
        try:
            _overwrite(path, old)
        except OSError as e:
            raise InputError(f"{path.name}: writing failed and the old text could not be put back; it is "
                             f"in {backup}") from e
        os.unlink(backup)
        raise
    os.unlink(backup)


def _overwrite(path: Path, data: bytes) -> None:
    with open(path, "r+b") as fh:
        fh.write(data)
        fh.truncate()
        fh.flush()
        os.fsync(fh.fileno())


def _fsync_dir(folder: Path) -> None:
    # Make a rename durable (POSIX only; directories cannot be opened on Windows).
    with contextlib.suppress(OSError):
        dir_fd = os.open(folder, os.O_RDONLY)
        try:
            os.fsync(dir_fd)
        finally:
            os.close(dir_fd)


def _diff_lines(rel: str, old: str, new: str) -> Iterable[str]:
    lines = difflib.unified_diff(
        old.splitlines(keepends=True), new.splitlines(keepends=True), f"a/{rel}", f"b/{rel}"
    )
    for line in lines:
        if line.endswith("\n"):
            yield line
        else:
            # Like git: mark a last line that has no newline, and keep the diff line-oriented.
            yield line + "\n\\ No newline at end of file\n"


def diff(result: PlanResult, unsafe: bool = False) -> str:
    """A unified diff (a/ b/ prefixes, as git prints) of what `apply()` would change."""
    report = ApplyReport()
    chunks: list[str] = []
    for p in _prepare(result, unsafe, report):
        chunks.extend(_diff_lines(p.rel, p.old.text, p.new_text))
    return "".join(chunks)


def apply(result: PlanResult, unsafe: bool = False, dry_run: bool = False) -> ApplyReport:
    """Write the safe edits (and the unsafe ones with `unsafe=True`) of `result` to its files."""
    report = ApplyReport()
    prepared = _prepare(result, unsafe, report)
    written: dict[tuple[int, int], bytes] = {}  # (device, inode) -> the bytes written there
    for p in prepared:
        try:
            st = p.target.stat()
            inode: tuple[int, int] | None = (st.st_dev, st.st_ino)
        except OSError:
            inode = None
        if inode is not None and inode in written and written[inode] == p.new_bytes:
            # Two names (hard links) of one file in the tree: written once, through the first name.
            report.changed.append(FileChange(p.rel, p.findings, p.edits))
            continue
        if inode is not None:
            written[inode] = p.new_bytes
        if not dry_run:
            try:
                write_atomic(p.target, p.new_bytes, hashlib.sha256(p.original).hexdigest())
            except OSError as e:
                # The files before this one are written (each atomically); say which, so a rerun is informed.
                done = ", ".join(c.path for c in report.changed) or "none"
                raise InputError(f"{p.rel}: cannot write ({e.strerror or e}); left unchanged. Already "
                                 f"written: {done}. Plan again after fixing the cause") from e
        report.changed.append(FileChange(p.rel, p.findings, p.edits))
    report.written = not dry_run and bool(prepared)
    return report


def load_plan(plan_file: str | Path, root: str | Path) -> PlanResult:
    """Read a plan saved by `plan --format json` for `root`: schema-checked, paths confined to the root."""
    from jmigrate.scan.render.plan_json import plan_from_dict

    try:
        data = json.loads(Path(plan_file).read_text("utf-8"))
    except OSError as e:
        raise InputError(f"cannot read plan {plan_file}: {e.strerror}") from e
    except ValueError as e:
        raise InputError(f"{plan_file}: not a JSON plan ({e})") from e
    result = plan_from_dict(data)
    # Skipped files are never written, so only the paths apply could touch are checked.
    for rel in sorted({*(f.path for f in result.findings), *result.file_hashes}):
        check_relative_path(rel)
    if os.path.realpath(result.root) != os.path.realpath(root):
        raise InputError(f"{plan_file} was planned for {result.root}, not {Path(root).resolve()}; plan again")
    return result
