"""Render a `VerifyResult`: the verdict paragraph, Rich tables, JSON, and a self-contained HTML report.

The HTML file embeds its CSS and hand-written SVG plots (no scripts, fonts or images from the
network), so it opens offline and can be attached to a ticket as is.
"""

from __future__ import annotations

import html
import math
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.markup import escape
from rich.table import Table

from jmigrate.fileio import write_output
from jmigrate.models import STUB_SERVED_SUFFIX, get_model
from jmigrate.verify import agreement as agr
from jmigrate.verify.metrics import MAIN_METRIC, METRICS, RECALL_CURVE
from jmigrate.verify.pipeline import SIDES, VerifyResult, side_label
from jmigrate.verify.stats import Comparison

CONFIDENCE = 0.95


def _signed(x: float) -> str:
    return f"{x:+.4f}"


def _p(p: float) -> str:
    return "p<0.001" if p < 0.001 else f"p={p:.3f}"


def stand_ins(result: VerifyResult) -> dict[str, str]:
    """{side: why} for each index whose vectors did not come from a real model (the fake encoder or
    the loopback stub): numbers measured on them say nothing about v2 or v3."""
    out = {}
    for name, side in result.sides.items():
        m = side.index.manifest
        if m is None:
            continue
        if m.encoder == "fake":
            out[name] = "test vectors from `--encoder fake`"
        elif m.served_model and STUB_SERVED_SUFFIX.strip(" ()") in m.served_model:
            out[name] = "vectors from the jmigrate loopback stub (served_model says so)"
    return out


def _stand_in_sentence(result: VerifyResult) -> str:
    found = stand_ins(result)
    if not found:
        return ""
    which = "; ".join(f"the {n} index holds {why}" for n, why in found.items())
    return (f"Stand-in vectors: {which}, not a real model's: this run rehearses the pipeline, and its "
            "numbers say nothing about the quality of v2 or v3. ")


def _prose_names(result: VerifyResult) -> tuple[str, str]:
    """(candidate, baseline) as the verdict names them."""
    i2, i3 = result.sides["v2"].index, result.sides["v3"].index
    if get_model(i2.model).generation != "v3" and get_model(i3.model).generation == "v3":
        return "v3", "v2"
    a, b = side_label(i3), side_label(i2)
    if a == b:
        return f"--v3 ({a})", f"--v2 ({b})"
    return a, b


def verdict(result: VerifyResult) -> tuple[str, str]:
    """(status, one paragraph for people) — status is one of v3-better, v3-worse,
    no-significant-difference, no-qrels; a trailing integrity sentence when an index failed a check."""
    alpha = result.options.alpha
    tail = ""
    errors = result.integrity_errors
    if errors:
        tail = (
            f" Integrity checks found {len(errors)} error(s) ({'; '.join(e.message for e in errors[:2])}"
            f"{'…' if len(errors) > 2 else ''}): fix them before trusting this comparison (exit 1)."
        )
    if not result.has_qrels:
        s = agr.summarise(result.agreement)
        k = result.options.k
        text = (
            f"No relevance judgements were given (--qrels), so there is no verdict on quality. "
            f"Over {len(result.queries)} queries the two systems share on average "
            f"{(s['overlap_jaccard'] or 0):.0%} of their top {k} (Jaccard) with a rank-biased overlap "
            f"of {(s['rbo'] or 0):.2f}; read the {len(result.examples)} queries where they disagree most "
            f"and judge which list is better."
        )
        return "no-qrels", _stand_in_sentence(result) + text + bridge_sentence(result) + tail
    main = result.main()
    assert main is not None
    # Names of the two sides in prose: "v3"/"v2" for a migration; for two indexes of one generation
    # (e.g. v3 at 1024 vs 256 dimensions) what each index is.
    new, old = _prose_names(result)
    better = [c.metric for c in result.comparisons if c.difference > 0 and c.p_value < alpha]
    worse = [c.metric for c in result.comparisons if c.difference < 0 and c.p_value < alpha]
    head = (
        f"{main.metric}: {new} {main.v3_mean:.4f} vs {old} {main.v2_mean:.4f}, difference "
        f"{_signed(main.difference)} ({CONFIDENCE:.0%} CI {_signed(main.ci_low)}..{_signed(main.ci_high)}, "
        f"{_p(main.p_value)}, paired randomisation test; {new} wins {main.wins}, loses {main.losses}, "
        f"ties {main.ties} of {main.n} judged queries)."
    )
    if result.v3_worse:
        status = "v3-worse"
        lead = (f"{new} is significantly worse than {old} on {main.metric} at alpha {alpha}"
                f"{' — do not cut over yet' if new == 'v3' else ''}. ")
    elif main.difference > 0 and main.p_value < alpha:
        status = "v3-better"
        lead = f"{new} is significantly better than {old} on {main.metric}. "
    else:
        status = "no-significant-difference"
        lead = (
            f"No significant difference on {main.metric} at alpha {alpha}: {new} is not shown to be worse"
            f"{' (few queries: the test has little power)' if main.n < 30 else ''}. "
        )
    others = (
        f" Significantly better on: {', '.join(better) or 'none'}; significantly worse on: "
        f"{', '.join(worse) or 'none'}."
    )
    return status, _stand_in_sentence(result) + lead + head + others + bridge_sentence(result) + tail


