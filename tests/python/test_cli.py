"""The module-registry command line."""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

import module_registry
from module_registry.cli import main
from module_registry.cli import parser as cli_parser

ROOT = Path(__file__).resolve().parents[2]
WORKFLOW = ROOT / "examples" / "workflows" / "text-report.toml"
INPUT = ROOT / "examples" / "workflows" / "input.json"
SCRIPTS = ROOT / "scripts"


def run(*args: str, stdin: str = "", cwd: "Path | None" = None) -> subprocess.CompletedProcess[str]:
    # A scheduler that cannot be reached is given up on after 2 s (Dask's setting).
    env = {**os.environ, "DASK_DISTRIBUTED__COMM__TIMEOUTS__CONNECT": "2s"}
    return subprocess.run(
        [sys.executable, "-m", "module_registry", *args], input=stdin, capture_output=True, text=True, timeout=120, env=env, cwd=cwd
    )


def test_run_the_shipped_workflow() -> None:
    proc = run("run", str(WORKFLOW), "--scripts", str(SCRIPTS), "--input", str(INPUT))
    assert proc.returncode == 0, proc.stderr
    out = json.loads(proc.stdout)
    assert out.startswith("the-quick-brown-fox: 12 words on 2 lines; sha256 ")


def test_run_reads_stdin_and_encodes_bytes(tmp_path: Path) -> None:
    wf = tmp_path / "zip.toml"
    wf.write_text('name = "zip"\n[[steps]]\nid = "enc"\nmodule = "text-encode"\n')
    proc = run("run", str(wf), "--input", "-", stdin='"hi"')
    assert proc.returncode == 0, proc.stderr
    assert json.loads(proc.stdout) == {"$bytes": "aGk="}  # bytes print tagged, as base64
    proc = run("run", str(wf), "--input", "-", "--raw", stdin='"hi"')
    assert proc.stdout == "hi"
    proc = run("run", str(wf), "--input", "-", "--batch", stdin='["a", "b"]')
    assert json.loads(proc.stdout) == [{"$bytes": "YQ=="}, {"$bytes": "Yg=="}]


@pytest.mark.parametrize(
    ("args", "stdin", "message"),
    [
        (["run", "missing.toml"], "", "missing.toml"),
        (["run", str(WORKFLOW), "--no-bundled"], "", 'step "title"'),
        (["run", str(WORKFLOW), "--scripts", str(SCRIPTS), "--input", "-"], "{not json", "not JSON"),
        (["run", str(WORKFLOW), "--scripts", "/nonexistent-dir"], "", "nonexistent-dir"),
        (["run", str(WORKFLOW), "--scripts", str(SCRIPTS), "--input", "-", "--batch"], '"x"', "JSON array"),
    ],
)
def test_errors_print_one_line_and_exit_non_zero(args: list[str], stdin: str, message: str) -> None:
    proc = run(*args, stdin=stdin)
    assert proc.returncode == 1
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("module-registry: error:") and message in lines[0], proc.stderr
    assert proc.stdout == ""


def test_usage_errors_exit_2() -> None:
    assert run("frobnicate").returncode == 2
    assert run("graph", str(WORKFLOW), "--format", "png").returncode == 2


def test_check(tmp_path: Path) -> None:
    good = run("check", "--scripts", str(SCRIPTS), str(WORKFLOW))
    assert good.returncode == 0 and f"ok: {WORKFLOW}" in good.stdout
    bad = tmp_path / "bad.toml"
    bad.write_text('name = "bad"\n[[steps]]\nid = "a"\nmodule = "ghost"\n')
    proc = run("check", "--scripts", str(SCRIPTS), str(WORKFLOW), str(bad))
    assert proc.returncode == 1 and "ghost" in proc.stderr
    broken = tmp_path / "scripts"
    broken.mkdir()
    (broken / "x.rhai").write_text('const MODULE = #{ name: "x" }; fn process(x) { x + }')
    proc = run("check", "--scripts", str(broken))
    assert proc.returncode == 1 and "x.rhai" in proc.stderr and "syntax error" in proc.stderr


