"""Script modules shared through a package index served over HTTP on
127.0.0.1: build, yank, sign, search, install with a lockfile."""

from __future__ import annotations

import functools
import http.server
import json
import shutil
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any, Iterator

import pytest

import module_registry as mr

HTML = 'fn h1(text) { "<h1>" + text + "</h1>" }'


def page(version: str, extra: str = "") -> str:
    return (
        'import "html" as html;\n'
        f'const MODULE = #{{ name: "page", version: "{version}", capabilities: ["html", "pages"],\n'
        '    metadata: #{ description: "Pages of text", license: "MIT" } };\n'
        f"fn process(x) {{ html::h1(x){extra} }}"
    )


REPORT = (
    'const MODULE = #{ name: "report", version: "1.0.0", capabilities: ["reports"],\n'
    '    dependencies: #{ page: "^1" }, metadata: #{ description: "Monthly report", license: "Apache-2.0" } };\n'
    'fn process(x) { "<p>report: " + x + "</p>" }'
)
BROKEN = (
    'const MODULE = #{ name: "broken", version: "1.0.0", dependencies: #{ report: "^1", page: "^3" } };\n'
    "fn process(x) { x }"
)


def publish(folder: Path) -> Path:
    """An index of page 1.0.0, 1.1.0 (yanked) and 2.0.0, report 1.0.0
    (needs page ^1) and broken 1.0.0 (needs page ^3)."""
    folder.mkdir(exist_ok=True)
    (folder / "html.rhai").write_text(HTML)
    for version, extra in [("1.0.0", ""), ("1.1.0", ' + "!"'), ("2.0.0", ' + "v2"')]:
        (folder / "page.rhai").write_text(page(version, extra))
        mr._core._build_index(folder)
    (folder / "report.rhai").write_text(REPORT)
    (folder / "broken.rhai").write_text(BROKEN)
    assert mr._core._build_index(folder) == 3
    mr._core._yank(folder / "index.json", "page", "1.1.0")
    return folder / "index.json"


class QuietHandler(http.server.SimpleHTTPRequestHandler):
    def log_message(self, format: str, *args: Any) -> None:
        pass


@pytest.fixture
def served(tmp_path: Path) -> Iterator[tuple[Path, str]]:
    """The published folder and its index's URL on 127.0.0.1."""
    folder = tmp_path / "served"
    publish(folder)
    handler = functools.partial(QuietHandler, directory=str(folder))
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield folder, f"http://127.0.0.1:{server.server_address[1]}/index.json"
    finally:
        server.shutdown()
        server.server_close()


def snapshot(folder: Path) -> dict[str, bytes]:
    return {str(p.relative_to(folder)): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()} if folder.exists() else {}


def test_the_index_has_the_exact_shape(served: tuple[Path, str]) -> None:
    folder, _ = served
    data = json.loads((folder / "index.json").read_text())
    assert data["format"] == 1 and data["generated"].endswith("Z")
    versions = data["packages"]["page"]
    assert [v["version"] for v in versions] == ["2.0.0", "1.1.0", "1.0.0"]
    first = versions[-1]
    assert set(first) == {"version", "type", "capabilities", "description", "license", "files", "dependencies", "yanked"}
    assert [f["path"] for f in first["files"]] == ["page.rhai", "html.rhai"]  # the module, then what it imports
    assert first["files"][0]["url"] == "page/1.0.0/page.rhai"
    assert (first["description"], first["license"], first["yanked"]) == ("Pages of text", "MIT", False)
    assert versions[1]["yanked"] is True
    assert data["packages"]["report"][0]["dependencies"] == {"page": "^1"}
    assert "html" not in data["packages"], "a library is only a file of the packages that import it"


def test_install_resolves_downloads_verifies_and_registers(served: tuple[Path, str], tmp_path: Path) -> None:
    _, url = served
    into = tmp_path / "modules"
    registry = mr.ModuleRegistry()
    installed = registry.install("report", "^1", index=url, into=into)
    assert [(i.name, i.version) for i in installed] == [("page", "1.0.0"), ("report", "1.0.0")]
    assert registry.create("report").process("Hi") == "<p>report: Hi</p>"
    assert registry.create("page").process("Hi") == "<h1>Hi</h1>"  # its import came along
    assert sorted(p.name for p in into.iterdir()) == ["html.rhai", "module-registry.lock", "page.rhai", "report.rhai"]
    lock = (into / "module-registry.lock").read_text()
    assert 'name = "page"' in lock and 'version = "1.0.0"' in lock and "sha256" in lock and url.rsplit("/", 1)[0] in lock
    # The highest version not yanked: 2.0.0 when nothing holds it back.
    other = tmp_path / "other"
    assert [i.version for i in mr.ModuleRegistry().install("page", index=url, into=other)] == ["2.0.0"]


