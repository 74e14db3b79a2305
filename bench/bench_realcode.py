"""`jmigrate plan` on real public repositories, scored against hand-made labels, beside a line regex.

Each file in `bench/realcode/labels/` names one public repository at a pinned commit and lists, by path and
line only (no code is copied), every line a v2 -> v3 migration of that repository must edit (`must`, with
a class: model, call-task, integration, width, field, label, tokenizer), near misses a tool could wrongly flag
(`near`: prose, log, other-model, dead) and lines tied to jina-embeddings-v2-base-code (`keep`: the code
model stays on v2, so those lines are left out of the scores). How the labels were made:
`bench/realcode/README.md`.

The repositories are not downloaded by this script (the benchmark machine has no general internet): check
each one out at its commit under `--repos` as `owner__name`, e.g.

    git clone https://github.com/OWNER/NAME bench/_work/realrepos/OWNER__NAME
    git -C bench/_work/realrepos/OWNER__NAME checkout COMMIT

A repository that is missing or at another commit is reported and left out of the totals.

Both tools are scored on the same lines:
- plan: every line holding a finding (any rule; mentions in prose, comments and logs are not findings),
- regex: every line matching a v1/v2 model name, plus every line with a standalone 768 or 512 in a file
  where a model name matched (what `grep -rnE` for the names and widths finds, file by file).
A flagged line labelled `must` is a true positive; any other flagged line (near miss or unlabelled) a false
alarm; a `must` line not flagged a miss. Precision and recall per repository and over all lines (micro).
Wall time of each tool is printed as a ratio (plan / regex) too.

    .venv/bin/python bench/bench_realcode.py [--repos DIR] [--repo OWNER/NAME ...] [--show] [--markdown FILE]
"""

from __future__ import annotations

import argparse
import fnmatch
import json
import os
import re
import subprocess
import sys
import time
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

from jmigrate.models import legacy_models
from jmigrate.scan.plan import plan

HERE = Path(__file__).resolve().parent
LABELS = HERE / "realcode" / "labels"
REPOS = Path(os.environ.get("JMIGRATE_REALREPOS", "/work/realrepos"))

KINDS = {"must", "near", "keep"}
MUST_CLASSES = {"model", "call-task", "integration", "width", "field", "label", "tokenizer"}
NEAR_CLASSES = {"prose", "log", "other-model", "dead"}

# The baseline a user would type: every legacy model name, and the two v2 widths as whole numbers.
NAMES = re.compile("|".join(re.escape(m.name) for m in legacy_models()))
WIDTHS = re.compile(r"(?<![\w.])(?:768|512)(?![\w.])")
SKIP_DIRS = {".git"}
MAX_BYTES = 5_000_000  # grep would read bigger files too; labels exclude data dumps by glob instead

Line = tuple[str, int]


@dataclass
class Label:
    path: str
    line: int
    kind: str
    cls: str
    note: str


@dataclass
class RepoLabels:
    repo: str
    commit: str
    summary: str
    languages: list[str]
    exclude: list[str]
    labels: dict[Line, Label]
    source: Path

    @property
    def dirname(self) -> str:
        return self.repo.replace("/", "__")

    def excluded(self, path: str) -> bool:
        return any(fnmatch.fnmatch(path, pattern) for pattern in self.exclude)


class LabelError(ValueError):
    pass


def load_labels(path: Path) -> RepoLabels:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise LabelError(f"{path.name}: not readable JSON ({exc})") from None
    for key in ("repo", "commit", "labels"):
        if key not in data:
            raise LabelError(f"{path.name}: no {key!r}")
    if not re.fullmatch(r"[0-9a-f]{40}", str(data["commit"])):
        raise LabelError(f"{path.name}: commit must be 40 hex digits, got {data['commit']!r}")
    labels: dict[Line, Label] = {}
    for i, item in enumerate(data["labels"]):
        try:
            label = Label(str(item["path"]), int(item["line"]), str(item["kind"]), str(item["class"]),
                          str(item.get("note", "")))
        except (KeyError, TypeError, ValueError) as exc:
            raise LabelError(f"{path.name}: label {i}: {exc}") from None
        allowed = MUST_CLASSES if label.kind == "must" else NEAR_CLASSES if label.kind == "near" else None
        if label.kind not in KINDS:
            raise LabelError(f"{path.name}: label {i}: kind {label.kind!r} is not one of {sorted(KINDS)}")
        if allowed is not None and label.cls not in allowed:
            raise LabelError(f"{path.name}: label {i}: class {label.cls!r} is not one of {sorted(allowed)}")
        key = (label.path, label.line)
        if key in labels:
            raise LabelError(f"{path.name}: {label.path}:{label.line} is labelled twice")
        labels[key] = label
    return RepoLabels(str(data["repo"]), str(data["commit"]), str(data.get("summary", "")),
                      list(data.get("languages", [])), list(data.get("exclude", [])), labels, path)


