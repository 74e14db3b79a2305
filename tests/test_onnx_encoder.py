"""The local ONNX backend on tiny models with the real exports' signatures: pooling, tasks, prefixes,
Matryoshka, batching, token limits, v2 exports, loading from folders and the Hugging Face cache."""

from __future__ import annotations

import logging
import subprocess
import sys
from pathlib import Path
from typing import Any

import numpy as np
import onnxruntime as ort
import pytest
from tokenizers import Tokenizer

from jmigrate.encoders import onnx as onnx_mod
from jmigrate.encoders.onnx import OnnxEncoder, plan_batches
from jmigrate.errors import EncoderError, InputError, UsageError
from jmigrate.models import LICENCE_V3_NOTE, TASKS
from jmigrate.testing.tiny_models import build_hf_cache, build_model, build_model_dir

V2 = "jina-embeddings-v2-base-en"
PASSAGE = TASKS["retrieval.passage"].prefix
QUERY = TASKS["retrieval.query"].prefix
TEXTS = [
    "Berlin is the capital of Germany.",
    "a cat",
    "The river runs to the ocean, past one old house and two new trees; ten birds sit on the road.",
    "dog",
    "Paris is the capital of France, a city on a river.",
]


@pytest.fixture(scope="module")
def v3_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return build_model_dir(tmp_path_factory.mktemp("v3"), kind="v3")


@pytest.fixture(scope="module")
def v2_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return build_model_dir(tmp_path_factory.mktemp("v2"), kind="v2")


class RecordingSession:
    """Wraps the encoder's ONNX session and keeps every feed, to see what the model was given."""

    def __init__(self, session: Any) -> None:
        self.session = session
        self.feeds: list[dict[str, np.ndarray]] = []

    def run(self, names: Any, feed: dict[str, np.ndarray]) -> Any:
        self.feeds.append({k: v.copy() for k, v in feed.items()})
        return self.session.run(names, feed)


def recording(enc: OnnxEncoder) -> RecordingSession:
    rec = RecordingSession(enc.session)
    enc.session = rec
    return rec


def by_hand(folder: Path, texts: list[str], task_id: int | None, prefix: str) -> np.ndarray:
    """Independent pipeline: own tokenizer and session, one text per run, numpy mean, normalise."""
    tok = Tokenizer.from_file(str(folder / "tokenizer.json"))
    session = ort.InferenceSession(str(folder / "onnx" / "model.onnx"), providers=["CPUExecutionProvider"])
    rows = []
    for text in texts:
        ids = np.array([tok.encode(prefix + text).ids], dtype=np.int64)
        feed = {"input_ids": ids, "attention_mask": np.ones_like(ids)}
        if task_id is not None:
            feed["task_id"] = np.array(task_id, dtype=np.int64)
        else:
            feed["token_type_ids"] = np.zeros_like(ids)
        rows.append(session.run(None, feed)[0][0].mean(axis=0))
    m = np.stack(rows)
    return m / np.linalg.norm(m, axis=1, keepdims=True)


def test_vectors_equal_an_independent_pooling(v3_dir: Path) -> None:
    enc = OnnxEncoder.from_pretrained(path=v3_dir, batch_size=2)
    got = enc.encode(TEXTS, task="retrieval.passage")
    assert got.shape == (len(TEXTS), 1024) and got.dtype == np.float32
    np.testing.assert_allclose(got, by_hand(v3_dir, TEXTS, 1, PASSAGE), atol=1e-5)
    assert enc.usage.requests == 3  # 5 texts in batches of 2


def test_task_selects_adapter_and_prefix(v3_dir: Path) -> None:
    enc = OnnxEncoder.from_pretrained(path=v3_dir)
    rec = recording(enc)
    query = enc.encode(["capital of Germany"], task="retrieval.query")
    matching = enc.encode(["capital of Germany"], task="text-matching")
    assert [int(f["task_id"]) for f in rec.feeds] == [0, 4]
    assert rec.feeds[0]["task_id"].shape == ()  # the export takes a scalar
    np.testing.assert_allclose(query, by_hand(v3_dir, ["capital of Germany"], 0, QUERY), atol=1e-5)
    np.testing.assert_allclose(matching, by_hand(v3_dir, ["capital of Germany"], 4, ""), atol=1e-5)
    assert float(query[0] @ matching[0]) < 0.999


