"""`reindex URI --out DIR --to URI --sync` on the real engines: after the v2 collection changed (texts
edited, rows deleted, rows added), only the new and changed rows are embedded, deleted rows leave v3, and
a second sync finds nothing to do."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from store_engines import Engine, edit_v2, ids_of, rows

from jmigrate.cli.app import main
from jmigrate.stores import open_store


def test_sync_embeds_only_what_changed(
    engine: Engine, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    src = engine.load_v2("docs", rows(120, 8))
    out = tmp_path / "idx"
    v3 = engine.uri("docs_v3")
    base = ["reindex", src, "--out", str(out), "--encoder", "fake", "--dimensions", "32", "--to", v3]
    assert main([*base, "-q"]) == 0
    edit_v2(
        engine,
        "docs",
        update={5: "geändert fünf", 17: "changed 17", 60: "изменено"},
        delete=[3, 90],
        add={1000: "nuevo mil", 1001: "新的", 1002: "new 1002", 1003: "yeni"},
        width=8,
    )
    capsys.readouterr()
    assert main([*base, "--sync"]) == 0
    err = capsys.readouterr().err
    assert "122 rows in v2: 4 new, 3 changed, 2 deleted" in err
    (folder,) = (tmp_path / "idx-sync").iterdir()
    manifest = json.loads((folder / "index" / "manifest.json").read_text("utf-8"))
    assert manifest["rows"]["source"] == 7  # only the new and changed rows were embedded
    with open_store(v3) as store:
        pages = list(store.pages(50))
        texts = {str(i): t for p in pages for i, t in zip(p.ids, p.texts or [], strict=True)}
        assert store.count() == 122
        assert store.read_record("syncs")[-1]["deleted"] == 2
    assert sorted(ids_of(pages), key=int) == sorted(
        [str(i) for i in range(120) if i not in (3, 90)] + ["1000", "1001", "1002", "1003"], key=int
    )
    assert texts["5"] == "geändert fünf" and texts["1001"] == "新的" and "3" not in texts
    assert main([*base, "--sync"]) == 0  # nothing left to do
    assert "0 new, 0 changed, 0 deleted" in capsys.readouterr().err


def test_sync_needs_a_store_source_and_a_target(
    engine: Engine, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    src = engine.load_v2("docs", rows(10, 8))
    assert main(["reindex", src, "--out", str(tmp_path / "i"), "--encoder", "fake", "--sync"]) == 2
    assert "--sync needs" in capsys.readouterr().err