def to_json(result: VerifyResult) -> dict[str, Any]:
    """The machine-readable result: per side every metric's mean; per metric difference, CI, p_value."""
    status, text = verdict(result)
    out: dict[str, Any] = {
        "verdict": {
            "status": status,
            "text": text,
            "main_metric": MAIN_METRIC if result.has_qrels else None,
            "alpha": result.options.alpha,
            "exit_code": result.exit_code,
            "stand_in": stand_ins(result),  # {side: why} for indexes of test/stub vectors
        },
        "queries": len(result.queries),
        "judged_queries": len(result.judged),
        "k": result.options.k,
    }
    for name in SIDES:
        side = result.sides[name]
        ev = side.evaluation
        out[name] = {
            "index": str(side.index.path),
            "kind": side.index.kind,
            "model": side.index.model,
            "task": side.index.task,
            "dimensions": side.index.dimensions,
            "vectors": side.index.rows,
            "documents": len(side.index.doc_ids()),
            "query_model": side.query_space.model,
            "query_task": side.query_space.task,
            "queries_from": side.query_source,
            "search": {
                "backend": side.ranking.backend,
                "block_rows": side.ranking.block_rows,
                "passes": side.ranking.passes,
                "depth": max(len(d) for d in side.ranking.doc_ids) if side.ranking.doc_ids else 0,
            },
            "metrics": {m: ev.mean(m) for m in METRICS} if ev else {},
            "recall_curve": {str(c): v for c, v in ev.recall_curve.items()} if ev else {},
            "queries_without_results": ev.empty if ev else [],
        }
    out["comparison"] = {c.metric: _comparison_json(c) for c in result.comparisons}
    out["languages"] = {c.metric.split("[", 1)[1].rstrip("]"): _comparison_json(c) for c in result.languages}
    out["agreement"] = {
        "k": result.options.k,
        "mean": agr.summarise(result.agreement),
        "per_query": [a.to_dict() for a in result.agreement],
    }
    out["disagreements"] = result.examples
    if result.has_qrels:
        ev2, ev3 = result.sides["v2"].evaluation, result.sides["v3"].evaluation
        assert ev2 is not None and ev3 is not None
        out["per_query"] = {
            q: {
                "v2": {m: ev2.per_query[m][q] for m in METRICS},
                "v3": {m: ev3.per_query[m][q] for m in METRICS},
            }
            for q in result.judged
        }
    if result.bridged is not None:
        out["bridged"] = _bridged_json(result)
    out["integrity"] = [i.to_dict() for i in result.issues]
    return out


# ---- the bridged system (verify --bridge) ----------------------------------------------------------


