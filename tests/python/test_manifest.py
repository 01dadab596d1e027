"""Manifests from Python: a registry with Python modules exported and rebuilt."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

import module_registry as mr


def double(x: int) -> int:
    """A module-level function: a manifest records it by import path."""
    return x * 2


class Greeter:
    """A module-level class module."""

    def process(self, name: str) -> str:
        return f"hello {name}"


def test_manifest_round_trip_with_python_modules(tmp_path: Path) -> None:
    registry = mr.ModuleRegistry(native_modules=True, script_limits=mr.ScriptLimits(max_operations=999))
    registry.register(mr.ModuleConfig(name="double", version="2.0.0", capabilities=["math"]), double)
    registry.register(mr.ModuleConfig(name="greeter"), Greeter)
    registry.register_script('const MODULE = #{ name: "inc" }; fn process(x) { x + 1 }')
    registry.register(mr.ModuleConfig(name="declared", metadata={"k": "v"}))
    text = registry.export_manifest()
    assert json.loads(text)["format"] == 1
    # A manifest imports nothing unless its reader allows the module.
    with pytest.raises(mr.ValidationError, match="allow_imports"):
        mr.ModuleRegistry.from_manifest(text)
    back = mr.ModuleRegistry.from_manifest(text, allow_imports=[__name__])
    assert isinstance(back, mr.ModuleRegistry)
    assert [repr(i) for i in back.list()] == [repr(i) for i in registry.list()]
    assert back.create("double").process(21) == 42
    assert back.create("greeter").process("ada") == "hello ada"
    assert back.create("inc").process(1) == 2
    assert back.script_limits.max_operations == 999
    assert back.export_manifest() == text
    local = mr.ModuleRegistry()
    local.register(mr.ModuleConfig(name="anon"), lambda x: x)
    with pytest.raises(mr.ValidationError, match="anon"):
        mr.ModuleRegistry.from_manifest(local.export_manifest())


def _manifest_importing(*import_paths: str) -> str:
    registry = mr.ModuleRegistry()
    for i, path in enumerate(import_paths):
        registry.register(mr.ModuleConfig(name=f"m{i}"), double)
    data = json.loads(registry.export_manifest())
    for entry, path in zip(data["modules"], import_paths):
        entry["implementation"]["import_path"] = path
    return json.dumps(data)


def test_an_untrusted_manifest_runs_no_code(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    # Importing this module would leave a mark: it must never be imported.
    (tmp_path / "mr_marker_mod.py").write_text("import builtins\nbuiltins.mr_marker_imported = True\nf = len\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    import builtins

    for text in (
        _manifest_importing("os:system"),
        _manifest_importing("mr_marker_mod:f"),
        # Allowed first entry, refused second: nothing is imported at all.
        _manifest_importing("mr_marker_mod:f", "subprocess:run"),
    ):
        with pytest.raises(mr.ValidationError, match="allow_imports"):
            mr.ModuleRegistry.from_manifest(text, allow_imports=["mr_marker_mod"] if "subprocess" in text else ())
        assert not hasattr(builtins, "mr_marker_imported")
    # A manifest whose last entry is broken imports nothing either.
    data = json.loads(_manifest_importing("mr_marker_mod:f", "mr_marker_mod:f"))
    data["modules"][1]["name"] = "Bad Name"
    with pytest.raises(mr.ValidationError):
        mr.ModuleRegistry.from_manifest(json.dumps(data), allow_imports=["mr_marker_mod"])
    assert not hasattr(builtins, "mr_marker_imported")
    # `os` does not allow `osx`, and a prefix allows its submodules.
    with pytest.raises(mr.ValidationError, match="allow_imports"):
        mr.ModuleRegistry.from_manifest(_manifest_importing("os_extra:f"), allow_imports=["os"])
    back = mr.ModuleRegistry.from_manifest(_manifest_importing("os.path:basename"), allow_imports=["os"])
    assert back.create("m0").process("/a/b") == "b"


def test_manifest_scripts_import_only_from_named_folders(tmp_path: Path) -> None:
    (tmp_path / "lib.rhai").write_text("fn twice(x) { x * 2 }")
    (tmp_path / "user.rhai").write_text('import "lib" as lib;\nconst MODULE = #{ name: "user" };\nfn process(x) { lib::twice(x) }')
    registry = mr.ModuleRegistry()
    registry.load_scripts(tmp_path)
    recorded = registry.export_manifest()
    # The imported script travels in the manifest: nothing is read.
    assert mr.ModuleRegistry.from_manifest(recorded).create("user").process(21) == 42
    # A manifest without recorded imports reads them only from a folder its reader names.
    data = json.loads(recorded)
    for entry in data["modules"]:
        entry["implementation"].pop("imports", None)
    text = json.dumps(data)
    with pytest.raises(mr.ValidationError, match="script folders"):
        mr.ModuleRegistry.from_manifest(text)
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    with pytest.raises(mr.ValidationError, match="script folders"):
        mr.ModuleRegistry.from_manifest(text, script_folders=[elsewhere])
    back = mr.ModuleRegistry.from_manifest(text, script_folders=[tmp_path])
    assert back.create("user").process(21) == 42


def test_a_manifest_with_a_reserved_principal_changes_nothing() -> None:
    # The policy is checked with everything else, before any module is
    # registered or any setting applied (all or nothing).
    source = mr.ModuleRegistry(native_modules=True)
    source.register(mr.ModuleConfig(name="from-manifest"))
    source.set_policy(mr.AccessPolicy().grant("root", ["admin"]).assign("ops", "root"))
    data = json.loads(source.export_manifest())
    target = mr.ModuleRegistry()
    target.register(mr.ModuleConfig(name="keep"))
    before = [str(i) for i in target.list()]
    for name in ("system", ""):
        data["policy"]["principals"] = {name: ["root"]}
        with pytest.raises(mr.ValidationError, match="reserved"):
            target._load_manifest(json.dumps(data), lambda *a: None)
        assert [str(i) for i in target.list()] == before and "from-manifest" not in target
        # No policy was put in force either: a stranger still sees everything.
        assert "keep" in target.as_principal("stranger")
