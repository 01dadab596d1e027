"""The extension loaded without its package: what needs no package code
works, and what needs a hook the package hands over (`_core._set_hooks`)
fails with an ImportError naming the hook, never a crash."""

from __future__ import annotations

import subprocess
import sys

import pytest

import module_registry
from module_registry import _core

#: Loads `_core` from the installed package's folder as a top-level module,
#: so `module_registry/__init__.py` (which sets the hooks) never runs.
LOAD_ALONE = """
import importlib.util, pathlib, sys
folder = pathlib.Path(importlib.util.find_spec("module_registry").submodule_search_locations[0])
path = next(p for p in folder.iterdir() if p.name.startswith("_core.") and p.suffix in (".so", ".pyd"))
spec = importlib.util.spec_from_file_location("_core", path)
core = importlib.util.module_from_spec(spec)
spec.loader.exec_module(core)
assert "module_registry" not in sys.modules, "the package was imported"
"""


def run_alone(body: str) -> str:
    proc = subprocess.run(
        [sys.executable, "-c", LOAD_ALONE + body], capture_output=True, text=True, timeout=120, check=False
    )
    assert proc.returncode == 0, proc.stderr
    return proc.stdout


def test_the_extension_alone_registers_and_calls() -> None:
    out = run_alone(
        "r = core.ModuleRegistry()\n"
        "r.register(core.ModuleConfig(name='upper', capabilities=['text']), str.upper)\n"
        "print(r.create('upper').process('hi'))\n"
        "assert 'module_registry' not in sys.modules\n"
    )
    assert out.strip() == "HI"


def test_a_missing_display_hook_is_an_import_error_naming_it() -> None:
    out = run_alone(
        "r = core.ModuleRegistry()\n"
        "info = r.register(core.ModuleConfig(name='upper'), str.upper)\n"
        "for call in (r.list, info._repr_html_):\n"
        "    try:\n"
        "        call()\n"
        "    except ImportError as e:\n"
        "        print(type(e).__name__, e)\n"
    )
    lines = out.strip().splitlines()
    assert len(lines) == 2, out
    assert all(line.startswith("ImportError module_registry._core has no display hook") for line in lines), out


def test_a_missing_coroutine_hook_fails_the_call_naming_it() -> None:
    out = run_alone(
        "r = core.ModuleRegistry()\n"
        "async def handler(x):\n"
        "    return x\n"
        "r.register(core.ModuleConfig(name='a'), handler)\n"
        "try:\n"
        "    r.create('a').process(1)\n"
        "except Exception as e:\n"
        "    print(type(e).__name__, e)\n"
    )
    assert "has no run_coroutine hook" in out, out


def test_the_package_sets_every_hook() -> None:
    registry = module_registry.ModuleRegistry()
    registry.register(module_registry.ModuleConfig(name="upper"), str.upper)
    assert isinstance(registry.list(), module_registry.ModuleList)
    assert "upper" in registry.list()[0]._repr_html_()


def test_set_hooks_refuses_what_it_cannot_call() -> None:
    with pytest.raises(TypeError, match="code_digest must be callable"):
        _core._set_hooks(
            code_digest=1,  # type: ignore[arg-type]
            display=object(),
            run_coroutine=print,
            http_fetch=lambda url, limit: (b"", url),
        )
    with pytest.raises(TypeError):
        _core._set_hooks(display=object())  # type: ignore[call-arg]
    # Nothing was replaced: the package's hooks still work.
    assert isinstance(module_registry.ModuleRegistry().list(), module_registry.ModuleList)
