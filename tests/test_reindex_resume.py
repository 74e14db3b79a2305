"""Resume: an interrupted run continues exactly once; changed input is refused; one run per folder."""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import pyarrow.parquet as pq
import pytest
from helpers import read_index

from jmigrate.cli.app import main
from jmigrate.errors import CheckpointError
from jmigrate.index.checkpoint import RunLock
from jmigrate.index.pipeline import Settings, reindex
from jmigrate.index.sources import open_source
from jmigrate.testing.fake import FakeEncoder

SETTINGS = Settings(model="jina-embeddings-v3", task="retrieval.passage", dimensions=64, encoder="fake",
                    unit_rows=4, shard_rows=10, row_group_rows=6)


class Boom(RuntimeError):
    pass


class FailingEncoder(FakeEncoder):
    """Fails on its `fail_at`-th call, before producing anything (like a dead connection)."""

    def __init__(self, fail_at: int, exc: type[BaseException] = Boom) -> None:
        super().__init__(model="jina-embeddings-v3", batch_size=4)
        self.fail_at, self.exc, self.calls = fail_at, exc, 0

    def encode_batch(self, texts: Sequence[str], **kw):  # type: ignore[no-untyped-def, override]
        self.calls += 1
        if self.calls == self.fail_at:
            raise self.exc("connection reset")
        return super().encode_batch(texts, **kw)


def corpus(tmp_path: Path, n: int = 97) -> Path:
    rows = []
    for i in range(n):
        text = "" if i % 17 == 5 else f"document number {i} about topic {i % 7}"
        rows.append({"id": f"r{i % 90}", "text": text, "n": i})  # ids r0..r6 repeat: duplicates
    src = tmp_path / "src.jsonl"
    src.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    return src


def encoder() -> FakeEncoder:
    return FakeEncoder(model="jina-embeddings-v3", batch_size=4)


def test_resume_after_an_exception_equals_an_uninterrupted_run_and_pays_once(tmp_path: Path) -> None:
    src = open_source(str(corpus(tmp_path)))
    ref = encoder()
    reindex(src, tmp_path / "ref", ref, SETTINGS)
    for fail_at in (1, 2, 5, 9):
        out = tmp_path / f"o{fail_at}"
        first = FailingEncoder(fail_at)
        with pytest.raises(Boom):
            reindex(src, out, first, SETTINGS)
        assert json.loads((out / "manifest.json").read_text())["status"] == "failed"
        second = encoder()
        result = reindex(src, out, second, SETTINGS)
        assert result.status == "complete"
        a, b = read_index(tmp_path / "ref"), read_index(out)
        assert a[0] == b[0] and a[2] == b[2]
        np.testing.assert_array_equal(a[1], b[1])
        # every text was paid exactly once across the two runs (the failed call sent nothing)
        assert sum(first.batches) + sum(second.batches) == sum(ref.batches)
        m = json.loads((out / "manifest.json").read_text())
        assert m["rows"] == {"source": 97, "written": sum(ref.batches), "rejected": 97 - sum(ref.batches)}
        assert [s["file"] for s in m["shards"]] == [p.name for p in sorted(out.glob("part-*.parquet"))]
        assert not (out / ".jmigrate-work").exists()


def test_crash_leftovers_are_reconciled_with_the_manifest(tmp_path: Path) -> None:
    src = open_source(str(corpus(tmp_path)))
    reindex(src, tmp_path / "ref", encoder(), SETTINGS)
    out = tmp_path / "o"
    with pytest.raises(Boom):
        reindex(src, out, FailingEncoder(12), SETTINGS)
    m = json.loads((out / "manifest.json").read_text())
    assert m["shards"], "the failing run committed some shards"
    # what a kill between rename and manifest, or between rejects append and manifest, leaves behind
    stray = out / f"part-{len(m['shards']):05d}.parquet"
    stray.write_bytes(b"half a shard")
    with open(out / "rejects.jsonl", "a") as f:
        f.write('{"row": 999, "id": "ghost", "reason": "x"}\n')
    result = reindex(src, out, encoder(), SETTINGS)
    assert stray.name in result.cleaned or stray.exists()
    a, b = read_index(tmp_path / "ref"), read_index(out)
    assert a[0] == b[0] and a[2] == b[2]


