"""`reindex --dry-run`: rows, tokens, cost, duration at the set limits and output size, spending nothing.

It runs the same validation as a real run (so the rejects it predicts are the ones a run would write)
but never calls `encode`.
"""

from __future__ import annotations

import math
from collections import Counter
from typing import Any

from jmigrate.encoders.base import Encoder
from jmigrate.index.settings import Settings, matryoshka_widths
from jmigrate.index.sources import Source
from jmigrate.index.units import Preparer, rebatch, token_limit

ESTIMATE_NOTE = "estimate: ~4 characters per token (no tokenizer at hand)"


def uses_estimate(encoder: Encoder) -> bool:
    return not encoder.exact_token_counts


def dry_run(source: Source, encoder: Encoder, settings: Settings, *, rpm: float | None = None,
            tpm: float | None = None, concurrency: int = 1, price_per_mtok: float | None = None
            ) -> dict[str, Any]:
    settings.check()
    info = settings.model_info
    # The same limit as the run (the model's, less the task's instruction): the same rows rejected.
    prep = Preparer(source, settings, encoder, token_limit(settings, encoder))
    rows = tokens = out_rows = docs = text_bytes = id_bytes = truncated = 0
    reasons: Counter[str] = Counter()
    first = 0
    for index, raw in enumerate(rebatch(source.batches(settings.unit_rows), settings.unit_rows,
                                         settings.limit)):
        u = prep.unit(index, first, raw, skip=False)
        first += len(raw)
        rows += len(raw)
        tokens += u.tokens
        out_rows += len(u.texts)
        docs += len(u.docs) if settings.late_chunking else 0
        truncated += u.truncated
        text_bytes += sum(len(t.encode("utf-8")) for t in u.texts) if settings.store_text else 0
        id_bytes += sum(len(i) for i in u.ids)
        for r in u.rejects:
            reasons[r["reason"].split(" (")[0].split(":")[0]] += 1
    batch = max(1, encoder.batch_size)
    batch_tokens = encoder.max_batch_tokens
    requests = docs if settings.late_chunking else max(
        math.ceil(out_rows / batch), math.ceil(tokens / batch_tokens) if batch_tokens else 0)
    minutes = []
    if rpm:
        minutes.append(("rpm", requests / rpm))
    if tpm:
        minutes.append(("tpm", tokens / tpm))
    bound = max(minutes, key=lambda m: m[1]) if minutes else None
    overhead = id_bytes + text_bytes + out_rows * 16  # ids, texts, chunk fields and Parquet framing
    widths = matryoshka_widths(info) if info else (settings.dimensions,)
    sizes = {str(d): overhead + out_rows * d * 4 for d in sorted(set(widths) | {settings.dimensions})}
    return {
        "source": source.describe(),
        "rows": {"source": rows, "embeddable": rows - sum(reasons.values()),
                 "rejected": sum(reasons.values()), "rejected_by_reason": dict(reasons),
                 "truncated": truncated},
        "output_rows": out_rows,
        "tokens": tokens,
        "tokens_counted_by": ESTIMATE_NOTE if uses_estimate(encoder) else "the model's tokenizer",
        "requests": requests,
        "price_per_mtok": price_per_mtok,
        "cost": tokens / 1e6 * price_per_mtok if price_per_mtok is not None else None,
        "max_spend": settings.max_spend,
        "limits": {"rpm": rpm, "tpm": tpm, "concurrency": concurrency},
        "duration_seconds": round(bound[1] * 60, 1) if bound else None,
        "bound_by": bound[0] if bound else None,
        "output_bytes_by_dimensions": sizes,
        "model": settings.model,
        "task": settings.task,
        "dimensions": settings.dimensions,
    }


def render(report: dict[str, Any], console: Any) -> None:
    r = report["rows"]
    lines = [
        f"dry run: nothing was sent. {r['source']:,} source rows, {r['embeddable']:,} embeddable, "
        f"{r['rejected']:,} would be rejected"
        + (f" ({_reasons(r['rejected_by_reason'])})" if r["rejected"] else ""),
        f"  {report['output_rows']:,} vectors, {report['tokens']:,} tokens ({report['tokens_counted_by']}), "
        f"~{report['requests']:,} requests",
    ]
    if report["cost"] is not None:
        cost = report["cost"]
        lines.append(f"  cost at ${report['price_per_mtok']}/M tokens: ${cost:,.4f}" if cost >= 0.01
                     else f"  cost at ${report['price_per_mtok']}/M tokens: ${cost:.6f}")
    else:
        lines.append("  cost: pass --price-per-mtok to estimate it")
    cap = report.get("max_spend")
    if cap is not None and report["cost"] is not None:
        if report["cost"] > cap:
            share = cap / report["cost"] if report["cost"] else 1.0
            lines.append(f"  spending cap ${cap:,.6g}: under the estimate; the run would stop at about "
                         f"{share:.0%} of the rows (rerun with a higher --max-spend to continue)")
        else:
            lines.append(f"  spending cap ${cap:,.6g}: the estimate fits under it")
    if report["duration_seconds"] is not None:
        lines.append(f"  duration at the configured limits: {_duration(report['duration_seconds'])} "
                     f"(bound by {report['bound_by']})")
    else:
        lines.append("  duration: pass --rpm/--tpm (your key's limits) to estimate it")
    sizes = ", ".join(f"{d}: {_bytes(b)}" for d, b in report["output_bytes_by_dimensions"].items())
    lines.append(f"  output size by --dimensions: {sizes}")
    for line in lines:
        console.print(line, highlight=False, markup=False)


def _reasons(c: dict[str, int]) -> str:
    return ", ".join(f"{n} {k}" for k, n in sorted(c.items(), key=lambda kv: -kv[1]))


def _duration(s: float) -> str:
    if s < 120:
        return f"{s:.0f} s"
    if s < 7200:
        return f"{s / 60:.0f} min"
    return f"{s / 3600:.1f} h"


def _bytes(n: int) -> str:
    for unit in ("B", "KB", "MB", "GB"):
        if n < 1024 or unit == "GB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1024  # type: ignore[assignment]
    return f"{n} TB"
