"""Ray stays optional: the core (the CLI, `reindex --help`, a local run) never imports it, and the
engine choice is not part of the index fingerprint (an index started on one engine resumes on the other)."""

from __future__ import annotations

import subprocess
import sys


def test_core_does_not_import_ray() -> None:
    code = ("import sys\n"
            "from jmigrate.cli.app import main\n"
            "try:\n    main(['reindex', '--help'])\nexcept SystemExit:\n    pass\n"
            "assert 'ray' not in sys.modules, 'ray imported'\n"
            "import jmigrate.index.run, jmigrate.index.pipeline\n"
            "assert 'ray' not in sys.modules, 'ray imported'\n")
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, r.stderr
    assert "--engine" in r.stdout and "--ray-address" in r.stdout


def test_engine_is_not_fingerprinted() -> None:
    from jmigrate.index.settings import Settings

    local = Settings.resolve({"encoder": "fake"}, require_out=False)
    on_ray = Settings.resolve({"encoder": "fake", "engine": "ray", "ray_workers": 5,
                               "ray_cpus_per_worker": 0.5,
                               "ray_address": "auto"}, require_out=False)
    assert local.fingerprinted() == on_ray.fingerprinted()
