"""Fixtures shared by the test files. Plain helpers are in helpers.py.

Markers: `slow` marks tests that start subprocesses, servers under load, Hypothesis searches or
benchmarks; `pytest -m "not slow"` is the fast subset for development, CI runs everything."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass

import pytest
from helpers import STUB_KEY


@dataclass
class CliResult:
    code: int
    out: str
    err: str


@pytest.fixture
def cli(capsys: pytest.CaptureFixture[str]) -> Callable[..., CliResult]:
    """Run `jmigrate ARGS...` in this process; returns the exit code with what it printed."""
    from jmigrate.cli.app import main

    def run(*argv: str) -> CliResult:
        capsys.readouterr()  # drop what earlier steps printed
        code = main([str(a) for a in argv])
        out, err = capsys.readouterr()
        return CliResult(code, out, err)

    return run


@pytest.fixture
def stub() -> Iterator[object]:
    """A fresh loopback Jina API stub that accepts STUB_KEY (see jmigrate.testing.server)."""
    from jmigrate.testing.server import StubServer

    with StubServer(api_key=STUB_KEY) as srv:
        yield srv
