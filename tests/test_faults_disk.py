"""Faults of the disk and the output folder: a full disk mid-shard or mid-manifest, a shard or manifest
damaged after the fact, leftovers of a crash. Each is one clear line (exit 2) or repaired on the next
run, and the final index is byte-identical to an uninterrupted run's."""

from __future__ import annotations

import errno
import json
import os
import threading
from pathlib import Path
from typing import Any

import pytest

from jmigrate.cli.app import main
from jmigrate.index import pipeline
from jmigrate.index.shards import ShardWriter, sha256_file

ARGS = ["--encoder", "fake", "--dimensions", "32", "--unit-rows", "8", "--shard-rows", "40", "--quiet"]


def corpus(path: Path, n: int = 150) -> Path:
    with open(path, "w", encoding="utf-8") as f:
        for i in range(n):
            text = "" if i % 23 == 4 else f"row {i} about subject {i % 9}"  # some rejects
            f.write(json.dumps({"id": f"d{i}", "text": text, "n": i}) + "\n")
    return path


def run(src: Path, out: Path, *extra: str) -> int:
    return main(["reindex", str(src), "--out", str(out), *ARGS, *extra])


def files(out: Path) -> dict[str, bytes]:
    """Every file a user keeps (shards, rejects) plus the manifest without its run-specific fields."""
    got = {p.name: p.read_bytes() for p in sorted(out.glob("part-*.parquet"))}
    got["rejects.jsonl"] = (out / "rejects.jsonl").read_bytes()
    m = json.loads((out / "manifest.json").read_text())
    for k in ("started_at", "finished_at", "usage"):
        m.pop(k)
    got["manifest"] = json.dumps(m, sort_keys=True).encode()
    return got


Ref = tuple[Path, dict[str, bytes], dict[str, Any]]  # source, files of an uninterrupted run, its manifest


@pytest.fixture
def ref(tmp_path: Path) -> Ref:
    src = corpus(tmp_path / "c.jsonl")
    assert run(src, tmp_path / "ref") == 1  # 1: rows rejected
    manifest = json.loads((tmp_path / "ref" / "manifest.json").read_text())
    assert len(manifest["shards"]) >= 3
    return src, files(tmp_path / "ref"), manifest


def enospc(*_: object, **__: object) -> None:
    raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))


def test_full_disk_during_a_shard_write_is_one_line_and_a_rerun_completes_identically(
        tmp_path: Path, ref: Ref, monkeypatch, capsys) -> None:  # type: ignore[no-untyped-def]
    src, want, _ = ref
    out = tmp_path / "o"
    calls = {"n": 0}
    real = ShardWriter.write

    def write(self: ShardWriter, table: Any) -> None:
        calls["n"] += 1
        if calls["n"] == 4:  # a row group of the 2nd or 3rd shard
            enospc()
        real(self, table)

    monkeypatch.setattr(ShardWriter, "write", write)
    capsys.readouterr()
    assert run(src, out) == 2
    err = " ".join(capsys.readouterr().err.split())
    assert "Traceback" not in err
    assert "No space left on device" in err and "run the same command again to resume" in err
    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest["status"] == "failed" and manifest["shards"]
    for rec in manifest["shards"]:  # the shards committed before the failure are whole
        assert sha256_file(out / rec["file"]) == rec["sha256"]
    assert not [p for p in out.iterdir() if p.name.startswith(".part-")], "the half shard was left behind"
    # no stage thread is left writing into the folder after the run let go of its lock
    assert not [t for t in threading.enumerate() if t.name.startswith("reindex-")]
    monkeypatch.setattr(ShardWriter, "write", real)
    assert run(src, out) == 1
    assert files(out) == want


def test_full_disk_while_the_manifest_is_replaced(tmp_path: Path, ref: Ref,
                                                 monkeypatch, capsys) -> None:  # type: ignore[no-untyped-def]
    src, want, _ = ref
    out = tmp_path / "o"
    real = pipeline.write_manifest
    calls = {"n": 0}

    def write_manifest(folder: Path, m: dict[str, Any]) -> None:
        calls["n"] += 1
        if calls["n"] >= 3:  # the first shard's commit is the 3rd write; every later one fails too
            enospc()
        real(folder, m)

    monkeypatch.setattr(pipeline, "write_manifest", write_manifest)
    capsys.readouterr()
    assert run(src, out) == 2
    err = " ".join(capsys.readouterr().err.split())
    assert "Traceback" not in err and "No space left on device" in err
    monkeypatch.setattr(pipeline, "write_manifest", real)
    assert run(src, out) == 1  # the shard renamed in but never recorded is deleted and made again
    assert files(out) == want


