"""Every code block of the README runs as written.

Each block is saved as a file and run from an empty folder outside the
clone, as a user who installed the package would (the virtualenv's ``bin``
first on ``PATH``, so ``module-registry`` and ``python`` are the installed
ones):

- ``python`` blocks run with the virtualenv's interpreter, one process each;
- ``sh`` blocks run with ``bash -e -o pipefail``; the package-index block
  runs against an HTTP server on 127.0.0.1 standing in for
  ``https://scripts.example.com/team`` (the one thing changed in it);
- ``rhai`` blocks are registered and run through the registry;
- ``rust`` blocks are the crate's doc tests (``core/src/lib.rs`` includes
  the README), run by ``cargo test``;
- the install and ``make`` blocks build releases or run this very suite, so
  they are checked without running them: the targets and extras they name
  exist.

``test_every_block_is_checked`` fails for a block none of these covers.
"""

from __future__ import annotations

import functools
import http.server
import os
import re
import subprocess
import sys
import threading
from pathlib import Path
from typing import Any, Iterator

import pytest

ROOT = Path(__file__).resolve().parents[2]
README = ROOT / "README.md"
BIN = Path(sys.executable).parent

BLOCKS: list[tuple[str, str]] = re.findall(r"^```(\w*)\n(.*?)^```", README.read_text(), re.S | re.M)


def blocks(lang: str, marker: str = "") -> list[str]:
    return [body for tag, body in BLOCKS if tag == lang and marker in body]


def block(lang: str, marker: str) -> str:
    (found,) = blocks(lang, marker)
    return found


# Which test covers each block: a marker of the block's text, by language.
COVERED = {
    "python": {
        "registry.discover_capabilities(query)": "test_python_quickstart",
        'Workflow("pack")': "test_python_workflows",
        'Workflow("branches"': "test_python_step_outputs",
        "registry.set_cache(memory_items": "test_python_caching",
        "Client()": "test_python_dask_recipe",
        "watch_scripts": "test_python_hot_reload",
        'this.deps["log-parse"]': "test_python_script_deps",
        "register_script_function": "test_python_script_authors",
        'Schema("{title: str': "test_python_typed_interfaces",
    },
    "sh": {
        "git clone": "test_install_blocks",
        "pip install module-registry": "test_install_blocks",
        "make demo": "test_make_block",
        "posts.toml": "test_cli_block",
        "module-registry index build": "test_package_index_block",
    },
    "rhai": {
        "const MODULE": "test_rhai_blocks",
        "registry.discover": "test_rhai_blocks",
    },
    "rust": {"fn main()": "test_rust_blocks_are_doc_tests"},
}


def test_every_block_is_checked() -> None:
    assert BLOCKS
    for tag, body in BLOCKS:
        assert tag, f"a README block without a language (rustdoc would run it as Rust):\n{body}"
        markers = [m for m in COVERED.get(tag, {}) if m in body]
        assert len(markers) == 1, f"no test (or more than one) covers this {tag!r} block:\n{body}"


def env(warnings: str = "error") -> dict[str, str]:
    return {**os.environ, "PATH": f"{BIN}{os.pathsep}{os.environ.get('PATH', '')}", "PYTHONWARNINGS": warnings}


def run_python(code: str, folder: Path, warnings: str = "error") -> subprocess.CompletedProcess[str]:
    script = folder / "block.py"
    script.write_text(code)
    proc = subprocess.run(
        [sys.executable, str(script)], cwd=folder, capture_output=True, text=True, timeout=300, env=env(warnings)
    )
    assert proc.returncode == 0, proc.stderr
    return proc


def run_sh(code: str, folder: Path) -> subprocess.CompletedProcess[str]:
    script = folder / "block.sh"
    script.write_text(code)
    proc = subprocess.run(
        ["bash", "-e", "-o", "pipefail", str(script)], cwd=folder, capture_output=True, text=True, timeout=300, env=env()
    )
    assert proc.returncode == 0, f"{proc.stdout}\n{proc.stderr}"
    return proc


