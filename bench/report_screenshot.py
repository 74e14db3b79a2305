"""Open a `verify` HTML report in headless Chromium, screenshot it, and check the picture is not blank.

    .venv/bin/python bench/report_screenshot.py [--report FILE.html] [--out FILE.png]

Without --report it first builds a small comparison (synthetic indexes with precomputed query vectors,
so no network and no model) and writes its report. Needs Debian's `chromium` (apt-get install chromium).
Chromium runs with networking features off and a fresh profile; the report itself needs no network.
"""

from __future__ import annotations

import argparse
import contextlib
import io
import json
import shutil
import struct
import subprocess
import sys
import tempfile
import zlib
from pathlib import Path

import numpy as np

WORK = Path(__file__).resolve().parent / "_work" / "verify-report"
CHROMIUM_FLAGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
    "--hide-scrollbars",
]


def build_report(folder: Path) -> Path:
    """A v2-vs-v3 comparison on synthetic data, through the CLI, with qrels and several languages."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    from jmigrate.cli.app import main

    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(4)
    n_docs, n_q = 400, 60

    def fsl(m: np.ndarray) -> pa.FixedSizeListArray:
        return pa.FixedSizeListArray.from_arrays(pa.array(m.astype(np.float32).ravel()), m.shape[1])

    ids = [f"kb-{i:04d}" for i in range(n_docs)]
    texts = [
        f"Support article {i}: how to {['reset a password', 'export invoices', 'handle 429'][i % 3]}"
        for i in range(n_docs)
    ]
    d2, d3 = rng.standard_normal((n_docs, 768)), rng.standard_normal((n_docs, 1024))
    pq.write_table(pa.table({"id": ids, "text": texts, "vector": fsl(d2)}), folder / "v2.parquet")
    pq.write_table(pa.table({"id": ids, "text": texts, "vector": fsl(d3)}), folder / "v3.parquet")
    rel = rng.choice(n_docs, n_q, replace=False)
    qids = [f"q{i}" for i in range(n_q)]
    noise2 = rng.uniform(3.0, 14.0, (n_q, 1))  # v2 finds some relevant documents, v3 more
    q2 = d2[rel] + rng.standard_normal((n_q, 768)) * noise2
    q3 = d3[rel] + rng.standard_normal((n_q, 1024)) * noise2 * 0.7
    pq.write_table(pa.table({"id": qids, "vector": fsl(q2)}), folder / "q2.parquet")
    pq.write_table(pa.table({"id": qids, "vector": fsl(q3)}), folder / "q3.parquet")
    langs = ["en", "de", "es", "fr", "zh"]
    (folder / "queries.jsonl").write_text(
        "".join(
            json.dumps({"id": q, "text": f"question {i}", "language": langs[i % 5]}) + "\n"
            for i, q in enumerate(qids)
        )
    )
    (folder / "qrels.txt").write_text("".join(f"{q} 0 {ids[r]} 1\n" for q, r in zip(qids, rel, strict=True)))
    report = folder / "report.html"
    argv = [
        "verify",
        "--v2",
        str(folder / "v2.parquet"),
        "--v2-model",
        "jina-embeddings-v2-base-en",
        "--v3",
        str(folder / "v3.parquet"),
        "--v3-model",
        "jina-embeddings-v3",
        "--queries",
        str(folder / "queries.jsonl"),
        "--qrels",
        str(folder / "qrels.txt"),
        "--v2-query-vectors",
        str(folder / "q2.parquet"),
        "--v3-query-vectors",
        str(folder / "q3.parquet"),
        "--report",
        str(report),
        "--format",
        "json",
    ]
    with contextlib.redirect_stdout(io.StringIO()):  # the JSON result; only the report is wanted here
        code = main(argv)
    if code == 2 or not report.exists():
        raise SystemExit("verify failed to write the report")
    return report


def screenshot(report: Path, out: Path, width: int = 1100, height: int = 2600) -> None:
    exe = shutil.which("chromium") or shutil.which("chromium-browser")
    if exe is None:
        raise SystemExit("chromium not found: apt-get install -y chromium")
    with tempfile.TemporaryDirectory() as profile:
        cmd = [
            exe,
            *CHROMIUM_FLAGS,
            f"--user-data-dir={profile}",
            f"--window-size={width},{height}",
            f"--screenshot={out}",
            report.resolve().as_uri(),
        ]
        subprocess.run(cmd, check=True, capture_output=True, timeout=120)


def read_png(path: Path) -> np.ndarray:
    """Decode an 8-bit, non-interlaced RGB/RGBA PNG (what Chromium writes) into an (h, w, c) array."""
    data = path.read_bytes()
    if data[:8] != b"\x89PNG\r\n\x1a\n":
        raise ValueError(f"{path} is not a PNG")
    pos, idat = 8, b""
    width = height = channels = 0
    while pos < len(data):
        length, kind = struct.unpack(">I4s", data[pos : pos + 8])
        body = data[pos + 8 : pos + 8 + length]
        if kind == b"IHDR":
            width, height, depth, colour, _, _, interlace = struct.unpack(">IIBBBBB", body)
            if depth != 8 or interlace or colour not in (2, 6):
                raise ValueError("only 8-bit non-interlaced RGB/RGBA PNGs are supported")
            channels = 3 if colour == 2 else 4
        elif kind == b"IDAT":
            idat += body
        pos += 12 + length
    raw = np.frombuffer(zlib.decompress(idat), dtype=np.uint8).reshape(height, 1 + width * channels)
    img = np.zeros((height, width * channels), dtype=np.int32)
    prev = np.zeros(width * channels, dtype=np.int32)
    for y in range(height):
        f, line = raw[y, 0], raw[y, 1:].astype(np.int32)
        if f == 0:
            row = line
        elif f == 2:
            row = (line + prev) & 0xFF
        elif f == 1:  # Sub: running sum per channel
            row = np.cumsum(line.reshape(width, channels), axis=0).ravel() & 0xFF
        else:  # Average / Paeth depend on the pixel just decoded: go pixel by pixel
            row = np.zeros_like(line)
            for x in range(len(line)):
                a = row[x - channels] if x >= channels else 0
                b = prev[x]
                c = prev[x - channels] if x >= channels else 0
                if f == 3:
                    pred = (a + b) // 2
                else:
                    p = a + b - c
                    pa, pb, pc = abs(p - a), abs(p - b), abs(p - c)
                    pred = a if pa <= pb and pa <= pc else b if pb <= pc else c
                row[x] = (line[x] + pred) & 0xFF
        img[y] = row
        prev = row
    return img.reshape(height, width, channels).astype(np.uint8)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--report", type=Path)
    ap.add_argument("--out", type=Path, default=WORK / "report.png")
    ap.add_argument("--json-out", type=Path, help="also write the result as JSON (for bench/run_all.py)")
    a = ap.parse_args()
    report = a.report or build_report(WORK)
    a.out.parent.mkdir(parents=True, exist_ok=True)
    a.out.unlink(missing_ok=True)
    screenshot(report, a.out)
    img = read_png(a.out)[..., :3].astype(np.float64)
    grey = img.mean(axis=2)
    variance = float(grey.var())
    not_white = float((grey < 250).mean())
    colours = len(np.unique(img.reshape(-1, 3)[::7], axis=0))
    print(
        f"screenshot {a.out} {img.shape[1]}x{img.shape[0]}: pixel variance {variance:.1f}, "
        f"{not_white:.1%} non-white pixels, {colours} distinct colours (sampled)"
    )
    ok = not (variance < 50 or not_white < 0.01 or colours < 8)
    if a.json_out:
        a.json_out.write_text(json.dumps([{
            "part": "verify HTML report in headless Chromium",
            "workload": "synthetic v2-vs-v3 comparison (400 docs, 60 queries, 5 languages) through the CLI",
            "baseline": "a blank page", "baseline_figure": "variance < 50 or < 1% non-white or < 8 colours",
            "ours": "screenshot", "ours_figure": (f"{img.shape[1]}x{img.shape[0]}, variance {variance:.0f}, "
                                                  f"{not_white:.1%} non-white, {colours} colours"),
            "ratio": None, "ratio_text": "renders" if ok else "BLANK", "target": "not blank", "met": ok}]))
    if not ok:
        print("FAIL: the screenshot looks blank")
        sys.exit(1)
    print("OK: the report rendered")


if __name__ == "__main__":
    main()
