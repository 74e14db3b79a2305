"""The installed jmigrate version, read once from the package metadata (pyproject.toml is its only source).

A module of its own, so nothing needs to import the package root (which imports the library API) just to
put the version in a report, a manifest or a User-Agent.
"""

from __future__ import annotations

from importlib.metadata import PackageNotFoundError, version

try:
    VERSION = version("jmigrate")
except PackageNotFoundError:  # a source tree on sys.path that was never installed
    VERSION = "0+unknown"