def test_a_conflict_names_the_chain(served: tuple[Path, str], tmp_path: Path) -> None:
    _, url = served
    into = tmp_path / "modules"
    with pytest.raises(mr.DependencyError, match="broken") as info:
        mr.ModuleRegistry().install("broken", index=url, into=into)
    assert "page" in str(info.value)
    assert not into.exists()


def test_a_tampered_file_is_refused_and_nothing_is_written(served: tuple[Path, str], tmp_path: Path) -> None:
    folder, url = served
    into = tmp_path / "modules"
    into.mkdir()
    (into / "mine.rhai").write_text("fn keep() { 1 }")
    before = snapshot(into)
    stored = folder / "page" / "1.0.0" / "html.rhai"
    data = bytearray(stored.read_bytes())
    data[-2] ^= 1  # one byte
    stored.write_bytes(bytes(data))
    registry = mr.ModuleRegistry()
    with pytest.raises(mr.IntegrityError, match="html.rhai"):
        registry.install("report", index=url, into=into)
    assert snapshot(into) == before
    assert len(registry) == 0


def test_a_signed_index_is_checked_against_the_trusted_key(served: tuple[Path, str], tmp_path: Path) -> None:
    folder, url = served
    secret, public = mr._core._keygen(tmp_path / "team")
    assert Path(secret).read_text().startswith("untrusted comment:")
    with pytest.raises(mr.ValidationError, match="never overwritten"):
        mr._core._keygen(tmp_path / "team")
    into = tmp_path / "modules"
    with pytest.raises(mr.IntegrityError, match="no signature"):
        mr.ModuleRegistry().install("page", "^1", index=url, into=into, trusted_key=public)
    mr._core._sign(folder / "index.json", secret)
    assert [i.name for i in mr.ModuleRegistry().install("page", "^1", index=url, into=into, trusted_key=public)] == ["page"]
    # The index changed after it was signed: refused.
    index = folder / "index.json"
    index.write_text(index.read_text().replace("Pages of text", "Pages of text (improved)"))
    elsewhere = tmp_path / "elsewhere"
    with pytest.raises(mr.IntegrityError, match="not signed by the trusted key"):
        mr.ModuleRegistry().install("page", "^1", index=url, into=elsewhere, trusted_key=public)
    assert not elsewhere.exists()
    # Another key's signature is refused too.
    _, stranger = mr._core._keygen(tmp_path / "stranger")
    mr._core._sign(index, secret)
    with pytest.raises(mr.IntegrityError):
        mr.ModuleRegistry().install("page", "^1", index=url, into=elsewhere, trusted_key=stranger)


def test_locked_installs_reproduce_the_lockfile(served: tuple[Path, str], tmp_path: Path) -> None:
    folder, url = served
    into = tmp_path / "modules"
    mr._core._install_packages([("report", "*")], url, into)
    locked = (into / "module-registry.lock").read_text()
    # A newer page 1.x is published; --locked still installs what the lock says.
    (folder / "page.rhai").write_text(page("1.5.0", ' + "?"'))
    mr._core._build_index(folder)
    again = tmp_path / "again"
    again.mkdir()
    shutil.copy(into / "module-registry.lock", again)
    installed = mr._core._install_packages([], url, again, None, True)
    assert [(n, v) for n, v, _ in installed] == [("page", "1.0.0"), ("report", "1.0.0")]
    assert (again / "module-registry.lock").read_text() == locked
    assert snapshot(again) == snapshot(into)
    # Without --locked the lock is not binding: page 1.5.0 now.
    fresh = tmp_path / "fresh"
    assert ("page", "1.5.0") in [(n, v) for n, v, _ in mr._core._install_packages([("report", "*")], url, fresh)]
    # A locked digest that differs from the index's is refused.
    tampered = tmp_path / "tampered"
    tampered.mkdir()
    lock_text = locked.replace(locked.split('sha256 = "')[1][:8], "00000000", 1)
    (tampered / "module-registry.lock").write_text(lock_text)
    with pytest.raises(mr.IntegrityError, match="locked"):
        mr._core._install_packages([], url, tampered, None, True)


