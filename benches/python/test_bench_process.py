"""Per-call cost of the Python binding.

Disabled by default: under `make test` every benchmark runs once as a test and
checks its result; `make bench` measures them.
"""

from __future__ import annotations

from typing import Any

import module_registry as mr

PAYLOAD = b"input data"


def test_process_native_identity(benchmark: Any) -> None:
    inst = mr.ModuleRegistry(native_modules=True).create("identity")
    assert benchmark(inst.process, PAYLOAD) == PAYLOAD


def test_process_python_function_module(benchmark: Any) -> None:
    registry = mr.ModuleRegistry()
    registry.register(mr.ModuleConfig(name="echo"), lambda v: v)
    inst = registry.create("echo")
    assert benchmark(inst.process, PAYLOAD) == PAYLOAD


def test_process_script_identity(benchmark: Any) -> None:
    registry = mr.ModuleRegistry()
    registry.register_script('const MODULE = #{ name: "script-identity" }; fn process(x) { x }')
    inst = registry.create("script-identity")
    assert benchmark(inst.process, "input data") == "input data"


def test_create_script(benchmark: Any) -> None:
    registry = mr.ModuleRegistry()
    registry.register_script('const MODULE = #{ name: "script-identity" }; fn process(x) { x }')
    inst = benchmark(registry.create, "script-identity")
    assert inst.state == "initialized"


def test_baseline_plain_python_call(benchmark: Any) -> None:
    def echo(v: bytes) -> bytes:
        return v

    assert benchmark(echo, PAYLOAD) == PAYLOAD


def test_register_one_module(benchmark: Any) -> None:
    registry = mr.ModuleRegistry()
    counter = iter(range(10**9))

    def register() -> mr.ModuleInfo:
        return registry.register(mr.ModuleConfig(name=f"m{next(counter)}", capabilities=["a", "b"]))

    info = benchmark(register)
    assert info.capabilities == {"a", "b"}


def test_create_native(benchmark: Any) -> None:
    registry = mr.ModuleRegistry(native_modules=True)
    inst = benchmark(registry.create, "identity")
    assert inst.state == "initialized"
