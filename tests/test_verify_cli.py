"""`jmigrate verify` end to end through the CLI with precomputed query vectors (no encoder needed)."""

from __future__ import annotations

import hashlib
import json
import re
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from jmigrate.cli.app import main

V2, V3 = "jina-embeddings-v2-base-en", "jina-embeddings-v3"
N_DOCS, N_QUERIES = 200, 36
LANGS = ("en", "de", "fr")


def _fsl(m: np.ndarray) -> pa.FixedSizeListArray:
    return pa.FixedSizeListArray.from_arrays(pa.array(m.astype(np.float32).ravel()), m.shape[1])


def write_index(
    folder: Path,
    model: str,
    task: str | None,
    vectors: np.ndarray,
    ids: list[str],
    texts: list[str] | None = None,
    shard_rows: int = 80,
) -> Path:
    """A reindex-format folder (manifest + Parquet shards), built by hand to the documented contract."""
    folder.mkdir(parents=True)
    unit = vectors / np.linalg.norm(vectors, axis=1, keepdims=True)
    shards = []
    for n, start in enumerate(range(0, len(ids), shard_rows)):
        cols = {"id": ids[start : start + shard_rows], "vector": _fsl(unit[start : start + shard_rows])}
        if texts is not None:
            cols["text"] = texts[start : start + shard_rows]
        name = f"part-{n:05d}.parquet"
        pq.write_table(pa.table(cols), folder / name)
        shards.append(
            {
                "file": name,
                "rows": len(cols["id"]),
                "sha256": hashlib.sha256((folder / name).read_bytes()).hexdigest(),
            }
        )
    manifest = {
        "format": "jmigrate-index",
        "format_version": 1,
        "model": model,
        "task": task,
        "dimensions": vectors.shape[1],
        "normalized": True,
        "late_chunking": False,
        "chunking": None,
        "encoder": "test",
        "source": {
            "path": "corpus.jsonl",
            "format": "jsonl",
            "fingerprint": "x",
            "id_column": "id",
            "text_column": "text",
            "metadata_columns": [],
        },
        "rows": {"source": len(ids), "written": len(ids), "rejected": 0},
        "shards": shards,
        "status": "complete",
        "created": "2026-01-01T00:00:00+00:00",
    }
    (folder / "manifest.json").write_text(json.dumps(manifest))
    return folder


def write_query_vectors(
    path: Path, qids: list[str], m: np.ndarray, model: str | None = None, task: str | None = None
) -> Path:
    t = pa.table({"id": qids, "vector": _fsl(m)})
    if model:
        t = t.replace_schema_metadata({"jmigrate": json.dumps({"model": model, "task": task})})
    pq.write_table(t, path)
    return path


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """Two indexes over the same 200 documents; v3 queries sit near their relevant document, v2 are noise."""
    root = tmp_path_factory.mktemp("verify")
    rng = np.random.default_rng(11)
    ids = [f"doc{i:03d}" for i in range(N_DOCS)]
    texts = [f"support article {i} about topic {i % 17}" for i in range(N_DOCS)]
    d2, d3 = rng.standard_normal((N_DOCS, 768)), rng.standard_normal((N_DOCS, 1024))
    qids = [f"q{i:02d}" for i in range(N_QUERIES)]
    rel = rng.choice(N_DOCS, N_QUERIES, replace=False)
    q3 = d3[rel] + rng.standard_normal((N_QUERIES, 1024)) * 0.7
    q2 = rng.standard_normal((N_QUERIES, 768))
    paths = {
        "v2": write_index(root / "v2", V2, None, d2, ids, texts),
        "v3": write_index(root / "v3", V3, "retrieval.passage", d3, ids, texts),
        "q2": write_query_vectors(root / "q2.parquet", qids, q2, V2, None),
        "q3": write_query_vectors(root / "q3.parquet", qids, q3, V3, "retrieval.query"),
        "queries": root / "queries.jsonl",
        "qrels": root / "qrels.txt",
        "root": root,
    }
    paths["queries"].write_text(
        "".join(
            json.dumps({"id": q, "text": f"question {q}", "lang": LANGS[i % 3]}) + "\n"
            for i, q in enumerate(qids)
        )
    )
    paths["qrels"].write_text("".join(f"{q} 0 {ids[r]} 1\n" for q, r in zip(qids, rel, strict=False)))
    return paths