def test_python_quickstart(tmp_path: Path) -> None:
    out = run_python(block("python", "registry.discover_capabilities(query)"), tmp_path).stdout.splitlines()
    assert out[0] == "['text-stats', 'word-count']"
    assert out[1] == "4"
    assert len(out[2]) == 64
    assert out[4] == "hello-world"


def test_python_workflows(tmp_path: Path) -> None:
    out = run_python(block("python", 'Workflow("pack")'), tmp_path).stdout.splitlines()
    assert out == [
        "['digest', 'size']",
        "[('zip', 'ok', 1), ('digest', 'ok', 1), ('size', 'ok', 1), ('both', 'ok', 1)]",
        "aGk=",
    ]


def test_python_step_outputs(tmp_path: Path) -> None:
    out = run_python(block("python", 'Workflow("branches"'), tmp_path).stdout.splitlines()
    assert out == ["user-7 from sqlite://app.db", "['digest', 'found']", "092081140b677b45"]


def test_python_caching(tmp_path: Path) -> None:
    out = run_python(block("python", "registry.set_cache(memory_items"), tmp_path).stdout.splitlines()
    assert out == ["miss hit 1"]


def test_python_script_deps(tmp_path: Path) -> None:
    code = block("python", 'this.deps["log-parse"]')
    out = run_python(code, tmp_path).stdout.splitlines()
    expected = [line.split("# ", 1)[1] for line in code.splitlines() if "print(" in line and "# " in line]
    expected.append(code.splitlines()[-1].strip().removeprefix("# "))
    assert out == expected


def test_python_typed_interfaces(tmp_path: Path) -> None:
    out = run_python(block("python", 'Schema("{title: str'), tmp_path).stdout.splitlines()
    assert out == [
        "{tags?: list[str], title: str}",
        "True",
        "$.tags[1] str int",
        "True",
        "False",
        "['title']",
        "list[int]",
    ]


def test_python_hot_reload(tmp_path: Path) -> None:
    """The watch recipe copies the shipped scripts to a folder of its own and
    watches it: one event per module."""
    out = run_python(block("python", "watch_scripts"), tmp_path).stdout.splitlines()
    loaded = [line for line in out if line.startswith("<ReloadEvent loaded")]
    assert any("slugify@" in line for line in loaded), out
    assert (tmp_path / "my-scripts" / "slugify.rhai").is_file()


def test_python_script_authors(tmp_path: Path) -> None:
    """Output to logging, a Python function scripts call, a test file run by
    hand and by the pytest plugin."""
    proc = run_python(block("python", "register_script_function"), tmp_path)
    out = proc.stdout.splitlines()
    assert out[:2] == ["HELLO BOB!!", "passed test_greets"]
    assert out[-1] == "pytest exit code 0"
    assert any("1 passed" in line for line in out), out
    assert "module_registry.script: greeting bob" in proc.stderr.splitlines()


def test_python_dask_recipe(tmp_path: Path) -> None:
    """The Scale out recipe as a file, as written: ``Client()`` starts a local
    cluster of processes (so the ``__main__`` guard) and is closed at the end
    (no "lost scattered data" warnings at exit)."""
    pytest.importorskip("distributed")
    code = block("python", "Client()")
    assert 'if __name__ == "__main__":' in code and "with Client() as client:" in code
    # Warnings stay warnings here: on a shared machine Dask may warn that its
    # default dashboard port is taken (and use another), as it would for a user.
    proc = run_python(code, tmp_path, warnings="default")
    assert proc.stdout.splitlines()[-1] == "3"
    for bad in ("Traceback", "lost", "Nanny failed", "RuntimeError"):
        assert bad not in proc.stderr, proc.stderr


def test_cli_block(tmp_path: Path) -> None:
    """The CLI examples, from an empty folder: the shipped script modules are
    there without ``--scripts``."""
    proc = run_sh(block("sh", "posts.toml"), tmp_path)
    out = proc.stdout.splitlines()
    assert out[:5] == ["ok: posts.toml", '"hello-world"', '"notes-on-foxes"', '"a-b"', '"c-d"']
    assert '"title" -> "slug";' in proc.stdout
    assert '"a-rhai-script"' in out
    assert "gzip-compress" in proc.stdout and "slugify" in proc.stdout
    report = proc.stderr.splitlines()
    assert report[1].startswith("posts (posts.toml): 2 steps: 2 ok, in "), proc.stderr
    assert report[2].split() == ["step", "module", "status", "attempts", "start", "time"]


