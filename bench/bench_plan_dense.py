"""`jmigrate plan` on single files dense with findings, beside `grep -c` and a plain Python line scan.

The files a tester used to find `plan`'s quadratic paths (text inference rescanned the whole file for every
finding: a 400 KB JSONL with 6,078 model mentions took 324 s, 100 KB of minified JS 28 s, 1.9 MB over 10
minutes), plus a Python module with one request per function. Each is generated at its size and at 4x
that size: linear work takes ~4x as long at 4x, a rescan per finding ~16x. Baselines on the same file:
`grep -c -E` for the legacy model names (LC_ALL=C) and a Python `finditer` of the same names that keeps
one small record per mention (the least any finder does; `plan` also parses, infers a task and builds a
recommendation and a fix for each finding). Best of `--repeats` after one warm-up run each.

    .venv/bin/python bench/bench_plan_dense.py [--repeats 3] [--json-out FILE]
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import subprocess
import time
from collections.abc import Callable
from pathlib import Path

from jmigrate.models import legacy_models
from jmigrate.scan.plan import plan

HERE = Path(__file__).resolve().parent
WORK = HERE / "_work" / "plan_dense"
PATTERN = "|".join(m.name.replace(".", r"\.") for m in legacy_models())


def jsonl(rows: int) -> str:
    # Two mentions a row, as in the tester's file (6,078 mentions in ~400 KB).
    return "".join(
        json.dumps({"id": i, "model": "jina-embeddings-v2-base-en",
                    "alt": "jinaai/jina-embeddings-v2-small-en", "text": "some passage text " * 3}) + "\n"
        for i in range(rows)
    )


def minified_js(size: int) -> str:
    parts, total, i = [], 0, 0
    while total < size:
        part = (f'function f{i}(t){{return fetch("https://api.jina.ai/v1/embeddings",{{method:"POST",'
                f'body:JSON.stringify({{model:"jina-embeddings-v2-base-en",input:t,normalized:true}})}})}};'
                f'var e{i}=new JinaEmbeddings({{model:"jina-embeddings-v2-base-en"}});')
        parts.append(part)
        total, i = total + len(part), i + 1
    return "".join(parts)


def python(functions: int) -> str:
    return "import requests\n" + "".join(
        f'def f{i}(t):\n    return requests.post("https://api.jina.ai/v1/embeddings", json={{"model": '
        f'"jina-embeddings-v2-base-en", "input": t, "normalized": True}})\n'
        for i in range(functions)
    )


WORKLOADS: list[tuple[str, str, Callable[[int], str], int]] = [
    # (label, file name, generator, size parameter at 1x)
    ("JSONL, 2 mentions a row", "data.jsonl", jsonl, 3039),
    ("minified JS, one line", "app.min.js", minified_js, 100_000),
    ("Python, one request per function", "app.py", python, 1500),
]


def best(fn: Callable[[], object], repeats: int) -> float:
    fn()  # warm-up: page cache, rule modules imported, patterns compiled
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return min(times)


def grep_count(path: Path) -> int:
    out = subprocess.run(["grep", "-c", "-E", PATTERN, str(path)], capture_output=True, text=True,
                         env={**os.environ, "LC_ALL": "C"}, check=False)
    return int(out.stdout.strip() or 0)


def mention_scan(path: Path) -> int:
    """The least a finder of these names does in Python: read, decode, one record per mention."""
    regex = re.compile(PATTERN)
    text = path.read_text(encoding="utf-8")
    records = [{"start": m.start(), "name": m.group()} for m in regex.finditer(text)]
    return len(records)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--json-out", type=Path)
    args = ap.parse_args()
    shutil.rmtree(WORK, ignore_errors=True)
    results = []
    for label, name, make, size in WORKLOADS:
        row: dict[str, float | int] = {}
        for scale in (1, 4):
            folder = WORK / f"{name}-{scale}x"
            folder.mkdir(parents=True)
            path = folder / name
            path.write_text(make(size * scale), encoding="utf-8")
            found = len(plan(folder, stores=False).findings)
            t_plan = best(lambda f=folder: plan(f, stores=False), args.repeats)
            t_grep = best(lambda p=path: grep_count(p), args.repeats)
            t_scan = best(lambda p=path: mention_scan(p), args.repeats)
            row |= {f"plan{scale}": t_plan, f"grep{scale}": t_grep, f"scan{scale}": t_scan,
                    f"bytes{scale}": path.stat().st_size, f"findings{scale}": found}
            print(f"{label:<34} {scale}x: {path.stat().st_size / 1e3:8.0f} KB {found:6} findings  "
                  f"plan {t_plan:7.3f} s  grep -c {t_grep:6.3f} s  mention scan {t_scan:6.3f} s  "
                  f"plan/mention scan {t_plan / t_scan:6.1f}x")
        growth = row["plan4"] / row["plan1"]
        print(f"{'':<34} plan at 4x the size: {growth:.1f}x the time (linear ~4x, a rescan per finding ~16x)")
        workload = (f"{label}: {row['bytes1'] / 1e3:,.0f} KB with {row['findings1']:,} findings, and 4x that "
                    f"({row['bytes4'] / 1e3:,.0f} KB, {row['findings4']:,} findings); best of {args.repeats}")
        results += [
            {"part": f"plan dense: {label}, growth", "workload": workload,
             "baseline": "plan on the 1x file", "baseline_figure": f"{row['plan1']:.3f} s",
             "ours": "plan on the 4x file", "ours_figure": f"{row['plan4']:.3f} s",
             "ratio": growth, "ratio_text": f"{growth:.1f}x the time at 4x the size",
             "target": "<= 6x (linear)", "met": growth <= 6},
            {"part": f"plan dense: {label}, vs a mention scan", "workload": workload,
             "baseline": "Python finditer of the model names, one record each (4x file)",
             "baseline_figure": f"{row['scan4']:.3f} s (grep -c: {row['grep4']:.3f} s)",
             "ours": "`jmigrate.plan()` (4x file)", "ours_figure": f"{row['plan4']:.3f} s",
             "ratio": row["plan4"] / row["scan4"],
             "ratio_text": f"{row['plan4'] / row['scan4']:.1f}x the mention scan",
             "target": "", "met": True},
        ]
    if args.json_out:
        args.json_out.write_text(json.dumps(results, indent=2))


if __name__ == "__main__":
    main()