def test_yanked_versions_are_skipped_unless_locked(served: tuple[Path, str], tmp_path: Path) -> None:
    _, url = served
    into = tmp_path / "m"
    with pytest.raises(mr.DependencyError):
        mr._core._install_packages([("page", "=1.1.0")], url, into)
    # Pinned by a lockfile, a yanked version still resolves.
    into.mkdir()
    (into / "module-registry.lock").write_text('version = 1\n[[package]]\nname = "page"\nversion = "1.1.0"\nfiles = []\n')
    assert [v for _, v, _ in mr._core._install_packages([("page", "=1.1.0")], url, into)] == ["1.1.0"]


def test_search_and_licenses(served: tuple[Path, str]) -> None:
    _, url = served
    index = mr.ModuleRegistry().package_index(url)
    assert isinstance(index, mr.PackageIndex) and len(index) == 3
    assert {(p.name, p.version) for p in index.packages()} == {("page", "2.0.0"), ("report", "1.0.0"), ("broken", "1.0.0")}
    assert [p.name for p in index.search("MONTHLY")] == ["report"]
    assert [p.name for p in index.search("pages")] == ["page"]  # a capability
    assert index.licenses() == ["Apache-2.0", "MIT"]
    assert [p.name for p in index.by_license("mit")] == ["page"]
    assert [v.yanked for v in index.versions("page")] == [False, True, False]
    page_info = index.search("page")[0]
    assert page_info.files[0]["path"] == "page.rhai" and len(page_info.files[0]["sha256"]) == 64


@pytest.mark.parametrize(
    ("change", "error"),
    [
        (lambda d: d["packages"]["page"][0]["files"][0].update(path="../escape.rhai"), "outside the install folder"),
        (lambda d: d["packages"]["page"][0]["files"][0].update(path="/etc/passwd"), "outside the install folder"),
        (lambda d: d.update(format=2), "index format 2"),
        (lambda d: d["packages"].update({"Bad Name": []}), "Bad Name"),
    ],
)
def test_a_hostile_index_is_refused(served: tuple[Path, str], tmp_path: Path, change: Any, error: str) -> None:
    folder, url = served
    data = json.loads((folder / "index.json").read_text())
    change(data)
    (folder / "index.json").write_text(json.dumps(data))
    into = tmp_path / "m"
    with pytest.raises(mr.ValidationError, match=error):
        mr.ModuleRegistry().install("page", index=url, into=into)
    assert not into.exists()


def test_unreachable_and_oversized_sources_are_fetch_errors(tmp_path: Path) -> None:
    with pytest.raises(mr.FetchError, match="127.0.0.1:9") as info:
        mr.ModuleRegistry().package_index("http://127.0.0.1:9/index.json")
    assert info.value.url == "http://127.0.0.1:9/index.json"
    with pytest.raises(mr.FetchError, match="only http"):
        mr.ModuleRegistry().package_index("ftp://example/index.json")
    big = tmp_path / "index.json"
    with big.open("wb") as f:
        f.truncate(17 * 1024 * 1024)
    with pytest.raises(mr.FetchError, match="larger than the limit"):
        mr.ModuleRegistry().package_index(str(big))


def test_a_released_version_cannot_change(tmp_path: Path) -> None:
    folder = tmp_path / "pub"
    publish(folder)
    (folder / "report.rhai").write_text(REPORT.replace("<p>report: ", "<p>changed: "))
    with pytest.raises(mr.ValidationError, match="publish a new version"):
        mr._core._build_index(folder)


