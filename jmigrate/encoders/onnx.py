"""Local inference without torch: the official Jina ONNX exports through ONNX Runtime and `tokenizers`.

The v3 export (`jinaai/jina-embeddings-v3`, `onnx/model.onnx`) takes `input_ids`, `attention_mask` and a
scalar `task_id` and returns token embeddings (`text_embeds`). Everything else is the caller's job and
done here: the task id and the retrieval instruction prefix (added exactly once), mean pooling over the
attention mask, Matryoshka truncation then L2 normalisation, length-sorted batching, the token limit,
and late chunking (see `late_chunking.py`). v2 exports (`input_ids`, `attention_mask`, `token_type_ids`
-> `last_hidden_state`) go through the same class, without tasks. Model facts come from `jmigrate.models`.
"""

from __future__ import annotations

import json
import logging
import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any, Literal

import numpy as np

from jmigrate.encoders.base import Encoder, add_prefix, truncate_and_normalise
from jmigrate.encoders.late_chunking import join_chunks, pool_spans, token_spans, windowed_token_embeddings
from jmigrate.errors import EncoderError, InputError, UsageError
from jmigrate.models import LICENCE_V3_NOTE, TASKS, V3, Model, get_model, get_task

log = logging.getLogger(__name__)

Precision = Literal["fp32", "fp16"]
Device = Literal["cpu", "cuda"]

# Where the Hugging Face repos keep the export; a flat folder (model.onnx at the top) works too.
MODEL_FILES: dict[str, tuple[str, ...]] = {
    "fp32": ("onnx/model.onnx", "model.onnx"),
    "fp16": ("onnx/model_fp16.onnx", "model_fp16.onnx"),
}
TOKENIZER_FILE = "tokenizer.json"
NEEDS_ONNX_EXTRA = "the local backend needs tokenizers and onnxruntime: pip install 'jmigrate[onnx]'"

_licence_shown = False


def show_licence_note_once() -> None:
    """Tell the user, once per process, that self-hosted v3 weights are non-commercial (stderr, logging)."""
    global _licence_shown
    if not _licence_shown:
        _licence_shown = True
        log.warning("note: %s", LICENCE_V3_NOTE)


def plan_batches(lengths: Sequence[int], batch_size: int, max_batch_tokens: int,
                 sort_by_length: bool = True) -> list[list[int]]:
    """Group input indices into batches of at most `batch_size` inputs and `max_batch_tokens` padded tokens.

    Sorting by length (longest first, ties in input order) puts similar lengths together so little
    padding is computed; the caller writes results back by index, so output order is input order.
    """
    order = sorted(range(len(lengths)), key=lambda i: -lengths[i]) if sort_by_length else range(len(lengths))
    batches: list[list[int]] = []
    current: list[int] = []
    longest = 0
    for i in order:
        widest = max(longest, lengths[i])
        if current and (len(current) >= batch_size or widest * (len(current) + 1) > max_batch_tokens):
            batches.append(current)
            current, widest = [], lengths[i]
        current.append(i)
        longest = widest
    if current:
        batches.append(current)
    return batches


def find_model_files(folder: Path, precision: Precision = "fp32") -> tuple[Path, Path]:
    """The ONNX file and `tokenizer.json` inside a model folder laid out like the Hugging Face repo."""
    if not folder.is_dir():
        raise UsageError(f"model folder {folder} does not exist")
    candidates = MODEL_FILES.get(precision)
    if candidates is None:
        raise UsageError(f"unknown precision {precision!r}; choose one of {', '.join(MODEL_FILES)}")
    model_file = next((folder / c for c in candidates if (folder / c).is_file()), None)
    if model_file is None:
        raise EncoderError(f"no {' or '.join(candidates)} in {folder}")
    places = (folder / TOKENIZER_FILE, model_file.parent / TOKENIZER_FILE)
    tokenizer = next((p for p in places if p.is_file()), None)
    if tokenizer is None:
        raise EncoderError(f"no {TOKENIZER_FILE} in {folder}")
    return model_file, tokenizer