def test_prefix_is_added_exactly_once(v3_dir: Path) -> None:
    enc = OnnxEncoder.from_pretrained(path=v3_dir)
    tok = Tokenizer.from_file(str(v3_dir / "tokenizer.json"))
    prefix_ids = tok.encode(PASSAGE, add_special_tokens=False).ids
    rec = recording(enc)
    plain, prefixed = enc.encode(["a cat", PASSAGE + "a cat"], task="retrieval.passage")
    (ids,) = [f["input_ids"] for f in rec.feeds]
    for row in ids:
        seq = row.tolist()
        hits = [i for i in range(len(seq)) if seq[i:i + len(prefix_ids)] == prefix_ids]
        assert hits == [1]  # right after <s>, once
    np.testing.assert_allclose(plain, prefixed, atol=1e-6)


def test_matryoshka_truncates_then_renormalises(v3_dir: Path) -> None:
    enc = OnnxEncoder.from_pretrained(path=v3_dir)
    full = enc.encode(TEXTS, task="retrieval.passage")
    cut = enc.encode(TEXTS, task="retrieval.passage", dimensions=64)
    head = full[:, :64]
    assert (np.linalg.norm(head, axis=1) < 0.99).all()  # a plain slice would not be unit length
    np.testing.assert_allclose(cut, head / np.linalg.norm(head, axis=1, keepdims=True), atol=1e-5)
    np.testing.assert_allclose(np.linalg.norm(cut, axis=1), 1.0, atol=1e-5)
    with pytest.raises(UsageError, match="between 1 and 1024"):
        enc.encode(TEXTS, task="retrieval.passage", dimensions=2048)


def test_length_sorted_batches_keep_input_order(v3_dir: Path) -> None:
    texts = TEXTS * 3
    unsorted = OnnxEncoder.from_pretrained(path=v3_dir, batch_size=3, sort_by_length=False)
    rec_unsorted = recording(unsorted)
    expected = unsorted.encode(texts, task="retrieval.passage")
    enc = OnnxEncoder.from_pretrained(path=v3_dir, batch_size=3)
    rec = recording(enc)
    got = enc.encode(texts, task="retrieval.passage")
    np.testing.assert_allclose(got, expected, atol=1e-5)
    np.testing.assert_allclose(got, by_hand(v3_dir, texts, 1, PASSAGE), atol=1e-5)

    def padding(r: RecordingSession) -> int:
        return sum(int((f["attention_mask"] == 0).sum()) for f in r.feeds)

    assert padding(rec) < padding(rec_unsorted)
    widths = [f["input_ids"].shape[1] for f in rec.feeds]
    assert widths == sorted(widths, reverse=True)


def test_plan_batches_respects_inputs_and_token_budget() -> None:
    lengths = [5, 50, 7, 48, 6, 49]
    assert plan_batches(lengths, 2, 10_000) == [[1, 5], [3, 2], [4, 0]]
    assert plan_batches(lengths, 2, 10_000, sort_by_length=False) == [[0, 1], [2, 3], [4, 5]]
    # A batch's padded size is inputs x its longest: 4 x 50 > 150 closes the first batch at 3 inputs.
    assert plan_batches(lengths, 10, 150) == [[1, 5, 3], [2, 4, 0]]


def test_v3_export_needs_a_task(v3_dir: Path) -> None:
    enc = OnnxEncoder.from_pretrained(path=v3_dir)
    with pytest.raises(UsageError, match="pass a task"):
        enc.encode(["x"])
    with pytest.raises(UsageError, match="unknown task"):
        enc.encode(["x"], task="retrieval")


def test_token_limit_refuses_or_truncates(v3_dir: Path) -> None:
    long_text = "one two three four five six seven eight nine ten"
    strict = OnnxEncoder.from_pretrained(path=v3_dir, max_tokens=8)
    with pytest.raises(InputError, match="input 1 has 12 tokens, over the 8-token limit"):
        strict.encode(["cat", long_text], task="text-matching")
    enc = OnnxEncoder.from_pretrained(path=v3_dir, max_tokens=8, truncate=True)
    rec = recording(enc)
    got = enc.encode(["cat", long_text], task="text-matching")
    assert enc.truncated == 1
    ids = rec.feeds[0]["input_ids"][0].tolist()
    assert len(ids) == 8 and ids[0] == 0 and ids[-1] == 2  # <s> ... </s> kept
    np.testing.assert_allclose(got[1], by_hand(v3_dir, ["one two three four five six"], 4, "")[0], atol=1e-5)


