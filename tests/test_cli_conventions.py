"""Conventions every command shares, through the real CLI: exit codes (3 = a bug, 130 = only a real
interrupt), one-line errors printed verbatim (no Rich markup in user data, no wrapping off a terminal),
install hints, help text, `-h`, `-q`, `--debug` anywhere, `--format` choices, and docs/cli.md showing
each command's real `--help`.

After changing a command's options, regenerate docs/cli.md with:
    JMIGRATE_UPDATE_DOCS=1 pytest tests/test_cli_conventions.py -k help_in_docs
"""

from __future__ import annotations

import json
import os
import re
import signal
import socket
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from jmigrate.cli.app import main

ROOT = Path(__file__).resolve().parent.parent
CLI_DOC = ROOT / "docs" / "cli.md"
README = ROOT / "README.md"
V2, V3 = "jina-embeddings-v2-base-en", "jina-embeddings-v3"
CRASH_TAIL = "(a bug in jmigrate; rerun with --debug for the traceback and report it)"


def run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def jmigrate(*argv: str, env: dict[str, str] | None = None, prelude: str = "",
             timeout: float = 120) -> subprocess.CompletedProcess[str]:
    """The CLI in a child process, stderr a pipe (not a terminal). `prelude` runs first (e.g. to make an
    optional library unimportable, as on a machine without the extra)."""
    code = (f"import sys\n{prelude}\nfrom jmigrate.cli.app import run\n"
            "sys.argv = ['jmigrate', *sys.argv[1:]]\nrun()")
    full_env = {**os.environ, "COLUMNS": "80", **(env or {})}
    full_env.pop("FORCE_COLOR", None)
    return subprocess.run([sys.executable, "-c", code, *argv], capture_output=True, text=True,
                          env=full_env, timeout=timeout)


def one_line(err: str) -> str:
    lines = [line for line in err.splitlines() if line.strip()]
    assert len(lines) == 1, err
    return lines[0]


def write_npy_index(folder: Path, dims: int, n: int = 3) -> tuple[Path, Path]:
    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(dims)
    np.save(folder / "v.npy", rng.standard_normal((n, dims)).astype(np.float32))
    (folder / "ids.txt").write_text("".join(f"d{i}\n" for i in range(n)), "utf-8")
    return folder / "v.npy", folder / "ids.txt"


def verify_args(tmp_path: Path) -> list[str]:
    """A small but complete `verify` run with the fake encoder (no network, no model files)."""
    v2, ids2 = write_npy_index(tmp_path / "v2", 768)
    v3, ids3 = write_npy_index(tmp_path / "v3", 1024)
    queries = tmp_path / "queries.jsonl"
    queries.write_text('{"id": "q1", "text": "hello"}\n{"id": "q2", "text": "world"}\n', "utf-8")
    return ["verify", "--v2", str(v2), "--v2-ids", str(ids2), "--v2-model", V2, "--v3", str(v3),
            "--v3-ids", str(ids3), "--v3-model", V3, "--queries", str(queries), "--encoder", "fake",
            "-k", "2"]


# --- a crash is exit 3 with one line; only a real interrupt is 130 ---------------------------------------