def snapshot_from_hub(repo_id: str, *, precision: Precision = "fp32", allow_download: bool = False,
                      cache_dir: str | os.PathLike[str] | None = None, revision: str | None = None) -> Path:
    """The local folder of `repo_id` in the Hugging Face cache; downloads only with `allow_download`.

    Only the files the ONNX backend needs are fetched (not the 2 GB of PyTorch weights).
    """
    try:
        import huggingface_hub
        from huggingface_hub.errors import LocalEntryNotFoundError
    except ImportError:
        raise UsageError("loading from the Hugging Face cache needs huggingface_hub: "
                         "pip install 'jmigrate[hub]', or give the model folder") from None
    stem = MODEL_FILES[precision][1]
    patterns = [f"onnx/{stem}*", f"{stem}*", TOKENIZER_FILE, "config.json"]
    where = str(cache_dir) if cache_dir is not None else "the default cache"
    try:
        folder = huggingface_hub.snapshot_download(
            repo_id, revision=revision, cache_dir=None if cache_dir is None else Path(cache_dir),
            allow_patterns=patterns, local_files_only=not allow_download,
        )
    except LocalEntryNotFoundError:
        hint = "" if allow_download else "; allow downloads or give the model folder"
        raise EncoderError(f"{repo_id} is not in the Hugging Face cache ({where}){hint}") from None
    except Exception as e:  # network, auth, disk: one line, no URLs with tokens
        raise EncoderError(f"could not fetch {repo_id} from the Hugging Face Hub: {type(e).__name__}") from e
    return Path(str(folder))


def _first_line(e: BaseException) -> str:
    text = str(e).strip()
    return text.splitlines()[0] if text else type(e).__name__


