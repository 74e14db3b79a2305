"""A prepared `--out` folder must never make jmigrate delete, truncate or write a file outside it.

Symbolic (and hard) links inside `--out`, and paths in a manifest that are not plain shard names, are
refused with one line naming the path; the file they point at is left exactly as it was.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from jmigrate.cli.app import main
from jmigrate.fileio import atomic_write

ARGS = ["--encoder", "fake", "--dimensions", "32", "--unit-rows", "8", "--shard-rows", "24", "--quiet"]


def corpus(path: Path, n: int = 60) -> Path:
    with open(path, "w", encoding="utf-8") as f:
        for i in range(n):
            f.write(json.dumps({"id": f"d{i}", "text": f"row {i} about subject {i % 7}"}) + "\n")
    return path


def run(src: Path, out: Path, *extra: str) -> int:
    return main(["reindex", str(src), "--out", str(out), *ARGS, *extra])


@pytest.fixture
def precious(tmp_path: Path) -> Path:
    """A folder of the user's files outside --out."""
    d = tmp_path / "precious"
    d.mkdir()
    (d / "a.txt").write_text("keep me")
    (d / "unit-000000000.arrow").write_text("looks like a journal unit but is the user's")
    (d / "part-00000.parquet").write_text("user's own file")
    return d


def snapshot(folder: Path) -> dict[str, bytes]:
    return {p.name: p.read_bytes() for p in sorted(folder.iterdir())}


def err_line(capsys: pytest.CaptureFixture[str]) -> str:
    """stderr with line wrapping undone (a wrap may fall inside a path): compare without spaces."""
    return "".join(capsys.readouterr().err.split())


@pytest.mark.parametrize("restart", [False, True])
def test_work_folder_symlink_is_refused_and_its_target_kept(
        tmp_path: Path, precious: Path, capsys: pytest.CaptureFixture[str], restart: bool) -> None:
    src = corpus(tmp_path / "c.jsonl")
    out = tmp_path / "out"
    assert run(src, out) == 0
    before = snapshot(precious)
    # an interrupted-looking folder whose journal folder is a link to the user's files
    m = json.loads((out / "manifest.json").read_text())
    m["status"] = "interrupted"
    (out / "manifest.json").write_text(json.dumps(m))
    (out / ".jmigrate-work").symlink_to(precious)
    capsys.readouterr()
    assert run(src, out, *(["--restart"] if restart else [])) == 2
    err = err_line(capsys)
    assert ".jmigrate-work" in err and "link" in err and "Traceback" not in err
    assert snapshot(precious) == before