def bridge_sentence(result: VerifyResult) -> str:
    """One sentence on the bridged system for the verdict paragraph ("" without --bridge)."""
    b = result.bridged
    if b is None:
        return ""
    c = b.main_vs_v2()
    if c is None:
        a = b.agreement_with_v3
        return (
            f" Bridged (v3 queries through the bridge on the v2 index) shares on average "
            f"{(a.get('overlap_jaccard') or 0):.0%} of full v3's top {result.options.k} (RBO "
            f"{(a.get('rbo') or 0):.2f}); give --qrels to measure its quality."
        )
    alpha = result.options.alpha
    if c.difference > 0 and c.p_value < alpha:
        how = "significantly better than v2 alone"
    elif c.difference < 0 and c.p_value < alpha:
        how = "significantly WORSE than v2 alone: do not serve queries through this bridge (exit 1)"
    else:
        how = "not significantly different from v2 alone"
    rec = b.recovered.get(c.metric)
    ci = b.recovered_ci
    recovered = (
        f"; it recovers {rec:.0%} of v3's gain on {c.metric}"
        + (f" ({CONFIDENCE:.0%} CI {ci[0]:.0%}..{ci[1]:.0%})" if ci else "")
        if rec is not None
        else "; v3 does not beat v2 here, so there is no gain to recover"
    )
    return (
        f" Bridged (v3 queries through the bridge on the v2 index): {c.metric} {c.v3_mean:.4f}, "
        f"{how} ({_signed(c.difference)}, {_p(c.p_value)}){recovered}."
    )


def _pair_json(c: Comparison, baseline: str) -> dict[str, Any]:
    return {
        baseline: c.v2_mean,
        "bridged": c.v3_mean,
        "difference": c.difference,
        "ci": [c.ci_low, c.ci_high],
        "confidence": CONFIDENCE,
        "p_value": c.p_value,
        "p_value_t": c.p_value_t,
        "queries": c.n,
        "wins": c.wins,
        "losses": c.losses,
        "ties": c.ties,
    }


def _bridged_json(result: VerifyResult) -> dict[str, Any]:
    b = result.bridged
    assert b is not None
    ev = b.evaluation
    m = b.manifest
    return {
        "bridge": b.bridge_path,
        "method": m.get("method"),
        "source": m.get("source"),
        "target": m.get("target"),
        "sample_pairs": (m.get("sample") or {}).get("pairs"),
        "held_out": m.get("held_out"),
        "poor_fit": m.get("poor_fit"),
        "index": str(result.sides["v2"].index.path),
        "queries_from": b.query_source,
        "metrics": {k: ev.mean(k) for k in METRICS} if ev else {},
        "recall_curve": {str(c): v for c, v in ev.recall_curve.items()} if ev else {},
        "vs_v2": {c.metric: _pair_json(c, "v2") for c in b.vs_v2},
        "vs_v3": {c.metric: _pair_json(c, "v3") for c in b.vs_v3},
        "recovered": b.recovered,
        "recovered_ci": list(b.recovered_ci) if b.recovered_ci else None,
        "languages_vs_v2": {c.metric.split("[", 1)[1].rstrip("]"): _pair_json(c, "v2") for c in b.languages},
        "worse_than_v2": result.bridge_worse,
        "agreement_with_v3": b.agreement_with_v3,
    }


def _bridged_table(result: VerifyResult, console: Console) -> None:
    b = result.bridged
    assert b is not None
    t = Table(
        title="Bridged: v3 queries through the bridge on the v2 index (differences = bridged − v2, "
        "bridged − v3; recovered = (bridged − v2) / (v3 − v2))",
        title_justify="left",
    )
    for col in ("metric", "bridged", "− v2", f"{CONFIDENCE:.0%} CI", "p", "− v3", f"{CONFIDENCE:.0%} CI",
                "p", "recovered"):
        t.add_column(col, justify="right" if col != "metric" else "left")
    for c2, c3 in zip(b.vs_v2, b.vs_v3, strict=True):
        rec = b.recovered.get(c2.metric)
        style = "green" if c2.difference > 0 and c2.p_value < result.options.alpha else (
            "red" if c2.difference < 0 and c2.p_value < result.options.alpha else "")
        t.add_row(
            escape(c2.metric), f"{c2.v3_mean:.4f}", _signed(c2.difference),
            f"{_signed(c2.ci_low)}..{_signed(c2.ci_high)}", f"{c2.p_value:.4f}", _signed(c3.difference),
            f"{_signed(c3.ci_low)}..{_signed(c3.ci_high)}", f"{c3.p_value:.4f}",
            "-" if rec is None else f"{rec:.1%}", style=style,
        )
    for c in b.languages:
        t.add_row(escape(c.metric), f"{c.v3_mean:.4f}", _signed(c.difference),
                  f"{_signed(c.ci_low)}..{_signed(c.ci_high)}", f"{c.p_value:.4f}", "", "", "", "",
                  style="dim")
    console.print(t)