def test_the_cli_builds_signs_searches_and_installs(tmp_path: Path) -> None:
    folder = tmp_path / "pub"
    folder.mkdir()
    (folder / "html.rhai").write_text(HTML)
    (folder / "page.rhai").write_text(page("1.0.0"))
    (folder / "report.rhai").write_text(REPORT)

    def cli(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run([sys.executable, "-m", "module_registry", *args], capture_output=True, text=True, timeout=120)

    assert cli("index", "build", str(folder)).returncode == 0
    keygen = cli("keygen", "--out", str(tmp_path / "k"))
    assert keygen.returncode == 0 and "not encrypted" in keygen.stdout
    assert cli("index", "sign", str(folder / "index.json"), "--key", str(tmp_path / "k.key")).returncode == 0
    found = cli("search", "monthly", "--index", str(folder / "index.json"))
    assert found.returncode == 0 and "report" in found.stdout and "Apache-2.0" in found.stdout
    into = tmp_path / "into"
    installed = cli("install", "report@^1", "--index", str(folder / "index.json"), "--into", str(into), "--trusted-key", str(tmp_path / "k.pub"))
    assert installed.returncode == 0, installed.stderr
    assert "installed page@1.0.0" in installed.stdout and "installed report@1.0.0" in installed.stdout
    again = cli("install", "--locked", "--index", str(folder / "index.json"), "--into", str(into))
    assert again.returncode == 0, again.stderr
    yank = cli("index", "yank", "page", "9.9.9", "--index", str(folder / "index.json"))
    assert yank.returncode == 1 and "page" in yank.stderr
    assert cli("install", "--index", str(folder / "index.json"), "--into", str(into)).returncode == 1


def test_an_oversized_download_is_cut_off(served: tuple[Path, str], tmp_path: Path) -> None:
    folder, url = served
    (folder / "page" / "1.0.0" / "html.rhai").write_bytes(b"x" * (5 * 1024 * 1024))
    into = tmp_path / "m"
    with pytest.raises(mr.FetchError, match="larger than the limit"):
        mr.ModuleRegistry().install("page", "^1", index=url, into=into)
    assert not into.exists()


class Hostile(http.server.BaseHTTPRequestHandler):
    """A server that misbehaves by path: redirects forever, answers 404,
    or sends its body one byte at a time."""

    def log_message(self, format: str, *args: Any) -> None:
        pass

    def do_GET(self) -> None:
        if self.path.startswith("/loop"):
            self.send_response(302)
            self.send_header("Location", f"/loop{len(self.path)}")
            self.end_headers()
        elif self.path == "/trickle":
            self.send_response(200)
            self.send_header("Content-Length", "100000")
            self.end_headers()
            try:
                for _ in range(100000):
                    self.wfile.write(b" ")
                    self.wfile.flush()
                    time.sleep(0.05)
            except OSError:
                pass
        else:
            self.send_error(404, "no such index")


@pytest.fixture
def hostile() -> Iterator[str]:
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Hostile)
    server.daemon_threads = True
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()


