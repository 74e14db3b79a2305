"""Smoke test of the benchmark report: `bench/run_all.py --quick` runs real benchmark scripts (small
workloads) and writes a markdown report with their table rows and ratios. No timing is asserted:
the figures are whatever this machine gives; only the report's shape and contents are checked.

The cheap benchmarks are used (the API client against the loopback stub, the ONNX encoder on a tiny
model); neither touches bench/_work/, and the report goes to a tmp folder, never docs/.
"""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
RUN_ALL = ROOT / "bench" / "run_all.py"


@pytest.mark.slow
def test_quick_run_writes_the_report_with_rows_and_ratios(tmp_path: Path) -> None:
    doc = ROOT / "docs" / "benchmarks.md"
    before = doc.read_bytes() if doc.exists() else None
    out, results = tmp_path / "benchmarks.md", tmp_path / "results.json"
    proc = subprocess.run([sys.executable, str(RUN_ALL), "--quick", "--only", "onnx,api", "--out", str(out),
                           "--results-json", str(results)], cwd=ROOT, capture_output=True, text=True,
                          timeout=300)
    assert proc.returncode == 0, proc.stderr[-3000:]
    md = out.read_text()

    # Header: how it was made.
    assert "`.venv/bin/python bench/run_all.py --quick --only onnx,api" in md
    assert re.search(r"- Date: \d{4}-\d\d-\d\d \d\d:\d\d UTC", md)
    assert re.search(r"- Commit: [0-9a-f]{7,}", md)
    assert re.search(r"- Machine: \d+ cores \(.+\), .*Python 3\.\d+", md)

    # One summary row per part, each with a figure for the baseline and for jmigrate, a ratio and a target.
    rows = {line.split(" | ")[1]: line for line in md.splitlines()
            if line.startswith(("| onnx |", "| api |"))}
    assert set(rows) == {"ONNX encoder overhead", "ONNX length-sorted batches", "API client vs the limits",
                         "API client vs a sequential loop"}, md
    assert re.search(r"\| [+-]\d+\.\d% overhead \| <= \+15% \| (met|\*\*NOT MET\*\*) \| [\d,]+ MB \|",
                     rows["ONNX encoder overhead"])
    assert re.search(r"\| \d+\.\d% fewer padded tokens \| >= 40% fewer \|",
                     rows["ONNX length-sorted batches"])
    assert re.search(r"\| \d+\.\d% of the ceiling \| >= 90% \|", rows["API client vs the limits"])
    assert re.search(r"[\d,]+ tokens/s .*\| \d+\.\dx \| >= 5x \|", rows["API client vs a sequential loop"])

    # A section per benchmark with the exact command, its workload table and the console output.
    assert "`.venv/bin/python bench/bench_onnx.py --texts 96 --repeats 1`" in md
    assert "`.venv/bin/python bench/bench_api.py --seconds 2 --baseline-seconds 0.5`" in md
    assert md.count("<summary>console output</summary>") == 2
    assert "(1) bare session.run" in md

    data = json.loads(results.read_text())
    assert [r["name"] for r in data] == ["api", "onnx"]
    for r in data:
        assert r["rc"] == 0 and r["maxrss_mb"] > 0
        assert all(isinstance(row["ratio"], float) for row in r["rows"])
    # The committed report is not touched by a quick run.
    assert (doc.read_bytes() if doc.exists() else None) == before


def test_unknown_benchmark_name_is_a_usage_error(tmp_path: Path) -> None:
    proc = subprocess.run([sys.executable, str(RUN_ALL), "--quick", "--only", "nosuch", "--out",
                           str(tmp_path / "b.md")], cwd=ROOT, capture_output=True, text=True, timeout=60)
    assert proc.returncode == 2
    assert "unknown benchmark(s) nosuch" in proc.stderr
    assert not (tmp_path / "b.md").exists()


def _run_all_module():
    import importlib.util

    spec = importlib.util.spec_from_file_location("run_all_for_test", RUN_ALL)
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # its dataclasses look their module up there
    spec.loader.exec_module(module)
    return module


def test_update_replaces_only_the_rerun_benchmarks_rows_and_section() -> None:
    from datetime import datetime, timezone

    run_all = _run_all_module()
    doc = "\n".join([
        "# Benchmarks", "", "**Targets missed or benchmarks that did not run:**", "",
        "- api / API client vs the limits: 50% of the ceiling (target >= 90%)", "",
        "## Summary", "", "| benchmark | part |", "|---|---|",
        "| api | old api row |", "| onnx | old onnx row |", "",
        "## encoders (step 2): API client", "", "old api section", "",
        "## encoders (step 2): local ONNX", "", "onnx section stays", ""])
    row = {"part": "API client vs the limits", "workload": "w", "baseline": "b", "baseline_figure": "1",
           "ours": "o", "ours_figure": "2", "ratio": 2.0, "ratio_text": "2.0x", "target": ">= 1x",
           "met": True}
    api = {"name": "api", "title": "encoders (step 2): API client", "command": "cmd-api", "rows": [row],
           "rc": 0, "seconds": 1.0, "maxrss_mb": 10.0, "stdout": ""}
    new = {"name": "realcode", "title": "plan on real code", "command": "cmd-rc", "rows": [row], "rc": 0,
           "seconds": 1.0, "maxrss_mb": 10.0, "stdout": "",
           "include": "# its own title\n\n- header\n\n| repository | commit |\n|---|---|\n| a/b | c |\n"}
    out = run_all.splice(doc, [api, new], ["--only", "api,realcode", "--update"],
                         datetime(2026, 12, 3, tzinfo=timezone.utc))
    assert "old api row" not in out and "old api section" not in out
    assert "50% of the ceiling" not in out  # the header's missed target is gone: the rerun met it
    assert "| onnx | old onnx row |" in out and "onnx section stays" in out
    lines = out.splitlines()
    # rows stay in the summary table (before the first section), the new benchmark's row is added there
    first_section = lines.index("## encoders (step 2): API client")
    assert [i for i, line in enumerate(lines) if line.startswith("| api | API client vs the limits")][0] \
        < first_section
    assert [i for i, line in enumerate(lines) if line.startswith("| realcode |")][0] < first_section
    assert out.count("## encoders (step 2): API client") == 1 and "`cmd-api`" in out
    assert lines.index("## plan on real code") > lines.index("## encoders (step 2): local ONNX")
    assert "by `.venv/bin/python bench/run_all.py --only api,realcode --update`" in out
    assert "| a/b | c |" in out and "its own title" not in out  # the detailed report, without its header