def _bridged_html(result: VerifyResult) -> str:
    b = result.bridged
    assert b is not None
    e = html.escape
    m = b.manifest
    held = m.get("held_out") or {}
    ci = b.recovered_ci
    rows = [
        "<h2>Bridged: v3 queries through the bridge on the v2 index</h2>",
        f"<p>Bridge <code>{e(b.bridge_path)}</code>: {e(str(m.get('method')))} fitted on "
        f"{e(str((m.get('sample') or {}).get('pairs')))} pairs; held-out recall@10 "
        f"{float(held.get('recall_at_10', 0)):.3f}, mean cosine {float(held.get('mean_cosine', 0)):.3f}"
        f"{' (POOR FIT)' if m.get('poor_fit') else ''}. Queries: {e(b.query_source)}. Recovered fraction "
        f"of v3's gain on {MAIN_METRIC}: "
        + (f"{b.recovered.get(MAIN_METRIC):.1%}" if b.recovered.get(MAIN_METRIC) is not None else "–")
        + (f" ({CONFIDENCE:.0%} CI {ci[0]:.1%} .. {ci[1]:.1%})" if ci else "")
        + ".</p>",
        "<table><tr><th>metric</th><th>bridged</th><th>bridged − v2</th><th>CI</th><th>p</th>"
        "<th>bridged − v3</th><th>CI</th><th>p</th><th>recovered</th></tr>",
    ]
    for c2, c3 in zip(b.vs_v2, b.vs_v3, strict=True):
        rec = b.recovered.get(c2.metric)
        rows.append(
            f"<tr><td>{e(c2.metric)}</td><td class=num>{c2.v3_mean:.4f}</td><td class=num>"
            f"{c2.difference:+.4f}</td><td class=num>{c2.ci_low:+.4f} .. {c2.ci_high:+.4f}</td>"
            f"<td class=num>{c2.p_value:.4f}</td><td class=num>{c3.difference:+.4f}</td><td class=num>"
            f"{c3.ci_low:+.4f} .. {c3.ci_high:+.4f}</td><td class=num>{c3.p_value:.4f}</td>"
            f"<td class=num>{'–' if rec is None else f'{rec:.1%}'}</td></tr>"
        )
    rows.append("</table>")
    return "".join(rows)


def _comparison_json(c: Comparison) -> dict[str, Any]:
    return {
        "v2": c.v2_mean,
        "v3": c.v3_mean,
        "difference": c.difference,
        "ci": [c.ci_low, c.ci_high],
        "confidence": CONFIDENCE,
        "p_value": c.p_value,
        "p_value_t": c.p_value_t,
        "queries": c.n,
        "wins": c.wins,
        "losses": c.losses,
        "ties": c.ties,
    }


def render_text(result: VerifyResult, console: Console) -> None:
    """Tables and the verdict, for a terminal (stdout: they are the result)."""
    sides = Table(title="Indexes", title_justify="left")
    for col in ("", "model", "task", "dims", "vectors", "documents", "queries from"):
        sides.add_column(col)
    for name in SIDES:
        s = result.sides[name]
        sides.add_row(
            name,
            escape(s.index.model),  # cells read Rich markup; these strings come from the user's files
            escape(s.index.task or "-"),
            str(s.index.dimensions),
            f"{s.index.rows:,}",
            f"{len(s.index.doc_ids()):,}",
            escape(s.query_source),
        )
    console.print(sides)
    if result.has_qrels:
        t = Table(
            title=f"Metrics over {len(result.judged)} judged queries (difference = v3 − v2)",
            title_justify="left",
        )
        for col in ("metric", "v2", "v3", "difference", f"{CONFIDENCE:.0%} CI", "p", "wins/losses/ties"):
            t.add_column(col, justify="right" if col != "metric" else "left")
        for c in result.comparisons:
            style = (
                "green"
                if c.difference > 0 and c.p_value < result.options.alpha
                else "red"
                if c.difference < 0 and c.p_value < result.options.alpha
                else ""
            )
            t.add_row(
                escape(c.metric),
                f"{c.v2_mean:.4f}",
                f"{c.v3_mean:.4f}",
                _signed(c.difference),
                f"{_signed(c.ci_low)}..{_signed(c.ci_high)}",
                f"{c.p_value:.4f}",
                f"{c.wins}/{c.losses}/{c.ties}",
                style=style,
            )
        for c in result.languages:
            t.add_row(
                escape(c.metric),
                f"{c.v2_mean:.4f}",
                f"{c.v3_mean:.4f}",
                _signed(c.difference),
                f"{_signed(c.ci_low)}..{_signed(c.ci_high)}",
                f"{c.p_value:.4f}",
                f"{c.wins}/{c.losses}/{c.ties}",
                style="dim",
            )
        console.print(t)
        if result.bridged is not None:
            _bridged_table(result, console)
    means = agr.summarise(result.agreement)
    a = Table(
        title=f"Agreement of the two top-{result.options.k} lists (mean over queries)", title_justify="left"
    )
    for col in ("overlap (Jaccard)", "RBO (p=0.9)", "Kendall tau", "Spearman rho"):
        a.add_column(col, justify="right")
    a.add_row(*[("-" if v is None else f"{v:.3f}") for v in means.values()])
    console.print(a)
    if result.issues:
        it = Table(title="Integrity", title_justify="left")
        for col in ("severity", "index", "check", "finding"):
            it.add_column(col)
        for i in result.issues:
            it.add_row(
                i.severity, i.index, i.code, escape(i.message),  # messages quote ids and paths
                style="red" if i.severity == "error" else "yellow",
            )
        console.print(it)
    console.print(verdict(result)[1], highlight=False, markup=False)