@pytest.mark.parametrize("damage", ["truncate", "flip", "delete"])
def test_a_damaged_shard_is_found_by_its_sha256_and_made_again(
        tmp_path: Path, ref: Ref, damage: str, capsys) -> None:  # type: ignore[no-untyped-def]
    src, want, ref_manifest = ref
    out = tmp_path / "o"
    assert run(src, out) == 1
    shard = out / ref_manifest["shards"][1]["file"]
    if damage == "truncate":
        with open(shard, "r+b") as f:
            f.truncate(shard.stat().st_size // 2)
    elif damage == "flip":  # same size, one byte changed in the middle: only the hash sees it
        data = bytearray(shard.read_bytes())
        data[len(data) // 2] ^= 0xFF
        shard.write_bytes(bytes(data))
    else:
        shard.unlink()
    tokens_before = json.loads((out / "manifest.json").read_text())["usage"]["tokens"]
    capsys.readouterr()
    assert run(src, out) == 1
    err = " ".join(capsys.readouterr().err.split())
    assert f"note: {shard.name} is" in err and "made again" in err
    assert files(out) == want
    # only the damaged shard and the ones after it were paid for again, not the first
    usage = json.loads((out / "manifest.json").read_text())["usage"]
    assert tokens_before < usage["tokens"] < 2 * tokens_before


def test_a_rejects_file_cut_short_is_repaired_from_the_shard_that_lost_lines(tmp_path: Path, ref: Ref,
                                                                              capsys) -> None:  # type: ignore[no-untyped-def]
    src, want, ref_manifest = ref
    out = tmp_path / "o"
    assert run(src, out) == 1
    ends = [s["rejects_end"] for s in ref_manifest["shards"]]
    assert ends == sorted(ends) and ends[-1] == (out / "rejects.jsonl").stat().st_size
    with open(out / "rejects.jsonl", "r+b") as f:  # cut inside the lines of the 3rd shard
        f.truncate(ends[1] + 5)
    capsys.readouterr()
    assert run(src, out) == 1
    err = " ".join(capsys.readouterr().err.split())
    assert "rejects.jsonl is shorter than recorded" in err
    assert f"{ref_manifest['shards'][2]['file']} and the {len(ends) - 3} shard(s) after it" in err
    assert files(out) == want


def test_a_damaged_shard_of_an_interrupted_run_is_redone_too(tmp_path: Path,
                                                            ref: Ref,
                                                            monkeypatch) -> None:  # type: ignore[no-untyped-def]
    src, want, _ = ref
    out = tmp_path / "o"
    real = ShardWriter.commit
    calls = {"n": 0}

    def commit(self: ShardWriter) -> dict[str, Any]:
        calls["n"] += 1
        if calls["n"] == 3:
            raise KeyboardInterrupt
        return real(self)

    monkeypatch.setattr(ShardWriter, "commit", commit)
    assert run(src, out) == 130
    monkeypatch.setattr(ShardWriter, "commit", real)
    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest["status"] == "interrupted" and len(manifest["shards"]) == 2
    (out / manifest["shards"][0]["file"]).write_bytes(b"PAR1 not a shard")
    assert run(src, out) == 1
    assert files(out) == want


def test_a_garbled_manifest_is_explained_and_restart_recovers(
        tmp_path: Path, ref: Ref, capsys) -> None:  # type: ignore[no-untyped-def]
    src, want, _ = ref
    out = tmp_path / "o"
    assert run(src, out) == 1
    (out / "manifest.json").write_text('{"format": "jmigrate-ind')
    capsys.readouterr()
    assert run(src, out) == 2
    err = " ".join(capsys.readouterr().err.split())
    assert "manifest.json" in err and "--restart" in err and "Traceback" not in err
    assert run(src, out, "--restart") == 1
    assert files(out) == want


def test_a_manifest_missing_a_key_is_an_error_not_a_traceback(
        tmp_path: Path, ref: Ref, capsys) -> None:  # type: ignore[no-untyped-def]
    src, want, _ = ref
    out = tmp_path / "o"
    assert run(src, out) == 1
    m = json.loads((out / "manifest.json").read_text())
    del m["checkpoint"]
    (out / "manifest.json").write_text(json.dumps(m))
    capsys.readouterr()
    assert run(src, out) == 2
    err = " ".join(capsys.readouterr().err.split())
    assert "'checkpoint' is missing" in err and "--restart" in err
    assert run(src, out, "--restart") == 1
    assert files(out) == want


def test_stray_temp_files_of_a_crash_are_cleaned(tmp_path: Path,
                                                 ref: Ref) -> None:
    src, want, _ = ref
    out = tmp_path / "o"
    out.mkdir()
    (out / ".part-00000.parquet.tmp-4242").write_bytes(b"half a shard")
    (out / ".manifest.json.tmp-4242").write_bytes(b'{"format"')
    (out / "part-00007.parquet").write_bytes(b"renamed but never recorded")
    # a fresh folder with only leftovers: refused as holding shards without a manifest
    assert run(src, out) == 2
    assert run(src, out, "--restart") == 1
    work = out / ".jmigrate-work"
    work.mkdir()
    (work / ".unit-000000003.arrow.tmp").write_bytes(b"half a unit")
    (work / "unit-000000099.arrow").write_bytes(b"not arrow")
    (out / ".part-00002.parquet.tmp-1").write_bytes(b"x")
    assert run(src, out) == 1  # complete: nothing redone, leftovers removed
    assert sorted(p.name for p in out.iterdir() if p.name.startswith(".")) == [".jmigrate.lock"]
    assert files(out) == want


def test_a_real_full_filesystem(tmp_path: Path, ref: Ref, capsys) -> None:  # type: ignore[no-untyped-def]
    """A tiny tmpfs really fills up (root only; elsewhere the monkeypatched tests above stand in)."""
    import subprocess

    src, want, _ = ref
    mnt = tmp_path / "mnt"
    mnt.mkdir()
    if os.geteuid() != 0 or subprocess.run(["mount", "-t", "tmpfs", "-o", "size=48k", "tmpfs", str(mnt)],
                                           capture_output=True).returncode != 0:
        pytest.skip("needs root and mount to make a tiny filesystem")
    try:
        out = mnt / "o"
        capsys.readouterr()
        assert run(src, out) == 2
        err = " ".join(capsys.readouterr().err.split())
        assert "No space left on device" in err and "run the same command again to resume" in err
        assert "Traceback" not in err
        # nothing half-written is left taking space: only whole files and the journal
        left = [p.name for p in out.rglob(".*") if p.name not in (".jmigrate.lock", ".jmigrate-work")]
        assert left == [], left
        subprocess.run(["mount", "-o", "remount,size=4m", str(mnt)], check=True)  # space freed
        assert run(src, out) == 1
        assert files(out) == want
    finally:
        subprocess.run(["umount", "-l", str(mnt)], capture_output=True)  # -l: even if still busy


def test_a_failed_run_leaves_no_thread_writing_into_the_folder(tmp_path: Path, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    """Regression: the run returned as soon as the writer failed, while the encoder thread was still in
    a call; it then journalled into the folder after the lock was released."""
    import time

    from jmigrate.errors import CheckpointError
    from jmigrate.index.pipeline import Settings, reindex
    from jmigrate.index.sources import open_source
    from jmigrate.testing.fake import FakeEncoder

    class Slow(FakeEncoder):
        def encode_batch(self, texts, **kw):  # type: ignore[no-untyped-def, override]
            time.sleep(0.3)
            return super().encode_batch(texts, **kw)

    monkeypatch.setattr(ShardWriter, "write", enospc)
    src = corpus(tmp_path / "c.jsonl", 400)
    settings = Settings(model="jina-embeddings-v3", task="retrieval.passage", dimensions=32, encoder="fake",
                        unit_rows=8, shard_rows=16, row_group_rows=8)
    with pytest.raises(CheckpointError, match="No space left on device"):
        reindex(open_source(str(src)), tmp_path / "o", Slow(model="jina-embeddings-v3", batch_size=8),
                settings)
    assert not [t.name for t in threading.enumerate() if t.name.startswith("reindex-")]
