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
    back = mr.ModuleRegistry.from_manifest(text)
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