# ---- HTML ----------------------------------------------------------------------------------------

V2_COLOUR, V3_COLOUR = "#8c8c8c", "#1f6fb2"


def _svg(width: int, height: int, body: str, label: str) -> str:
    return (
        f'<svg width="{width}" height="{height}" '
        f'viewBox="0 0 {width} {height}" role="img" aria-label="{html.escape(label)}">{body}</svg>'
    )


def _text(x: float, y: float, s: str, anchor: str = "middle", size: int = 11, extra: str = "") -> str:
    return (
        f'<text x="{x:.1f}" y="{y:.1f}" text-anchor="{anchor}" font-size="{size}" {extra}>'
        f"{html.escape(s)}</text>"
    )


def metric_bars(comparisons: Sequence[Comparison]) -> str:
    """Grouped bars of each metric's mean per system."""
    w, h, left, bottom, top = 640, 270, 40, 40, 34
    plot_h = h - bottom - top
    group = (w - left - 10) / max(1, len(comparisons))
    body = [f'<line x1="{left}" y1="{h - bottom}" x2="{w - 10}" y2="{h - bottom}" stroke="#333"/>']
    for t in (0, 0.25, 0.5, 0.75, 1.0):
        y = h - bottom - t * plot_h
        body.append(f'<line x1="{left}" y1="{y:.1f}" x2="{w - 10}" y2="{y:.1f}" stroke="#eee"/>')
        body.append(_text(left - 4, y + 4, f"{t:.2f}", "end", 10))
    for i, c in enumerate(comparisons):
        x0 = left + i * group + group * 0.15
        bw = group * 0.33
        for j, (val, colour) in enumerate(((c.v2_mean, V2_COLOUR), (c.v3_mean, V3_COLOUR))):
            bh = max(0.0, min(1.0, val)) * plot_h
            x = x0 + j * bw
            body.append(
                f'<rect x="{x:.1f}" y="{h - bottom - bh:.1f}" width="{bw - 2:.1f}" height="{bh:.1f}" '
                f'fill="{colour}"><title>{html.escape(c.metric)} {SIDES[j]}: {val:.4f}</title></rect>'
            )
            body.append(_text(x + bw / 2, h - bottom - bh - 3, f"{val:.3f}", size=9))
        body.append(_text(left + i * group + group / 2, h - bottom + 16, c.metric))
    body.append(_legend(w - 150, 12))
    return _svg(w, h, "".join(body), "metric means per system")


def _legend(x: float, y: float) -> str:
    return (
        f'<rect x="{x}" y="{y - 9}" width="10" height="10" fill="{V2_COLOUR}"/>'
        + _text(x + 14, y, "v2", "start")
        + f'<rect x="{x + 50}" y="{y - 9}" width="10" height="10" fill="{V3_COLOUR}"/>'
        + _text(x + 64, y, "v3", "start")
    )