def test_list_discover_and_graph(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["list", "--scripts", str(SCRIPTS)]) == 0
    out = capsys.readouterr().out
    assert "identity" in out and "markdown" in out and out.splitlines()[0].split() == ["name", "version", "kind", "type", "capabilities"]
    assert main(["discover", "--capability", "gzip"]) == 0
    out = capsys.readouterr().out
    assert "gzip-compress" in out and "identity" not in out
    assert main(["discover", "--capability", "no-such-thing"]) == 1
    capsys.readouterr()
    assert main(["graph", str(WORKFLOW)]) == 0
    assert "body --> stats" in capsys.readouterr().out
    assert main(["graph", str(WORKFLOW), "--format", "dot"]) == 0
    assert '"digest" -> "report";' in capsys.readouterr().out
    assert main(["graph", str(WORKFLOW), "--format", "svg"]) == 0
    assert "<svg" in capsys.readouterr().out


def test_console_script_is_installed() -> None:
    exe = Path(sys.executable).parent / "module-registry"
    proc = subprocess.run([str(exe), "graph", str(WORKFLOW)], capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0 and proc.stdout.startswith("flowchart LR")


def test_script_runs_an_orchestration_script() -> None:
    proc = run(
        "script", str(SCRIPTS / "orchestration" / "publish.rhai"), "--scripts", str(SCRIPTS), "--input", "-",
        stdin='{"title": "Hi There", "body": "*x*"}',
    )
    assert proc.returncode == 0, proc.stderr
    assert json.loads(proc.stdout)["path"] == "posts/hi-there.html"
    proc = run("script", str(SCRIPTS / "orchestration" / "publish.rhai"), "--input", "-", stdin="5")
    assert proc.returncode == 1 and "publish.rhai" in proc.stderr and "input must be" in proc.stderr


@pytest.mark.parametrize(
    ("content", "message"),
    [
        (b"\xff\xfe not text", "not UTF-8 text"),
        (b"[" * 100_000 + b"]" * 100_000, "nests too deeply"),
        (b"[" * 300 + b"]" * 300, "nests deeper than 256 levels"),
    ],
)
def test_hostile_input_files_give_one_line(tmp_path: Path, content: bytes, message: str) -> None:
    path = tmp_path / "input.json"
    path.write_bytes(content)
    proc = run("run", str(WORKFLOW), "--scripts", str(SCRIPTS), "--input", str(path))
    assert proc.returncode == 1
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("module-registry: error:") and message in lines[0], proc.stderr


def test_batch_reads_and_writes_json_lines_on_a_local_dask_cluster(tmp_path: Path) -> None:
    wf = tmp_path / "slug.toml"
    wf.write_text('name = "slug"\n[[steps]]\nid = "slug"\nmodule = "slugify"\n')
    inputs = tmp_path / "in.jsonl"
    inputs.write_text("".join(json.dumps(f"Line {n} Here") + "\n" for n in range(12)) + "\n")
    expected = [f"line-{n}-here" for n in range(12)]
    here = run("run", str(wf), "--scripts", str(SCRIPTS), "--input", str(inputs), "--batch")
    assert here.returncode == 0, here.stderr
    assert [json.loads(line) for line in here.stdout.splitlines()] == expected
    cluster = run("run", str(wf), "--scripts", str(SCRIPTS), "--input", str(inputs), "--batch", "--workers", "2")
    assert cluster.returncode == 0, cluster.stderr
    assert cluster.stdout == here.stdout


def test_batch_on_a_running_scheduler(tmp_path: Path) -> None:
    distributed = pytest.importorskip("distributed")
    wf = tmp_path / "enc.toml"
    wf.write_text('name = "enc"\n[[steps]]\nid = "enc"\nmodule = "text-encode"\n')
    data = tmp_path / "in.json"
    data.write_text('["a", "b", "c"]')
    with distributed.LocalCluster(
        n_workers=1, threads_per_worker=1, processes=True, host="127.0.0.1", dashboard_address=None
    ) as cluster:
        proc = run("run", str(wf), "--input", str(data), "--batch", "--scheduler", cluster.scheduler_address)
    assert proc.returncode == 0, proc.stderr
    assert json.loads(proc.stdout) == [{"$bytes": "YQ=="}, {"$bytes": "Yg=="}, {"$bytes": "Yw=="}]


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--batch", "--workers", "0"], "at least 1"),
        (["--batch", "--scheduler", "tcp://127.0.0.1:9"], "cannot reach the Dask scheduler"),
    ],
)
def test_executor_options_are_checked(tmp_path: Path, args: list[str], message: str) -> None:
    data = tmp_path / "in.jsonl"
    data.write_text('"a"\n')
    proc = run("run", str(WORKFLOW), "--scripts", str(SCRIPTS), "--input", str(data), *args)
    assert proc.returncode == 1
    assert message in proc.stderr and len(proc.stderr.strip().splitlines()) == 1, proc.stderr


