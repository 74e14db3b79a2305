"""Tiny ONNX models and tokenizer, laid out like the Jina Hugging Face repos. Their vectors are NOT Jina's.

The v3 model has exactly the signature of the official `jinaai/jina-embeddings-v3` export
(`input_ids`, `attention_mask`, `task_id` -> `text_embeds`), the v2 model that of the v2 exports
(`input_ids`, `attention_mask`, `token_type_ids` -> `last_hidden_state`). Every token's output also
carries the masked mean of its sequence, so a token's vector depends on its context: late chunking
then gives different vectors from naive chunking, as with the real models, and padding changes nothing.

Building needs the `onnx` package (a test-time dependency), imported inside the builders.
"""

from __future__ import annotations

import json
import os
import string
from pathlib import Path
from typing import Any, Literal

import numpy as np

from jmigrate.models import TASKS, V3, get_model

Kind = Literal["v3", "v2"]

# The ids XLM-RoBERTa's tokenizer uses; jmigrate must not assume them, but the tiny tokenizer mirrors them.
SPECIALS = ("<s>", "<pad>", "</s>", "<unk>")

# Whole words get their own token (like a real vocabulary); anything else falls back to characters.
_WORDS = (
    "the a an of to and in is for on with that this it as by be are was from at or not we our you "
    "represent query retrieving evidence documents document retrieval search index vector vectors "
    "model models embedding embeddings jina late chunking chunk chunks text token tokens sentence "
    "berlin germany capital city paris france river water ocean cat dog bird tree house car road "
    "one two three four five six seven eight nine ten first last long short new old good bad"
).split()


def tiny_vocab() -> dict[str, int]:
    vocab: dict[str, int] = {tok: i for i, tok in enumerate(SPECIALS)}
    pieces = list(_WORDS)
    chars = string.ascii_letters + string.digits + string.punctuation
    pieces += list(chars) + [f"##{c}" for c in chars]
    for piece in pieces:
        vocab.setdefault(piece, len(vocab))
    return vocab


def build_tokenizer() -> Any:
    """A WordPiece tokenizer with `<s>`=0, `<pad>`=1, `</s>`=2 that adds `<s> ... </s>` like XLM-R's."""
    from tokenizers import Tokenizer, models, normalizers, pre_tokenizers, processors

    tok = Tokenizer(models.WordPiece(tiny_vocab(), unk_token="<unk>", max_input_chars_per_word=100))
    tok.normalizer = normalizers.Lowercase()
    tok.pre_tokenizer = pre_tokenizers.BertPreTokenizer()
    tok.post_processor = processors.TemplateProcessing(
        single="<s> $A </s>", pair="<s> $A </s> </s> $B </s>", special_tokens=[("<s>", 0), ("</s>", 2)]
    )
    tok.add_special_tokens(list(SPECIALS))
    return tok