def difference_ci(comparisons: Sequence[Comparison], alpha: float) -> str:
    """Each metric's mean difference (v3 − v2) with its confidence interval, around a zero line."""
    w, row, left = 640, 28, 150
    h = row * len(comparisons) + 40
    lo = min([c.ci_low for c in comparisons] + [-0.05])
    hi = max([c.ci_high for c in comparisons] + [0.05])
    span = max(abs(lo), abs(hi)) * 1.1

    def sx(v: float) -> float:
        return left + (v + span) / (2 * span) * (w - left - 20)

    body = [
        f'<line x1="{sx(0):.1f}" y1="10" x2="{sx(0):.1f}" y2="{h - 25}" stroke="#333" '
        'stroke-dasharray="3,3"/>',
        _text(sx(-span), h - 8, f"{-span:+.3f}", "start", 10),
        _text(sx(0), h - 8, "0 (no difference)", size=10),
        _text(sx(span), h - 8, f"{span:+.3f}", "end", 10),
    ]
    for i, c in enumerate(comparisons):
        y = 22 + i * row
        sig = c.p_value < alpha
        colour = ("#1a7f37" if c.difference > 0 else "#c62828") if sig else "#555"
        body.append(_text(left - 8, y + 4, c.metric, "end"))
        body.append(
            f'<line x1="{sx(c.ci_low):.1f}" y1="{y}" x2="{sx(c.ci_high):.1f}" y2="{y}" stroke="{colour}" '
            f'stroke-width="2"/>'
        )
        body.append(
            f'<circle cx="{sx(c.difference):.1f}" cy="{y}" r="4" fill="{colour}"><title>'
            f"{html.escape(c.metric)}: {c.difference:+.4f} [{c.ci_low:+.4f}, {c.ci_high:+.4f}], "
            f"p={c.p_value:.4f}</title></circle>"
        )
    return _svg(w, h, "".join(body), "difference v3 minus v2 with confidence intervals")


def recall_curves(curves: dict[str, dict[int, float]]) -> str:
    w, h, left, bottom, top = 640, 250, 40, 36, 30
    plot_w, plot_h = w - left - 20, h - bottom - top
    n = len(RECALL_CURVE)

    def sx(i: int) -> float:
        return left + i / (n - 1) * plot_w

    def sy(v: float) -> float:
        return h - bottom - v * plot_h

    body = [f'<line x1="{left}" y1="{h - bottom}" x2="{w - 20}" y2="{h - bottom}" stroke="#333"/>']
    for t in (0, 0.5, 1.0):
        body.append(f'<line x1="{left}" y1="{sy(t):.1f}" x2="{w - 20}" y2="{sy(t):.1f}" stroke="#eee"/>')
        body.append(_text(left - 4, sy(t) + 4, f"{t:.1f}", "end", 10))
    for i, c in enumerate(RECALL_CURVE):
        body.append(_text(sx(i), h - bottom + 14, str(c), size=10))
    body.append(_text(left + plot_w / 2, h - 4, "k (recall@k)", size=10))
    for name, colour in (("v2", V2_COLOUR), ("v3", V3_COLOUR)):
        pts = " ".join(f"{sx(i):.1f},{sy(curves[name].get(c, 0.0)):.1f}" for i, c in enumerate(RECALL_CURVE))
        body.append(f'<polyline points="{pts}" fill="none" stroke="{colour}" stroke-width="2"/>')
        for i, c in enumerate(RECALL_CURVE):
            v = curves[name].get(c, 0.0)
            body.append(
                f'<circle cx="{sx(i):.1f}" cy="{sy(v):.1f}" r="3" fill="{colour}">'
                f"<title>{name} recall@{c}: {v:.4f}</title></circle>"
            )
    body.append(_legend(w - 150, 12))
    return _svg(w, h, "".join(body), "recall at k for both systems")


