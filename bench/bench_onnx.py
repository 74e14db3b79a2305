"""Local ONNX backend: (1) overhead of jmigrate's tokenising, batching and pooling over bare `session.run`
on the same pre-tokenized batches; (2) padded tokens with length-sorted vs input-order batching.

The model is a tiny one with the v3 export's signature (jmigrate.testing.tiny_models): D=1024 (the
catalogue's v3 size) plus `--layers` residual 1024x1024 MatMul+Tanh layers per token. It does ~2M
multiply-adds per token per 2 layers, ~250x less than the real v3 (572M parameters), so the overhead
ratio measured here is an upper bound of what the real model shows.

    .venv/bin/python bench/bench_onnx.py [--texts 256] [--layers 2] [--repeats 5]
"""

from __future__ import annotations

import argparse
import json
import statistics
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np

from jmigrate.encoders.onnx import OnnxEncoder, add_prefix, plan_batches
from jmigrate.models import TASKS
from jmigrate.testing.tiny_models import build_model_dir, tiny_vocab

TASK = "retrieval.passage"


def corpus(n: int, seed: int = 0) -> list[str]:
    """Mixed lengths, as in a real knowledge base: log-uniform 4..400 words (titles to long pages)."""
    rng = np.random.default_rng(seed)
    words = [w for w in tiny_vocab() if w.isalpha() and len(w) > 1]
    lengths = np.exp(rng.uniform(np.log(4), np.log(400), n)).astype(int)
    return [" ".join(rng.choice(words, size=k)) + "." for k in lengths]


class PaddingCounter:
    """Wraps the encoder's session to count the tokens it computes and how many of them are padding."""

    def __init__(self, session: Any) -> None:
        self.session = session
        self.computed = 0
        self.padding = 0

    def run(self, names: Any, feed: dict[str, np.ndarray]) -> Any:
        mask = feed["attention_mask"]
        self.computed += mask.size
        self.padding += int(mask.size - mask.sum())
        return self.session.run(names, feed)


def bare_batches(enc: OnnxEncoder, texts: list[str]) -> list[dict[str, np.ndarray]]:
    """The same batches the encoder builds, tokenized and padded ahead of time (outside the timing)."""
    prefix = TASKS[TASK].prefix
    ids = [e.ids for e in enc.tokenizer.encode_batch([add_prefix(t, prefix) for t in texts])]
    feeds = []
    for batch in plan_batches([len(x) for x in ids], enc.batch_size, enc.max_batch_tokens):
        width = max(len(ids[i]) for i in batch)
        input_ids = np.full((len(batch), width), enc.pad_id, dtype=np.int64)
        mask = np.zeros_like(input_ids)
        for row, i in enumerate(batch):
            input_ids[row, :len(ids[i])] = ids[i]
            mask[row, :len(ids[i])] = 1
        feeds.append({"input_ids": input_ids, "attention_mask": mask,
                      "task_id": np.array(TASKS[TASK].task_id, dtype=np.int64)})
    return feeds


def timed(fn: Any) -> float:
    start = time.perf_counter()
    fn()
    return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--texts", type=int, default=256)
    parser.add_argument("--layers", type=int, default=2)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--json-out", type=Path, help="also write the results as JSON (for bench/run_all.py)")
    args = parser.parse_args()

    texts = corpus(args.texts)
    with tempfile.TemporaryDirectory() as tmp:
        folder = build_model_dir(Path(tmp) / "v3", layers=args.layers)
        enc = OnnxEncoder.from_pretrained(path=folder, threads=args.threads, batch_size=32)
        session = enc.session
        feeds = bare_batches(enc, texts)
        tokens = sum(int(f["attention_mask"].sum()) for f in feeds)

        def bare() -> None:
            for feed in feeds:
                session.run([enc.output_name], feed)

        def ours() -> None:
            enc.encode(texts, task=TASK)

        ours()  # warm-up (allocator, thread pool)
        bare_t, ours_t = [], []
        for _ in range(args.repeats):  # interleaved so load changes hit both alike
            bare_t.append(timed(bare))
            ours_t.append(timed(ours))
        b, o = statistics.median(bare_t), statistics.median(ours_t)

        counts = {}
        for sort in (True, False):
            e = OnnxEncoder.from_pretrained(path=folder, threads=args.threads, batch_size=32,
                                            sort_by_length=sort)
            counter = PaddingCounter(e.session)
            e.session = counter
            t = timed(lambda e=e: e.encode(texts, task=TASK))
            counts[sort] = (counter.padding, counter.computed, t)

    print(f"corpus: {len(texts)} texts, {tokens} tokens; model: tiny v3 signature, D=1024, "
          f"{args.layers} layers; threads={args.threads}, batch_size=32, repeats={args.repeats}")
    print(f"(1) bare session.run {b:.3f} s, OnnxEncoder.encode {o:.3f} s (medians): "
          f"overhead {100 * (o / b - 1):+.1f}% (target <= 15%)")
    (pad_s, comp_s, t_s), (pad_u, comp_u, t_u) = counts[True], counts[False]
    print(f"(2) padded tokens: input order {pad_u} of {comp_u} computed, length-sorted {pad_s} of {comp_s}: "
          f"{100 * (1 - pad_s / pad_u):.1f}% fewer (target >= 40%); encode time {t_u:.3f} s -> {t_s:.3f} s "
          f"({t_u / t_s:.2f}x)")
    if args.json_out:
        workload = (f"{len(texts)} texts (4-400 words), {tokens:,} tokens; tiny v3-signature model, D=1024, "
                    f"{args.layers} layers; threads={args.threads}, batch_size=32")
        fewer = 1 - pad_s / pad_u
        args.json_out.write_text(json.dumps([
            {"part": "ONNX encoder overhead", "workload": workload,
             "baseline": "bare `session.run` on pre-tokenized batches", "baseline_figure": f"{b:.3f} s",
             "ours": "`OnnxEncoder.encode`", "ours_figure": f"{o:.3f} s (median of {args.repeats})",
             "ratio": o / b, "ratio_text": f"{100 * (o / b - 1):+.1f}% overhead", "target": "<= +15%",
             "met": o / b <= 1.15},
            {"part": "ONNX length-sorted batches", "workload": workload,
             "baseline": "batches in input order", "baseline_figure": f"{pad_u:,} padded tokens",
             "ours": "length-sorted batches", "ours_figure": f"{pad_s:,} padded tokens",
             "ratio": fewer, "ratio_text": f"{fewer:.1%} fewer padded tokens", "target": ">= 40% fewer",
             "met": fewer >= 0.4}], indent=2))


if __name__ == "__main__":
    main()