def test_a_broken_json_line_is_named(tmp_path: Path) -> None:
    data = tmp_path / "in.jsonl"
    data.write_text('"a"\n\n{broken\n')
    proc = run("run", str(WORKFLOW), "--scripts", str(SCRIPTS), "--input", str(data), "--batch")
    assert proc.returncode == 1 and "line 3, is not JSON" in proc.stderr, proc.stderr


def test_watch_prints_each_event_as_it_happens(tmp_path: Path) -> None:
    import time

    (tmp_path / "a.rhai").write_text('const MODULE = #{ name: "wa", version: "1.0.0" };\nfn process(x) { 1 }\n')
    proc = subprocess.Popen(
        [sys.executable, "-m", "module_registry", "watch", "--scripts", str(tmp_path), "--duration", "20"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        assert proc.stdout is not None
        first = proc.stdout.readline()
        assert first.split()[:2] == ["loaded", "wa@1.0.0"] and first.rstrip().endswith("a.rhai")
        def save(text: str) -> None:  # as an editor saving by rename
            (tmp_path / "a.rhai.tmp").write_text(text)
            os.replace(tmp_path / "a.rhai.tmp", tmp_path / "a.rhai")

        save('const MODULE = #{ name: "wa", version: "1.1.0" };\nfn process(x) { 2 }\n')
        assert proc.stdout.readline().split()[:2] == ["reloaded", "wa@1.1.0"]
        save("fn process(x) { ")
        rejected = proc.stdout.readline()
        assert rejected.startswith("rejected") and "wa@1.1.0" in rejected and ": " in rejected
        time.sleep(0.1)
        (tmp_path / "a.rhai").unlink()
        assert proc.stdout.readline().split()[:2] == ["removed", "wa@1.1.0"]
    finally:
        proc.terminate()
        proc.communicate(timeout=30)
    assert run("watch").returncode == 1
    missing = run("watch", "--scripts", str(tmp_path / "missing"), "--duration", "1")
    assert missing.returncode == 1 and "missing" in missing.stderr


# --- The CLI knows what ships (issue 27) and reads within bounds (issue 26) ---

POSTS = """name = "posts"

[[steps]]
id = "title"
module = "json-pick"
config = { path = "title" }

[[steps]]
id = "slug"
module = "slugify"
after = ["title"]
"""


def subcommands(parser: argparse.ArgumentParser, path: tuple[str, ...] = ()) -> list[tuple[tuple[str, ...], argparse.ArgumentParser]]:
    """Every parser of the command, the top one first, each with its words."""
    found = [(path, parser)]
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for name, sp in action.choices.items():
                found += subcommands(sp, path + (name,))
    return found


PARSERS = subcommands(cli_parser())


@pytest.mark.parametrize(("words", "sp"), PARSERS, ids=lambda v: " ".join(v) if isinstance(v, tuple) else "")
def test_every_subcommand_and_argument_has_help(words: tuple[str, ...], sp: argparse.ArgumentParser) -> None:
    assert sp.description, f"{' '.join(words)} has no description line"
    for action in sp._actions:
        assert action.help and action.help.strip(), f"{' '.join(words)}: {action.option_strings or action.dest} has no help"
        if isinstance(action, argparse._SubParsersAction):
            helped = {a.dest for a in action._choices_actions}
            assert helped == set(action.choices), f"{' '.join(words)}: a subcommand without help"
    text = sp.format_help()
    for action in sp._actions:
        if action.default not in (None, False, [], argparse.SUPPRESS) and action.option_strings and action.nargs != 0:
            assert f"(default: {action.default})" in " ".join(text.split()), f"{action.option_strings} hides its default"


def test_help_runs_for_every_subcommand() -> None:
    for words, sp in PARSERS:
        proc = run(*words, "--help")
        assert proc.returncode == 0, proc.stderr
        first = (sp.description or "").split(".")[0]
        assert " ".join(first.split()) in " ".join(proc.stdout.split()), (words, proc.stdout)
    assert "(default: mermaid)" in run("graph", "--help").stdout


def test_version() -> None:
    proc = run("--version")
    assert proc.returncode == 0 and proc.stdout.strip() == f"module-registry {module_registry.__version__}"


def test_the_shipped_modules_need_no_scripts_folder(tmp_path: Path) -> None:
    """From a folder that is not the clone, as a pip user: the shipped script
    modules are there without --scripts; --no-bundled (before or after the
    subcommand) leaves them out, and the error says so."""
    (tmp_path / "posts.toml").write_text(POSTS)
    check = run("check", "posts.toml", cwd=tmp_path)
    assert check.returncode == 0 and "ok: posts.toml" in check.stdout, check.stderr
    ran = run("run", "posts.toml", "--input", "-", stdin='{"title": "Hello World"}', cwd=tmp_path)
    assert ran.returncode == 0 and json.loads(ran.stdout) == "hello-world", ran.stderr
    listed = run("list", cwd=tmp_path)
    assert {"slugify", "markdown", "json-pick", "sha256"} <= {line.split()[0] for line in listed.stdout.splitlines()[1:]}
    orchestration = tmp_path / "go.rhai"
    orchestration.write_text('registry.create("slugify").process(input)')
    script = run("script", "go.rhai", "--input-text", "A Title", cwd=tmp_path)
    assert script.returncode == 0 and json.loads(script.stdout) == "a-title", script.stderr
    for args in (["--no-bundled", "check", "posts.toml"], ["check", "posts.toml", "--no-bundled"]):
        proc = run(*args, cwd=tmp_path)
        assert proc.returncode == 1 and 'no module named "json-pick"' in proc.stderr and "--no-bundled" in proc.stderr
    unlisted = run("list", "--no-bundled", cwd=tmp_path)
    assert "slugify" not in unlisted.stdout and "sha256" in unlisted.stdout
    # A folder of one's own replaces a shipped module of the same name and version.
    mine = tmp_path / "mine"
    mine.mkdir()
    (mine / "slugify.rhai").write_text('const MODULE = #{ name: "slugify", version: "1.0.0" };\nfn process(x) { "mine" }\n')
    own = run("run", "posts.toml", "--scripts", "mine", "--input", "-", stdin='{"title": "x"}', cwd=tmp_path)
    assert json.loads(own.stdout) == "mine", own.stderr


@pytest.mark.parametrize("flag", [["--capability", "gzip"], ["--any", "gzip"], ["--exclude", "text-processing"]])
def test_discover_takes_any_one_filter_and_shows_the_list_columns(tmp_path: Path, flag: list[str]) -> None:
    proc = run("discover", *flag, cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    lines = proc.stdout.splitlines()
    assert lines[0].split() == run("list", cwd=tmp_path).stdout.splitlines()[0].split() == ["name", "version", "kind", "type", "capabilities"]
    assert "gzip-compress" in proc.stdout or flag[0] == "--exclude"
    if flag[0] == "--exclude":
        assert "slugify" not in proc.stdout and len(lines) > 1


@pytest.mark.parametrize(
    ("args", "message"),
    [
        ([], "give at least one of --capability, --any, --exclude"),
    ],
)
def test_discover_without_a_filter_is_bad_usage(args: list[str], message: str) -> None:
    proc = run("discover", *args)
    assert proc.returncode == 2 and proc.stderr.strip().splitlines()[-1].endswith(message)


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--progress"], "--progress needs --batch"),
        (["--workers", "2"], "--workers needs --batch"),
        (["--scheduler", "tcp://127.0.0.1:9"], "--scheduler needs --batch"),
        (["--batch", "--raw"], "--raw cannot be used with --batch"),
    ],
)
def test_a_flag_that_needs_another_says_so(tmp_path: Path, args: list[str], message: str) -> None:
    """One rule for every such flag: bad usage (status 2), the missing flag
    named; from a fresh folder, without --scripts."""
    proc = run("run", str(WORKFLOW), "--input", str(INPUT), *args, cwd=tmp_path)
    assert proc.returncode == 2 and proc.stdout == ""
    assert proc.stderr.strip().splitlines()[-1] == f"module-registry run: error: {message}", proc.stderr


def test_keygen_creates_missing_folders(tmp_path: Path) -> None:
    proc = run("keygen", "--out", "ci/team/key", cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    assert (tmp_path / "ci" / "team" / "key.key").is_file() and (tmp_path / "ci" / "team" / "key.pub").is_file()
    assert "--trusted-key ci/team/key.pub" in proc.stdout
    again = run("keygen", "--out", "ci/team/key", cwd=tmp_path)
    assert again.returncode == 1 and "never overwritten" in again.stderr


def test_input_text_is_raw_text(tmp_path: Path) -> None:
    (tmp_path / "posts.toml").write_text('name = "s"\n[[steps]]\nid = "s"\nmodule = "slugify"\n')
    proc = run("run", "posts.toml", "--input-text", '{"not": "parsed"}', cwd=tmp_path)
    assert proc.returncode == 0 and json.loads(proc.stdout) == "not-parsed", proc.stderr
    both = run("run", "posts.toml", "--input-text", "x", "--input", "-", cwd=tmp_path)
    assert both.returncode == 2 and "not allowed with" in both.stderr
    assert "reads JSON from stdin" in " ".join(run("run", "--help").stdout.split())
    assert "reads JSON from stdin" in " ".join(run("script", "--help").stdout.split())


@pytest.mark.skipif(sys.platform == "win32", reason="pseudo-terminals are POSIX")
def test_stdin_on_a_terminal_says_it_wants_json() -> None:
    import pty

    leader, follower = pty.openpty()
    try:
        proc = subprocess.Popen(
            [sys.executable, "-m", "module_registry", "run", str(WORKFLOW), "--input", "-"],
            stdin=follower, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        )
        os.close(follower)
        assert proc.stderr is not None
        notice = proc.stderr.readline()  # said before anything is typed
        assert "reading JSON input from stdin" in notice and "Ctrl-D" in notice
        os.write(leader, INPUT.read_bytes().replace(b"\n", b" ") + b"\n\x04")
        out, err = proc.communicate(timeout=60)
    finally:
        os.close(leader)
    assert proc.returncode == 0, err
    assert json.loads(out).startswith("the-quick-brown-fox")
    piped = run("run", str(WORKFLOW), "--input", "-", stdin=INPUT.read_text())
    assert piped.returncode == 0 and piped.stderr == ""  # not a terminal: no notice


@pytest.mark.skipif(not os.path.exists("/dev/zero"), reason="needs /dev/zero")
@pytest.mark.parametrize("how", ["file", "stdin"])
def test_an_endless_input_ends_at_the_limit(how: str) -> None:
    """``--input /dev/zero`` and endless stdin stop at the limit (64 MiB, read
    once) with an error naming it, never reading until memory runs out."""
    if how == "file":
        proc = subprocess.run(
            [sys.executable, "-m", "module_registry", "run", str(WORKFLOW), "--input", "/dev/zero"],
            capture_output=True, text=True, timeout=120,
        )
    else:
        with open("/dev/zero", "rb") as zero:
            proc = subprocess.run(
                [sys.executable, "-m", "module_registry", "run", str(WORKFLOW), "--input", "-"],
                stdin=zero, capture_output=True, text=True, timeout=120,
            )
    assert proc.returncode == 1
    where = "/dev/zero" if how == "file" else "stdin"
    assert proc.stderr.strip() == (
        f"module-registry: error: input {where} is larger than 64 MiB, the limit (a larger --input-limit MIB reads it)"
    )


@pytest.mark.skipif(not os.path.exists("/dev/zero"), reason="needs /dev/zero and bash")
def test_the_input_limit_is_a_flag_and_covers_workflow_files_and_lines(tmp_path: Path) -> None:
    big = tmp_path / "big.json"
    big.write_text(json.dumps("x" * 3000))
    small = run("run", str(WORKFLOW), "--input", str(big), "--input-limit", "0.001")
    assert small.returncode == 1 and "larger than 0.001 MiB" in small.stderr
    lines = tmp_path / "big.jsonl"
    lines.write_text('"a"\n' * 1000)
    batch = run("run", str(WORKFLOW), "--input", str(lines), "--batch", "--input-limit", "0.001")
    assert batch.returncode == 1 and f"input {lines} is larger than" in batch.stderr
    for bad in ("0", "-1", "nan", "inf"):
        refused = run("run", str(WORKFLOW), "--input", str(big), "--input-limit", bad)
        assert refused.returncode == 1 and "--input-limit must be a number of MiB above 0" in refused.stderr, refused.stderr
    for args in (["graph", "/dev/zero"], ["check", "/dev/zero"], ["run", "/dev/zero"]):
        proc = run(*args)
        assert proc.returncode == 1 and "workflow file /dev/zero is larger than 64 MiB" in proc.stderr, proc.stderr
    piped = subprocess.run(
        ["bash", "-c", f'"{sys.executable}" -m module_registry graph <(cat "{WORKFLOW}")'],
        capture_output=True, text=True, timeout=120,
    )
    assert piped.returncode == 0 and piped.stdout.startswith("flowchart LR"), piped.stderr


def test_run_report(tmp_path: Path) -> None:
    """``--report``: the output stays JSON on stdout; the report (steps,
    modules, statuses, times, output) goes to stderr."""
    proc = run("run", str(WORKFLOW), "--input", str(INPUT), "--report")
    assert proc.returncode == 0, proc.stderr
    assert json.loads(proc.stdout).startswith("the-quick-brown-fox")
    lines = proc.stderr.strip().splitlines()
    assert lines[0] == f"text-report ({WORKFLOW}): 6 steps: 6 ok, in " + lines[0].split(" in ")[-1]
    assert lines[1].split() == ["step", "module", "status", "attempts", "start", "time"]
    rows = {line.split()[0]: line.split() for line in lines[2:8]}
    assert set(rows) == {"title", "body", "slug", "stats", "digest", "report"}
    assert rows["slug"][1:4] == ["slugify@1.0.0", "ok", "1"] and rows["stats"][1] == "text-stats@1.0.0"
    assert lines[-1].startswith('  output (on stdout): "the-quick-brown-fox')
    data = tmp_path / "in.json"
    data.write_text(json.dumps([json.loads(INPUT.read_text())] * 3))
    batch = run("run", str(WORKFLOW), "--input", str(data), "--batch", "--report")
    assert batch.returncode == 0, batch.stderr
    assert len(json.loads(batch.stdout)) == 3
    blines = batch.stderr.strip().splitlines()
    assert ": 3 inputs, 6 steps: 18 ok, in " in blines[0]
    assert blines[1].split()[:3] == ["step", "module", "status"] and "3 ok" in blines[2]
    plain = run("run", str(WORKFLOW), "--input", str(INPUT))
    assert plain.stderr == ""  # no report unless asked


def test_an_output_with_nan_is_an_error_not_invalid_json(tmp_path: Path) -> None:
    """JSON numbers are finite: an output holding NaN or infinity is refused
    as the core's JSON form refuses it, never printed as ``NaN``."""
    flow = tmp_path / "w.toml"
    flow.write_text('name = "w"\n[[steps]]\nid = "s"\nmodule = "identity"\n')
    data = tmp_path / "nan.json"
    data.write_text('{"a": NaN, "b": 1}')
    proc = subprocess.run(
        [sys.executable, "-m", "module_registry", "run", str(flow), "--input", str(data)],
        capture_output=True, text=True, timeout=120, cwd=tmp_path,
    )
    assert proc.returncode == 1, (proc.stdout, proc.stderr)
    assert "nan" in proc.stderr and "no JSON form" in proc.stderr, proc.stderr
    assert "NaN" not in proc.stdout


def test_bytes_travel_through_the_cli_tagged_both_ways(tmp_path: Path) -> None:
    wf = tmp_path / "id.toml"
    wf.write_text('name = "id"\n[[steps]]\nid = "id"\nmodule = "identity"\n')
    proc = run("run", str(wf), "--input", "-", stdin='{"a": {"$bytes": "AP8="}, "b": "AP8="}')
    assert proc.returncode == 0, proc.stderr
    # Bytes come back tagged (never as text that looks like base64), so the output reads back in.
    assert json.loads(proc.stdout) == {"a": {"$bytes": "AP8="}, "b": "AP8="}
    again = run("run", str(wf), "--input", "-", stdin=proc.stdout)
    assert json.loads(again.stdout) == json.loads(proc.stdout)
    for stdin, message in [
        ('{"$bytes": "not base64!"}', 'input stdin: {"$bytes": ...} stands for bytes and must hold base64 text'),
        ('{"$bytes": 3}', 'must hold base64 text, not 3'),
        ('{"a": 1, "a": 2}', 'input stdin gives the key "a" twice in one object'),
    ]:
        proc = run("run", str(wf), "--input", "-", stdin=stdin)
        assert proc.returncode == 1 and message in proc.stderr and "Traceback" not in proc.stderr, proc.stderr


def test_index_build_of_a_missing_folder_or_a_file_creates_nothing(tmp_path: Path) -> None:
    missing = tmp_path / "nonexistent"
    proc = run("index", "build", str(missing))
    assert proc.returncode == 1 and "No such file or directory" in proc.stderr and "Traceback" not in proc.stderr, proc.stderr
    assert not missing.exists()
    a_file = tmp_path / "file"
    a_file.write_text("x")
    proc = run("index", "build", str(a_file))
    assert proc.returncode == 1 and "is not a folder of script modules" in proc.stderr, proc.stderr
    assert sorted(p.name for p in tmp_path.iterdir()) == ["file"] and a_file.read_text() == "x"
