"""What `reindex` says while it runs (off a terminal, as in a CI log) and `--max-spend`: the rows that
are safe and the rows written, rate, spend, a resumed run saying so, and a spending cap that is never
crossed and resumes with a higher cap."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
from helpers import STUB_KEY, read_shards, write_jsonl

from jmigrate.testing.server import Fault, StubServer

ROWS = 400
PRICE = 1000.0  # dollars per million tokens: $0.001 a token, so small runs have a visible spend


@pytest.fixture
def src(tmp_path: Path) -> Path:
    return write_jsonl(tmp_path / "src.jsonl",
                       ({"id": f"r{i}", "text": f"row {i} about refunds, invoices and delivery dates"}
                        for i in range(ROWS)))


@pytest.fixture(autouse=True)
def key(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("JINA_API_KEY", STUB_KEY)


def args(src: Path, out: Path, url: str, *extra: str) -> list[str]:
    return ["reindex", str(src), "--out", str(out), "--encoder", "api", "--api-url", url, "--batch-size", "8",
            "--unit-rows", "16", "--dimensions", "64", "--concurrency", "2", *extra]


def test_a_finished_run_ends_with_one_progress_line(cli, src: Path, tmp_path: Path) -> None:
    with StubServer(api_key=STUB_KEY) as srv:
        r = cli(*args(src, tmp_path / "out", srv.url, "--price-per-mtok", str(PRICE)))
    assert r.code == 0, r.err
    lines = [line for line in r.err.splitlines() if line.startswith("reindex: ")]
    assert len(lines) == 1, r.err  # off a terminal: no line per refresh
    assert re.fullmatch(r"reindex: 400 of 400 rows safe \(100%\), 400 written · [\d,]+ rows/s · "
                        r"[\d,]+ tok · \$[\d.,]+ · 0 retries · 0 rejected", lines[0]), lines[0]
    assert "resuming" not in r.err


def test_a_resumed_run_says_how_much_was_done(cli, src: Path, tmp_path: Path) -> None:
    out = tmp_path / "out"
    with StubServer(api_key=STUB_KEY) as srv:
        # Five answers, then a refused key: the run fails with some units journalled.
        srv.faults.script([None] * 5 + [Fault.error(401, "invalid key")])
        first = cli(*args(src, out, srv.url))
        assert first.code == 2, first.err
        said = re.search(r"reindex: (\d+) of 400 rows safe", first.err)
        assert said, first.err
        done = int(said.group(1))
        assert 0 < done < ROWS and done % 16 == 0  # whole units, journalled before the failure
        srv.faults.clear()
        again = cli(*args(src, out, srv.url))
    assert again.code == 0, again.err
    assert f"resuming: {done:,} of 400 rows already done" in again.err
    assert re.search(r"reindex: 400 of 400 rows safe \(100%\), 400 written", again.err), again.err
    assert sorted(read_shards(out).column("id").to_pylist()) == sorted(f"r{i}" for i in range(ROWS))


def test_max_spend_stops_before_the_cap_and_a_higher_cap_continues(cli, src: Path, tmp_path: Path) -> None:
    with StubServer(api_key=STUB_KEY) as srv:
        assert cli(*args(src, tmp_path / "ref", srv.url)).code == 0
        total = srv.stats.tokens  # what a whole run is billed
    cap = round(total / 3 * PRICE / 1e6, 4)
    out = tmp_path / "out"
    with StubServer(api_key=STUB_KEY) as srv:
        r = cli(*args(src, out, srv.url, "--price-per-mtok", str(PRICE), "--max-spend", str(cap)))
        assert r.code == 2, r.err
        billed = srv.stats.tokens
        assert 0 < billed * PRICE / 1e6 <= cap  # never a request that could cross the cap
        assert re.search(r"error: stopped before the spending cap: \$[\d.]+ of --max-spend \$[\d.]+ spent "
                         r"\([\d,]+ tokens billed in all runs\); \d+ of 400 source rows done and saved; run "
                         r"the same command with a higher --max-spend to continue", r.err), r.err
        manifest = json.loads((out / "manifest.json").read_text())
        assert manifest["status"] == "interrupted"
        assert manifest["usage"]["tokens"] == billed

        again = cli(*args(src, out, srv.url, "--price-per-mtok", str(PRICE), "--max-spend", str(cap * 10)))
        assert again.code == 0, again.err
        assert "resuming: " in again.err
        # Finished work was not paid again: at most the requests dropped at the cap (units cut short).
        assert srv.stats.tokens <= total * 1.2
    assert sorted(read_shards(out).column("id").to_pylist()) == sorted(f"r{i}" for i in range(ROWS))


def test_max_spend_needs_a_price_and_a_billed_encoder(cli, src: Path, tmp_path: Path) -> None:
    r = cli("reindex", str(src), "--out", str(tmp_path / "a"), "--max-spend", "5")
    assert r.code == 2 and "--max-spend needs --price-per-mtok" in r.err, r.err
    r = cli("reindex", str(src), "--out", str(tmp_path / "b"), "--encoder", "fake", "--max-spend", "5",
            "--price-per-mtok", "0.02")
    assert r.code == 2 and "--max-spend is for --encoder api or openai" in r.err, r.err
    assert not (tmp_path / "a").exists() and not (tmp_path / "b").exists()


def test_dry_run_shows_the_spending_cap(cli, src: Path, tmp_path: Path) -> None:
    r = cli("reindex", str(src), "--out", str(tmp_path / "o"), "--dry-run", "--price-per-mtok", str(PRICE),
            "--max-spend", "0.5")
    assert r.code == 0, r.err
    assert re.search(r"spending cap \$0\.5: under the estimate; the run would stop at about \d+% of the rows",
                     r.err), r.err
    r = cli("reindex", str(src), "--out", str(tmp_path / "o"), "--dry-run", "--price-per-mtok", str(PRICE),
            "--max-spend", "1000", "--format", "json")
    assert r.code == 0, r.err
    assert json.loads(r.out)["max_spend"] == 1000
    r = cli("reindex", str(src), "--out", str(tmp_path / "o"), "--dry-run", "--price-per-mtok", str(PRICE),
            "--max-spend", "1000")
    assert "spending cap $1,000: the estimate fits under it" in r.err, r.err


def test_a_slow_request_does_not_idle_the_other_slots(cli, src: Path, tmp_path: Path) -> None:
    """The window: while one request is slow, the other slots keep sending (the old grouped encode
    waited for it, so only the rest of its group went out meanwhile)."""
    with StubServer(api_key=STUB_KEY, latency=0.02) as srv:
        srv.faults.script([Fault.slow(2.0)])  # the first request takes 2 s more
        r = cli(*args(src, tmp_path / "out", srv.url, "--concurrency", "4"))
        assert r.code == 0, r.err
        recs = [x for x in srv.stats.embedding_records() if x.status == 200]
    slow = next(x for x in recs if x.fault == "slow")
    assert slow.done is not None
    during = [x for x in recs if x is not slow and slow.mono < x.mono < slow.done]
    # Old behaviour: at most the 3 other requests of its group (4 x 8 texts) went out meanwhile.
    assert len(during) > 10, len(during)
    assert sorted(read_shards(tmp_path / "out").column("id").to_pylist()) == sorted(
        f"r{i}" for i in range(ROWS))