def check_checkout(labels: RepoLabels, root: Path) -> str | None:
    """Why this checkout cannot be scored, or None."""
    if not root.is_dir():
        return f"not checked out at {root}"
    try:
        head = subprocess.run(["git", "-C", str(root), "rev-parse", "HEAD"], capture_output=True, text=True,
                              check=True).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return f"{root} is not a git checkout"
    if head != labels.commit:
        return f"{root} is at {head[:12]}, the labels are for {labels.commit[:12]}"
    for path, line in labels.labels:
        file = root / path
        if not file.is_file():
            return f"labelled file {path} does not exist at this commit"
        with file.open("rb") as fh:
            count = sum(1 for _ in fh)
        if line < 1 or line > count:
            return f"label {path}:{line} is past the end of the file ({count} lines)"
    return None


def walk(root: Path) -> Iterator[tuple[str, Path]]:
    for dirpath, dirnames, filenames in os.walk(root):
        dirnames[:] = sorted(d for d in dirnames if d not in SKIP_DIRS)
        for name in sorted(filenames):
            full = Path(dirpath) / name
            if full.is_symlink() or not full.is_file():
                continue
            yield full.relative_to(root).as_posix(), full


def regex_lines(root: Path, labels: RepoLabels) -> set[Line]:
    flagged: set[Line] = set()
    for rel, full in walk(root):
        if labels.excluded(rel):
            continue
        try:
            data = full.read_bytes()[:MAX_BYTES]
        except OSError:
            continue
        if b"\0" in data[:8192]:
            continue  # grep -I: binary
        lines = data.decode("utf-8", "replace").splitlines()
        named = [i for i, text in enumerate(lines, 1) if NAMES.search(text)]
        flagged.update((rel, i) for i in named)
        if named:
            flagged.update((rel, i) for i, text in enumerate(lines, 1) if WIDTHS.search(text))
    return flagged


def plan_lines(root: Path, labels: RepoLabels) -> tuple[set[Line], dict[Line, list[str]]]:
    result = plan(root, stores=False)
    rules: dict[Line, list[str]] = {}
    for f in result.findings:
        if labels.excluded(f.path):
            continue
        rules.setdefault((f.path, f.line), []).append(f.code)
    return set(rules), rules


@dataclass
class Score:
    tp: int = 0
    fp: int = 0
    fn: int = 0
    misses: list[Line] = field(default_factory=list)
    false_alarms: list[Line] = field(default_factory=list)

    @property
    def precision(self) -> float:
        return self.tp / (self.tp + self.fp) if self.tp + self.fp else 1.0

    @property
    def recall(self) -> float:
        return self.tp / (self.tp + self.fn) if self.tp + self.fn else 1.0

    def add(self, other: Score) -> None:
        self.tp += other.tp
        self.fp += other.fp
        self.fn += other.fn


def score(flagged: Iterable[Line], labels: RepoLabels) -> Score:
    flagged = {key for key in flagged if not labels.excluded(key[0])}
    must = {key for key, label in labels.labels.items() if label.kind == "must"}
    keep = {key for key, label in labels.labels.items() if label.kind == "keep"}
    counted = flagged - keep
    out = Score(tp=len(counted & must), fp=len(counted - must), fn=len(must - counted))
    out.misses = sorted(must - counted)
    out.false_alarms = sorted(counted - must)
    return out


@dataclass
class RepoResult:
    labels: RepoLabels
    plan: Score
    regex: Score
    plan_rules: dict[Line, list[str]]
    plan_seconds: float
    regex_seconds: float


def run_repo(labels: RepoLabels, root: Path) -> RepoResult:
    start = time.perf_counter()
    flagged_regex = regex_lines(root, labels)
    regex_seconds = time.perf_counter() - start
    start = time.perf_counter()
    flagged_plan, rules = plan_lines(root, labels)
    plan_seconds = time.perf_counter() - start
    return RepoResult(labels, score(flagged_plan, labels), score(flagged_regex, labels), rules,
                      plan_seconds, regex_seconds)


