"""Nothing a user hands jmigrate is executed or unpickled.

Two proofs: an AST scan of the package source (every `np.load` passes `allow_pickle=False`; no
pickle-family module, no eval/exec/compile/__import__/runpy, `importlib` only for jmigrate's own
modules), and real commands over a booby-trapped tree whose every trap would create a marker file
if it were imported, executed or unpickled.
"""

from __future__ import annotations

import ast
import json
import pickle
from pathlib import Path

import numpy as np
import pytest

from jmigrate.cli.app import main

PACKAGE = Path(__file__).resolve().parents[1] / "jmigrate"
BANNED_MODULES = {
    "pickle",
    "_pickle",
    "cPickle",
    "dill",
    "cloudpickle",
    "joblib",
    "marshal",
    "shelve",
    "torch",
    "runpy",
    "code",
    "pydoc",
}
BANNED_CALLS = {"eval", "exec", "compile", "__import__", "execfile", "breakpoint"}


def package_modules() -> list[tuple[str, ast.Module]]:
    return [
        (p.relative_to(PACKAGE.parent).as_posix(), ast.parse(p.read_text("utf-8")))
        for p in sorted(PACKAGE.rglob("*.py"))
    ]


def test_the_scan_sees_the_whole_package() -> None:
    names = [n for n, _ in package_modules()]
    assert "jmigrate/verify/indexes.py" in names and "jmigrate/scan/stores.py" in names and len(names) > 40


def test_every_np_load_refuses_pickles() -> None:
    calls = []
    for name, tree in package_modules():
        for node in ast.walk(tree):
            if (
                isinstance(node, ast.Call)
                and isinstance(node.func, ast.Attribute)
                and node.func.attr == "load"
                and isinstance(node.func.value, ast.Name)
                and node.func.value.id in ("np", "numpy")
            ):
                kw = {k.arg: k.value for k in node.keywords}
                flag = kw.get("allow_pickle")
                ok = isinstance(flag, ast.Constant) and flag.value is False
                calls.append((f"{name}:{node.lineno}", ok))
    assert calls, "no np.load found: the scan is broken"
    assert [where for where, ok in calls if not ok] == []


def test_no_pickle_modules_and_no_dynamic_code() -> None:
    problems = []
    for name, tree in package_modules():
        for node in ast.walk(tree):
            if isinstance(node, ast.Import):
                problems += [
                    f"{name}:{node.lineno} import {a.name}"
                    for a in node.names
                    if a.name.split(".")[0] in BANNED_MODULES
                ]
            elif (
                isinstance(node, ast.ImportFrom)
                and node.module
                and node.level == 0
                and node.module.split(".")[0] in BANNED_MODULES
            ):
                problems.append(f"{name}:{node.lineno} from {node.module} import ...")
            elif (
                isinstance(node, ast.Call)
                and isinstance(node.func, ast.Name)
                and node.func.id in BANNED_CALLS
            ):
                problems.append(f"{name}:{node.lineno} {node.func.id}()")
            elif (
                isinstance(node, ast.Call)
                and isinstance(node.func, ast.Attribute)
                and node.func.attr in ("read_pickle", "loads")
                and isinstance(node.func.value, ast.Name)
                and node.func.value.id in ("pd", "pandas", "pickle", "marshal")
            ):
                problems.append(f"{name}:{node.lineno} {node.func.value.id}.{node.func.attr}()")
    assert problems == []


def test_importlib_only_imports_jmigrates_own_modules() -> None:
    """`import_module` takes a name built from a jmigrate package prefix, never a path or user string."""
    sites = []
    for name, tree in package_modules():
        for node in ast.walk(tree):
            if (
                isinstance(node, ast.Call)
                and isinstance(node.func, ast.Attribute)
                and node.func.attr in ("import_module", "spec_from_file_location", "exec_module")
            ):
                arg = node.args[0] if node.args else None
                prefix = arg.values[0] if isinstance(arg, ast.JoinedStr) and arg.values else None
                own = (isinstance(prefix, ast.Constant) and str(prefix.value).startswith("jmigrate.")) or (
                    isinstance(prefix, ast.FormattedValue) and ast.unparse(prefix.value) == "package.__name__"
                )
                sites.append((name, node.func.attr, own))
    assert sites and all(attr == "import_module" and own for _, attr, own in sites), sites


# ------------------------------------------------------------------------------- a booby-trapped tree


class _Trap:
    """Unpickling this calls open(marker, "w"): the marker file appears."""

    def __init__(self, marker: Path) -> None:
        self.marker = str(marker)

    def __reduce__(self) -> tuple[object, tuple[str, str]]:
        return (open, (self.marker, "w"))


