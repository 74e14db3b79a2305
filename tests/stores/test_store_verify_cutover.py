"""`verify --v2 URI --v3 URI` (exact search over vectors read out of the stores, `--search-in-store` recall),
the verdict recorded with the v3 collection, and `cutover` to v3 and back, on the real engines."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from conftest import Engine, rows

from jmigrate.cli.app import main
from jmigrate.stores import open_store

V2 = "jina-embeddings-v2-base-en"


def _queries(path: Path, texts: list[str | None]) -> Path:
    with path.open("w", encoding="utf-8") as f:
        for n, t in enumerate(texts[:12]):
            f.write(json.dumps({"id": f"q{n}", "text": t}) + "\n")
    return path


def test_verify_then_cut_over_and_roll_back(
    engine: Engine, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    data = rows(150, 768)
    v2 = engine.load_v2("docs", data)
    before = engine.snapshot("docs")
    v3 = engine.uri("docs_v3")
    assert (
        main(
            [
                "reindex",
                v2,
                "--out",
                str(tmp_path / "idx"),
                "--encoder",
                "fake",
                "--dimensions",
                "256",
                "--to",
                v3,
                "-q",
            ]
        )
        == 0
    )
    capsys.readouterr()
    # no verify yet: cutover refuses (and says what to run)
    assert main(["cutover", v3, "--to", "v3"]) == 2
    assert "jmigrate verify" in capsys.readouterr().err
    q = _queries(tmp_path / "q.jsonl", data["texts"])
    code = main(
        [
            "verify",
            "--v2",
            v2,
            "--v3",
            v3,
            "--queries",
            str(q),
            "--encoder",
            "fake",
            "--v2-model",
            V2,
            "--search-in-store",
            "--format",
            "json",
            "-k",
            "5",
        ]
    )
    out, err = capsys.readouterr()
    assert code == 0, err
    report = json.loads(out)
    search = {s["side"]: s for s in report["store_search"]}
    assert set(search) == {"v2", "v3"}
    for s in search.values():
        assert s["queries"] == 12 and 0.0 <= s["recall"] <= 1.0 and s["k"] == 5
    with open_store(v3) as store:
        rec = store.read_record("verify")
    assert rec["v2_collection"] == "docs" and rec["v3_collection"] == "docs_v3" and rec["v3_worse"] is False
    assert main(["cutover", v3, "--to", "v3"]) == 0
    out = capsys.readouterr().out
    assert "docs_live now serves docs_v3" in out and "retrieval.query" in out and "roll back" in out
    with open_store(v3) as store:
        assert store.alias_target("docs_live") == "docs_v3"
    with open_store(engine.uri("docs_live")) as live:
        assert live.describe().width == 256 and live.count() == 150
    assert main(["cutover", v3, "--to", "v2", "--format", "json"]) == 0
    res = json.loads(capsys.readouterr().out)
    assert res["serves"] == "docs" and res["previous"] == "docs_v3"
    with open_store(engine.uri("docs_live")) as live:
        assert live.describe().width == 768
    assert engine.snapshot("docs") == before  # v2 byte-for-byte the same rows after all of it


def test_cutover_refuses_a_worse_or_broken_v3_unless_forced(
    engine: Engine, capsys: pytest.CaptureFixture[str]
) -> None:
    engine.load_v2("docs", rows(20, 8))
    v3 = engine.uri("docs_v3")
    from jmigrate.stores import Page, create_store

    with create_store(v3, width=4, id_type="int") as t:
        import numpy as np

        t.write(Page(list(range(20)), np.eye(20, 4, dtype=np.float32) + 0.1, None, None))
        t.write_record(
            "verify",
            {
                "v2_collection": "docs",
                "v3_collection": "docs_v3",
                "v3_worse": True,
                "integrity_errors": [],
                "main": {"metric": "ndcg_cut_10", "v2_mean": 0.5, "v3_mean": 0.4, "p_value": 0.01},
            },
        )
    assert main(["cutover", v3, "--to", "v3"]) == 1
    assert "significantly worse" in capsys.readouterr().err
    with open_store(v3) as store:
        assert store.alias_target("docs_live") is None  # nothing switched
        store.write_record(
            "verify",
            {
                "v2_collection": "docs",
                "v3_collection": "docs_v3",
                "v3_worse": False,
                "integrity_errors": ["v3: 3 vectors are not finite"],
            },
        )
    assert main(["cutover", v3, "--to", "v3"]) == 1
    assert "integrity failure" in capsys.readouterr().err
    assert main(["cutover", v3, "--to", "v3", "--force", "--alias", "live_docs"]) == 0
    with open_store(v3) as store:
        assert store.alias_target("live_docs") == "docs_v3"
    assert main(["cutover", v3, "--to", "v2", "--alias", "live_docs", "-q"]) == 0  # roll back: always allowed
    with open_store(v3) as store:
        assert store.alias_target("live_docs") == "docs"