def test_count_tokens_uses_the_tokenizer(v3_dir: Path) -> None:
    enc = OnnxEncoder.from_pretrained(path=v3_dir)
    tok = Tokenizer.from_file(str(v3_dir / "tokenizer.json"))
    assert enc.count_tokens(TEXTS) == [len(tok.encode(t).ids) for t in TEXTS]
    n_prefix = len(tok.encode(QUERY, add_special_tokens=False).ids)
    assert enc.count_tokens(["a cat"], task="retrieval.query") == [4 + n_prefix]
    enc.encode(["a cat"], task="retrieval.query")
    assert enc.usage.tokens == 4 + n_prefix


def test_v2_export_signature(v2_dir: Path) -> None:
    enc = OnnxEncoder.from_pretrained(V2, path=v2_dir, batch_size=2)
    rec = recording(enc)
    got = enc.encode(TEXTS, task="retrieval.query")  # v2 has no tasks: ignored, no prefix
    assert got.shape == (len(TEXTS), 768)
    np.testing.assert_allclose(got, by_hand(v2_dir, TEXTS, None, ""), atol=1e-5)
    assert all("task_id" not in f and not f["token_type_ids"].any() for f in rec.feeds)
    with pytest.raises(UsageError, match="no Matryoshka sizes"):
        enc.encode(TEXTS, dimensions=256)


def test_export_must_match_the_model_named(v2_dir: Path, v3_dir: Path, tmp_path: Path) -> None:
    with pytest.raises(EncoderError, match="no task_id input"):
        OnnxEncoder.from_pretrained(path=v2_dir)
    with pytest.raises(EncoderError, match="takes a task_id"):
        OnnxEncoder.from_pretrained(V2, path=v3_dir)
    with pytest.raises(EncoderError, match="1024-dim token embeddings; jina-embeddings-v2-small-en has 512"):
        OnnxEncoder.from_pretrained("jina-embeddings-v2-small-en",
                                    path=build_model_dir(tmp_path / "v2-1024", kind="v2", dims=1024))


def test_flat_folder_and_fp16_file_names(tmp_path: Path, v3_dir: Path) -> None:
    build_model(tmp_path / "flat" / "model.onnx")
    (tmp_path / "flat" / "tokenizer.json").write_bytes((v3_dir / "tokenizer.json").read_bytes())
    flat = OnnxEncoder.from_pretrained(path=tmp_path / "flat").encode(["a cat"], task="separation")
    nested = OnnxEncoder.from_pretrained(path=v3_dir).encode(["a cat"], task="separation")
    np.testing.assert_allclose(flat, nested, atol=1e-6)
    with pytest.raises(EncoderError, match="no onnx/model_fp16.onnx or model_fp16.onnx in"):
        OnnxEncoder.from_pretrained(path=tmp_path / "flat", precision="fp16")
    build_model(tmp_path / "flat" / "onnx" / "model_fp16.onnx", seed=1)
    enc = OnnxEncoder.from_pretrained(path=tmp_path / "flat", precision="fp16")
    assert enc.model_file.name == "model_fp16.onnx"


def test_missing_files_are_clear_errors(tmp_path: Path, v3_dir: Path) -> None:
    with pytest.raises(UsageError, match="does not exist"):
        OnnxEncoder.from_pretrained(path=tmp_path / "nowhere")
    (tmp_path / "empty").mkdir()
    with pytest.raises(EncoderError, match=r"no onnx/model.onnx or model.onnx in .*empty"):
        OnnxEncoder.from_pretrained(path=tmp_path / "empty")
    build_model(tmp_path / "notok" / "onnx" / "model.onnx")
    with pytest.raises(EncoderError, match="no tokenizer.json in"):
        OnnxEncoder.from_pretrained(path=tmp_path / "notok")
    (tmp_path / "notok" / "tokenizer.json").write_bytes((v3_dir / "tokenizer.json").read_bytes())
    (tmp_path / "notok" / "onnx" / "model.onnx_data").unlink()
    with pytest.raises(EncoderError, match="its weights file model.onnx_data is not beside it"):
        OnnxEncoder.from_pretrained(path=tmp_path / "notok")