def histogram(
    values: Sequence[float], label: str, lo: float, hi: float, bins: int = 20, zero_line: bool = True
) -> str:
    """Counts of per-query values in equal bins between lo and hi."""
    w, h, left, bottom = 640, 200, 40, 36
    width = (hi - lo) / bins if hi > lo else 1.0
    counts = [0] * bins
    for v in values:
        counts[min(bins - 1, max(0, int((v - lo) / width)))] += 1
    top = max(counts) or 1
    bw = (w - left - 20) / bins
    body = [
        f'<line x1="{left}" y1="{h - bottom}" x2="{w - 20}" y2="{h - bottom}" stroke="#333"/>',
        _text(left - 4, 18, str(top), "end", 10),
        _text(left - 4, h - bottom, "0", "end", 10),
    ]
    for i, c in enumerate(counts):
        bh = c / top * (h - bottom - 14)
        x = left + i * bw
        body.append(
            f'<rect x="{x + 1:.1f}" y="{h - bottom - bh:.1f}" width="{bw - 2:.1f}" height="{bh:.1f}" '
            f'fill="{V3_COLOUR}"><title>{lo + i * width:+.3f}..{lo + (i + 1) * width:+.3f}: {c}</title>'
            f"</rect>"
        )
    body.append(_text(left, h - bottom + 14, f"{lo:+.2f}", "start", 10))
    body.append(_text(w - 20, h - bottom + 14, f"{hi:+.2f}", "end", 10))
    if zero_line and lo < 0 < hi:
        x0 = left + (0 - lo) / (hi - lo) * (w - left - 20)
        body.append(
            f'<line x1="{x0:.1f}" y1="8" x2="{x0:.1f}" y2="{h - bottom}" stroke="#c62828" '
            f'stroke-dasharray="3,3"/>'
        )
    body.append(_text(left + (w - left - 20) / 2, h - 4, label, size=10))
    return _svg(w, h, "".join(body), label)


CSS = """
body{font-family:system-ui,-apple-system,'Segoe UI',Roboto,sans-serif;margin:24px auto;max-width:980px;
color:#1b1b1b}
h1{font-size:22px}h2{font-size:17px;margin-top:28px;border-bottom:1px solid #ddd;padding-bottom:4px}
table{border-collapse:collapse;margin:8px 0;font-size:13px}
td,th{border:1px solid #ddd;padding:4px 8px;text-align:left}
th{background:#f4f6f8}.num{text-align:right;font-variant-numeric:tabular-nums}
.verdict{padding:12px 16px;border-left:5px solid #1f6fb2;background:#f1f6fb}
.verdict.v3-worse,.verdict.errors{border-color:#c62828;background:#fdf0f0}
.verdict.v3-better{border-color:#1a7f37;background:#eef8f0}
.error{color:#c62828}.warning{color:#8a6d00}.side{display:inline-block;vertical-align:top;width:48%;margin-right:1%}
.rel{color:#1a7f37;font-weight:600}.snip{color:#555;font-size:12px}small{color:#666}
"""


