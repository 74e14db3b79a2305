"""`cutover` refuses a v3 collection whose recorded verify found it worse or broken unless forced, and rolls
back whatever the verdict, on the real engines (the whole verify -> cutover -> roll back path runs in
test_store_e2e.py)."""

from __future__ import annotations

import pytest
from store_engines import Engine, rows

from jmigrate.cli.app import main
from jmigrate.stores import open_store

V2 = "jina-embeddings-v2-base-en"


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