def test_config_task_order_is_checked(tmp_path: Path) -> None:
    folder = build_model_dir(tmp_path / "m")
    (folder / "config.json").write_text('{"lora_adaptations": ["retrieval.passage", "retrieval.query"]}')
    with pytest.raises(EncoderError, match="lora_adaptations"):
        OnnxEncoder.from_pretrained(path=folder)


def test_loads_from_the_hugging_face_cache_offline(tmp_path: Path, v3_dir: Path) -> None:
    cache = tmp_path / "hub"
    build_hf_cache(cache)
    enc = OnnxEncoder.from_pretrained(cache_dir=cache)
    assert "models--jinaai--jina-embeddings-v3/snapshots" in str(enc.model_file)
    np.testing.assert_allclose(enc.encode(TEXTS, task="classification"),
                               OnnxEncoder.from_pretrained(path=v3_dir).encode(TEXTS, task="classification"),
                               atol=1e-6)
    missing = (r"Xenova/jina-embeddings-v2-base-en is not in the Hugging Face cache \(.*hub\); "
               r"allow downloads.* \(tried jinaai/jina-embeddings-v2-base-en first\)")
    with pytest.raises(EncoderError, match=missing):  # the official repo, then its mirror, were looked for
        OnnxEncoder.from_pretrained(V2, cache_dir=cache)
    build_hf_cache(cache, repo_id="Xenova/jina-embeddings-v2-base-en", kind="v2")
    mirror = OnnxEncoder.from_pretrained(V2, cache_dir=cache)
    assert "models--Xenova--jina-embeddings-v2-base-en" in str(mirror.model_file)
    assert mirror.encode(["x"]).shape == (1, 768)
    with pytest.raises(EncoderError, match="jinaai/jina-embeddings-v2-base-de is not in the Hugging Face"):
        OnnxEncoder.from_pretrained(V2, cache_dir=cache, repo_id="jinaai/jina-embeddings-v2-base-de")


def test_device_and_threads(v3_dir: Path) -> None:
    enc = OnnxEncoder.from_pretrained(path=v3_dir, threads=1)
    assert enc.session.get_session_options().intra_op_num_threads == 1
    assert enc.session.get_providers() == ["CPUExecutionProvider"]
    if "CUDAExecutionProvider" not in ort.get_available_providers():
        with pytest.raises(EncoderError, match="no CUDA provider"):
            OnnxEncoder.from_pretrained(path=v3_dir, device="cuda")


def test_licence_note_once_per_process(v3_dir: Path, v2_dir: Path, monkeypatch: pytest.MonkeyPatch,
                                       caplog: pytest.LogCaptureFixture) -> None:
    monkeypatch.setattr(onnx_mod, "_licence_shown", False)
    with caplog.at_level(logging.WARNING):
        OnnxEncoder.from_pretrained(V2, path=v2_dir)
        assert LICENCE_V3_NOTE not in caplog.text  # v2 weights are Apache-2.0
        OnnxEncoder.from_pretrained(path=v3_dir)
        OnnxEncoder.from_pretrained(path=v3_dir)
    assert caplog.text.count(LICENCE_V3_NOTE) == 1


def test_licence_note_goes_to_stderr(v3_dir: Path) -> None:
    code = ("from jmigrate.encoders.onnx import OnnxEncoder\n"
            f"for _ in range(2): OnnxEncoder.from_pretrained(path={str(v3_dir)!r})\n")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert done.stdout == ""
    assert done.stderr.count("CC BY-NC 4.0") == 1


def test_tiny_model_with_layers(tmp_path: Path) -> None:
    folder = build_model_dir(tmp_path / "deep", layers=2, seed=3)
    got = OnnxEncoder.from_pretrained(path=folder, batch_size=2).encode(TEXTS, task="retrieval.query")
    np.testing.assert_allclose(got, by_hand(folder, TEXTS, 0, QUERY), atol=1e-5)


def test_hf_hub_cache_environment_is_honoured(tmp_path: Path) -> None:
    build_hf_cache(tmp_path / "hub")
    code = ("from jmigrate.encoders.onnx import OnnxEncoder\n"
            "enc = OnnxEncoder.from_pretrained()\n"
            "print(enc.encode(['a cat'], task='retrieval.query', dimensions=32).shape)\n")
    env = {"PATH": "/usr/bin:/bin", "HF_HUB_CACHE": str(tmp_path / "hub"), "HF_HUB_OFFLINE": "1"}
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, check=True)
    assert done.stdout.strip() == "(1, 32)"
