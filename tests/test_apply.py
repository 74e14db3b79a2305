"""`apply` and `diff` on hand-made plans: bytes kept outside the edits, every refusal, atomic writes."""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import subprocess
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from jmigrate.errors import InputError, StaleFileError
from jmigrate.scan import apply as apply_mod
from jmigrate.scan.apply import apply, diff, load_plan
from jmigrate.scan.finding import Applicability, Edit, Finding, PlanResult
from jmigrate.scan.render.plan_json import plan_checksum, render_json

OLD, NEW = "jina-embeddings-v2-base-en", "jina-embeddings-v3"


def finding(path: str, text: str, old: str = OLD, new: str = NEW, occurrence: int = 0,
            applicability: Applicability = Applicability.SAFE, code: str = "JM101") -> Finding:
    """A finding that replaces the `occurrence`-th `old` in `text` (the decoded text, as rules see it)."""
    start = -1
    for _ in range(occurrence + 1):
        start = text.index(old, start + 1)
    return Finding(code, "v2-model-name", path, 1, start + 1, 1, start + 1 + len(old), f"{old} is v2",
                   f"use {new}", applicability, [Edit(start, start + len(old), new)])


def plan_for(root: Path, findings: list[Finding]) -> PlanResult:
    hashes = {f.path: hashlib.sha256((root / f.path).read_bytes()).hexdigest() for f in findings}
    return PlanResult(str(root), findings, [], len(hashes), 0, hashes)


def test_bom_crlf_and_everything_outside_the_edit_are_kept_byte_for_byte(tmp_path: Path) -> None:
    original = b'\xef\xbb\xbf# caf\xc3\xa9\r\nMODEL = "jina-embeddings-v2-base-en"\r\nx = 1  \r\n\r\n'
    (tmp_path / "m.py").write_bytes(original)
    text = original[3:].decode("utf-8")  # the scanner keeps the BOM out of the text
    report = apply(plan_for(tmp_path, [finding("m.py", text)]))
    assert (tmp_path / "m.py").read_bytes() == original.replace(OLD.encode(), NEW.encode())
    assert [c.path for c in report.changed] == ["m.py"] and report.fixed == 1 and report.written


def test_legacy_encoding_is_written_back_in_that_encoding(tmp_path: Path) -> None:
    original = "# réglages\nmodel: jina-embeddings-v2-base-de\n".encode("cp1252")
    (tmp_path / "c.yaml").write_bytes(original)
    text = original.decode("cp1252")
    apply(plan_for(tmp_path, [finding("c.yaml", text, old="jina-embeddings-v2-base-de")]))
    assert (tmp_path / "c.yaml").read_bytes() == "# réglages\nmodel: jina-embeddings-v3\n".encode("cp1252")


def test_multiline_replacement_follows_the_files_crlf(tmp_path: Path) -> None:
    (tmp_path / "a.py").write_bytes(b"x = 1\r\ny = 2\r\n")
    f = Finding("JM301", "r", "a.py", 1, 1, 1, 6, "m", "t", Applicability.SAFE,
                [Edit(0, 5, "x = (\n    1\n)")])
    apply(plan_for(tmp_path, [f]))
    assert (tmp_path / "a.py").read_bytes() == b"x = (\r\n    1\r\n)\r\ny = 2\r\n"


def test_only_safe_edits_by_default_unsafe_on_request_manual_never(tmp_path: Path) -> None:
    text = f'A = "{OLD}"\nB = "{OLD}"\nC = "{OLD}"\n'
    (tmp_path / "m.py").write_text(text)
    findings = [finding("m.py", text, occurrence=i, applicability=a)
                for i, a in enumerate([Applicability.SAFE, Applicability.UNSAFE, Applicability.MANUAL])]
    findings[2].edits.clear()  # manual findings carry no edit
    plan = plan_for(tmp_path, findings)
    report = apply(plan, dry_run=True)
    assert report.fixed == 1 and len(report.remaining) == 2 and not report.written
    assert (tmp_path / "m.py").read_text() == text
    report = apply(plan, unsafe=True)
    assert report.fixed == 2 and [f.applicability for f in report.remaining] == [Applicability.MANUAL]
    assert (tmp_path / "m.py").read_text() == f'A = "{NEW}"\nB = "{NEW}"\nC = "{OLD}"\n'


def test_overlapping_edits_first_wins_and_the_other_stays_open(tmp_path: Path) -> None:
    text = f'M = "{OLD}"\n'
    (tmp_path / "m.py").write_text(text)
    first = finding("m.py", text)
    second = finding("m.py", text, old="v2-base-en", new="v2-small-en", code="JM102")
    same = finding("m.py", text, code="JM103")  # identical edit from another rule: applied once
    report = apply(plan_for(tmp_path, [second, first, same]))
    assert (tmp_path / "m.py").read_text() == f'M = "{NEW}"\n'
    assert [f.code for f in report.conflicts] == ["JM102"]
    assert report.fixed == 2


