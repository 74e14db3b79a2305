"""Large trees are read by worker processes: the plan must be exactly the one the in-process path gives.

Workers are forked only from a single-threaded process, and earlier tests in this pytest process may
leave a thread alive, so the comparison runs in a fresh interpreter where the worker path must run."""

from __future__ import annotations

import json
import subprocess
import sys
import threading
from pathlib import Path

import pytest

RULES = Path(__file__).resolve().parent.parent / "fixtures" / "rules"

SCRIPT = """
import dataclasses, json, sys, threading
from jmigrate.scan import prefilter
from jmigrate.scan.plan import plan

assert threading.active_count() == 1
serial = dataclasses.asdict(plan(sys.argv[1]))
pools = []

class CountingPool(prefilter.ProcessPoolExecutor):
    def __init__(self, *args, **kwargs):
        pools.append(self)
        super().__init__(*args, **kwargs)

prefilter.ProcessPoolExecutor = CountingPool
prefilter.PARALLEL_MIN_FILES = 3
prefilter._BATCH = 4  # several batches, finishing out of order
parallel = dataclasses.asdict(plan(sys.argv[1]))
print(json.dumps({"same": parallel == serial, "files": serial["files_scanned"], "pools": len(pools)}))
"""


@pytest.mark.slow
def test_workers_give_the_same_plan() -> None:
    done = subprocess.run([sys.executable, "-c", SCRIPT, str(RULES)], capture_output=True, text=True,
                          timeout=300)
    assert done.returncode == 0, done.stderr
    got = json.loads(done.stdout)
    assert got["files"] > 3 * 4
    assert got["pools"] == 1  # the parallel path really ran
    assert got["same"]


def test_a_threaded_process_takes_the_serial_path(monkeypatch: pytest.MonkeyPatch) -> None:
    """With a thread alive, forking is unsafe: plan must not start workers (and still give the plan)."""
    from jmigrate.scan import prefilter
    from jmigrate.scan.plan import plan

    stop = threading.Event()
    alive = threading.Thread(target=stop.wait, daemon=True)
    alive.start()
    started: list[object] = []
    original = prefilter.ProcessPoolExecutor

    class CountingPool(original):  # type: ignore[misc, valid-type]
        def __init__(self, *args: object, **kwargs: object) -> None:
            started.append(self)
            super().__init__(*args, **kwargs)

    monkeypatch.setattr(prefilter, "ProcessPoolExecutor", CountingPool)
    monkeypatch.setattr(prefilter, "PARALLEL_MIN_FILES", 3)
    try:
        result = plan(RULES)
    finally:
        stop.set()
    assert started == [] and result.files_scanned > 3 * 4