def _run(capsys: pytest.CaptureFixture[str], argv: list[str]) -> tuple[int, str, str]:
    code = main(["verify", *argv])
    out, err = capsys.readouterr()
    return code, out, err


def _args(w: dict[str, Path], swap: bool = False) -> list[str]:
    # swap: give v2 the good query vectors' role by testing v3 against noise (v3 clearly worse).
    return [
        "--v2",
        str(w["v2"]),
        "--v3",
        str(w["v3"]),
        "--queries",
        str(w["queries"]),
        "--v2-query-vectors",
        str(w["q2"]),
        "--v3-query-vectors",
        str(w["q3"]),
    ]


def test_v3_better_exits_0_with_json_per_side_and_per_metric(world, capsys, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    code, out, err = _run(
        capsys,
        [
            *_args(world),
            "--qrels",
            str(world["qrels"]),
            "--format",
            "json",
            "--run-dir",
            str(tmp_path / "runs"),
        ],
    )
    assert code == 0, err
    data = json.loads(out)
    assert data["verdict"]["status"] == "v3-better" and data["verdict"]["exit_code"] == 0
    for side in ("v2", "v3"):
        assert set(data[side]["metrics"]) == {"nDCG@10", "Recall@10", "Recall@100", "MRR@10", "MAP"}
    main_cmp = data["comparison"]["nDCG@10"]
    assert main_cmp["difference"] > 0.3 and main_cmp["p_value"] < 0.001 and main_cmp["ci"][0] > 0
    assert main_cmp["difference"] == pytest.approx(
        data["v3"]["metrics"]["nDCG@10"] - data["v2"]["metrics"]["nDCG@10"]
    )
    assert set(data["languages"]) == set(LANGS) and data["languages"]["de"]["queries"] == 12
    assert len(data["per_query"]) == N_QUERIES and data["integrity"] == []
    v3_run = (tmp_path / "runs" / "v3.run").read_text().splitlines()
    assert len(v3_run) == N_QUERIES * 100 and v3_run[0].split()[1] == "Q0"


def test_v3_significantly_worse_exits_1(world, capsys) -> None:  # type: ignore[no-untyped-def]
    # Give v3 the noise queries and v2 good ones: build good v2 query vectors from the v2 index itself.
    root = world["root"]
    rel = {line.split()[0]: line.split()[2] for line in world["qrels"].read_text().splitlines()}
    t = pq.read_table(world["v2"] / "part-00000.parquet").to_pylist()
    for shard in sorted(world["v2"].glob("part-*.parquet"))[1:]:
        t += pq.read_table(shard).to_pylist()
    vec = {r["id"]: np.array(r["vector"]) for r in t}
    qids = sorted(rel)
    good2 = np.stack([vec[rel[q]] + np.random.default_rng(len(q)).standard_normal(768) * 0.02 for q in qids])
    q2 = write_query_vectors(root / "q2good.parquet", qids, good2, V2)
    noise3 = np.random.default_rng(5).standard_normal((len(qids), 1024))
    q3 = write_query_vectors(root / "q3noise.parquet", qids, noise3, V3, "retrieval.query")
    code, out, err = _run(
        capsys,
        [
            "--v2",
            str(world["v2"]),
            "--v3",
            str(world["v3"]),
            "--queries",
            str(world["queries"]),
            "--qrels",
            str(world["qrels"]),
            "--v2-query-vectors",
            str(q2),
            "--v3-query-vectors",
            str(q3),
        ],
    )
    assert code == 1
    assert "v3 is significantly worse than v2 on nDCG@10" in " ".join(out.split())


def test_without_qrels_no_verdict_and_agreement(world, capsys) -> None:  # type: ignore[no-untyped-def]
    code, out, err = _run(capsys, [*_args(world), "--format", "json", "-k", "5"])
    assert code == 0
    data = json.loads(out)
    assert data["verdict"]["status"] == "no-qrels" and "no verdict on quality" in data["verdict"]["text"]
    assert data["comparison"] == {} and data["agreement"]["k"] == 5
    assert set(data["agreement"]["mean"]) == {"overlap_jaccard", "rbo", "kendall_tau", "spearman_rho"}
    ex = data["disagreements"][0]
    assert len(ex["v2"]) == 5 and ex["v2"][0]["snippet"].startswith("support article")


def test_text_output_has_tables_and_verdict_on_stdout(world, capsys) -> None:  # type: ignore[no-untyped-def]
    code, out, err = _run(capsys, [*_args(world), "--qrels", str(world["qrels"])])
    assert code == 0
    assert "nDCG@10" in out and "Recall@100" in out and "v3 is significantly better" in " ".join(out.split())
    assert "searching the v3 index" in err and "searching" not in out


def test_guard_refusal_is_exit_2_naming_both_sides(world, capsys) -> None:  # type: ignore[no-untyped-def]
    code, out, err = _run(
        capsys,
        [
            "--v2",
            str(world["v2"]),
            "--v3",
            str(world["v3"]),
            "--queries",
            str(world["queries"]),
            "--v2-query-vectors",
            str(world["q2"]),
            "--v3-query-vectors",
            str(world["q2"]),
        ],
    )
    assert code == 2 and out == ""
    msg = " ".join(err.split())
    assert "refusing to search the v3 index (jina-embeddings-v3, task retrieval.passage, 1024 dims)" in msg
    assert "jina-embeddings-v2-base-en, no task, 768 dims" in msg


def test_usage_and_input_errors_exit_2(world, capsys, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    assert _run(capsys, [*_args(world), "--format", "xml"])[0] == 2
    assert (
        _run(
            capsys,
            ["--v2", str(tmp_path / "missing"), "--v3", str(world["v3"]), "--queries", str(world["queries"])],
        )[0]
        == 2
    )
    # Swapped indexes: --v2 given a v3 index.
    code, _, err = _run(
        capsys, ["--v2", str(world["v3"]), "--v3", str(world["v2"]), "--queries", str(world["queries"])]
    )
    assert code == 2 and "the flags look swapped; --v2 takes the baseline" in " ".join(err.split())


def test_integrity_problems_reported_and_exit_1(world, capsys, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    rng = np.random.default_rng(3)
    ids = [f"doc{i:03d}" for i in range(N_DOCS)]
    broken = write_index(
        tmp_path / "broken",
        V3,
        "retrieval.passage",
        rng.standard_normal((N_DOCS, 1024)),
        ids[:-3] + ["doc000", "extra1", "extra2"],
    )
    m = json.loads((broken / "manifest.json").read_text())
    m["rows"]["source"] = N_DOCS + 5
    m["shards"][1]["sha256"] = "0" * 64
    (broken / "manifest.json").write_text(json.dumps(m))
    code, out, _ = _run(
        capsys,
        [
            "--v2",
            str(world["v2"]),
            "--v3",
            str(broken),
            "--queries",
            str(world["queries"]),
            "--v2-query-vectors",
            str(world["q2"]),
            "--v3-query-vectors",
            str(world["q3"]),
            "--format",
            "json",
        ],
    )
    assert code == 1
    found = {(i["index"], i["code"]) for i in json.loads(out)["integrity"]}
    assert {
        ("v3", "duplicate-ids"),
        ("v3", "shard-checksum"),
        ("v3", "source-rows"),
        ("both", "only-in-v2"),
        ("both", "only-in-v3"),
    } <= found


def test_html_report_is_self_contained(world, capsys, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    report = tmp_path / "report.html"
    code, _, _ = _run(capsys, [*_args(world), "--qrels", str(world["qrels"]), "--report", str(report)])
    assert code == 0
    page = report.read_text()
    assert page.count("<svg") >= 4  # metric bars, differences with CIs, recall@k, per-query histogram
    assert "Where the two systems disagree most" in page and "support article" in page
    # Nothing to fetch: no scripts, stylesheets, images, fonts or imports from anywhere.
    assert not re.search(r"(src|href)\s*=|url\(|@import|<script|<link|https?://", page, re.I)
