"""TREC run files: `verify --run-dir` writes them, `read_trec_run` reads them back (and trec_eval can).

A run line is `qid Q0 docid rank score runid`, fields separated by whitespace. An id that holds
whitespace (a text-folder file name such as `release notes.md`) or is empty cannot be written without
shifting the fields, and no escaping would be understood by trec_eval or match the qrels, so such ids
are refused with a one-line error before anything is written: `check_trec_ids` runs at the start of
`verify` when run files are asked for, and `write_run` checks again. The metrics themselves never go
through files, so the same ids are scored normally when no run files are written.
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from pathlib import Path
from typing import TYPE_CHECKING

from jmigrate.errors import InputError
from jmigrate.fileio import atomic_write
from jmigrate.textio import WHITESPACE, decode_utf8_line, lines, open_regular

if TYPE_CHECKING:
    from jmigrate.verify.search import Ranking

RUN_FIELDS = "qid Q0 docid rank score runid"


def check_trec_ids(ids: Iterable[str], what: str) -> None:
    """Raise InputError naming the first id a TREC run file cannot hold (empty, or with whitespace)."""
    ids = list(ids)
    # One regex pass over the joined ids (C speed on millions of ids) before looking for the culprit.
    if WHITESPACE.search("/".join(ids)) is None and all(ids):
        return
    bad = next(i for i in ids if not i or WHITESPACE.search(i))
    why = "is empty" if not bad else "contains whitespace"
    raise InputError(
        f"{what} {bad!r} {why}, which a TREC run file cannot hold (its fields are separated by "
        "whitespace); rename the ids, or leave out --run-dir (the metrics do not need run files)"
    )


def write_run(path: Path, ranking: Ranking, run_id: str) -> None:
    """A TREC run file (`qid Q0 docid rank score runid`), written atomically; refuses ids it cannot hold."""
    check_trec_ids(ranking.query_ids, "query id")
    check_trec_ids((d for docs in ranking.doc_ids for d in docs), "document id")
    check_trec_ids([run_id], "run id")
    path.parent.mkdir(parents=True, exist_ok=True)
    out = []
    for qid, docs, scores in zip(ranking.query_ids, ranking.doc_ids, ranking.scores, strict=True):
        for r, (d, sc) in enumerate(zip(docs, scores, strict=True), 1):
            # repr: the shortest text that reads back as exactly this score, so trec_eval sees the
            # ties verify saw and no others (6 decimals made distinct scores tie, and reorder).
            out.append(f"{qid} Q0 {d} {r} {float(sc)!r} {run_id}\n")
    atomic_write(path, "".join(out).encode("utf-8"))


def read_trec_run(path: str | Path) -> dict[str, dict[str, float]]:
    """A TREC run file as {qid: {docid: score}}; a malformed line is an error naming the file and line."""
    p = Path(path)
    run: dict[str, dict[str, float]] = {}
    try:
        with open_regular(p) as fh:
            for n, raw in lines(fh, p):
                fields = decode_utf8_line(raw, f"{p}:{n}").split()
                if not fields:
                    continue
                if len(fields) != 6:
                    raise InputError(f"{p}:{n}: expected '{RUN_FIELDS}' (6 fields), found {len(fields)}")
                qid, _, doc, _, score, _ = fields
                try:
                    value = float(score)
                except ValueError:
                    raise InputError(f"{p}:{n}: score {score!r} is not a number") from None
                if math.isnan(value):
                    raise InputError(f"{p}:{n}: score {score!r} is not a number")
                run.setdefault(qid, {})[doc] = value
    except OSError as e:
        raise InputError(f"cannot read run file {p}: {e.strerror or e}") from e
    return run
