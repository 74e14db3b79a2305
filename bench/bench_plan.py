"""`jmigrate plan` on a large tree beside `grep -rn` / `grep -rnI` for the same model names, same run.

The tree: the Python standard library (without site-packages and __pycache__) copied `--copies` times
into bench/_work/plan_tree/, plus `--projects` copies of fixtures/repo (the v2 project) in each copy.
grep searches for the legacy model names (built from jmigrate.models); plan runs every rule, parses
every Python file that could hold a finding with `ast`, and honours .gitignore. Each side runs
`--repeats` times, interleaved, after one warm-up run each (so both read from the page cache); the best
time of each is reported with files/s, MB/s and the plan/grep ratio.

plan reads trees of more than 2,000 files with worker processes (one per core, at most 4);
`--in-process` measures the single-process path instead.

    .venv/bin/python bench/bench_plan.py [--copies 3] [--projects 20] [--repeats 3] [--profile] [--in-process]
"""

from __future__ import annotations

import argparse
import cProfile
import json
import os
import pstats
import shutil
import subprocess
import sys
import sysconfig
import time
from pathlib import Path

from jmigrate.models import legacy_models
from jmigrate.scan import prefilter
from jmigrate.scan.plan import plan

HERE = Path(__file__).resolve().parent
TREE = HERE / "_work" / "plan_tree"
FIXTURE = HERE.parent / "fixtures" / "repo"


def build_tree(copies: int, projects: int) -> Path:
    """Create the tree once; a marker file records its shape so reruns reuse it."""
    marker = TREE / f".built-{copies}-{projects}"
    if marker.exists():
        return TREE
    shutil.rmtree(TREE, ignore_errors=True)
    stdlib = Path(sysconfig.get_paths()["stdlib"])
    ignore = shutil.ignore_patterns("site-packages", "__pycache__", "*.pyc")
    for i in range(copies):
        dest = TREE / f"stdlib_{i}"
        shutil.copytree(stdlib, dest, ignore=ignore, symlinks=True)
        for j in range(projects):
            shutil.copytree(FIXTURE, dest / "v2_projects" / f"project_{j}", symlinks=True)
    marker.touch()
    return TREE


def grep_pattern() -> str:
    # Dots in the names are literal in practice ("v2-base-en" has none); escape them for ERE anyway.
    return "|".join(m.name.replace(".", r"\.") for m in legacy_models())


def run_grep(tree: Path, skip_binary: bool) -> tuple[float, int]:
    # LC_ALL=C is grep's fastest mode (the strongest baseline). `-I` skips binary files as plan does;
    # plain `-rn` (what people type) also searches binaries through to the end.
    flags = "-rnI" if skip_binary else "-rn"
    cmd = ["grep", flags, "-E", grep_pattern(), str(tree)]
    t0 = time.perf_counter()
    out = subprocess.run(cmd, capture_output=True, env={**os.environ, "LC_ALL": "C"}, check=False)
    elapsed = time.perf_counter() - t0
    if out.returncode not in (0, 1):
        sys.exit(f"grep failed: {out.stderr.decode(errors='replace')}")
    return elapsed, out.stdout.count(b"\n")


def run_plan(tree: Path) -> tuple[float, int, int, int]:
    t0 = time.perf_counter()
    result = plan(tree)
    elapsed = time.perf_counter() - t0
    return elapsed, len(result.findings), result.files_scanned, result.bytes_scanned


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--copies", type=int, default=3, help="copies of the standard library")
    ap.add_argument("--projects", type=int, default=20, help="copies of fixtures/repo in each copy")
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--profile", action="store_true", help="profile one plan run (top 25 by cumulative time)")
    ap.add_argument("--in-process", action="store_true", help="no worker processes, whatever the tree size")
    ap.add_argument("--json-out", type=Path, help="also write the results as JSON (for bench/run_all.py)")
    args = ap.parse_args()
    if args.in_process:
        prefilter.PARALLEL_MIN_FILES = sys.maxsize

    tree = build_tree(args.copies, args.projects)
    # Warm-up: the page cache holds the tree for every contender.
    run_grep(tree, True)
    run_grep(tree, False)
    run_plan(tree)
    times: dict[str, list[float]] = {"grep -rnI": [], "grep -rn": [], "plan": []}
    for _ in range(args.repeats):
        t, grep_lines = run_grep(tree, True)
        times["grep -rnI"].append(t)
        t, _ = run_grep(tree, False)
        times["grep -rn"].append(t)
        t, findings, files, size = run_plan(tree)
        times["plan"].append(t)
    best = {k: min(v) for k, v in times.items()}
    mb = size / 1e6
    how = "in one process" if args.in_process else f"with worker processes ({os.cpu_count()} cores)"
    print(f"tree: {files} files, {mb:.1f} MB ({args.copies} stdlib copies, {args.projects} v2 projects "
          f"each); plan {how}")
    for name in ("grep -rnI", "grep -rn"):
        g = best[name]
        print(f"{name + ' -E (LC_ALL=C)':<24}: {g:7.3f} s  {files / g:9.0f} files/s  {mb / g:7.1f} MB/s  "
              f"{grep_lines} matching lines (-I)")
    p = best["plan"]
    print(f"{'jmigrate plan':<24}: {p:7.3f} s  {files / p:9.0f} files/s  {mb / p:7.1f} MB/s  "
          f"{findings} findings")
    print(f"plan / grep -rnI: {p / best['grep -rnI']:.2f}x   plan / grep -rn: {p / best['grep -rn']:.2f}x   "
          f"(best of {args.repeats} each; aim: <= 3x)")
    if args.json_out:
        workload = (f"{files:,} files, {mb:.1f} MB ({args.copies} stdlib copies, {args.projects} v2 projects "
                    f"each), {findings} findings; plan {how}; best of {args.repeats}, page cache warm")
        args.json_out.write_text(json.dumps([
            {"part": f"plan vs {name}", "workload": workload, "baseline": f"`{name} -E` (LC_ALL=C)",
             "baseline_figure": f"{best[name]:.3f} s ({mb / best[name]:.0f} MB/s)",
             "ours": "`jmigrate.plan()`", "ours_figure": f"{p:.3f} s ({mb / p:.1f} MB/s)",
             "ratio": p / best[name], "ratio_text": f"{p / best[name]:.1f}x grep's time", "target": "<= 3x",
             "met": p / best[name] <= 3}
            for name in ("grep -rnI", "grep -rn")], indent=2))
    if args.profile:
        prof = cProfile.Profile()
        prof.enable()
        plan(tree)
        prof.disable()
        pstats.Stats(prof).sort_stats("cumulative").print_stats(25)


if __name__ == "__main__":
    main()