def test_completed_run_is_not_redone(tmp_path: Path, capsys) -> None:  # type: ignore[no-untyped-def]
    src = open_source(str(corpus(tmp_path)))
    reindex(src, tmp_path / "o", encoder(), SETTINGS)
    again = encoder()
    assert reindex(src, tmp_path / "o", again, SETTINGS).status == "complete"
    assert again.batches == []


def cli(*args: str) -> int:
    return main(["reindex", *args, "--encoder", "fake", "--quiet"])


def test_changed_settings_are_refused_unless_restart(tmp_path: Path, capsys) -> None:  # type: ignore[no-untyped-def]
    src = str(corpus(tmp_path))
    out = str(tmp_path / "o")
    assert cli(src, "--out", out, "--dimensions", "128") == 1  # duplicates and empty texts: exit 1
    capsys.readouterr()
    assert cli(src, "--out", out, "--dimensions", "256") == 2
    err = " ".join(capsys.readouterr().err.split())
    assert "dimensions 128 → 256" in err and "--restart" in err
    assert cli(src, "--out", out, "--dimensions", "256", "--restart") == 1
    t = pq.read_table(sorted((tmp_path / "o").glob("part-*.parquet")))
    assert t.schema.field("vector").type.list_size == 256
    assert len((tmp_path / "o" / "rejects.jsonl").read_text().splitlines()) == 97 - t.num_rows


def test_changed_source_is_refused(tmp_path: Path, capsys) -> None:  # type: ignore[no-untyped-def]
    path = corpus(tmp_path)
    out = str(tmp_path / "o")
    assert cli(str(path), "--out", out) == 1
    with open(path, "a") as f:
        f.write(json.dumps({"id": "new", "text": "appended later"}) + "\n")
    capsys.readouterr()
    assert cli(str(path), "--out", out) == 2
    assert "source files changed" in " ".join(capsys.readouterr().err.split())


def test_edit_in_the_middle_of_a_big_file_is_caught_on_resume(tmp_path: Path) -> None:
    # The fingerprint hashes only the first and last MiB; rows re-read on resume are checked instead.
    rows = [{"id": f"r{i}", "text": f"row {i:06d} " + "x" * 200} for i in range(15000)]
    path = tmp_path / "big.jsonl"
    path.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    settings = Settings(model="jina-embeddings-v3", task=None, dimensions=32, encoder="fake",
                        unit_rows=500, shard_rows=1000)
    out = tmp_path / "o"
    with pytest.raises(Boom):
        reindex(open_source(str(path)), out, FailingEncoder(20), settings)
    assert json.loads((out / "manifest.json").read_text())["rows"]["source"] >= 5000
    data = path.read_bytes()
    pos = data.index(b"row 007000")
    assert (1 << 20) < pos < len(data) - (1 << 20)
    path.write_bytes(data[:pos] + b"row 007001" + data[pos + 10:])  # same size, same head and tail
    with pytest.raises(CheckpointError, match="source changed in rows already indexed"):
        reindex(open_source(str(path)), out, encoder(), settings)


def test_a_second_run_on_the_same_folder_is_refused(tmp_path: Path, capsys) -> None:  # type: ignore[no-untyped-def]
    src = str(corpus(tmp_path))
    out = tmp_path / "o"
    out.mkdir()
    with RunLock(out):
        assert cli(src, "--out", str(out)) == 2
    assert "another jmigrate reindex" in " ".join(capsys.readouterr().err.split())
    assert cli(src, "--out", str(out)) == 1  # the lock is gone with its holder