def describe(key: Line, result: RepoResult) -> str:
    label = result.labels.labels.get(key)
    where = f"{key[0]}:{key[1]}"
    rules = ",".join(result.plan_rules.get(key, []))
    what = f"{label.kind}/{label.cls}: {label.note}" if label else "unlabelled"
    return f"{where} [{rules}] {what}" if rules else f"{where} {what}"


def fmt(score: Score) -> str:
    return f"{score.tp:4d} {score.fp:4d} {score.fn:4d}  {score.precision:5.3f} {score.recall:5.3f}"


def report(results: list[RepoResult], skipped: list[tuple[str, str]], show: bool) -> str:
    out = [f"{'repository':44s} {'commit':8s} {'must':>4s} | plan  TP   FP   FN  prec   rec  | "
           f"regex TP   FP   FN  prec   rec  | time plan/regex"]
    total_plan, total_regex = Score(), Score()
    for r in results:
        must = sum(1 for label in r.labels.labels.values() if label.kind == "must")
        ratio = r.plan_seconds / r.regex_seconds if r.regex_seconds else float("inf")
        out.append(f"{r.labels.repo[:44]:44s} {r.labels.commit[:8]} {must:4d} |    {fmt(r.plan)} |     "
                   f"{fmt(r.regex)} | {ratio:6.2f}x")
        total_plan.add(r.plan)
        total_regex.add(r.regex)
    must_total = total_plan.tp + total_plan.fn
    out.append(f"{'TOTAL (' + str(len(results)) + ' repositories)':44s} {'':8s} {must_total:4d} |    "
               f"{fmt(total_plan)} |     {fmt(total_regex)} |")
    for repo, why in skipped:
        out.append(f"skipped {repo}: {why}")
    if show:
        for r in results:
            if r.plan.misses or r.plan.false_alarms:
                out.append(f"\n{r.labels.repo} @ {r.labels.commit[:12]}")
                out.extend(f"  plan miss        {describe(k, r)}" for k in r.plan.misses)
                out.extend(f"  plan false alarm {describe(k, r)}" for k in r.plan.false_alarms)
    return "\n".join(out)


def shown_args(argv: list[str]) -> list[str]:
    """The arguments that decide the report (not where run_all asked for its scratch JSON)."""
    out, skip = [], False
    for arg in argv:
        if skip:
            skip = False
        elif arg in ("--json-out", "--scores-json"):
            skip = True
        elif not arg.startswith(("--json-out=", "--scores-json=")):
            out.append(arg)
    return out


def markdown(results: list[RepoResult], skipped: list[tuple[str, str]], argv: list[str]) -> str:
    commit = subprocess.run(["git", "-C", str(HERE), "rev-parse", "--short", "HEAD"], capture_output=True,
                            text=True).stdout.strip() or "unknown"
    intro = [
        "# `plan` on real code",
        "",
        "<!-- Generated by bench/bench_realcode.py: edit the labels or the script, not this file. -->",
        "",
        f"- Command: `.venv/bin/python bench/bench_realcode.py {' '.join(shown_args(argv))}`",
        f"- Date: {time.strftime('%Y-%m-%d %H:%M', time.gmtime())} UTC; jmigrate at commit {commit}",
        "- Labels: `bench/realcode/labels/` (one file per repository; how they were made: "
        "`bench/realcode/README.md`). TP/FP/FN count lines: a flagged line labelled `must` is a true "
        "positive, any other flagged line a false alarm, an unflagged `must` line a miss; lines tied to "
        "jina-embeddings-v2-base-code (kept on v2) are left out.",
        "- Regex baseline: every line naming a v1/v2 model, plus every line with a standalone 768 or 512 in "
        "a file that names one.",
        "",
    ]
    head = ("| repository | commit | languages | must | plan TP/FP/FN | plan P | plan R | regex TP/FP/FN | "
            "regex P | regex R |\n|---|---|---|---|---|---|---|---|---|---|")
    rows = [head]
    total_plan, total_regex = Score(), Score()
    for r in results:
        must = sum(1 for label in r.labels.labels.values() if label.kind == "must")
        rows.append(f"| [{r.labels.repo}](https://github.com/{r.labels.repo}) | `{r.labels.commit[:10]}` | "
                    f"{', '.join(r.labels.languages)} | {must} | {r.plan.tp}/{r.plan.fp}/{r.plan.fn} | "
                    f"{r.plan.precision:.3f} | {r.plan.recall:.3f} | "
                    f"{r.regex.tp}/{r.regex.fp}/{r.regex.fn} | "
                    f"{r.regex.precision:.3f} | {r.regex.recall:.3f} |")
        total_plan.add(r.plan)
        total_regex.add(r.regex)
    rows.append(f"| **total ({len(results)})** | | | {total_plan.tp + total_plan.fn} | "
                f"{total_plan.tp}/{total_plan.fp}/{total_plan.fn} | **{total_plan.precision:.3f}** | "
                f"**{total_plan.recall:.3f}** | {total_regex.tp}/{total_regex.fp}/{total_regex.fn} | "
                f"{total_regex.precision:.3f} | {total_regex.recall:.3f} |")
    rows.append("")
    rows.append("Each plan miss and false alarm (path:line [rules on the line] label: labeller's note):")
    rows.append("")
    for r in results:
        items = [f"  - miss: `{describe(k, r)}`" for k in r.plan.misses]
        items += [f"  - false alarm: `{describe(k, r)}`" for k in r.plan.false_alarms]
        if items:
            rows.append(f"- {r.labels.repo}")
            rows.extend(items)
    for repo, why in skipped:
        rows.append(f"- skipped {repo}: {why}")
    return "\n".join(intro + rows) + "\n"