def test_http_is_read_through_python_and_misbehaving_servers_are_fetch_errors(
    hostile: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The wheel reads http(s) through Python's urllib (no TLS stack of its
    own): a redirect loop, an error status and a body that never ends in
    time each end in a FetchError naming the URL, and the registry is as it
    was."""
    import module_registry._http as http_client

    registry = mr.ModuleRegistry()
    with pytest.raises(mr.FetchError, match="HTTP status 302") as info:
        registry.package_index(f"{hostile}/loop")
    assert info.value.url == f"{hostile}/loop"
    with pytest.raises(mr.FetchError, match="HTTP status 404"):
        registry.package_index(f"{hostile}/index.json")
    monkeypatch.setattr(http_client, "REQUEST_TIMEOUT", 0.5)
    started = time.monotonic()
    with pytest.raises(mr.FetchError, match="longer than 0.5 s"):
        registry.package_index(f"{hostile}/trickle")
    assert time.monotonic() - started < 10
    assert len(registry) == 0


def test_importing_the_package_does_not_import_urllib() -> None:
    code = "import sys, module_registry; print('urllib.request' in sys.modules, 'ssl' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert out.stdout.split() == ["False", "False"], out.stderr


# --- Trust, third pass (issue 26) -------------------------------------------


def test_a_percent_before_a_multibyte_character_is_a_fetch_error(tmp_path: Path) -> None:
    for url in ["file:///srv/%aé/index.json", "file:///srv/%é", "file:///%", "file://é/x"]:
        with pytest.raises(mr.FetchError):
            mr.ModuleRegistry().package_index(url)
        with pytest.raises(mr.FetchError):
            mr.ModuleRegistry().install("x", index=url, into=tmp_path / "m")
    assert not (tmp_path / "m").exists()


class Slow(http.server.BaseHTTPRequestHandler):
    """Header lines one at a time, a body cut short, redirects to other
    schemes and to another folder."""

    protocol_version = "HTTP/1.1"
    folder: Path

    def log_message(self, format: str, *args: Any) -> None:
        pass

    def do_GET(self) -> None:
        if self.path == "/headers":
            try:
                self.wfile.write(b"HTTP/1.1 200 OK\r\n")
                for i in range(200):
                    self.wfile.write(f"X-Slow-{i}: 1\r\n".encode())
                    self.wfile.flush()
                    time.sleep(0.05)
                self.wfile.write(b"Content-Length: 2\r\n\r\n{}")
            except OSError:
                pass
        elif self.path == "/short":
            self.wfile.write(b"HTTP/1.1 200 OK\r\nContent-Length: 100\r\nConnection: close\r\n\r\n{\"a\":")
            self.wfile.flush()
            self.close_connection = True
        elif self.path == "/ftp":
            self.send_response(302)
            self.send_header("Location", "ftp://127.0.0.1:9/index.json")
            self.send_header("Content-Length", "0")
            self.end_headers()
        elif self.path == "/old/index.json":
            self.send_response(302)
            self.send_header("Location", "/new/index.json")
            self.send_header("Content-Length", "0")
            self.end_headers()
        elif self.path.startswith("/new/"):
            file = self.folder / self.path[len("/new/") :]
            body = file.read_bytes() if file.is_file() else b""
            self.send_response(200 if file.is_file() else 404)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)
        else:
            self.send_error(404)


@pytest.fixture
def slow(tmp_path: Path) -> Iterator[str]:
    folder = tmp_path / "published"
    publish(folder)
    handler = type("Handler", (Slow,), {"folder": folder})
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    server.daemon_threads = True
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()


def test_trickled_headers_a_short_body_and_other_schemes_are_fetch_errors(
    slow: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import module_registry._http as http_client

    registry = mr.ModuleRegistry()
    monkeypatch.setattr(http_client, "REQUEST_TIMEOUT", 0.5)
    with pytest.raises(mr.FetchError, match="longer than 0.5 s"):
        registry.package_index(f"{slow}/headers")
    monkeypatch.setattr(http_client, "REQUEST_TIMEOUT", 60.0)
    with pytest.raises(mr.FetchError, match="truncated body"):
        registry.package_index(f"{slow}/short")
    with pytest.raises(mr.FetchError, match="only http"):
        registry.package_index(f"{slow}/ftp")
    # An index reached through a redirect: its files are read beside where it was.
    installed = registry.install("page", "^1", index=f"{slow}/old/index.json", into=tmp_path / "m")
    assert [i.name for i in installed] == ["page"]
    assert f"{slow}/new/page/1.0.0/page.rhai" in (tmp_path / "m" / "module-registry.lock").read_text()


def test_a_truncated_file_is_a_fetch_error_not_tampering(served: tuple[Path, str], tmp_path: Path) -> None:
    folder, url = served

    class Cut(QuietHandler):
        def do_GET(self) -> None:
            if self.path.endswith("html.rhai"):
                self.send_response(200)
                self.send_header("Content-Length", "1000")
                self.end_headers()
                self.wfile.write(b"fn h1(")
                return
            super().do_GET()

    handler = functools.partial(Cut, directory=str(folder))
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        with pytest.raises(mr.FetchError, match="truncated"):
            mr.ModuleRegistry().install(
                "page", "^1", index=f"http://127.0.0.1:{server.server_address[1]}/index.json", into=tmp_path / "m"
            )
    finally:
        server.shutdown()
        server.server_close()
    assert not (tmp_path / "m").exists()


def test_six_cli_installs_at_once_are_all_recorded(tmp_path: Path) -> None:
    folder = tmp_path / "pub"
    folder.mkdir()
    names = [f"m{i}" for i in range(6)]
    for name in names:
        (folder / f"{name}.rhai").write_text(f'const MODULE = #{{ name: "{name}", version: "1.0.0" }};\nfn process(x) {{ x }}')
    mr._core._build_index(folder)
    into = tmp_path / "into"
    runs = [
        subprocess.Popen(
            [sys.executable, "-m", "module_registry", "install", name, "--index", str(folder / "index.json"), "--into", str(into)],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for name in names
    ]
    for run in runs:
        out, err = run.communicate(timeout=120)
        assert run.returncode == 0, err
    lock = (into / "module-registry.lock").read_text()
    assert all(f'name = "{name}"' in lock for name in names), lock


def test_the_cli_keygen_and_yank_on_a_signed_index(tmp_path: Path) -> None:
    folder = tmp_path / "pub"
    publish(folder)

    def cli(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run([sys.executable, "-m", "module_registry", *args], capture_output=True, text=True, timeout=120)

    assert cli("keygen", "--out", str(tmp_path / "k")).returncode == 0
    assert (tmp_path / "k.key").stat().st_mode & 0o777 == 0o600
    index = str(folder / "index.json")
    assert cli("index", "sign", index, "--key", str(tmp_path / "k.key")).returncode == 0
    before = (folder / "index.json").read_bytes()
    refused = cli("index", "yank", "page", "2.0.0", "--index", index)
    assert refused.returncode == 1 and "sign it again" in refused.stderr, refused.stderr
    assert (folder / "index.json").read_bytes() == before
    yanked = cli("index", "yank", "page", "2.0.0", "--index", index, "--key", str(tmp_path / "k.key"))
    assert yanked.returncode == 0 and "signed it again" in yanked.stdout, yanked.stderr
    installed = mr.ModuleRegistry().install("page", index=index, into=tmp_path / "m", trusted_key=tmp_path / "k.pub")
    assert [i.version for i in installed] == ["1.0.0"]


def test_an_unknown_package_names_the_index(served: tuple[Path, str], tmp_path: Path) -> None:
    _, url = served
    with pytest.raises(mr.ValidationError, match=f'package "nothere" is not in index {url}'):
        mr.ModuleRegistry().install("nothere", index=url, into=tmp_path / "m")


def test_a_silent_tls_handshake_is_cut_off_at_the_deadline(monkeypatch: pytest.MonkeyPatch) -> None:
    """A server that accepts and never answers the TLS handshake: the
    request ends at its overall deadline, not a per-read timeout."""
    import socket

    import module_registry._http as http_client

    silent = socket.socket()
    silent.bind(("127.0.0.1", 0))
    silent.listen()
    accepted: list[socket.socket] = []
    threading.Thread(target=lambda: accepted.append(silent.accept()[0]), daemon=True).start()
    monkeypatch.setattr(http_client, "REQUEST_TIMEOUT", 0.5)
    try:
        with pytest.raises(mr.FetchError, match="longer than 0.5 s"):
            mr.ModuleRegistry().package_index(f"https://127.0.0.1:{silent.getsockname()[1]}/index.json")
    finally:
        for sock in accepted:
            sock.close()
        silent.close()


TYPED = (
    'const MODULE = #{ name: "typed", version: "1.0.0", input: "str", output: "{words: int, tags?: list[str]}",\n'
    '    config_type: "{lang: \\"en\\" | \\"fr\\"}" };\n'
    "fn process(x) { #{ words: x.split().len() } }"
)


def test_index_entries_carry_the_declared_types(tmp_path: Path) -> None:
    """`index build` writes a typed module's `input`, `output` and
    `config_type` into its entry (canonical type expressions), untyped
    entries keep the shape they had, `PackageInfo` gives them as `Schema`s,
    and an entry whose type does not parse is refused when read, naming it."""
    folder = tmp_path / "pub"
    publish(folder)
    (folder / "typed.rhai").write_text(TYPED)
    mr._core._build_index(folder)
    data = json.loads((folder / "index.json").read_text())
    entry = data["packages"]["typed"][0]
    assert (entry["input"], entry["output"], entry["config_type"]) == (
        "str",
        "{tags?: list[str], words: int}",
        '{lang: "en" | "fr"}',
    )
    assert not {"input", "output", "config_type"} & set(data["packages"]["page"][0])
    index = mr.ModuleRegistry().package_index(str(folder / "index.json"))
    typed = index.versions("typed")[0]
    assert isinstance(typed.input, mr.Schema) and typed.input == mr.Schema("str")
    assert typed.output.accepts({"words": 2}) and not typed.output.accepts({"words": "2"})
    assert str(typed.config_type) == '{lang: "en" | "fr"}'
    page_info = index.versions("page")[0]
    assert (str(page_info.input), str(page_info.output), str(page_info.config_type)) == ("any", "any", "any")
    # Installed, the module declares the same types as its entry.
    registry = mr.ModuleRegistry()
    registry.install("typed", index=str(folder / "index.json"), into=tmp_path / "m")
    installed = registry.get("typed")
    assert installed is not None and (installed.input, installed.output) == (typed.input, typed.output)
    entry["input"] = "list[str"
    (folder / "index.json").write_text(json.dumps(data))
    with pytest.raises(mr.ValidationError, match='input: invalid type "list\\[str"'):
        mr.ModuleRegistry().package_index(str(folder / "index.json"))