class OnnxEncoder(Encoder):
    """Jina embeddings on ONNX Runtime. Build it with `OnnxEncoder.from_pretrained(...)`.

    `truncate`: inputs over the model's token limit are cut (keeping `</s>`) and counted in
    `self.truncated`; without it they are refused with InputError, like the API.
    """

    kind = "onnx"
    exact_token_counts = True  # count_tokens runs the model's own tokenizer

    def __init__(
        self,
        model_file: str | os.PathLike[str],
        tokenizer_file: str | os.PathLike[str],
        *,
        model: str = V3,
        device: Device = "cpu",
        threads: int | None = None,
        inter_op_threads: int | None = None,
        batch_size: int = 32,
        max_batch_tokens: int = 16384,
        truncate: bool = False,
        max_tokens: int | None = None,
        sort_by_length: bool = True,
        window_overlap: int | None = None,
        config_file: str | os.PathLike[str] | None = None,
    ) -> None:
        super().__init__()
        self.spec: Model = get_model(model)
        self.model = self.spec.name
        if self.spec.generation == "v1":
            raise UsageError(f"{self.model}: only v2 and v3 ONNX exports are supported locally")
        self.dims = self.spec.dims
        self.max_tokens = max_tokens or self.spec.max_tokens
        self.batch_size = batch_size
        self.max_batch_tokens: int = max_batch_tokens  # an input longer than this still runs, alone
        self.truncate = truncate
        self.truncated = 0  # inputs cut to max_tokens so far
        self.sort_by_length = sort_by_length
        # Late chunking of over-long documents: the reference's 256-token overlap, less for tiny limits.
        self.window_overlap = min(256, self.max_tokens // 4) if window_overlap is None else window_overlap
        if not 0 <= self.window_overlap < self.max_tokens:
            raise UsageError(f"window_overlap must be in [0, {self.max_tokens}), got {window_overlap}")
        self.model_file = Path(model_file)
        if self.spec.generation == "v3" and config_file is not None:
            self._check_task_order(Path(config_file))
        self.tokenizer = self._load_tokenizer(Path(tokenizer_file))
        self.pad_id = self._pad_id()
        self.session = self._load_session(device, threads, inter_op_threads)
        self._check_signature()
        if self.spec.generation == "v3":
            show_licence_note_once()  # once the backend is really up

    @classmethod
    def from_pretrained(
        cls,
        model: str = V3,
        path: str | os.PathLike[str] | None = None,
        *,
        allow_download: bool = False,
        cache_dir: str | os.PathLike[str] | None = None,
        repo_id: str | None = None,
        revision: str | None = None,
        precision: Precision = "fp32",
        device: Device = "cpu",
        threads: int | None = None,
        batch_size: int = 32,
        truncate: bool = False,
        **options: Any,
    ) -> OnnxEncoder:
        """Load from a model folder (`path`) or, without one, from the Hugging Face cache (offline unless
        `allow_download`). `model` is the catalogue name; `repo_id` overrides its Hub id (e.g. a mirror)."""
        spec = get_model(model)
        if path is not None:
            folder = Path(path)
            model_file, tokenizer_file = find_model_files(folder, precision)
        else:
            # The official repo first, then the catalogue's ONNX mirrors (some v2 repos lack an export).
            repos = [repo_id] if repo_id else [spec.hf_id, *spec.onnx_mirrors]
            for i, repo in enumerate(repos):
                try:
                    folder = snapshot_from_hub(repo, precision=precision, allow_download=allow_download,
                                               cache_dir=cache_dir, revision=revision)
                    model_file, tokenizer_file = find_model_files(folder, precision)
                    break
                except EncoderError as e:
                    if i == len(repos) - 1:
                        tried = f" (tried {', '.join(repos[:-1])} first)" if len(repos) > 1 else ""
                        raise EncoderError(f"{e}{tried}") from e
        config = folder / "config.json"
        return cls(model_file, tokenizer_file, model=spec.name, device=device, threads=threads,
                   batch_size=batch_size, truncate=truncate,
                   config_file=config if config.is_file() else None, **options)

    # -- loading ---------------------------------------------------------------------------------

    def _load_tokenizer(self, path: Path) -> Any:
        try:
            from tokenizers import Tokenizer
        except ImportError:
            raise UsageError(NEEDS_ONNX_EXTRA) from None
        try:
            tok = Tokenizer.from_file(str(path))
        except Exception as e:
            raise EncoderError(f"cannot read tokenizer {path}: {_first_line(e)}") from e
        # We pad per batch and apply the token limit ourselves (to count and report truncation).
        tok.no_padding()
        tok.no_truncation()
        return tok

    def _pad_id(self) -> int:
        for name in ("<pad>", "[PAD]"):
            pad = self.tokenizer.token_to_id(name)
            if pad is not None:
                return int(pad)
        return 0  # masked out anyway; only the id value fed to the model changes

    def _load_session(self, device: Device, threads: int | None, inter_op_threads: int | None) -> Any:
        try:
            import onnxruntime as ort
        except ImportError:
            raise UsageError(NEEDS_ONNX_EXTRA) from None
        if device == "cuda":
            if "CUDAExecutionProvider" not in ort.get_available_providers():
                raise EncoderError("device cuda asked for, but this onnxruntime has no CUDA provider "
                                   "(install onnxruntime-gpu)")
            providers = ["CUDAExecutionProvider", "CPUExecutionProvider"]
        elif device == "cpu":
            providers = ["CPUExecutionProvider"]
        else:
            raise UsageError(f"unknown device {device!r}; choose cpu or cuda")
        options = ort.SessionOptions()
        options.log_severity_level = 3  # errors only: ORT's warnings would clutter stderr
        if threads:
            options.intra_op_num_threads = threads
        if inter_op_threads:
            options.inter_op_num_threads = inter_op_threads
        try:
            return ort.InferenceSession(str(self.model_file), sess_options=options, providers=providers)
        except Exception as e:
            weights = self.model_file.with_name(self.model_file.name + "_data")
            hint = f" (its weights file {weights.name} is not beside it)" if not weights.exists() else ""
            raise EncoderError(f"cannot load {self.model_file}{hint}: {_first_line(e)}") from e

    def _check_signature(self) -> None:
        inputs = {i.name: i for i in self.session.get_inputs()}
        outputs = [o.name for o in self.session.get_outputs()]
        missing = {"input_ids", "attention_mask"} - inputs.keys()
        if missing:
            raise EncoderError(f"{self.model_file} is not a Jina embeddings export "
                               f"(no {sorted(missing)[0]} input)")
        self.has_task_input = "task_id" in inputs
        if self.spec.generation == "v3" and not self.has_task_input:
            raise EncoderError(f"{self.model_file} has no task_id input: not a {V3} export")
        if self.spec.generation != "v3" and self.has_task_input:
            raise EncoderError(f"{self.model_file} takes a task_id: a v3 export, not {self.model}")
        # The v3 export takes a scalar; accept a [1]-shaped variant too.
        scalar = not self.has_task_input or not inputs["task_id"].shape
        self._task_shape: tuple[int, ...] = () if scalar else (1,)
        self.has_token_types = "token_type_ids" in inputs
        wanted = "text_embeds" if self.has_task_input else "last_hidden_state"
        self.output_name = wanted if wanted in outputs else outputs[0]
        out_dim = next(o for o in self.session.get_outputs() if o.name == self.output_name).shape[-1]
        if isinstance(out_dim, int) and out_dim != self.dims:
            raise EncoderError(f"{self.model_file} gives {out_dim}-dim token embeddings; "
                               f"{self.model} has {self.dims}")

    def _check_task_order(self, config: Path) -> None:
        try:
            adaptations = json.loads(config.read_text(encoding="utf-8")).get("lora_adaptations")
        except (OSError, ValueError) as e:
            raise EncoderError(f"cannot read {config}: {_first_line(e)}") from e
        expected = [t.name for t in sorted(TASKS.values(), key=lambda t: t.task_id)]
        if adaptations is not None and list(adaptations) != expected:
            raise EncoderError(f"{config}: lora_adaptations {adaptations} differ from the task ids "
                               "jmigrate uses")

    # -- encoding --------------------------------------------------------------------------------

    def _task(self, task: str | None) -> tuple[int | None, str]:
        """(task id, prefix) for this model; v2 models have no tasks and ignore `task`."""
        if not self.has_task_input:
            return None, ""
        if task is None:
            raise UsageError(f"the {V3} ONNX export always applies a task adapter: pass a task "
                             f"({', '.join(TASKS)})")
        t = get_task(task)
        return t.task_id, t.prefix

    def _check_dimensions(self, dimensions: int | None) -> None:
        if dimensions is None:
            return
        if not self.has_task_input and dimensions != self.dims:
            raise UsageError(f"{self.model} has no Matryoshka sizes: dimensions must be {self.dims}")
        if not 1 <= dimensions <= self.dims:
            raise UsageError(f"dimensions must be between 1 and {self.dims}, got {dimensions}")

    def run_tokens(self, ids: np.ndarray, mask: np.ndarray, task_id: int | None) -> np.ndarray:
        """One `session.run` on padded int64 [b, s] ids and mask: token embeddings [b, s, D] float32."""
        feed: dict[str, np.ndarray] = {"input_ids": ids, "attention_mask": mask}
        if self.has_task_input:
            feed["task_id"] = np.full(self._task_shape, task_id, dtype=np.int64)
        if self.has_token_types:
            feed["token_type_ids"] = np.zeros_like(ids)
        try:
            out = self.session.run([self.output_name], feed)[0]
        except Exception as e:
            raise EncoderError(f"onnxruntime failed on {self.model_file.name}: {_first_line(e)}") from e
        self.usage.requests += 1
        self.usage.tokens += int(mask.sum())
        out = np.asarray(out, dtype=np.float32)  # fp16 exports: pool in float32
        if out.shape[-1] != self.dims:
            raise EncoderError(f"{self.model_file} gives {out.shape[-1]}-dim token embeddings; "
                               f"{self.model} has {self.dims}")
        return out

    def _fit(self, ids: list[int], special: list[int], index: int) -> list[int]:
        """Apply the token limit to one tokenized input: refuse it, or cut it keeping a final `</s>`."""
        if len(ids) <= self.max_tokens:
            return ids
        if not self.truncate:
            raise InputError(f"input {index} has {len(ids)} tokens, over the {self.max_tokens}-token limit "
                             f"of {self.model}; chunk it or enable truncation")
        self.truncated += 1
        if special and special[-1]:
            return ids[: self.max_tokens - 1] + ids[-1:]
        return ids[: self.max_tokens]

    def count_tokens(self, texts: Sequence[str], task: str | None = None) -> list[int]:
        """Tokens per text as the model sees them: special tokens included, and the task's prefix if given."""
        prefix = get_task(task).prefix if task is not None and self.has_task_input else ""
        return [len(e.ids) for e in self._encode_batch_fast([add_prefix(t, prefix) for t in texts])]

    def _encode_batch_fast(self, texts: list[str]) -> list[Any]:
        # Offsets are only needed for late chunking; skipping them saves ~25% of tokenizing time
        # (`encode_batch_fast` arrived in tokenizers 0.20).
        fast = getattr(self.tokenizer, "encode_batch_fast", self.tokenizer.encode_batch)
        return list(fast(texts))

    def encode_batch(
        self,
        texts: Sequence[str],
        *,
        task: str | None,
        dimensions: int | None,
        late_chunking: bool = False,
    ) -> np.ndarray:
        task_id, prefix = self._task(task)
        self._check_dimensions(dimensions)
        if late_chunking:
            return self._late_chunked([texts], task_id, prefix, dimensions)[0]
        encodings = self._encode_batch_fast([add_prefix(t, prefix) for t in texts])
        token_ids = [self._fit(e.ids, e.special_tokens_mask, i) for i, e in enumerate(encodings)]
        pooled = np.empty((len(texts), self.dims), dtype=np.float32)
        for batch in plan_batches([len(t) for t in token_ids], self.batch_size, self.max_batch_tokens,
                                  self.sort_by_length):
            ids, mask = self._padded([token_ids[i] for i in batch])
            pooled[batch] = mean_pool(self.run_tokens(ids, mask, task_id), mask)
        return truncate_and_normalise(pooled, dimensions)

    def encode_late_chunked(
        self,
        documents: Sequence[Sequence[str]],
        *,
        task: str | None = None,
        dimensions: int | None = None,
    ) -> list[np.ndarray]:
        """Late chunking for many documents, one matrix of chunk vectors each. Documents that fit the
        context share session runs (one document per row, so their tokens never attend to each other);
        longer ones go through macro-windows."""
        task_id, prefix = self._task(task)
        self._check_dimensions(dimensions)
        return self.check_documents(self._late_chunked(documents, task_id, prefix, dimensions), documents,
                                    dimensions)

    def _padded(self, rows: Sequence[Sequence[int]]) -> tuple[np.ndarray, np.ndarray]:
        """Right-padded int64 ids and attention mask for a batch of token id lists."""
        width = max(len(r) for r in rows)
        ids = np.full((len(rows), width), self.pad_id, dtype=np.int64)
        mask = np.zeros((len(rows), width), dtype=np.int64)
        for i, row in enumerate(rows):
            ids[i, : len(row)] = row
            mask[i, : len(row)] = 1
        return ids, mask

    def _late_tokens(self, chunks: Sequence[str], prefix: str) -> tuple[list[int], list[tuple[int, int]]]:
        """Token ids of one document (prefix once + chunks joined) and each chunk's token span."""
        if not chunks:
            return [], []
        if prefix and chunks[0].startswith(prefix):
            prefix = ""  # already there: exactly once
        text, starts = join_chunks(chunks, prefix)
        enc = self.tokenizer.encode(text)
        return list(enc.ids), token_spans(enc.offsets, enc.special_tokens_mask, starts)

    def _late_chunked(self, documents: Sequence[Sequence[str]], task_id: int | None, prefix: str,
                      dimensions: int | None) -> list[np.ndarray]:
        """Chunk vectors per document; see `late_chunking.py` for the algorithm."""
        docs = [self._late_tokens(chunks, prefix) for chunks in documents]
        tokens: list[np.ndarray | None] = [None] * len(docs)
        fits = [i for i, (ids, _) in enumerate(docs) if 0 < len(ids) <= self.max_tokens]
        for batch in plan_batches([len(docs[i][0]) for i in fits], self.batch_size, self.max_batch_tokens,
                                  self.sort_by_length):
            rows = [fits[b] for b in batch]
            ids, mask = self._padded([docs[i][0] for i in rows])
            out = self.run_tokens(ids, mask, task_id)
            for r, i in enumerate(rows):
                tokens[i] = out[r, : len(docs[i][0])]

        def run(window: np.ndarray) -> np.ndarray:
            return self.run_tokens(window[None, :], np.ones((1, len(window)), dtype=np.int64), task_id)[0]

        results = []
        for (doc_ids, spans), t in zip(docs, tokens, strict=True):
            if not spans:
                results.append(np.zeros((0, dimensions or self.dims), dtype=np.float32))
                continue
            if t is None:  # longer than the context
                t = windowed_token_embeddings(run, np.asarray(doc_ids, dtype=np.int64), self.max_tokens,
                                              self.window_overlap)
            results.append(truncate_and_normalise(pool_spans(t, spans), dimensions))
        return results

    def close(self) -> None:
        self.session = None


def mean_pool(token_embeddings: np.ndarray, mask: np.ndarray) -> np.ndarray:
    """Mean of each row's token embeddings over its attention mask (special and prefix tokens included)."""
    weights = mask.astype(np.float32)
    summed = np.matmul(weights[:, None, :], token_embeddings)[:, 0, :]
    return summed / np.maximum(weights.sum(axis=1, keepdims=True), 1.0)
