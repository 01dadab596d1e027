"""The shell recipes of the docs run as written, from an empty folder
outside the clone (the virtualenv's ``bin`` first on ``PATH``, so
``module-registry`` and ``python`` are the installed ones), with
``bash -e -o pipefail``:

- the command line tour of ``docs/guides/workflows.md``;
- the package-index recipe of ``docs/guides/sharing-scripts.md``, against an
  HTTP server on 127.0.0.1 standing in for ``https://scripts.example.com/team``
  (the one thing changed in it).
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
BIN = Path(sys.executable).parent


def block(page: str, marker: str) -> str:
    """The one ``sh`` block of ``docs/page`` holding ``marker``."""
    text = (ROOT / "docs" / page).read_text()
    (found,) = [str(b) for b in re.findall(r"^```sh\n(.*?)^```", text, re.S | re.M) if marker in b]
    return found


def run_sh(code: str, folder: Path) -> subprocess.CompletedProcess[str]:
    script = folder / "block.sh"
    script.write_text(code)
    env = {**os.environ, "PATH": f"{BIN}{os.pathsep}{os.environ.get('PATH', '')}", "PYTHONWARNINGS": "error"}
    proc = subprocess.run(
        ["bash", "-e", "-o", "pipefail", str(script)], cwd=folder, capture_output=True, text=True, timeout=300, env=env
    )
    assert proc.returncode == 0, f"{proc.stdout}\n{proc.stderr}"
    return proc


def test_cli_block(tmp_path: Path) -> None:
    """The CLI examples, from an empty folder: the shipped script modules are
    there without ``--scripts``."""
    proc = run_sh(block("guides/workflows.md", "posts.toml"), tmp_path)
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
    code = block("guides/sharing-scripts.md", "module-registry index build")
    assert code.count("https://scripts.example.com/team/index.json") == 3
    proc = run_sh(code.replace("https://scripts.example.com/team", loopback), tmp_path)
    assert (tmp_path / "ci" / "team-key.key").is_file() and (tmp_path / "ci" / "team-key.pub").is_file()
    assert (tmp_path / "team-scripts" / "index.json.minisig").is_file()
    assert "markdown" in proc.stdout and "installed markdown@1.0.0" in proc.stdout
    lock = (tmp_path / "modules" / "module-registry.lock").read_text()
    assert "markdown" in lock and "html" in lock
    assert (tmp_path / "modules" / "markdown.rhai").is_file()
    assert proc.stdout.count("installed markdown@1.0.0") == 2  # the --locked install too
