"""JM312 (local integrations on a v2 model, on the constructor line) hands over to JM502 once `apply` renamed
the model: the constructor still lacks v3's trust_remote_code and task, so `plan` never ends at zero there."""

from __future__ import annotations

import shutil
from pathlib import Path

from test_rules import FIXTURES, apply_all

from jmigrate.scan.finding import Applicability
from jmigrate.scan.plan import plan


def lines(result, code: str) -> set[int]:  # type: ignore[no-untyped-def]
    return {f.line for f in result.findings if f.code == code}


def test_constructor_lines_move_from_jm312_to_jm502_after_apply(tmp_path: Path) -> None:
    shutil.copy(FIXTURES / "JM312.py", tmp_path / "app.py")
    first = plan(tmp_path)
    before = lines(first, "JM312")
    assert len(before) == 7
    apply_all(tmp_path, first)
    again = plan(tmp_path)
    assert lines(again, "JM312") == set()
    assert before <= lines(again, "JM502")
    assert all(f.applicability is Applicability.MANUAL for f in again.findings)
