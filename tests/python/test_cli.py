"""The module-registry command line."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from module_registry.cli import main

ROOT = Path(__file__).resolve().parents[2]
WORKFLOW = ROOT / "examples" / "workflows" / "text-report.toml"
INPUT = ROOT / "examples" / "workflows" / "input.json"
SCRIPTS = ROOT / "scripts"


def run(*args: str, stdin: str = "") -> subprocess.CompletedProcess[str]:
    # A scheduler that cannot be reached is given up on after 2 s (Dask's setting).
    env = {**os.environ, "DASK_DISTRIBUTED__COMM__TIMEOUTS__CONNECT": "2s"}
    return subprocess.run(
        [sys.executable, "-m", "module_registry", *args], input=stdin, capture_output=True, text=True, timeout=120, env=env
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
    assert json.loads(proc.stdout) == "aGk="  # bytes print as base64
    proc = run("run", str(wf), "--input", "-", "--raw", stdin='"hi"')
    assert proc.stdout == "hi"
    proc = run("run", str(wf), "--input", "-", "--batch", stdin='["a", "b"]')
    assert json.loads(proc.stdout) == ["YQ==", "Yg=="]


@pytest.mark.parametrize(
    ("args", "stdin", "message"),
    [
        (["run", "missing.toml"], "", "missing.toml"),
        (["run", str(WORKFLOW)], "", 'step "title"'),
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
    assert json.loads(proc.stdout) == ["YQ==", "Yg==", "Yw=="]


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--workers", "2"], "run a --batch"),
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