def test_changed_since_planned_is_refused_and_nothing_is_written(tmp_path: Path) -> None:
    for name in ("a.py", "b.py"):
        (tmp_path / name).write_text(f'M = "{OLD}"\n')
    plan = plan_for(tmp_path, [finding(n, f'M = "{OLD}"\n') for n in ("a.py", "b.py")])
    (tmp_path / "b.py").write_text(f'M = "{OLD}"  # edited after planning\n')
    with pytest.raises(StaleFileError, match="b.py: changed since it was planned"):
        apply(plan)
    assert (tmp_path / "a.py").read_text() == f'M = "{OLD}"\n'  # all or nothing
    with pytest.raises(StaleFileError):
        diff(plan)


def test_symlink_leaving_the_root_is_never_written_through(tmp_path: Path) -> None:
    outside, root = tmp_path / "outside", tmp_path / "root"
    outside.mkdir()
    root.mkdir()
    (outside / "m.py").write_text(f'M = "{OLD}"\n')
    (root / "lib").symlink_to(outside, target_is_directory=True)
    plan = plan_for(root, [finding("lib/m.py", f'M = "{OLD}"\n')])
    with pytest.raises(InputError, match="outside"):
        apply(plan)
    assert (outside / "m.py").read_text() == f'M = "{OLD}"\n'


def test_symlink_inside_the_root_writes_the_real_file_and_keeps_the_link(tmp_path: Path) -> None:
    (tmp_path / "real.py").write_text(f'M = "{OLD}"\n')
    (tmp_path / "alias.py").symlink_to("real.py")
    apply(plan_for(tmp_path, [finding("alias.py", f'M = "{OLD}"\n')]))
    assert (tmp_path / "alias.py").is_symlink()
    assert (tmp_path / "real.py").read_text() == f'M = "{NEW}"\n'


def test_a_plan_of_a_single_file_writes_only_that_file(tmp_path: Path) -> None:
    (tmp_path / "m.py").write_text(f'M = "{OLD}"\n')
    (tmp_path / "other.py").write_text(f'M = "{OLD}"\n')
    f = finding("m.py", f'M = "{OLD}"\n')
    other = finding("other.py", f'M = "{OLD}"\n')
    hashes = {n: hashlib.sha256((tmp_path / n).read_bytes()).hexdigest() for n in ("m.py", "other.py")}
    with pytest.raises(InputError, match="single file"):
        apply(PlanResult(str(tmp_path / "m.py"), [f, other], [], 1, 0, hashes))
    apply(PlanResult(str(tmp_path / "m.py"), [f], [], 1, 0, hashes))
    assert (tmp_path / "m.py").read_text() == f'M = "{NEW}"\n'
    assert (tmp_path / "other.py").read_text() == f'M = "{OLD}"\n'


@pytest.mark.parametrize("bad", ["../m.py", "/etc/passwd", "a/../../m.py", "C:/m.py", "a\\..\\m.py"])
def test_paths_that_could_leave_the_root_are_refused(tmp_path: Path, bad: str) -> None:
    (tmp_path / "m.py").write_text(f'M = "{OLD}"\n')
    f = finding("m.py", f'M = "{OLD}"\n')
    f.path = bad
    with pytest.raises(InputError, match="refusing path"):
        apply(PlanResult(str(tmp_path), [f], [], 1, 0, {bad: "0" * 64}))


def test_an_edit_that_breaks_python_is_refused(tmp_path: Path) -> None:
    (tmp_path / "m.py").write_text(f'M = "{OLD}"\n')
    f = finding("m.py", f'M = "{OLD}"\n', new='x"')
    with pytest.raises(InputError, match="does not parse"):
        apply(plan_for(tmp_path, [f]))
    assert (tmp_path / "m.py").read_text() == f'M = "{OLD}"\n'


def test_an_edit_that_breaks_a_notebook_is_refused(tmp_path: Path) -> None:
    nb = {"cells": [{"cell_type": "code", "source": [f'm = "{OLD}"\n'], "metadata": {}, "outputs": []}],
          "metadata": {}, "nbformat": 4, "nbformat_minor": 5}
    text = json.dumps(nb, indent=1)
    (tmp_path / "n.ipynb").write_text(text)
    broken = finding("n.ipynb", text, old=f'\\"{OLD}\\"', new='"')  # ends the JSON string early
    with pytest.raises(InputError, match="JSON does not parse"):
        apply(plan_for(tmp_path, [broken]))
    ok = finding("n.ipynb", text)
    apply(plan_for(tmp_path, [ok]))
    assert json.loads((tmp_path / "n.ipynb").read_text())["cells"][0]["source"] == [f'm = "{NEW}"\n']


def test_file_mode_is_kept(tmp_path: Path) -> None:
    (tmp_path / "run.sh").write_text(f"MODEL={OLD}\n")
    os.chmod(tmp_path / "run.sh", 0o750)
    apply(plan_for(tmp_path, [finding("run.sh", f"MODEL={OLD}\n")]))
    assert (tmp_path / "run.sh").stat().st_mode & 0o777 == 0o750


