"""Dependencies from Python: resolution as a property over random graphs,
dependency configs and shared dependency instances."""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import module_registry as mr


@settings(max_examples=60, deadline=None)
@given(st.dictionaries(st.integers(0, 6), st.dictionaries(st.integers(0, 6), st.sampled_from(["^1", "^2", "*", ">=1.5"]), max_size=3), max_size=7))
def test_resolution_satisfies_every_requirement(graph: dict[int, dict[int, str]]) -> None:
    registry = mr.ModuleRegistry()
    for node, deps in graph.items():
        for version in ["1.0.0", "1.5.0", "2.0.0"]:
            registry.register(
                mr.ModuleConfig(name=f"n{node}", version=version, dependencies={f"n{d}": req for d, req in deps.items() if d != node})
            )
    for node in graph:
        try:
            chosen = registry.resolve(f"n{node}")
        except mr.DependencyError:
            continue
        versions = {i.name: i.version for i in chosen}
        assert chosen[-1].name == f"n{node}"
        assert len(versions) == len(chosen), "one version per module"
        position = {i.name: k for k, i in enumerate(chosen)}
        for info in chosen:
            for dep, req in info.dependencies.items():
                assert dep in versions, "every dependency is resolved"
                assert position[dep] < position[info.name], "dependencies are built first"
                major = int(versions[dep].split(".")[0])
                minor = int(versions[dep].split(".")[1])
                ok = {"^1": major == 1, "^2": major == 2, "*": True, ">=1.5": (major, minor) >= (1, 5)}[req]
                assert ok, f"{dep}@{versions[dep]} does not satisfy {req}"


def test_dependencies_get_their_config_and_can_be_shared() -> None:
    built: list[Any] = []

    class Store:
        def __init__(self) -> None:
            self.url = "memory"
            built.append(self)

        def init(self, config: object) -> None:
            if isinstance(config, dict):
                self.url = str(config.get("url", "memory"))

        def process(self, x: object) -> object:
            return self.url

    registry = mr.ModuleRegistry()
    registry.register(mr.ModuleConfig(name="store", version="1.0.0"), Store)
    registry.register(mr.ModuleConfig(name="app", dependencies={"store": "^1"}), lambda x: x)

    a = registry.create("app", dependency_configs={"store": {"url": "sqlite://a.db"}}, share_dependencies=True)
    b = registry.create("app", dependency_configs={"store": {"url": "sqlite://a.db"}}, share_dependencies=True)
    assert [s.url for s in built] == ["sqlite://a.db"], "one store, built with its config, for both"
    assert a.dependencies == b.dependencies == ["store"]
    # Closing one user leaves the shared store to the other; not sharing builds another.
    a.close()
    c = registry.create("app", dependency_configs={"store": {"url": "sqlite://a.db"}})
    assert len(built) == 2
    # A different config is a different store, even when sharing.
    registry.create("app", dependency_configs={"store": {"url": "sqlite://b.db"}}, share_dependencies=True)
    assert [s.url for s in built][-1] == "sqlite://b.db"
    b.close()
    c.close()
    with pytest.raises(TypeError, match="module names"):
        registry.create("app", dependency_configs={1: {}})  # type: ignore[dict-item]
    with pytest.raises(mr.UnknownModuleError):
        registry.create("ghost", share_dependencies=True)


def test_a_class_module_gets_its_dependency_instances_in_init() -> None:
    class Db:
        def __init__(self) -> None:
            self.rows: list[object] = []

        def process(self, row: object) -> int:
            self.rows.append(row)
            return len(self.rows)

    handed: list[mr.ModuleInstance] = []

    class App:
        def init(self, config: object, dependencies: dict[str, mr.ModuleInstance]) -> None:
            self.db = dependencies["db"]
            handed.append(self.db)
            self.prefix = config

        def process(self, x: object) -> str:
            return f"{self.prefix}{self.db.process(x)}"

    class Plain:  # an init without `dependencies` is called as before
        def init(self, config: object) -> None:
            self.config = config

        def process(self, x: object) -> object:
            return self.config

    registry = mr.ModuleRegistry()
    registry.register(mr.ModuleConfig(name="db", version="1.0.0"), Db)
    registry.register(mr.ModuleConfig(name="app", dependencies={"db": "^1"}), App)
    registry.register(mr.ModuleConfig(name="plain", dependencies={"db": "^1"}), Plain)
    app = registry.create("app", config="row #")
    assert app.process("a") == "row #1"
    assert app.process("b") == "row #2"
    assert registry.create("plain", config=7).process(None) == 7
    # The dependency handed over is the instance the registry built for this
    # one: closing the module closes it; the next create gets a fresh one.
    assert handed[0].name == "db" and not handed[0].closed
    app.close()
    assert handed[0].closed
    with pytest.raises(mr.ModuleRegistryError, match="closed"):
        handed[0].process("late")
    assert registry.create("app", config="").process("x") == "1"
