"""Each store backend against its real engine: describe, bounded pages that resume from a cursor, idempotent
writes after a crash mid-load, alias swap and roll back, and one-line errors for wrong input."""

from __future__ import annotations

import numpy as np
import pytest
from store_engines import Engine, all_pages, ids_of, rows

from jmigrate.errors import InputError, JMigrateError
from jmigrate.stores import Page, create_store, open_store

N = 530  # not a multiple of the page sizes below, so the last page is short


def _target(engine: Engine, name: str) -> str:
    return engine.uri(name)


def test_describe_reports_rows_width_fields_text_and_likely_model(engine: Engine) -> None:
    n = 150
    data = rows(n, 768, missing_text_every=7)
    uri = engine.load_v2("docs", data)
    with open_store(uri) as s:
        d = s.describe()
    assert d.rows == n and d.width == 768 and d.backend == engine.backend
    assert d.text_field in ("content", "documents")
    assert d.text_missing == len(range(3, n, 7))
    assert "jina-embeddings-v2-base-en" in d.likely_models and d.model_evidence == "width"
    assert {"title", "n"} <= set(d.fields) and d.fields["n"] == "int"
    with pytest.raises(InputError) as e:
        d.require_text()
    assert f"{len(range(3, n, 7)):,} of {n:,} rows" in str(e.value) and "\n" not in str(e.value)
    with pytest.raises(InputError, match="768-dimensional vectors, expected 1024"):
        d.require_width(1024)


def test_pages_are_bounded_complete_and_resume_from_a_cursor(engine: Engine) -> None:
    data = rows(N, 16)
    uri = engine.load_v2("docs", data)
    with open_store(uri) as s:
        pages = all_pages(s, 100)
        assert [len(p) for p in pages] == [100] * 5 + [30]
        got = ids_of(pages)
        assert sorted(got, key=int) == [str(i) for i in range(N)] and len(set(got)) == N
        by_id = {str(i): v for p in pages for i, v in zip(p.ids, p.vectors, strict=True)}
        for i in (0, 17, N - 1):
            np.testing.assert_allclose(by_id[str(i)], data["vectors"][i], rtol=1e-6, atol=1e-6)
        texts = {str(i): t for p in pages for i, t in zip(p.ids, p.texts or [], strict=True)}
        assert texts["5"] == data["texts"][5]
        assert all(p.metadata and p.metadata[0]["title"].startswith("title ") for p in pages)
        # stopping after two pages and continuing from the second page's cursor reads the rest exactly once
        rest = ids_of(list(s.pages(100, after=pages[1].cursor)))
        assert rest == got[200:]
        assert list(s.pages(100, after=pages[-1].cursor)) == []
        # without vectors (re-embedding needs only ids and texts)
        light = list(s.pages(250, vectors=False))
        assert ids_of(light) == got and light[0].vectors.shape == (250, 0)


def test_writes_are_idempotent_after_a_crash_mid_load(engine: Engine) -> None:
    data = rows(N, 16)
    src = engine.load_v2("docs", data)
    rng = np.random.default_rng(1)
    v3 = rng.standard_normal((N, 32)).astype(np.float32)
    v3 /= np.linalg.norm(v3, axis=1, keepdims=True)
    target = _target(engine, "docs_v3")
    with open_store(src) as s:
        pages = all_pages(s, 64, vectors=False)
    fields = {"title": "text", "n": "int"}

    def page(p: Page) -> Page:
        return Page(p.ids, v3[[int(i) for i in p.ids]], p.texts, p.metadata)

    t = create_store(target, width=32, fields=fields, id_type="int", info={"model": "jina-embeddings-v3"})
    for p in pages[:4]:
        t.write(page(p))
    t.close()  # the "crash": the run stops after 4 pages, the process state is gone
    with pytest.raises(InputError, match="already exists"):
        create_store(target, width=32, fields=fields, id_type="int")
    t = create_store(target, width=32, fields=fields, id_type="int", resume=True)
    for p in pages:  # a resumed run writes pages 1-4 again: upserts, no duplicates
        t.write(page(p))
    t.write(page(pages[2]))
    t.finish()
    assert t.count() == N
    t.close()
    with open_store(target) as back:
        d = back.describe()
        assert d.rows == N and d.width == 32 and d.likely_models == ["jina-embeddings-v3"]
        assert d.model_evidence == "stored metadata"
        got = all_pages(back, 200)
        assert sorted(ids_of(got), key=int) == [str(i) for i in range(N)]
        for p in got:
            for i, vec, text in zip(p.ids, p.vectors, p.texts or [], strict=True):
                np.testing.assert_allclose(vec, v3[int(i)], rtol=1e-5, atol=1e-6)
                assert text == data["texts"][int(i)]
        sample = back.fetch([0, 99, N - 1, 10**6])
        assert set(sample) == {"0", "99", str(N - 1)}
        np.testing.assert_allclose(sample["99"], v3[99], rtol=1e-5, atol=1e-6)
        ids, scores = back.search(v3[[5, 300]], 3)
        assert [r[0] for r in ids] == ["5", "300"] and scores[0, 0] == pytest.approx(1.0, abs=1e-4)