def test_work_folder_symlink_on_a_fresh_folder(tmp_path: Path, precious: Path,
                                               capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "out"
    out.mkdir()
    (out / ".jmigrate-work").symlink_to(precious)
    before = snapshot(precious)
    assert run(corpus(tmp_path / "c.jsonl"), out) == 2
    assert ".jmigrate-work" in err_line(capsys)
    assert snapshot(precious) == before


def test_lock_symlink_does_not_truncate_its_target(tmp_path: Path, precious: Path,
                                                   capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "out"
    out.mkdir()
    (out / ".jmigrate.lock").symlink_to(precious / "a.txt")
    assert run(corpus(tmp_path / "c.jsonl"), out) == 2
    err = err_line(capsys)
    assert ".jmigrate.lock" in err and "link" in err
    assert (precious / "a.txt").read_text() == "keep me"


def test_lock_hard_link_does_not_truncate_the_other_name(tmp_path: Path, precious: Path,
                                                         capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "out"
    out.mkdir()
    os.link(precious / "a.txt", out / ".jmigrate.lock")
    assert run(corpus(tmp_path / "c.jsonl"), out) == 2
    assert ".jmigrate.lock" in err_line(capsys)
    assert (precious / "a.txt").read_text() == "keep me"


@pytest.mark.parametrize("name", ["rejects.jsonl", "manifest.json", "part-00000.parquet",
                                  ".part-00001.parquet.tmp-99", ".manifest.json.tmp-99"])
def test_symlinks_among_our_files_are_refused(tmp_path: Path, precious: Path, name: str,
                                              capsys: pytest.CaptureFixture[str]) -> None:
    src = corpus(tmp_path / "c.jsonl")
    out = tmp_path / "out"
    assert run(src, out) == 0
    m = json.loads((out / "manifest.json").read_text())
    m["status"] = "interrupted"
    (out / "manifest.json").write_text(json.dumps(m))
    target = precious / "a.txt"
    if (out / name).exists():
        (out / name).unlink()
    (out / name).symlink_to(target)
    before = snapshot(precious)
    capsys.readouterr()
    for extra in ([], ["--restart"]):
        assert run(src, out, *extra) == 2
        err = err_line(capsys)
        assert name in err and "link" in err and "Traceback" not in err
    assert snapshot(precious) == before
    assert (out / name).is_symlink()  # not ours to remove either: the user decides


def test_rejects_hard_link_is_unshared_not_truncated(tmp_path: Path, precious: Path,
                                      capsys: pytest.CaptureFixture[str]) -> None:
    src = corpus(tmp_path / "c.jsonl")
    out = tmp_path / "out"
    assert run(src, out) == 0
    os.link(precious / "a.txt", out / "rejects.jsonl")
    m = json.loads((out / "manifest.json").read_text())
    m["status"], m["checkpoint"]["rejects_bytes"] = "interrupted", 0
    (out / "manifest.json").write_text(json.dumps(m))
    # a hard link is what `cp -al out backup` makes: jmigrate gives rejects.jsonl its own copy first
    assert run(src, out) == 0
    assert (precious / "a.txt").read_text() == "keep me"
    assert not (out / "rejects.jsonl").samefile(precious / "a.txt")


def test_journal_entries_that_are_links_are_refused(tmp_path: Path, precious: Path,
                                                    capsys: pytest.CaptureFixture[str]) -> None:
    src = corpus(tmp_path / "c.jsonl")
    out = tmp_path / "out"
    assert run(src, out) == 0
    m = json.loads((out / "manifest.json").read_text())
    m["status"] = "interrupted"
    (out / "manifest.json").write_text(json.dumps(m))
    work = out / ".jmigrate-work"
    work.mkdir()
    (work / "unit-000000000.arrow").symlink_to(precious / "unit-000000000.arrow")
    before = snapshot(precious)
    assert run(src, out) == 2
    assert "unit-000000000.arrow" in err_line(capsys)
    assert snapshot(precious) == before


@pytest.mark.parametrize("file", ["../precious/a.txt", "/etc/hostname", "rejects.jsonl", "manifest.json",
                                  "sub/part-00000.parquet", "part-00000.parquet/..", "", 7, None,
                                  "..\\part-00000.parquet"])
def test_manifest_shard_paths_outside_the_folder_are_tampering(
        tmp_path: Path, precious: Path, file: object, capsys: pytest.CaptureFixture[str]) -> None:
    src = corpus(tmp_path / "c.jsonl")
    out = tmp_path / "out"
    assert run(src, out) == 0
    (out / "rejects.jsonl").write_text("")
    m = json.loads((out / "manifest.json").read_text())
    m["shards"][0]["file"] = file
    m["shards"][0]["sha256"] = "0" * 64  # a wrong digest made the old code delete the file
    (out / "manifest.json").write_text(json.dumps(m))
    before = snapshot(precious)
    out_before = snapshot(out)
    capsys.readouterr()
    assert run(src, out) == 2
    err = err_line(capsys)
    assert "manifest.json" in err and "shard" in err and "Traceback" not in err
    assert snapshot(precious) == before
    assert snapshot(out) == out_before  # nothing inside --out was touched either
    # verify refuses the same manifest rather than reading outside the folder
    assert main(["verify", "--v2", str(out), "--v3", str(out), "--queries", str(src)]) == 2
    assert "shard" in err_line(capsys)


def test_a_shard_listed_twice_is_tampering(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    src = corpus(tmp_path / "c.jsonl")
    out = tmp_path / "out"
    assert run(src, out) == 0
    m = json.loads((out / "manifest.json").read_text())
    m["shards"].append(dict(m["shards"][0]))
    (out / "manifest.json").write_text(json.dumps(m))
    assert run(src, out) == 2
    assert "twice" in err_line(capsys)


def test_out_itself_may_be_a_symlink_the_user_named(tmp_path: Path) -> None:
    src = corpus(tmp_path / "c.jsonl")
    real = tmp_path / "real"
    real.mkdir()
    link = tmp_path / "link"
    link.symlink_to(real)
    assert run(src, link) == 0
    assert (real / "manifest.json").is_file() and any(real.glob("part-*.parquet"))
    assert run(src, link) == 0  # resumable / complete through the same link


def test_atomic_write_never_writes_through_a_planted_temp_name(tmp_path: Path, precious: Path) -> None:
    """Report files, run files and `plan -o` go through atomic_write: a temp name planted as a link to
    another file must not truncate it."""
    for pid_name in (f".report.html.tmp-{os.getpid()}", f".report.html.tmp{os.getpid()}"):
        (tmp_path / pid_name).symlink_to(precious / "a.txt")
    atomic_write(tmp_path / "report.html", b"<html>")
    assert (tmp_path / "report.html").read_bytes() == b"<html>"
    assert (precious / "a.txt").read_text() == "keep me"


def test_atomic_write_replaces_a_link_rather_than_writing_through_it(tmp_path: Path, precious: Path) -> None:
    (tmp_path / "plan.json").symlink_to(precious / "a.txt")
    atomic_write(tmp_path / "plan.json", b"{}")
    assert not (tmp_path / "plan.json").is_symlink() and (tmp_path / "plan.json").read_bytes() == b"{}"
    assert (precious / "a.txt").read_text() == "keep me"


def test_atomic_write_keeps_the_mode_of_the_file_it_replaces(tmp_path: Path) -> None:
    p = tmp_path / "plan.txt"
    p.write_text("old")
    p.chmod(0o600)
    atomic_write(p, b"new")
    assert p.read_bytes() == b"new" and (p.stat().st_mode & 0o777) == 0o600


def test_plan_output_goes_through_the_safe_atomic_write(tmp_path: Path, precious: Path) -> None:
    tree = tmp_path / "proj"
    tree.mkdir()
    (tree / "app.py").write_text('MODEL = "jina-embeddings-v2-base-en"\n')
    report = tmp_path / "plan.json"
    report.symlink_to(precious / "a.txt")
    assert main(["plan", str(tree), "--format", "json", "-o", str(report)]) == 1
    assert (precious / "a.txt").read_text() == "keep me"
    assert json.loads(report.read_text())["findings"]


def test_out_naming_a_file_is_one_clear_line(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "index.parquet"
    out.write_text("a file")
    assert run(corpus(tmp_path / "c.jsonl"), out) == 2
    err = err_line(capsys)
    assert "isafile" in err and "diskspace" not in err
    assert out.read_text() == "a file"


def test_atomic_write_never_replaces_a_device_or_fifo(tmp_path: Path,
                                                     capsys: pytest.CaptureFixture[str]) -> None:
    """`-o /dev/null` run as root replaced the device node with a regular file (it broke /dev/null for the
    whole machine): atomic_write refuses such a target, and a user-named output that is a stream (a
    FIFO, /dev/null, /dev/stdout: a link to one) is written as a stream, never replaced."""
    import json
    import stat
    import threading

    from jmigrate.errors import JMigrateError

    fifo = tmp_path / "out.fifo"
    os.mkfifo(fifo)
    with pytest.raises(JMigrateError, match="not a regular file"):
        atomic_write(fifo, b"x")
    assert stat.S_ISFIFO(os.lstat(fifo).st_mode)
    tree = tmp_path / "proj"
    tree.mkdir()
    (tree / "app.py").write_text('MODEL = "jina-embeddings-v2-base-en"\n')
    got: list[bytes] = []
    reader = threading.Thread(target=lambda: got.append(fifo.read_bytes()), daemon=True)
    reader.start()
    assert main(["plan", str(tree), "--format", "json", "-o", str(fifo)]) == 1  # findings
    reader.join(timeout=30)
    assert json.loads(got[0])["findings"] and stat.S_ISFIFO(os.lstat(fifo).st_mode)
    # a link to /dev/null (as /dev/stdout is a link): written through, the link and the device kept
    # (a link to a regular file is replaced instead: test_plan_output_goes_through_the_safe_atomic_write)
    link = tmp_path / "null-link"
    link.symlink_to("/dev/null")
    assert main(["plan", str(tree), "--format", "json", "-o", str(link)]) == 1
    assert link.is_symlink() and stat.S_ISCHR(os.lstat("/dev/null").st_mode)
    capsys.readouterr()