def html_report(result: VerifyResult) -> str:
    data = to_json(result)
    status, text = verdict(result)
    e = html.escape
    parts = [
        f'<!DOCTYPE html><html lang="en"><head><meta charset="utf-8"><title>jmigrate verify: '
        f"v2 vs v3</title><style>{CSS}</style></head><body>",
        "<h1>jmigrate verify — Jina Embeddings v2 vs v3</h1>",
        f'<p class="verdict {e(status)}{" errors" if result.integrity_errors else ""}">{e(text)}</p>',
        "<h2>Indexes</h2><table><tr><th></th><th>index</th><th>model</th><th>task</th><th>dims</th>"
        "<th>vectors</th><th>documents</th><th>queries</th></tr>",
    ]
    for name in SIDES:
        d = data[name]
        parts.append(
            f"<tr><th>{name}</th><td>{e(d['index'])}</td><td>{e(d['model'])}</td><td>{e(str(d['task']))}"
            f"</td><td class=num>{d['dimensions']}</td><td class=num>{d['vectors']:,}</td>"
            f"<td class=num>{d['documents']:,}</td><td>{e(d['queries_from'])}</td></tr>"
        )
    parts.append("</table>")
    if result.has_qrels:
        parts.append(
            f"<h2>Metrics ({len(result.judged)} judged queries)</h2><table><tr><th>metric</th><th>v2</th>"
            f"<th>v3</th><th>v3 − v2</th><th>{CONFIDENCE:.0%} CI</th><th>p (randomisation)</th>"
            "<th>p (t-test)</th><th>wins / losses / ties</th></tr>"
        )
        for c in [*result.comparisons, *result.languages]:
            pt = "–" if c.p_value_t is None else f"{c.p_value_t:.4f}"
            parts.append(
                f"<tr><td>{e(c.metric)}</td><td class=num>{c.v2_mean:.4f}</td><td class=num>"
                f"{c.v3_mean:.4f}</td><td class=num>{c.difference:+.4f}</td><td class=num>"
                f"{c.ci_low:+.4f} .. {c.ci_high:+.4f}</td><td class=num>{c.p_value:.4f}</td>"
                f"<td class=num>{pt}</td><td class=num>{c.wins} / {c.losses} / {c.ties}</td></tr>"
            )
        parts.append("</table>")
        if result.bridged is not None:
            parts.append(_bridged_html(result))
        parts.append("<h2>Metric means</h2>" + metric_bars(result.comparisons))
        parts.append(
            f"<h2>Differences with {CONFIDENCE:.0%} confidence intervals</h2>"
            + difference_ci(result.comparisons, result.options.alpha)
        )
        curves = {n: data[n]["recall_curve"] for n in SIDES}
        parts.append(
            "<h2>Recall@k</h2>" + recall_curves({n: {int(k): v for k, v in curves[n].items()} for n in SIDES})
        )
        ev2, ev3 = result.sides["v2"].evaluation, result.sides["v3"].evaluation
        assert ev2 is not None and ev3 is not None
        diffs = [ev3.per_query[MAIN_METRIC][q] - ev2.per_query[MAIN_METRIC][q] for q in result.judged]
        parts.append(
            f"<h2>Per-query difference in {MAIN_METRIC} (v3 − v2)</h2>"
            + histogram(
                diffs, f"{MAIN_METRIC} difference per query (right of the red line: v3 better)", -1.0, 1.0
            )
        )
    else:
        parts.append(
            "<h2>Agreement per query</h2>"
            + histogram(
                [a.rbo for a in result.agreement],
                "rank-biased overlap per query (1 = same ranking)",
                0.0,
                1.0,
                zero_line=False,
            )
        )
    s = data["agreement"]["mean"]
    parts.append(
        f"<h2>Agreement of the top-{result.options.k} lists</h2><table><tr><th>overlap (Jaccard)</th>"
        "<th>RBO (p=0.9)</th><th>Kendall tau</th><th>Spearman rho</th></tr><tr>"
        + "".join(
            f"<td class=num>{'–' if v is None or math.isnan(v) else f'{v:.3f}'}</td>" for v in s.values()
        )
        + "</tr></table>"
    )
    parts.append("<h2>Where the two systems disagree most</h2>")
    for ex in result.examples:
        parts.append(
            f"<h3>{e(ex['query_id'])}: “{e(ex['query'])}” <small>overlap {ex['jaccard']:.2f}, "
            f"RBO {ex['rbo']:.2f}</small></h3>"
        )
        for name in SIDES:
            parts.append(f'<div class="side"><table><tr><th>#</th><th>{name} result</th><th>score</th></tr>')
            for r, doc in enumerate(ex[name], 1):
                rel = doc.get("relevance")
                mark = f' <span class="rel">rel {rel}</span>' if rel else ""
                snip = f'<div class="snip">{e(doc["snippet"])}</div>' if doc.get("snippet") else ""
                parts.append(
                    f"<tr><td>{r}</td><td>{e(doc['id'])}{mark}{snip}</td>"
                    f"<td class=num>{doc['score']:.3f}</td></tr>"
                )
            parts.append("</table></div>")
    if result.issues:
        parts.append(
            "<h2>Integrity</h2><table><tr><th>severity</th><th>index</th><th>check</th><th>finding</th></tr>"
        )
        for i in result.issues:
            parts.append(
                f'<tr class="{e(i.severity)}"><td>{e(i.severity)}</td><td>{e(i.index)}</td>'
                f"<td>{e(i.code)}</td><td>{e(i.message)}</td></tr>"
            )
        parts.append("</table>")
    parts.append(
        "<p><small>Generated by jmigrate verify. Metrics: pytrec_eval (trec_eval's C code). Statistics: "
        "paired randomisation test and BCa bootstrap interval of the mean per-query difference.</small></p>"
    )
    parts.append("</body></html>")
    return "\n".join(parts)


def write_html(result: VerifyResult, path: Path) -> None:
    _write_text(path, html_report(result))


def _write_text(path: Path, text: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    write_output(path, text.encode("utf-8"))
