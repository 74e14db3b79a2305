"""`apply` keeps who owns a file and how it is shared: owner, group, mode, extended attributes (ACLs live
there) and hard links. A rewrite that changed any of them would lock a user out of their own file or
silently fork a hard-linked file into two different ones.
"""

from __future__ import annotations

import os
import stat
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from jmigrate.scan.apply import apply
from jmigrate.scan.plan import plan

SOURCE = 'import requests\nrequests.post("https://api.jina.ai/v1/embeddings", json={"model": "m", ' \
    '"input": [], "encoding_format": "float"})\n'
FIXED = SOURCE.replace("encoding_format", "embedding_type")

root_only = pytest.mark.skipif(not hasattr(os, "geteuid") or os.geteuid() != 0, reason="needs root")


def _make(tmp_path: Path, mode: int = 0o600) -> Path:
    path = tmp_path / "client.py"
    path.write_text(SOURCE)
    os.chmod(path, mode)
    return path


def _apply(tmp_path: Path) -> None:
    report = apply(plan(tmp_path, select=["JM203"]))
    assert report.fixed == 1


@root_only
@pytest.mark.parametrize("mode", [0o600, 0o640, 0o2755, 0o444])
def test_root_keeps_another_users_owner_group_and_mode(tmp_path: Path, mode: int) -> None:
    path = _make(tmp_path, mode)
    os.chown(path, 4242, 4343)
    os.chmod(path, mode)  # chown clears set-id bits: set the mode after it
    _apply(tmp_path)
    st = path.stat()
    assert (st.st_uid, st.st_gid, stat.S_IMODE(st.st_mode)) == (4242, 4343, mode)
    assert path.read_text() == FIXED


def test_mode_is_kept(tmp_path: Path) -> None:
    path = _make(tmp_path, 0o751)
    _apply(tmp_path)
    assert stat.S_IMODE(path.stat().st_mode) == 0o751 and path.read_text() == FIXED


def test_a_hard_link_stays_one_file(tmp_path: Path) -> None:
    # Documented choice: a file with other names is rewritten in place (after a durable copy of the old
    # bytes next to it, removed once the new bytes are on disk), so every name sees the new text.
    project, other = tmp_path / "project", tmp_path / "elsewhere"
    project.mkdir()
    other.mkdir()
    path = _make(project)
    os.link(path, other / "same-file.py")
    inode = path.stat().st_ino
    _apply(project)
    assert path.stat().st_ino == inode == (other / "same-file.py").stat().st_ino
    assert (other / "same-file.py").read_text() == FIXED
    assert [p.name for p in project.iterdir()] == ["client.py"]  # no backup or temporary file left


def test_two_names_of_one_file_in_the_tree_are_rewritten_once(tmp_path: Path) -> None:
    path = _make(tmp_path)
    (tmp_path / "sub").mkdir()
    os.link(path, tmp_path / "sub" / "alias.py")
    report = apply(plan(tmp_path, select=["JM203"]))
    assert sorted(c.path for c in report.changed) == ["client.py", "sub/alias.py"]
    assert path.read_text() == FIXED == (tmp_path / "sub" / "alias.py").read_text()
    assert path.stat().st_ino == (tmp_path / "sub" / "alias.py").stat().st_ino


def _xattrs_supported(path: Path) -> bool:
    try:
        os.setxattr(path, "user.jmigrate-test", b"1")
    except (OSError, AttributeError):
        return False
    os.removexattr(path, "user.jmigrate-test")
    return True


def test_extended_attributes_are_kept(tmp_path: Path) -> None:
    path = _make(tmp_path)
    if not _xattrs_supported(path):
        pytest.skip("no user extended attributes on this file system")
    os.setxattr(path, "user.origin", b"downloaded")
    _apply(tmp_path)
    assert os.getxattr(path, "user.origin") == b"downloaded"
    assert path.read_text() == FIXED


@pytest.fixture
def shared_dir() -> Iterator[Path]:
    # pytest's tmp_path sits in a folder only root may enter; uid 4242 needs a way in.
    with tempfile.TemporaryDirectory(prefix="jmigrate-own-") as d:
        os.chmod(d, 0o777)
        yield Path(d)


@root_only
def test_a_user_who_may_write_but_not_chown_keeps_the_owner(shared_dir: Path) -> None:
    # uid 4242 may write the root-owned file through its group; a new file of its own in place of the old
    # one would hand the file to 4242. The file is rewritten in place instead.
    tmp_path = shared_dir
    path = _make(tmp_path, 0o664)
    os.chown(path, 0, 4343)
    result = plan(tmp_path, select=["JM203"], stores=False)  # imports everything before the fork
    pid = os.fork()
    if pid == 0:  # the child becomes uid 4242 (its Python installation may not be readable by 4242)
        code = 5
        try:
            os.setgroups([4343])
            os.setgid(4343)
            os.setuid(4242)
            code = 0 if apply(result).fixed == 1 else 6
        finally:
            os._exit(code)
    _, status = os.waitpid(pid, 0)
    assert os.waitstatus_to_exitcode(status) == 0
    st = path.stat()
    assert (st.st_uid, st.st_gid, stat.S_IMODE(st.st_mode)) == (0, 4343, 0o664)
    assert path.read_text() == FIXED
