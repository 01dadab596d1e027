"""module_registry side by side with the tools users would pick instead.

Disabled by default (each runs once as a test, checking its result);
`make bench` measures. Groups put each operation's contenders together.
"""

from __future__ import annotations

import itertools
from importlib.metadata import entry_points
from typing import Any

import pytest

import module_registry as mr

from peers import (  # type: ignore[import-not-found]
    NEEDLES,
    PurePythonRegistry,
    filled_module_registry,
    filled_pure_registry,
    make_plugin,
    pluggy_manager,
    pure_python_bytes_per_module,
)

PAYLOAD = b"input data"


# ----- calling one implementation --------------------------------------------------


@pytest.mark.benchmark(group="call one implementation")
def test_call_module_registry_native(benchmark: Any) -> None:
    inst = mr.ModuleRegistry(native_modules=True).create("identity")
    assert benchmark(inst.process, PAYLOAD) == PAYLOAD


@pytest.mark.benchmark(group="call one implementation")
def test_call_pluggy_one_hookimpl(benchmark: Any) -> None:
    pm = pluggy_manager(1)
    assert benchmark(lambda: pm.hook.process(value=PAYLOAD)) == [PAYLOAD]


@pytest.mark.benchmark(group="call one implementation")
def test_call_pluggy_ten_hookimpls(benchmark: Any) -> None:
    pm = pluggy_manager(10)
    assert benchmark(lambda: pm.hook.process(value=PAYLOAD)) == [PAYLOAD] * 10


@pytest.mark.benchmark(group="call one implementation")
def test_call_pure_python(benchmark: Any) -> None:
    handler = PurePythonRegistry()
    handler.register("echo", [], lambda v: v)
    fn = handler.create("echo")
    assert benchmark(fn, PAYLOAD) == PAYLOAD


# ----- registering ---------------------------------------------------------------


@pytest.mark.benchmark(group="register one module")
def test_register_module_registry(benchmark: Any) -> None:
    registry = mr.ModuleRegistry()
    counter = itertools.count()
    config = mr.ModuleConfig(capabilities=["a", "b", "c"])

    def register() -> mr.ModuleInfo:
        return registry.register(config.with_name(f"m{next(counter)}"))

    assert benchmark(register).capabilities == {"a", "b", "c"}


@pytest.mark.benchmark(group="register one module")
def test_register_pluggy(benchmark: Any) -> None:
    pm = pluggy_manager(0)
    benchmark.pedantic(lambda: pm.register(make_plugin()), rounds=200, iterations=1)
    assert len(pm.get_plugins()) >= 1


@pytest.mark.benchmark(group="register one module")
def test_register_pure_python(benchmark: Any) -> None:
    registry = PurePythonRegistry()
    counter = itertools.count()
    benchmark(lambda: registry.register(f"m{next(counter)}", ["a", "b", "c"], lambda v: v))
    assert registry.discover(["a", "b"])


# ----- discovery at scale ---------------------------------------------------------

SIZES = [1_000, 10_000, 100_000]


@pytest.mark.parametrize("n", SIZES)
@pytest.mark.benchmark(group="discover 2 capabilities, fixed matches")
def test_discover_module_registry(benchmark: Any, n: int) -> None:
    registry = filled_module_registry(n)
    found = benchmark(registry.discover, ["needle-a", "needle-b"])
    assert len(found) == NEEDLES


@pytest.mark.parametrize("n", SIZES)
@pytest.mark.benchmark(group="discover 2 capabilities, fixed matches")
def test_discover_pure_python(benchmark: Any, n: int) -> None:
    registry = filled_pure_registry(n)
    found = benchmark(registry.discover, ["needle-a", "needle-b"])
    assert len(found) == NEEDLES


@pytest.mark.parametrize("n", [100_000])
@pytest.mark.benchmark(group="discover 2 random capabilities")
def test_discover_random_module_registry(benchmark: Any, n: int) -> None:
    registry = filled_module_registry(n)
    expected = filled_pure_registry(n).discover(["cap-7", "cap-11"])
    found = benchmark(registry.discover, ["cap-7", "cap-11"])
    assert [i.name for i in found] == expected


@pytest.mark.parametrize("n", [100_000])
@pytest.mark.benchmark(group="discover 2 random capabilities")
def test_discover_random_pure_python(benchmark: Any, n: int) -> None:
    registry = filled_pure_registry(n)
    assert benchmark(registry.discover, ["cap-7", "cap-11"])


# ----- installed plugins ------------------------------------------------------------


@pytest.mark.benchmark(group="find installed plugins")
def test_entry_points_importlib(benchmark: Any) -> None:
    found = benchmark(lambda: list(entry_points(group="console_scripts")))
    assert any(ep.name == "module-registry" for ep in found)


@pytest.mark.benchmark(group="find installed plugins")
def test_entry_points_stevedore(benchmark: Any) -> None:
    stevedore = pytest.importorskip("stevedore")
    found = benchmark(lambda: stevedore.ExtensionManager(namespace="console_scripts", invoke_on_load=False).names())
    assert "module-registry" in found


@pytest.mark.benchmark(group="find installed plugins")
def test_entry_points_module_registry(benchmark: Any) -> None:
    # The list of entry points is kept until sys.path changes (as stevedore's cache is).
    registry = mr.ModuleRegistry()
    report = benchmark(registry.load_entry_points)
    assert report.failed == []


@pytest.mark.benchmark(group="find installed plugins")
def test_entry_points_module_registry_refresh(benchmark: Any) -> None:
    # Every call scans the installed packages again.
    registry = mr.ModuleRegistry()
    report = benchmark(lambda: registry.load_entry_points(refresh=True))
    assert report.failed == []


def test_pure_python_memory_is_measured() -> None:
    per_module = pure_python_bytes_per_module(2_000)
    assert 100 < per_module < 10_000