@pytest.mark.parametrize("fail_in", ["fsync", "replace"])
def test_a_failing_write_leaves_the_original_and_no_temporary_file(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, fail_in: str
) -> None:
    (tmp_path / "m.py").write_text(f'M = "{OLD}"\n')
    plan = plan_for(tmp_path, [finding("m.py", f'M = "{OLD}"\n')])

    def boom(*args: object) -> None:
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(apply_mod.os, fail_in, boom)
    with pytest.raises(InputError, match="m.py: cannot write .No space left on device.; left unchanged"):
        apply(plan)
    assert (tmp_path / "m.py").read_text() == f'M = "{OLD}"\n'
    assert os.listdir(tmp_path) == ["m.py"]


def test_diff_is_a_patch_git_can_apply(tmp_path: Path) -> None:
    if shutil.which("git") is None:
        pytest.skip("git not installed")
    (tmp_path / "sub").mkdir()
    (tmp_path / "sub" / "m.py").write_bytes(f'import os\nM = "{OLD}"'.encode())  # no final newline
    (tmp_path / "c.yaml").write_bytes(f"model: {OLD}\r\n".encode())
    plan = plan_for(tmp_path, [finding("sub/m.py", f'import os\nM = "{OLD}"'),
                               finding("c.yaml", f"model: {OLD}\r\n")])
    patch = diff(plan)
    assert patch.startswith("--- a/c.yaml\n+++ b/c.yaml\n")
    no_eol = "\\ No newline at end of file\n"
    assert f'-M = "{OLD}"\n{no_eol}+M = "{NEW}"\n{no_eol}' in patch
    assert (tmp_path / "sub" / "m.py").read_text() == f'import os\nM = "{OLD}"'  # diff writes nothing
    copy = tmp_path.parent / "copy"
    shutil.copytree(tmp_path, copy)
    (copy / "p.diff").write_bytes(patch.encode())
    subprocess.run(["git", "apply", "--unsafe-paths", "p.diff"], cwd=copy, check=True, capture_output=True)
    apply(plan)
    for rel in ("sub/m.py", "c.yaml"):
        assert (copy / rel).read_bytes() == (tmp_path / rel).read_bytes()


def test_saved_plan_round_trips_and_is_checked(tmp_path: Path) -> None:
    root = tmp_path / "repo"
    root.mkdir()
    (root / "m.py").write_text(f'M = "{OLD}"\n')
    saved = tmp_path / "plan.json"
    saved.write_text(render_json(plan_for(root, [finding("m.py", f'M = "{OLD}"\n')])))
    apply(load_plan(saved, root))
    assert (root / "m.py").read_text() == f'M = "{NEW}"\n'

    other = tmp_path / "other"
    other.mkdir()
    with pytest.raises(InputError, match="was planned for"):
        load_plan(saved, other)

    data = json.loads(saved.read_text())
    data["findings"][0]["path"] = "../m.py"
    saved.write_text(json.dumps(data))
    with pytest.raises(InputError, match="checksum does not match"):
        load_plan(saved, root)
    data["checksum"] = plan_checksum(data)  # a forger who recomputes it still cannot leave the root
    saved.write_text(json.dumps(data))
    with pytest.raises(InputError, match="refusing path '../m.py'"):
        load_plan(saved, root)

    data["findings"][0]["line"] = 0
    saved.write_text(json.dumps(data))
    with pytest.raises(InputError, match="not a jmigrate plan.*findings/0/line"):
        load_plan(saved, root)

    saved.write_text("{not json")
    with pytest.raises(InputError, match="not a JSON plan"):
        load_plan(saved, root)


@given(
    text=st.lists(st.sampled_from(["a", "é", "€", "🙂", " ", "\n", "\r\n", "\t", '"']), max_size=40).map(
        "".join
    ),
    cuts=st.lists(st.tuples(st.integers(0, 60), st.integers(0, 8), st.text("xyz€", max_size=5)), max_size=5),
    bom=st.booleans(),
)
@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
def test_any_non_overlapping_edits_keep_every_other_byte(
    tmp_path: Path, text: str, cuts: list[tuple[int, int, str]], bom: bool
) -> None:
    edits, last = [], 0
    for start, length, repl in sorted(cuts):
        start = max(start, last)
        end = min(start + length, len(text))
        if start > len(text):
            break
        edits.append(Edit(start, end, repl))
        last = end + 1
    path = tmp_path / "notes.txt"
    encoding = "utf-8-sig" if bom else "utf-8"
    path.write_bytes(text.encode(encoding))
    findings = [Finding("JM101", "r", "notes.txt", 1, 1, 1, 1, "m", "t", Applicability.SAFE, [e])
                for e in edits]
    apply(plan_for(tmp_path, findings))
    expected, pos = "", 0
    for e in edits:
        expected += text[pos : e.start] + e.replacement
        pos = e.end
    expected += text[pos:]
    assert path.read_bytes() == expected.encode(encoding)