def test_string_ids_round_trip(engine: Engine) -> None:
    target = _target(engine, "strids")
    ids = ["doc-a", "doc/b", "Ünïcode ✓", "550e8400-e29b-41d4-a716-446655440000", "42"]
    m = np.eye(5, 8, dtype=np.float32)
    with create_store(target, width=8, store_text=True) as t:
        t.write(Page(ids, m, ["a", "b", "c", "d", "e"], None))
        t.write(Page(ids[:2], m[:2], ["a", "b"], None))
    with open_store(target) as s:
        assert sorted(ids_of(all_pages(s, 2))) == sorted(ids)
        got = s.fetch(["doc/b", "Ünïcode ✓"])
        np.testing.assert_allclose(got["Ünïcode ✓"], m[2])


def test_alias_swap_and_roll_back_leave_v2_untouched(engine: Engine) -> None:
    data = rows(120, 16)
    src = engine.load_v2("docs", data)
    before = engine.snapshot("docs")
    with open_store(src) as s:
        pages = all_pages(s, 50, vectors=False)
    v3 = np.random.default_rng(2).standard_normal((120, 24)).astype(np.float32)
    with create_store(_target(engine, "docs_v3"), width=24, id_type="int") as t:
        for p in pages:
            t.write(Page(p.ids, v3[[int(i) for i in p.ids]], p.texts, None))
        t.finish()
        assert t.alias_target("docs_live") is None
        assert t.point_alias("docs_live", "docs_v3") is None
        assert t.alias_target("docs_live") == "docs_v3"
    with open_store(engine.uri("docs_live")) as live:
        assert live.describe().width == 24 and live.count() == 120
    with open_store(src) as s:
        assert s.point_alias("docs_live", "docs") == "docs_v3"  # roll back
        assert s.alias_target("docs_live") == "docs"
    with open_store(engine.uri("docs_live")) as live:
        assert live.describe().width == 16 and live.count() == 120
    with open_store(_target(engine, "docs_v3")) as t:
        assert t.point_alias("docs_live", "docs_v3") == "docs"  # and forward again
        assert t.alias_target("docs_live") == "docs_v3"
        # an alias never takes the name of a real collection (the v2 one is never replaced)
        with pytest.raises(InputError, match="not an alias|not a view"):
            t.point_alias("docs", "docs_v3")
    assert engine.snapshot("docs") == before


def test_missing_collection_is_one_line_listing_what_is_there(engine: Engine) -> None:
    engine.load_v2("docs", rows(10, 8))
    with pytest.raises(InputError) as e:
        open_store(engine.uri("nope"))
    msg = str(e.value)
    assert "nope" in msg and "docs" in msg and "\n" not in msg


def test_unexpected_width_is_refused(engine: Engine) -> None:
    target = _target(engine, "wide")
    with create_store(target, width=8) as t:
        with pytest.raises(InputError, match="8"):
            t.write(Page(["a"], np.ones((1, 9), np.float32), ["x"], None))
    with pytest.raises(InputError, match="8|dimensional"):
        create_store(target, width=16, resume=True)


def test_writing_into_a_collection_jmigrate_did_not_create_is_refused(engine: Engine) -> None:
    engine.load_v2("docs", rows(10, 8))
    with pytest.raises(InputError, match="not created by jmigrate"):
        create_store(engine.uri("docs"), width=8, resume=True)
    with pytest.raises(InputError, match="already exists"):
        create_store(engine.uri("docs"), width=8)


def test_errors_are_jmigrate_errors_with_one_line(engine: Engine) -> None:
    engine.load_v2("docs", rows(10, 8))
    bad = {"pgvector": "text", "qdrant": "text", "chroma": "id", "lancedb": "text"}[engine.backend]
    with pytest.raises(JMigrateError) as e:
        open_store(engine.uri("docs", **{bad: "no_such_field"}))
    assert "no_such_field" in str(e.value) and "\n" not in str(e.value)