def _graph(kind: Kind, vocab_size: int, dims: int, layers: int, seed: int) -> Any:
    from onnx import TensorProto, helper, numpy_helper

    rng = np.random.default_rng(seed)

    def init(name: str, arr: np.ndarray) -> Any:
        return numpy_helper.from_array(arr, name)

    inits = [
        init("embeddings", rng.standard_normal((vocab_size, dims)).astype(np.float32)),
        init("axis_seq", np.array([1], dtype=np.int64)),
        init("axis_last", np.array([2], dtype=np.int64)),
    ]
    nodes = [
        helper.make_node("Gather", ["embeddings", "input_ids"], ["tok"]),
        helper.make_node("Cast", ["attention_mask"], ["mask_f"], to=TensorProto.FLOAT),
        helper.make_node("Unsqueeze", ["mask_f", "axis_last"], ["mask3"]),
        # Context: the masked mean of the sequence, added to every token (padding-invariant).
        helper.make_node("Mul", ["tok", "mask3"], ["tok_masked"]),
        helper.make_node("ReduceSum", ["tok_masked", "axis_seq"], ["ctx_sum"], keepdims=1),
        helper.make_node("ReduceSum", ["mask3", "axis_seq"], ["ctx_n"], keepdims=1),
        helper.make_node("Div", ["ctx_sum", "ctx_n"], ["ctx"]),
        helper.make_node("Add", ["tok", "ctx"], ["h0"]),
    ]
    ids = helper.make_tensor_value_info("input_ids", TensorProto.INT64, ["batch", "seq"])
    mask = helper.make_tensor_value_info("attention_mask", TensorProto.INT64, ["batch", "seq"])
    if kind == "v3":
        inits.append(init("task_table", rng.standard_normal((len(TASKS), dims)).astype(np.float32)))
        # A scalar task_id gathers one [D] row, broadcast over every token of the batch.
        nodes.append(helper.make_node("Gather", ["task_table", "task_id"], ["task_vec"]))
        nodes.append(helper.make_node("Add", ["h0", "task_vec"], ["h1"]))
        inputs = [ids, mask, helper.make_tensor_value_info("task_id", TensorProto.INT64, [])]
        out_name = "text_embeds"
    else:
        inits.append(init("type_table", rng.standard_normal((2, dims)).astype(np.float32)))
        nodes.append(helper.make_node("Gather", ["type_table", "token_type_ids"], ["type_vec"]))
        nodes.append(helper.make_node("Add", ["h0", "type_vec"], ["h1"]))
        types = helper.make_tensor_value_info("token_type_ids", TensorProto.INT64, ["batch", "seq"])
        inputs = [ids, mask, types]
        out_name = "last_hidden_state"
    h = "h1"
    # Optional per-token layers (residual tanh MLP) so benchmarks spend realistic time in session.run.
    for i in range(layers):
        w = (rng.standard_normal((dims, dims)) / np.sqrt(dims)).astype(np.float32)
        inits.append(init(f"w{i}", w))
        nodes.append(helper.make_node("MatMul", [h, f"w{i}"], [f"mm{i}"]))
        nodes.append(helper.make_node("Tanh", [f"mm{i}"], [f"act{i}"]))
        nodes.append(helper.make_node("Add", [h, f"act{i}"], [f"h{i + 2}"]))
        h = f"h{i + 2}"
    nodes.append(helper.make_node("Identity", [h], [out_name]))
    output = helper.make_tensor_value_info(out_name, TensorProto.FLOAT, ["batch", "seq", dims])
    graph = helper.make_graph(nodes, f"tiny-{kind}-not-jina", inputs, [output], initializer=inits)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)], producer_name="jmigrate")
    model.ir_version = 9  # readable by every onnxruntime since 1.16
    return model


def build_model(path: str | os.PathLike[str], *, kind: Kind = "v3", dims: int | None = None,
                layers: int = 0, seed: int = 0, vocab_size: int | None = None) -> Path:
    """Write a tiny model to `path` with its weights in `<name>_data` beside it, like the real export.

    `dims` defaults to the catalogue's size for the kind (1024 for v3, 768 for v2-base-en).
    """
    import onnx

    dims = dims or get_model(V3 if kind == "v3" else "jina-embeddings-v2-base-en").dims
    model = _graph(kind, vocab_size or len(tiny_vocab()), dims, layers, seed)
    onnx.checker.check_model(model)
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    # Default size_threshold: with 0 the file is unloadable (MEASURED.md); big tensors still go external.
    onnx.save_model(model, str(path), save_as_external_data=True, all_tensors_to_one_file=True,
                    location=path.name + "_data")
    return path


def build_model_dir(path: str | os.PathLike[str], *, kind: Kind = "v3", dims: int | None = None,
                    layers: int = 0, seed: int = 0) -> Path:
    """A folder laid out like the Hugging Face repo: `onnx/model.onnx` (+ `.onnx_data`), `tokenizer.json`,
    `config.json` (with `lora_adaptations` for v3)."""
    root = Path(path)
    root.mkdir(parents=True, exist_ok=True)
    build_model(root / "onnx" / "model.onnx", kind=kind, dims=dims, layers=layers, seed=seed)
    build_tokenizer().save(str(root / "tokenizer.json"))
    config: dict[str, Any] = {"_note": "tiny test model built by jmigrate; its vectors are not Jina vectors"}
    if kind == "v3":
        config["lora_adaptations"] = [t.name for t in sorted(TASKS.values(), key=lambda t: t.task_id)]
    (root / "config.json").write_text(json.dumps(config, indent=2) + "\n", encoding="utf-8")
    return root


def build_hf_cache(cache_dir: str | os.PathLike[str], *, repo_id: str = f"jinaai/{V3}", kind: Kind = "v3",
                   dims: int | None = None, revision: str = "0" * 40) -> Path:
    """Lay a tiny model out as a Hugging Face cache entry (`models--org--name/snapshots/<rev>/`, `refs/main`)
    to test the cache-loading path with `local_files_only=True` and no network. Returns the snapshot."""
    repo_dir = Path(cache_dir) / ("models--" + repo_id.replace("/", "--"))
    snapshot = build_model_dir(repo_dir / "snapshots" / revision, kind=kind, dims=dims)
    (repo_dir / "refs").mkdir(parents=True, exist_ok=True)
    (repo_dir / "refs" / "main").write_text(revision, encoding="utf-8")
    return snapshot