def test_ctrl_c_stops_cleanly_says_how_to_resume_and_exits_130(tmp_path: Path, capsys, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    import jmigrate.index.run as cmd

    src = str(corpus(tmp_path))
    out = tmp_path / "o"
    monkeypatch.setattr(cmd, "open_encoder",
                        lambda settings, key=None, **kw: FailingEncoder(1, KeyboardInterrupt))
    assert main(["reindex", src, "--out", str(out), "--quiet", "--dimensions", "64"]) == 130
    err = " ".join(capsys.readouterr().err.split())
    assert "Run the same command again to resume" in err
    assert json.loads((out / "manifest.json").read_text())["status"] == "interrupted"
    monkeypatch.setattr(cmd, "open_encoder", lambda settings, key=None, **kw: encoder())
    assert main(["reindex", src, "--out", str(out), "--quiet", "--dimensions", "64"]) == 1
    assert json.loads((out / "manifest.json").read_text())["status"] == "complete"


def test_edit_in_rows_journalled_but_not_yet_in_a_shard_is_caught(tmp_path: Path) -> None:
    rows = [{"id": f"r{i}", "text": f"row {i:06d} " + "x" * 200} for i in range(15000)]
    path = tmp_path / "big.jsonl"
    path.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    settings = Settings(model="jina-embeddings-v3", task=None, dimensions=32, encoder="fake",
                        unit_rows=500, shard_rows=100_000)  # nothing committed: all in the journal
    out = tmp_path / "o"
    with pytest.raises(Boom):
        reindex(open_source(str(path)), out, FailingEncoder(20), settings)
    assert len(list((out / ".jmigrate-work").glob("unit-*.arrow"))) >= 15
    data = path.read_bytes()
    pos = data.index(b"row 007000")
    path.write_bytes(data[:pos] + b"row 007001" + data[pos + 10:])
    with pytest.raises(CheckpointError, match="already embedded by the interrupted run"):
        reindex(open_source(str(path)), out, encoder(), settings)


def test_rows_refused_by_the_encoder_stay_rejected_after_a_resume(tmp_path: Path) -> None:
    from jmigrate.errors import EncoderError

    class PickyThenDead(FakeEncoder):
        def __init__(self) -> None:
            super().__init__(model="jina-embeddings-v3", batch_size=4)
            self.calls = 0

        def encode_batch(self, texts, **kw):  # type: ignore[no-untyped-def, override]
            self.calls += 1
            if self.calls > 12:
                raise Boom("connection reset")
            if any("POISON" in t for t in texts):
                raise EncoderError("embedding request to http://x/v1 was refused: HTTP 422: bad input")
            return super().encode_batch(texts, **kw)

    docs = [{"id": f"r{i}", "text": f"text {i}" + (" POISON" if i == 2 else "")} for i in range(60)]
    path = tmp_path / "s.jsonl"
    path.write_text("".join(json.dumps(d) + "\n" for d in docs))
    settings = Settings(model="jina-embeddings-v3", task=None, dimensions=32, encoder="fake", unit_rows=4,
                        shard_rows=1000)
    out = tmp_path / "o"
    with pytest.raises(Boom):
        reindex(open_source(str(path)), out, PickyThenDead(), settings)
    assert not (out / "rejects.jsonl").exists()  # nothing committed yet: the refusal is in the journal
    result = reindex(open_source(str(path)), out, encoder(), settings)  # this encoder would accept it
    assert vars(result.manifest.rows) == {"source": 60, "written": 59, "rejected": 1}
    [r] = [json.loads(line) for line in (out / "rejects.jsonl").read_text().splitlines()]
    assert (r["row"], r["id"]) == (2, "r2") and "HTTP 422" in r["reason"]


def test_resume_by_another_path_to_the_same_files(tmp_path: Path, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    path = corpus(tmp_path)
    with pytest.raises(Boom):
        reindex(open_source(str(path)), tmp_path / "o", FailingEncoder(3), SETTINGS)
    monkeypatch.chdir(tmp_path)
    assert reindex(open_source(path.name), tmp_path / "o", encoder(), SETTINGS).status == "complete"