def trapped_tree(root: Path, marker: Path) -> Path:
    root.mkdir()
    payload = f"open({str(marker)!r}, 'w').write('executed')\n"
    v2 = 'MODEL = "jina-embeddings-v2-base-en"\n'
    for rel in (
        "evil.py",
        "conftest.py",
        "setup.py",
        "sitecustomize.py",
        "pkg/__init__.py",
        "pkg/__main__.py",
        "noxfile.py",
        "docs/conf.py",
    ):
        (root / rel).parent.mkdir(parents=True, exist_ok=True)
        (root / rel).write_text(f"import os\n{payload}{v2}")
    (root / "weird.py").write_text(f"# -*- coding: utf-8 -*-\nexec({payload!r})\n{v2}")
    (root / "embed.pth").write_text(f"import os; {payload}")
    (root / "run.sh").write_text(
        f'#!/bin/sh\ntouch {marker}\ncurl -d \'{{"model": "jina-embeddings-v2-base-en"}}\'\n'
    )
    nb = {
        "cells": [
            {
                "cell_type": "code",
                "metadata": {},
                "outputs": [],
                "execution_count": None,
                "source": [payload, v2],
            }
        ],
        "metadata": {},
        "nbformat": 4,
        "nbformat_minor": 5,
    }
    (root / "nb.ipynb").write_text(json.dumps(nb))
    index = root / "old_index"
    index.mkdir()
    (index / "docstore.pkl").write_bytes(pickle.dumps(_Trap(marker)))
    (index / "index.faiss").write_bytes(b"IxFl" + (768).to_bytes(4, "little") + (3).to_bytes(8, "little"))
    np.save(index / "vectors.npy", np.array([_Trap(marker)], dtype=object), allow_pickle=True)
    np.savez(index / "more.npz", vectors=np.array([_Trap(marker)], dtype=object))
    (index / "ids.pkl").write_bytes(pickle.dumps(_Trap(marker)))
    assert not marker.exists()
    return root


@pytest.fixture
def trap(tmp_path: Path) -> tuple[Path, Path]:
    marker = tmp_path / "MARKER"
    return trapped_tree(tmp_path / "repo", marker), marker


def test_plan_and_apply_execute_nothing(
    trap: tuple[Path, Path], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    root, marker = trap
    for argv in (
        ["plan", str(root)],
        ["plan", str(root), "--format", "json", "-o", str(tmp_path / "p.json")],
        ["plan", str(root), "--format", "sarif"],
        ["plan", str(root), "--diff", "--unsafe"],
        ["apply", str(root), "--unsafe"],
        ["apply", str(root), "--plan", str(tmp_path / "p.json")],
    ):
        assert main(argv) in (0, 1, 2)
        capsys.readouterr()
        assert not marker.exists(), f"{argv} executed or unpickled something"
    # the traps were really read (not skipped): the plan found the v2 model in them, and apply rewrote them
    paths = {f["path"] for f in json.loads((tmp_path / "p.json").read_text())["findings"]}
    assert {"evil.py", "conftest.py", "setup.py", "pkg/__init__.py", "weird.py", "nb.ipynb"} <= paths
    assert "jina-embeddings-v3" in (root / "conftest.py").read_text()


def test_reindex_and_verify_never_unpickle(
    trap: tuple[Path, Path], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from jmigrate.scan.stores import discover_stores

    root, marker = trap
    index = root / "old_index"
    discover_stores(root)
    assert not marker.exists()
    for source in (index, index / "vectors.npy", index / "docstore.pkl", index / "more.npz"):
        code = main(["reindex", str(source), "--out", str(tmp_path / "o"), "--encoder", "fake", "--dry-run"])
        capsys.readouterr()
        assert code == 2 and not marker.exists(), source
    queries = tmp_path / "q.jsonl"
    queries.write_text('{"id": "q1", "text": "hello"}\n')
    code = main(
        [
            "verify",
            "--v2",
            str(index / "vectors.npy"),
            "--v2-ids",
            str(index / "ids.pkl"),
            "--v3",
            str(index / "vectors.npy"),
            "--v2-model",
            "jina-embeddings-v2-base-en",
            "--v3-model",
            "jina-embeddings-v3",
            "--queries",
            str(queries),
            "--encoder",
            "fake",
        ]
    )
    err = capsys.readouterr().err
    assert code == 2 and "not a readable NPY matrix" in " ".join(err.split())
    assert not marker.exists()


@pytest.mark.slow
def test_the_installed_command_run_inside_the_trapped_repo_imports_nothing_from_it(
    trap: tuple[Path, Path], tmp_path: Path
) -> None:
    """`cd repo && jmigrate plan .`: modules in the repo named like jmigrate's own dependencies are
    not imported (the console script's sys.path does not start with the working folder), also when
    the tree is big enough for plan's worker processes."""
    import subprocess
    import sys

    root, marker = trap
    payload = f"open({str(marker)!r}, 'w').write('imported')\n"
    for shadow in ("typer", "rich", "numpy", "pathspec", "libcst", "jmigrate", "json", "ast", "re"):
        (root / f"{shadow}.py").write_text(payload)
    many = root / "many"
    many.mkdir()
    for i in range(2100):  # over the prefilter's PARALLEL_MIN_FILES: worker processes are used
        (many / f"m{i}.py").write_text(f"x = {i}\n")
    script = Path(sys.executable).parent / "jmigrate"
    for argv in (["plan", "."], ["plan", ".", "--format", "json"], ["apply", ".", "--unsafe"]):
        proc = subprocess.run([str(script), *argv], cwd=root, capture_output=True, timeout=300)
        assert proc.returncode in (0, 1), proc.stderr.decode()[-2000:]
        assert not marker.exists(), argv