AIM_PRECISION, AIM_RECALL = 0.97, 0.95  # issue 12


def summary_rows(results: list[RepoResult]) -> list[dict[str, object]]:
    plan, regex = Score(), Score()
    for r in results:
        plan.add(r.plan)
        regex.add(r.regex)
    must = plan.tp + plan.fn
    workload = f"{len(results)} public repositories at pinned commits, {must} hand-labelled must-edit lines"
    rows: list[dict[str, object]] = []
    for part, attr, aim in (("precision", "precision", AIM_PRECISION), ("recall", "recall", AIM_RECALL)):
        ours, base = getattr(plan, attr), getattr(regex, attr)
        counts = (lambda s: f"{s.tp}/{s.tp + s.fp}") if attr == "precision" else (lambda s: f"{s.tp}/{must}")
        rows.append({
            "part": f"{part} on real code", "workload": workload,
            "baseline": "line regex (v1/v2 names; 768/512 in files naming one)",
            "baseline_figure": f"{base:.3f} ({counts(regex)})",
            "ours": "jmigrate plan", "ours_figure": f"{ours:.3f} ({counts(plan)})",
            "ratio": ours - base, "ratio_text": f"{ours - base:+.3f} vs the regex",
            "target": f">= {aim} and above the regex", "met": bool(ours >= aim and ours > base)})
    return rows


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--labels", type=Path, default=LABELS, help="folder of label files")
    parser.add_argument("--repos", type=Path, default=REPOS, help="folder of checkouts named OWNER__NAME")
    parser.add_argument("--repo", action="append", default=[], help="only this OWNER/NAME (repeatable)")
    parser.add_argument("--show", action="store_true", help="list every plan miss and false alarm")
    parser.add_argument("--markdown", type=Path, help="also write the table and the list as Markdown here")
    parser.add_argument("--json-out", type=Path, help="also write the totals as bench/run_all.py rows here")
    parser.add_argument("--scores-json", type=Path, help="also write the per-repository scores as JSON here")
    args = parser.parse_args(argv)

    files = sorted(args.labels.glob("*.json"))
    results: list[RepoResult] = []
    skipped: list[tuple[str, str]] = []
    errors = 0
    for file in files:
        try:
            labels = load_labels(file)
        except LabelError as exc:
            print(f"error: {exc}", file=sys.stderr)
            errors += 1
            continue
        if args.repo and labels.repo not in args.repo:
            continue
        root = args.repos / labels.dirname
        why = check_checkout(labels, root)
        if why:
            skipped.append((labels.repo, why))
            continue
        results.append(run_repo(labels, root))
    print(report(results, skipped, args.show))
    if args.markdown:
        args.markdown.parent.mkdir(parents=True, exist_ok=True)
        args.markdown.write_text(markdown(results, skipped, sys.argv[1:] if argv is None else argv),
                                 encoding="utf-8")
    if args.json_out:  # the rows bench/run_all.py renders
        args.json_out.write_text(json.dumps(summary_rows(results), indent=1))
    if args.scores_json:
        args.scores_json.write_text(json.dumps([
            {"repo": r.labels.repo, "commit": r.labels.commit,
             "plan": {"tp": r.plan.tp, "fp": r.plan.fp, "fn": r.plan.fn},
             "regex": {"tp": r.regex.tp, "fp": r.regex.fp, "fn": r.regex.fn},
             "plan_seconds": r.plan_seconds, "regex_seconds": r.regex_seconds} for r in results], indent=1))
    return 2 if errors or (args.repo and not results) else 0


if __name__ == "__main__":
    sys.exit(main())
