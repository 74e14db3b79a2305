"""`jmigrate apply` through the CLI never writes outside its root and refuses a tampered plan file.

tests/test_apply.py covers the library checks on hand-made plans (`..`, absolute and Windows paths,
a symlinked folder leaving the root); these attack a real saved plan end to end: every refusal
exits 2 and leaves every byte inside and outside the root as it was.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from jmigrate.cli.app import main
from jmigrate.scan.render.plan_json import plan_checksum

OLD, NEW = "jina-embeddings-v2-base-en", "jina-embeddings-v3"
SOURCE = f'from jina import Client\nMODEL = "{OLD}"\n'


def snapshot(*roots: Path) -> dict[Path, bytes]:
    return {p: p.read_bytes() for r in roots for p in sorted(r.rglob("*")) if p.is_file()}


@pytest.fixture
def world(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> dict[str, Path]:
    """A root with one fixable file, a folder outside it with the same file, and a saved plan."""
    root, outside = tmp_path / "root", tmp_path / "outside"
    (root / "sub").mkdir(parents=True)
    outside.mkdir()
    (root / "sub" / "m.py").write_text(SOURCE)
    (outside / "m.py").write_text(SOURCE)
    plan = tmp_path / "plan.json"
    assert main(["plan", str(root), "--format", "json", "-o", str(plan)]) == 1
    capsys.readouterr()
    return {"root": root, "outside": outside, "plan": plan, "tmp": tmp_path}


def apply_plan(w: dict[str, Path], capsys: pytest.CaptureFixture[str],
               root: Path | None = None) -> tuple[int, str]:
    code = main(["apply", str(root or w["root"]), "--plan", str(w["plan"]), "--unsafe"])
    return code, " ".join(capsys.readouterr().err.split())


def edit_plan(w: dict[str, Path], change: Callable[[dict[str, Any]], None], reseal: bool = True) -> None:
    """Change the saved plan; `reseal` recomputes its checksum, as a deliberate forger would."""
    data = json.loads(w["plan"].read_text())
    change(data)
    if reseal:
        data["checksum"] = plan_checksum(data)
    w["plan"].write_text(json.dumps(data))


def test_the_untampered_plan_applies(world: dict[str, Path], capsys: pytest.CaptureFixture[str]) -> None:
    before = snapshot(world["outside"])
    code, err = apply_plan(world, capsys)
    assert code == 0, err
    assert (world["root"] / "sub" / "m.py").read_text() == SOURCE.replace(OLD, NEW)
    assert snapshot(world["outside"]) == before


def _retarget(path: str) -> Callable[[dict[str, Any]], None]:
    def change(data: dict[str, Any]) -> None:
        old = data["findings"][0]["path"]
        for f in data["findings"]:
            f["path"] = path
        data["file_hashes"][path] = data["file_hashes"].pop(old)
        data["encodings"][path] = data["encodings"].pop(old)
    return change


def _set(path: list[str | int], value: Any) -> Callable[[dict[str, Any]], None]:
    def change(data: dict[str, Any]) -> None:
        target: Any = data
        for p in path[:-1]:
            target = target[p]
        target[path[-1]] = value
    return change


TAMPERING: dict[str, tuple[Callable[[dict[str, Any]], None], bool, str]] = {
    # name: (change, reseal the checksum, what the refusal says)
    "edited replacement": (_set(["findings", 0, "edits", 0, "replacement"], "import os; os.system('x')"),
                           False, "checksum does not match"),
    "edited replacement, resealed, breaks Python": (
        _set(["findings", 0, "edits", 0, "replacement"], 'x" +'), True, "does not parse"),
    "edit moved past the end": (_set(["findings", 0, "edits", 0, "end"], 10_000), True, "outside the file"),
    "changed file hash": (_set(["file_hashes", "sub/m.py"], "0" * 64), True, "changed since it was planned"),
    "hash removed": (lambda d: d["file_hashes"].clear(), True, "no hash"),
    "checksum removed": (lambda d: d.pop("checksum"), False, "not a jmigrate plan"),
    "extra top-level field": (_set(["run_after"], "rm -rf /"), True, "not a jmigrate plan"),
    "extra finding field": (_set(["findings", 0, "exec"], "x"), True, "not a jmigrate plan"),
    "wrong version": (_set(["version"], 2), True, "not a jmigrate plan"),
    "other tool": (_set(["tool"], "other"), True, "not a jmigrate plan"),
    "parent path": (_retarget("../outside/m.py"), True, "refusing path"),
    "nested parent path": (_retarget("sub/../../outside/m.py"), True, "refusing path"),
    "backslash path": (_retarget("sub\\..\\..\\outside\\m.py"), True, "refusing path"),
    "NUL in path": (_retarget("sub/m.py\x00"), True, "refusing path"),
}


@pytest.mark.parametrize("name", list(TAMPERING))
def test_a_tampered_plan_is_refused_and_nothing_is_written(
    world: dict[str, Path], capsys: pytest.CaptureFixture[str], name: str
) -> None:
    change, reseal, message = TAMPERING[name]
    edit_plan(world, change, reseal)
    before = snapshot(world["root"], world["outside"])
    code, err = apply_plan(world, capsys)
    assert code == 2 and message in err, err
    assert snapshot(world["root"], world["outside"]) == before


def test_an_absolute_path_in_the_plan_file_is_refused(world: dict[str, Path],
                                                      capsys: pytest.CaptureFixture[str]) -> None:
    edit_plan(world, _retarget(str(world["outside"] / "m.py")))
    before = snapshot(world["root"], world["outside"])
    code, err = apply_plan(world, capsys)
    assert code == 2 and "refusing path" in err
    assert snapshot(world["root"], world["outside"]) == before


def test_a_plan_for_another_root_is_refused(world: dict[str, Path],
                                            capsys: pytest.CaptureFixture[str]) -> None:
    edit_plan(world, _set(["root"], str(world["outside"])))
    before = snapshot(world["root"], world["outside"])
    code, err = apply_plan(world, capsys)
    assert code == 2 and "was planned for" in err
    code, err = apply_plan(world, capsys, root=world["outside"])  # and pointed at the other tree
    assert code == 2 and "cannot be read" in err  # outside/ has no sub/m.py: nothing planned there
    assert snapshot(world["root"], world["outside"]) == before


def test_a_file_swapped_for_a_symlink_out_of_the_root_after_planning_is_refused(
    world: dict[str, Path], capsys: pytest.CaptureFixture[str]
) -> None:
    target = world["root"] / "sub" / "m.py"
    target.unlink()
    target.symlink_to(world["outside"] / "m.py")  # same bytes, so the hash check alone would pass
    before = snapshot(world["outside"])
    code, err = apply_plan(world, capsys)
    assert code == 2 and "outside" in err
    assert snapshot(world["outside"]) == before and target.is_symlink()


def test_a_folder_swapped_for_a_symlink_out_of_the_root_after_planning_is_refused(
    world: dict[str, Path], capsys: pytest.CaptureFixture[str]
) -> None:
    sub = world["root"] / "sub"
    (sub / "m.py").unlink()
    sub.rmdir()
    sub.symlink_to(world["outside"], target_is_directory=True)
    before = snapshot(world["outside"])
    code, err = apply_plan(world, capsys)
    assert code == 2 and "outside" in err
    assert snapshot(world["outside"]) == before


def test_a_root_reached_through_a_symlink_writes_only_inside_the_real_root(
    world: dict[str, Path], capsys: pytest.CaptureFixture[str]
) -> None:
    link = world["tmp"] / "link"
    link.symlink_to(world["root"], target_is_directory=True)
    plan = world["tmp"] / "plan-link.json"
    assert main(["plan", str(link / "sub"), "--format", "json", "-o", str(plan)]) == 1
    capsys.readouterr()
    before = snapshot(world["outside"])
    assert main(["apply", str(link / "sub"), "--plan", str(plan), "--unsafe"]) == 0
    assert (world["root"] / "sub" / "m.py").read_text() == SOURCE.replace(OLD, NEW)
    assert link.is_symlink() and snapshot(world["outside"]) == before
    leftovers = [p.name for p in world["tmp"].rglob("*jmigrate-tmp*")]
    assert leftovers == []


def test_planning_never_follows_a_symlink_out_of_the_root(tmp_path: Path,
                                                         capsys: pytest.CaptureFixture[str]) -> None:
    root, outside = tmp_path / "root", tmp_path / "outside"
    root.mkdir()
    outside.mkdir()
    (outside / "m.py").write_text(SOURCE)
    (root / "escape.py").symlink_to(outside / "m.py")
    (root / "escape_dir").symlink_to(outside, target_is_directory=True)
    before = snapshot(outside)
    assert main(["plan", str(root), "--format", "json"]) == 0
    skipped = {k["path"]: k["reason"] for k in json.loads(capsys.readouterr().out)["skipped"]}
    assert set(skipped) == {"escape.py", "escape_dir"} and all("not followed" in r for r in skipped.values())
    assert main(["apply", str(root), "--unsafe"]) == 0
    assert snapshot(outside) == before
