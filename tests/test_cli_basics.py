"""The CLI shell itself: version, help, error-to-exit-code mapping."""

from __future__ import annotations

import subprocess
import sys

import pytest

from jmigrate import __version__
from jmigrate.errors import CheckpointError, JMigrateError, UsageError


def test_version_via_module() -> None:
    out = subprocess.run([sys.executable, "-m", "jmigrate", "--version"], capture_output=True, text=True)
    assert out.returncode == 0
    assert out.stdout.strip() == f"jmigrate {__version__}"


def test_unknown_command_is_usage_error(cli) -> None:  # type: ignore[no-untyped-def]
    result = cli("no-such-command")
    assert result.code == 2 and result.out == ""
    assert "no-such-command" in result.err


def test_error_classes_carry_exit_codes() -> None:
    assert JMigrateError.exit_code == UsageError.exit_code == CheckpointError.exit_code == 2


@pytest.mark.slow
def test_command_exit_codes_reach_the_shell() -> None:
    # `verify` exits 2 for a missing index; the code must survive main() and the process.
    out = subprocess.run(
        [sys.executable, "-m", "jmigrate", "verify", "--v2", "/nonexistent", "--v3", "/nonexistent",
         "--queries", "/nonexistent"],
        capture_output=True, text=True,
    )
    assert out.returncode == 2
    assert out.stderr.strip()