class _Quiet(http.server.SimpleHTTPRequestHandler):
    def log_message(self, format: str, *args: Any) -> None:
        pass


@pytest.fixture
def loopback(tmp_path: Path) -> Iterator[str]:
    """``tmp_path/team-scripts`` served at an http URL on 127.0.0.1."""
    handler = functools.partial(_Quiet, directory=str(tmp_path / "team-scripts"))
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()
        thread.join()


def test_package_index_block(tmp_path: Path, loopback: str) -> None:
    """Build, keygen, sign, search, install and install --locked, as written,
    with the loopback server standing in for scripts.example.com."""
    code = block("sh", "module-registry index build")
    assert code.count("https://scripts.example.com/team/index.json") == 3
    proc = run_sh(code.replace("https://scripts.example.com/team", loopback), tmp_path)
    assert (tmp_path / "ci" / "team-key.key").is_file() and (tmp_path / "ci" / "team-key.pub").is_file()
    assert (tmp_path / "team-scripts" / "index.json.minisig").is_file()
    assert "markdown" in proc.stdout and "installed markdown@1.0.0" in proc.stdout
    lock = (tmp_path / "modules" / "module-registry.lock").read_text()
    assert "markdown" in lock and "html" in lock
    assert (tmp_path / "modules" / "markdown.rhai").is_file()
    assert proc.stdout.count("installed markdown@1.0.0") == 2  # the --locked install too


def test_rhai_blocks() -> None:
    import module_registry as mr

    registry = mr.ModuleRegistry(native_modules=True, bundled_scripts=True)
    registry.register_script(block("rhai", "const MODULE"))
    counter = registry.create("counter", config=2)
    assert [counter.process(None) for _ in range(3)] == [2, 4, 6]
    stats = registry.run_script(block("rhai", "registry.discover"), "one two three")
    assert stats["words"] == 3


def test_rust_blocks_are_doc_tests() -> None:
    """The Rust blocks run as the crate's doc tests (``cargo test --doc``),
    so they compile and run as written; none is marked ignore or no_run."""
    lib = (ROOT / "core" / "src" / "lib.rs").read_text()
    assert '#[doc = include_str!("../../README.md")]' in lib
    assert blocks("rust")
    assert not re.search(r"^```rust,", README.read_text(), re.M), "a Rust block is kept out of the doc tests"


def test_install_blocks() -> None:
    """The install blocks build a release or need the package index: what
    they name is checked instead (the package's name and extras, the
    ``dist`` target)."""
    pyproject = (ROOT / "pyproject.toml").read_text()
    assert re.search(r'^name = "module-registry"$', pyproject, re.M)
    extras = pyproject.split("[project.optional-dependencies]")[1].split("\n[")[0]
    assert re.search(r"^progress = ", extras, re.M) and re.search(r"^dask = ", extras, re.M)
    assert "pip install ." in block("sh", "git clone")
    make = subprocess.run(["make", "-n", "dist"], cwd=ROOT, capture_output=True, text=True, timeout=60)
    assert make.returncode == 0 and "maturin build --release" in make.stdout, make.stderr
    assert "dist/module_registry-*.whl" in README.read_text()


def test_make_block() -> None:
    """``make demo`` and ``make test`` exist (running them here would build
    the extension again, or run this suite inside itself); the demo runs the
    shipped workflow with a report."""
    code = block("sh", "make demo")
    assert [line.split("#")[0].strip() for line in code.splitlines()] == ["make demo", "make test"]
    make = subprocess.run(["make", "-n", "demo", "test"], cwd=ROOT, capture_output=True, text=True, timeout=60)
    assert make.returncode == 0, make.stderr
    assert "module-registry run examples/workflows/text-report.toml" in make.stdout and "--report" in make.stdout
