"""Large trees are read by worker processes: the plan must be exactly the one the in-process path gives."""

from __future__ import annotations

import dataclasses
import threading
from pathlib import Path
from typing import Any

import pytest

from jmigrate.scan import prefilter
from jmigrate.scan.plan import plan

RULES = Path(__file__).resolve().parent.parent / "fixtures" / "rules"


def test_workers_give_the_same_plan(monkeypatch: pytest.MonkeyPatch) -> None:
    if threading.active_count() != 1:
        # Workers are forked only from a single-threaded process; with a thread alive (left by an
        # earlier test in this process) both plans would take the serial path and prove nothing.
        pytest.skip(f"{threading.active_count()} threads alive: the worker path cannot run here")
    serial = dataclasses.asdict(plan(RULES))
    pools: list[Any] = []

    class CountingPool(prefilter.ProcessPoolExecutor):
        def __init__(self, *args: Any, **kwargs: Any) -> None:
            pools.append(self)
            super().__init__(*args, **kwargs)

    monkeypatch.setattr(prefilter, "ProcessPoolExecutor", CountingPool)
    monkeypatch.setattr(prefilter, "PARALLEL_MIN_FILES", 3)
    monkeypatch.setattr(prefilter, "_BATCH", 4)  # several batches, finishing out of order
    parallel = dataclasses.asdict(plan(RULES))
    assert parallel == serial
    assert serial["files_scanned"] > 3 * 4
    assert len(pools) == 1  # the parallel path really ran