def test_an_uncaught_exception_exits_3_with_one_line(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    def buggy(*args: object, **kwargs: object) -> None:
        return 1 // 0  # type: ignore[return-value]

    monkeypatch.setattr("jmigrate.scan.plan.plan", buggy)
    code, out, err = run(capsys, "plan", str(tmp_path))
    assert code == 3 and out == ""
    assert one_line(err) == (
        f"error: internal error: ZeroDivisionError: integer division or modulo by zero {CRASH_TAIL}")


@pytest.mark.parametrize("where", ["before", "after"])
def test_debug_shows_the_traceback_of_a_crash(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch, where: str
) -> None:
    def buggy(*args: object, **kwargs: object) -> None:
        raise KeyError("no-such-key")

    monkeypatch.setattr("jmigrate.scan.plan.plan", buggy)
    argv = ["--debug", "plan", str(tmp_path)] if where == "before" else ["plan", str(tmp_path), "--debug"]
    code, _, err = run(capsys, *argv)
    assert code == 3
    assert "Traceback (most recent call last)" in err and "in buggy" in err
    assert err.rstrip().splitlines()[-1].startswith("error: internal error: KeyError: 'no-such-key'")


def test_an_eoferror_is_a_crash_not_an_interrupt(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    # Click turns EOFError into Abort, which used to be reported as exit 130 "interrupted".
    def buggy(*args: object, **kwargs: object) -> None:
        raise EOFError("No data left in file")

    monkeypatch.setattr("jmigrate.scan.plan.plan", buggy)
    code, _, err = run(capsys, "plan", str(tmp_path))
    assert code == 3
    assert one_line(err) == f"error: internal error: EOFError: No data left in file {CRASH_TAIL}"


def test_an_empty_npy_in_the_tree_is_not_an_interrupt(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    (tmp_path / "vectors.npy").write_bytes(b"")
    (tmp_path / "app.py").write_text('MODEL = "jina-embeddings-v2-base-en"\n', "utf-8")
    code, _, err = run(capsys, "plan", str(tmp_path))
    assert code != 130 and "interrupted" not in err
    assert code in (0, 1) or (code == 3 and one_line(err).endswith(CRASH_TAIL)), err


def test_a_keyboard_interrupt_exits_130(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    def interrupted(*args: object, **kwargs: object) -> None:
        raise KeyboardInterrupt

    monkeypatch.setattr("jmigrate.scan.plan.plan", interrupted)
    code, _, err = run(capsys, "plan", str(tmp_path))
    assert code == 130 and one_line(err) == "interrupted"


@pytest.mark.slow
def test_sigint_to_the_installed_command_exits_130() -> None:
    proc = subprocess.Popen(["jmigrate", "serve-stub", "--port", "0"], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)
    assert proc.stdout is not None
    assert proc.stdout.readline().startswith("http://127.0.0.1:")  # serving: now interrupt it
    proc.send_signal(signal.SIGINT)
    _, err = proc.communicate(timeout=30)
    assert proc.returncode == 130 and "Traceback" not in err


def test_exit_code_3_is_documented() -> None:
    readme = README.read_text("utf-8")
    assert re.search(r"^\| 3 \| .*internal error", readme, re.M), "README exit-code table lacks code 3"
    assert re.search(r"\b3\b.*internal error", CLI_DOC.read_text("utf-8"))


# --- messages carry user data verbatim ---------------------------------------------------------------


@pytest.mark.parametrize("name", ["a[/]b", "[bold]x", "[red]oops[/red]", "c:bug:d", "[link=http://x]y"])
def test_error_messages_print_paths_verbatim(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], name: str
) -> None:
    missing = tmp_path / name / "missing"
    code, _, err = run(capsys, "plan", str(missing))
    assert code == 2
    assert one_line(err) == f"error: no such file or folder: {missing}"


def test_a_crash_message_prints_verbatim(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    def buggy(*args: object, **kwargs: object) -> None:
        raise ValueError("bad [/] value [bold]here")

    monkeypatch.setattr("jmigrate.scan.plan.plan", buggy)
    code, _, err = run(capsys, "plan", str(tmp_path))
    assert code == 3
    assert one_line(err) == f"error: internal error: ValueError: bad [/] value [bold]here {CRASH_TAIL}"


def test_notes_and_summaries_print_paths_verbatim(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    tree = tmp_path / "t[" / "]ree"  # `t[/]ree` as a path
    tree.mkdir(parents=True)
    (tree / "[bold]app.py").write_text('MODEL = "jina-embeddings-v2-base-en"\n', "utf-8")
    report = tmp_path / "[bold]report.json"
    code, out, err = run(capsys, "plan", str(tree), "-f", "json", "-o", str(report))
    assert code == 1 and out == "" and f"wrote {report}\n" in err
    code, _, err = run(capsys, "apply", str(tree), "--unsafe")
    assert code in (0, 1) and "fixed [bold]app.py: " in err


def test_verify_notes_print_paths_verbatim(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    args = verify_args(tmp_path)
    report = tmp_path / "[bold]r[" / "].html"  # `[bold]r[/].html` as a path
    report.parent.mkdir()
    code, _, err = run(capsys, *args, "--report", str(report))
    assert code == 0, err
    assert f"report written to {report}" in err and report.is_file()


@pytest.mark.slow
def test_stderr_is_not_wrapped_or_coloured_off_a_terminal(tmp_path: Path) -> None:
    missing = tmp_path / ("long-folder-name-" * 8) / "missing"
    proc = jmigrate("plan", str(missing))
    assert proc.returncode == 2
    assert proc.stderr == f"error: no such file or folder: {missing}\n"  # one line, no ANSI codes


@pytest.mark.slow
def test_stderr_keeps_colour_on_a_terminal(tmp_path: Path) -> None:
    import pty

    missing = tmp_path / "missing"
    pid, fd = pty.fork()
    if pid == 0:  # the child: stdin/stdout/stderr are the pseudo-terminal
        os.execvp("jmigrate", ["jmigrate", "plan", str(missing)])
    chunks = []
    while True:
        try:
            data = os.read(fd, 4096)
        except OSError:
            break
        if not data:
            break
        chunks.append(data)
    _, status = os.waitpid(pid, 0)
    text = b"".join(chunks).decode("utf-8", "replace")
    assert os.waitstatus_to_exitcode(status) == 2
    assert "\x1b[" in text and "no such file or folder" in text and str(missing) in text


# --- install hints keep their [extra] ----------------------------------------------------------------


@pytest.mark.slow
def test_install_hint_for_verify_metrics_is_exact(tmp_path: Path) -> None:
    args = verify_args(tmp_path)
    qrels = tmp_path / "qrels.tsv"
    qrels.write_text("q1\t0\td0\t1\nq2\t0\td1\t1\n", "utf-8")
    proc = jmigrate(*args, "--qrels", str(qrels), prelude="sys.modules['pytrec_eval'] = None")
    assert proc.returncode == 2, proc.stderr
    assert proc.stderr.splitlines()[-1] == "error: metrics need pytrec_eval: pip install 'jmigrate[verify]'"


@pytest.mark.slow
def test_install_hint_for_faiss_is_exact(tmp_path: Path) -> None:
    args = verify_args(tmp_path)
    proc = jmigrate(*args, "--search-backend", "faiss", prelude="sys.modules['faiss'] = None")
    assert proc.returncode == 2, proc.stderr
    assert proc.stderr.splitlines()[-1] == (
        "error: --search-backend faiss needs faiss-cpu (pip install 'jmigrate[faiss]')")


@pytest.mark.slow
def test_install_hint_for_onnx_is_exact(tmp_path: Path) -> None:
    corpus = tmp_path / "c.jsonl"
    corpus.write_text('{"id": "1", "text": "hi"}\n', "utf-8")
    model = tmp_path / "model"
    model.mkdir()
    (model / "model.onnx").write_bytes(b"not read: the import fails first")
    (model / "tokenizer.json").write_text("{}", "utf-8")
    proc = jmigrate("reindex", str(corpus), "--out", str(tmp_path / "o"), "--encoder", "onnx",
                    "--model-path", str(model),
                    prelude="sys.modules['onnxruntime'] = sys.modules['tokenizers'] = None")
    assert proc.returncode == 2, proc.stderr
    assert proc.stderr.splitlines()[-1] == (
        "error: the local backend needs tokenizers and onnxruntime: pip install 'jmigrate[onnx]'")


# --- options and help the same way in every command ----------------------------------------------------


def commands() -> list[str]:
    import typer

    from jmigrate.cli.app import app

    return sorted(typer.main.get_command(app).commands)  # type: ignore[attr-defined]


def test_every_command_is_covered() -> None:
    assert set(commands()) >= {"plan", "apply", "rules", "reindex", "verify", "serve-stub"}


@pytest.mark.parametrize("cmd", [[], *[[c] for c in commands()]], ids=lambda c: c[0] if c else "root")
def test_help_is_conventional(cmd: list[str], capsys: pytest.CaptureFixture[str]) -> None:
    code, long_help, _ = run(capsys, *cmd, "--help")
    assert code == 0
    code, short_help, _ = run(capsys, *cmd, "-h")
    assert code == 0 and short_help == long_help
    assert "<bool>" not in long_help  # a flag takes no value
    usage = next(line for line in long_help.splitlines() if "Usage:" in line)
    assert "{" not in usage and "}" not in usage, usage
    if cmd:
        assert "--quiet" in long_help and "-q" in long_help
        assert "--debug" not in long_help  # accepted after the command too, documented once at the top
    else:
        assert "--debug" in long_help


@pytest.mark.parametrize("flag", ["--version", "-V"])
def test_version(flag: str, capsys: pytest.CaptureFixture[str]) -> None:
    from jmigrate import __version__

    code, out, err = run(capsys, flag)
    assert code == 0 and out == f"jmigrate {__version__}\n" and err == ""


@pytest.mark.parametrize("argv", [
    ["plan", "{missing}"],
    ["apply", "{missing}"],
    ["reindex", "{missing}", "--out", "{tmp}/out", "--encoder", "fake"],
    ["verify", "--v2", "{missing}", "--v3", "{missing}", "--queries", "{missing}"],
    ["serve-stub", "--host", "10.0.0.1"],
], ids=lambda a: a[0])
def test_debug_works_after_the_command(
    argv: list[str], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    argv = [a.format(missing=tmp_path / "missing", tmp=tmp_path) for a in argv]
    code, _, err = run(capsys, *argv)
    assert code == 2 and "Traceback" not in err and err.splitlines()[-1].startswith("error: ")
    code, _, err = run(capsys, *argv, "--debug")
    assert code == 2 and "Traceback (most recent call last)" in err
    assert err.rstrip().splitlines()[-1].startswith("error: ")


def test_quiet_plan_and_apply_print_nothing_on_stderr(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    (tmp_path / "app.py").write_text('MODEL = "jina-embeddings-v2-base-en"\n', "utf-8")
    report = tmp_path.parent / f"{tmp_path.name}-plan.json"
    code, out, err = run(capsys, "plan", str(tmp_path), "-f", "json", "-o", str(report))
    assert code == 1 and "wrote" in err and " findings in " in err  # the notes -q silences
    code, out, err = run(capsys, "plan", str(tmp_path), "-f", "json", "-o", str(report), "-q")
    assert code == 1 and out == "" and err == "" and report.is_file()
    code, out, err = run(capsys, "apply", str(tmp_path), "--unsafe", "--quiet")
    assert code == 0 and out == "" and err == ""
    assert "jina-embeddings-v3" in (tmp_path / "app.py").read_text("utf-8")


def test_quiet_verify_prints_only_the_result(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    args = verify_args(tmp_path)
    code, out, err = run(capsys, *args, "--format", "json")
    assert code == 0 and "opening the v2 index" in err
    code, out, err = run(capsys, *args, "--format", "json", "-q")
    assert code == 0 and err == "" and json.loads(out)


def test_verify_output_file(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    args = verify_args(tmp_path)
    result = tmp_path / "result.json"
    code, out, err = run(capsys, *args, "-f", "json", "-o", str(result), "-q")
    assert code == 0 and out == "" and err == ""
    assert json.loads(result.read_text("utf-8"))
    code, out, _ = run(capsys, *args, "-o", str(tmp_path / "result.txt"), "-q")
    assert code == 0 and out == "" and "v3" in (tmp_path / "result.txt").read_text("utf-8")


@pytest.mark.parametrize("option", ["--output", "--report"])
def test_verify_refuses_an_unwritable_output_before_any_work(
    option: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    args = verify_args(tmp_path)
    folder = tmp_path / "a-folder"
    folder.mkdir()
    code, out, err = run(capsys, *args, option, str(folder))
    assert code == 2 and out == ""
    assert one_line(err) == f"error: {option} {folder} is a folder; give a file name"
    code, out, err = run(capsys, *args, option, str(tmp_path / "no-such-dir" / "r"))
    assert code == 2 and "does not exist" in one_line(err)


def test_verify_refuses_a_run_dir_that_is_a_file(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    args = verify_args(tmp_path)
    a_file = tmp_path / "runs"
    a_file.write_text("", "utf-8")
    code, _, err = run(capsys, *args, "--run-dir", str(a_file))
    assert code == 2 and one_line(err) == f"error: --run-dir {a_file} exists and is not a folder"


@pytest.mark.slow
def test_quiet_serve_stub_prints_only_the_url() -> None:
    proc = subprocess.Popen(["jmigrate", "serve-stub", "--port", "0", "-q"], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)
    assert proc.stdout is not None
    assert proc.stdout.readline().startswith("http://127.0.0.1:")
    proc.send_signal(signal.SIGINT)
    _, err = proc.communicate(timeout=30)
    assert proc.returncode == 130 and err.strip() == "interrupted"


def test_unsafe_without_diff_is_an_error(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code, out, err = run(capsys, "plan", str(tmp_path), "--unsafe")
    assert code == 2 and out == ""
    assert one_line(err).startswith("error: --unsafe only changes what --diff prints")


@pytest.mark.parametrize(("argv", "option", "choices"), [
    (["plan", "."], "'--format' / '-f'", "'text', 'concise', 'json', 'sarif', 'markdown'"),
    (["rules"], "'--format' / '-f'", "'text', 'json'"),
    (["verify", "--v2", "a", "--v3", "b", "--queries", "q"], "'--format' / '-f'", "'text', 'json'"),
])
def test_an_unknown_format_is_clicks_invalid_choice(
    argv: list[str], option: str, choices: str, capsys: pytest.CaptureFixture[str]
) -> None:
    code, out, err = run(capsys, *argv, "--format", "x")
    assert code == 2 and out == ""
    assert f"Error: Invalid value for {option}: 'x' is not one of {choices}." in err
    assert "Value error" not in err


@pytest.mark.parametrize(("option", "choices"), [
    ("--encoder", "'api', 'onnx', 'openai', 'fake'"), ("--search-backend", "'numpy', 'faiss'")])
def test_verify_choices_are_checked_by_the_parser(
    option: str, choices: str, capsys: pytest.CaptureFixture[str]
) -> None:
    code, _, err = run(capsys, "verify", "--v2", "a", "--v3", "b", "--queries", "q", option, "x")
    assert code == 2 and f"Invalid value for '{option}': 'x' is not one of {choices}." in err


# --- docs/cli.md shows each command's real --help ------------------------------------------------------

HELP_BLOCK = re.compile(r"<!-- help: (?P<cmd>[a-z-]+) -->\n```\n(?P<body>.*?)```\n", re.S)


def _help(cmd: str, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch) -> str:
    import typer.rich_utils

    # Fixed width and no colour, whatever the terminal or CI environment says.
    monkeypatch.setattr(typer.rich_utils, "MAX_WIDTH", 100)
    monkeypatch.setattr(typer.rich_utils, "FORCE_TERMINAL", False)
    code, out, _ = run(capsys, *([] if cmd == "jmigrate" else [cmd]), "--help")
    assert code == 0
    return "\n".join(line.rstrip() for line in out.splitlines()).strip("\n") + "\n"


def _words(help_text: str) -> list[str]:
    """The words of a help text: another Typer/Rich version may draw boxes or wrap lines differently,
    but an option, a default or a sentence that changed still shows."""
    return re.sub(r"[\u2500-\u257f]", " ", help_text).split()


def test_help_in_docs_matches_the_cli(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    documented_commands = ["jmigrate", *commands()]
    doc = CLI_DOC.read_text("utf-8")
    current = {cmd: _help(cmd, capsys, monkeypatch) for cmd in documented_commands}
    if os.environ.get("JMIGRATE_UPDATE_DOCS"):
        doc = HELP_BLOCK.sub(lambda m: f"<!-- help: {m['cmd']} -->\n```\n{current[m['cmd']]}```\n", doc)
        CLI_DOC.write_text(doc, "utf-8")
    documented = {m["cmd"]: m["body"] for m in HELP_BLOCK.finditer(doc)}
    missing = set(documented_commands) - set(documented)
    assert not missing, f"docs/cli.md has no `<!-- help: NAME -->` block for {sorted(missing)}"
    for cmd in documented_commands:
        assert _words(documented[cmd]) == _words(current[cmd]), (
            f"docs/cli.md is out of date for `jmigrate {cmd} --help`; "
            "run JMIGRATE_UPDATE_DOCS=1 pytest tests/test_cli_conventions.py -k help_in_docs"
        )


# --- serve-stub and the stub server ---------------------------------------------------------------------


def test_serve_stub_on_an_impossible_port_is_a_usage_error(capsys: pytest.CaptureFixture[str]) -> None:
    for port in ("70000", "-1"):
        code, out, err = run(capsys, "serve-stub", "--port", port)
        assert code == 2 and out == "" and "Traceback" not in err
        assert f"Invalid value for '--port': {port} is not in the range 0<=x<=65535." in err


def test_serve_stub_on_a_port_in_use_is_one_line(capsys: pytest.CaptureFixture[str]) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen(1)
        port = taken.getsockname()[1]
        code, out, err = run(capsys, "serve-stub", "--port", str(port))
    assert code == 2 and out == ""
    assert one_line(err) == f"error: cannot listen on 127.0.0.1:{port}: Address already in use"


@pytest.mark.parametrize(("length", "status"), [
    ("abc", 400), ("-5", 400), ("1e3", 400), ("99999999999999", 413)])
def test_stub_answers_a_bad_content_length_without_a_traceback(
    length: str, status: int, capfd: pytest.CaptureFixture[str]
) -> None:
    from jmigrate.testing.server import StubServer

    with StubServer() as srv, socket.create_connection(("127.0.0.1", srv.port), timeout=10) as conn:
        head = f"POST /v1/embeddings HTTP/1.1\r\nHost: x\r\nContent-Length: {length}\r\n\r\n"
        conn.sendall(head.encode() + b"{}")
        answer = b""
        while b"\r\n\r\n" not in answer:
            chunk = conn.recv(4096)
            if not chunk:
                break
            answer += chunk
        assert answer.startswith(f"HTTP/1.1 {status} ".encode()), answer
        # The server still works for the next client.
        import httpx

        ok = httpx.post(srv.url + "/embeddings", json={"model": V3, "input": ["a"]},
                        headers={"Authorization": "Bearer jina_test"})
        assert ok.status_code == 200
    _, err = capfd.readouterr()
    assert "Traceback" not in err


def test_verify_tables_print_ids_verbatim(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    # Integrity findings quote ids; an id like `[/]x` made the text report raise MarkupError.
    args = verify_args(tmp_path)
    ids = tmp_path / "v2" / "ids.txt"
    ids.write_text("[/]x\n[/]x\n[bold]y\n", "utf-8")
    code, out, err = run(capsys, *args, "-q")
    assert code == 1, err  # duplicate ids are an integrity error
    assert "'[/]x'" in out and err == ""


# --- odd inputs: every command ends with a one-line error, never a crash --------------------------------

NO_DAC = ["setpriv", "--bounding-set=-dac_override,-dac_read_search"]  # root that obeys file modes


@pytest.mark.slow
@pytest.mark.skipif(os.geteuid() != 0 or not any(
    os.access(os.path.join(d, "setpriv"), os.X_OK) for d in os.environ.get("PATH", "").split(os.pathsep)),
    reason="needs root and setpriv to drop the file-permission override")
def test_unreadable_inputs_are_one_line_errors(tmp_path: Path) -> None:
    tmp_path.chmod(0o755)
    corpus = tmp_path / "c.jsonl"
    corpus.write_text('{"id": "1", "text": "hi"}\n', "utf-8")
    locked = tmp_path / "locked"
    locked.mkdir()
    args = verify_args(tmp_path / "v")
    readable = verify_args(tmp_path / "w")
    queries = tmp_path / "v" / "queries.jsonl"
    for p in (corpus, queries, locked):
        p.chmod(0)
    cases = [
        (["reindex", str(corpus), "--out", str(tmp_path / "o"), "--encoder", "fake"], "error: cannot read"),
        (["plan", str(tmp_path / "v"), "-o", str(locked / "r.txt")], "error: cannot write"),
        ([*args, "-q"], "is not readable"),
        ([*readable, "-q", "--report", str(locked / "r.html")], "error: --report"),
        ([*readable, "-q", "-o", str(locked / "r.json")], "error: --output"),
        ([*readable, "-q", "--run-dir", str(locked / "runs")], "error: --run-dir"),
    ]
    for argv, expected in cases:
        proc = subprocess.run([*NO_DAC, "jmigrate", *argv], capture_output=True, text=True, timeout=120)
        assert proc.returncode == 2, (argv, proc.stderr)
        assert expected in proc.stderr and "Traceback" not in proc.stderr, (argv, proc.stderr)


@pytest.mark.slow
@pytest.mark.parametrize("fmt", ["text", "markdown", "json"])
def test_a_non_utf8_stdout_is_not_a_crash(fmt: str, tmp_path: Path) -> None:
    # A latin-1 or ASCII terminal: characters it cannot show are escaped, never a UnicodeEncodeError.
    (tmp_path / "app.py").write_text('MODEL = "jina-embeddings-v2-base-en"  # → v3\n', "utf-8")
    proc = jmigrate("plan", str(tmp_path), "-f", fmt, env={"PYTHONIOENCODING": "ascii"})
    assert proc.returncode == 1, proc.stderr
    assert "jina-embeddings-v2-base-en" in proc.stdout
    if fmt == "json":
        assert json.loads(proc.stdout)["findings"]


@pytest.mark.parametrize("debug", [False, True])
def test_a_crash_never_prints_the_api_key(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch, debug: bool
) -> None:
    env_key, flag_key = "jina_env_secret_0123456789", "jina_flag_secret_9876543210"
    monkeypatch.setenv("JINA_API_KEY", env_key)

    def buggy(*args: object, **kwargs: object) -> None:
        raise RuntimeError(f"server said {env_key} and {flag_key}")

    monkeypatch.setattr("jmigrate.verify.pipeline.run_verify", buggy)
    argv = [*verify_args(tmp_path), "--api-key", flag_key, *(["--debug"] if debug else [])]
    code, out, err = run(capsys, *argv)
    assert code == 3 and ("Traceback" in err) == debug
    assert env_key not in out + err and flag_key not in out + err
    assert "server said *** and ***" in err


@pytest.mark.parametrize("to_file", [False, True])
def test_a_plan_of_a_folder_whose_name_is_not_utf8(
    to_file: bool, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    # Linux file names are bytes; Python hands non-UTF-8 ones over as lone surrogates ('\udcff').
    tree = Path(os.fsdecode(os.fsencode(str(tmp_path)) + b"/caf\xe9"))
    tree.mkdir()
    (tree / "app.py").write_text('MODEL = "jina-embeddings-v2-base-en"\n', "utf-8")
    saved = tmp_path / "plan.json"
    argv = ["plan", str(tree), "-f", "json", *(["-o", str(saved)] if to_file else [])]
    if to_file:
        code, _, err = run(capsys, *argv)
    else:
        proc = jmigrate(*argv)  # stdout is a real UTF-8 pipe here
        code, err = proc.returncode, proc.stderr
        saved.write_text(proc.stdout, "utf-8")
    assert code == 1, err
    data = json.loads(saved.read_text("utf-8"))
    assert data["findings"] and "\\udce9" not in json.dumps(data["findings"])
    code, _, err = run(capsys, "apply", str(tree), "--plan", str(saved), "--unsafe")
    assert code == 0, err
    assert "jina-embeddings-v3" in (tree / "app.py").read_text("utf-8")


@pytest.mark.parametrize("which", ["source", "out"])
def test_reindex_paths_that_are_not_utf8_are_one_line_errors(
    which: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    # Parquet (pyarrow) and the manifest need UTF-8 names; a Latin-1 name used to crash (exit 3) after
    # the run had started.
    odd = Path(os.fsdecode(os.fsencode(str(tmp_path)) + b"/caf\xe9"))
    odd.mkdir()
    corpus = (odd if which == "source" else tmp_path) / "c.jsonl"
    corpus.write_text('{"id": "1", "text": "hi"}\n', "utf-8")
    out = (odd if which == "out" else tmp_path) / "out"
    code, _, err = run(capsys, "reindex", str(corpus), "--out", str(out), "--encoder", "fake", "-q")
    assert code == 2, err
    assert one_line(err).startswith("error: ") and "not valid UTF-8" in err
    assert not out.exists()
