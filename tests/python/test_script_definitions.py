"""Editor support for script authors: the Rhai language server's definition
files (registry.script_definitions, `module-registry scripts definitions`)
and the Markdown reference of the script API (registry.script_reference,
committed as docs/reference/script-api.md)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

import module_registry as mr

REPO = Path(__file__).resolve().parents[2]


def test_definitions_are_written_with_named_parameters_and_types(tmp_path: Path) -> None:
    registry = mr.ModuleRegistry()
    registry.register_script_function("total", lambda *args: sum(args))
    folder = tmp_path / "defs"
    written = registry.script_definitions(folder)
    assert all(isinstance(p, Path) and p.parent == folder and p.is_file() for p in written)
    names = {p.name for p in written}
    assert {"__builtin__.d.rhai", "__static__.d.rhai", "module-registry-globals.d.rhai"} <= names
    api = (folder / "__static__.d.rhai").read_text()
    assert "fn discover(registry: Registry, capabilities: array) -> array;" in api
    assert "fn process(instance: Instance, input: ?) -> ?;" in api
    # The Python function is listed, for every arity a script may call it with.
    assert "fn total(arg1: ?, arg2: ?) -> ?;" in api
    assert "EvalAltResult" not in api and "(_: " not in api and ", _: " not in api
    globals_ = (folder / "module-registry-globals.d.rhai").read_text()
    assert "const registry: Registry;" in globals_ and "this.deps" in globals_
    # The scripts still call the function.
    assert registry.run_script("total(1, 2, 3)") == 6


def test_a_definitions_folder_that_is_a_file_is_a_file_error(tmp_path: Path) -> None:
    registry = mr.ModuleRegistry()
    file = tmp_path / "not-a-folder"
    file.write_text("x")
    for target in (file, file / "below"):
        with pytest.raises(mr.FileError, match="not-a-folder"):
            registry.script_definitions(target)
    assert file.read_text() == "x"


def test_cli_scripts_definitions(tmp_path: Path) -> None:
    out = tmp_path / "defs"
    proc = subprocess.run(
        [sys.executable, "-m", "module_registry", "scripts", "definitions", str(out)],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert proc.returncode == 0, proc.stderr
    printed = [Path(line) for line in proc.stdout.splitlines()]
    assert out / "__static__.d.rhai" in printed
    assert all(p.is_file() for p in printed)
    assert "fn lower_chars(text: String) -> String;" in (out / "__static__.d.rhai").read_text()
    blocked = tmp_path / "file"
    blocked.write_text("")
    proc = subprocess.run(
        [sys.executable, "-m", "module_registry", "scripts", "definitions", str(blocked)],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert proc.returncode == 1
    assert proc.stderr.startswith("module-registry: error:") and str(blocked) in proc.stderr, proc.stderr


def test_the_reference_page_is_the_registrys_reference() -> None:
    page = REPO / "docs" / "reference" / "script-api.md"
    assert mr.ModuleRegistry().script_reference() == page.read_text(encoding="utf-8")


@pytest.mark.skipif(os.geteuid() == 0, reason="root writes into a read-only folder")
def test_a_read_only_definitions_folder_is_a_file_error(tmp_path: Path) -> None:
    folder = tmp_path / "ro"
    folder.mkdir()
    folder.chmod(0o500)
    try:
        with pytest.raises(mr.FileError, match="ro"):
            mr.ModuleRegistry().script_definitions(folder)
        assert list(folder.iterdir()) == []
    finally:
        folder.chmod(0o700)
