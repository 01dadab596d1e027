"""Access control, the audit file, integrity pins, manifests and property tests."""

from __future__ import annotations

import json
import threading
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import module_registry as mr


def double(x: int) -> int:
    """A module-level function: a manifest records it by import path."""
    return x * 2


class Greeter:
    """A module-level class module."""

    def process(self, name: str) -> str:
        return f"hello {name}"


def make_policy() -> mr.AccessPolicy:
    return (
        mr.AccessPolicy()
        .grant("reader", ["discover"])
        .grant("runner", ["create"], modules="text-*")
        .grant("publisher", ["register", "unregister"], modules="team-*")
        .grant("root", ["admin"])
        .assign("alice", "reader")
        .assign("alice", "runner")
        .assign("alice", "publisher")
        .assign("bob", "reader")
        .assign("root", "root")
    )


def test_policy_checks_calls_through_a_view() -> None:
    registry = mr.ModuleRegistry(native_modules=True)
    registry.set_policy(make_policy())
    alice = registry.as_principal("alice")
    assert alice.principal == "alice"
    alice.register(mr.ModuleConfig(name="team-tool"), lambda x: x)
    with pytest.raises(mr.PermissionDeniedError) as caught:
        alice.register(mr.ModuleConfig(name="other-tool"))
    err = caught.value
    assert (err.principal, err.operation, err.module) == ("alice", "register", "other-tool")  # type: ignore[attr-defined]
    assert "other-tool" not in registry
    assert alice.create("text-encode").process("x") == b"x"
    with pytest.raises(mr.PermissionDeniedError, match='"alice" may not create "sha256"'):
        alice.create("sha256")
    bob = registry.as_principal("bob")
    with pytest.raises(mr.PermissionDeniedError):
        bob.create("text-encode")
    assert len(bob.discover(capabilities=["gzip"])) == 2 and "identity" in bob and len(bob) == len(registry)
    stranger = registry.as_principal("stranger")
    assert stranger.list() == [] and "identity" not in stranger
    with pytest.raises(mr.PermissionDeniedError):
        stranger.discover()
    # Admin-only settings.
    with pytest.raises(mr.PermissionDeniedError):
        alice.set_script_limits(mr.ScriptLimits.unlimited())
    registry.as_principal("root").set_script_limits(mr.ScriptLimits.unlimited())
    # A script run by alice cannot do more than alice.
    assert alice.run_script('registry.create("text-encode").process("hi")') == b"hi"
    with pytest.raises(mr.ScriptError, match="may not create"):
        alice.run_script('registry.create("sha256").process("hi")')
    # The decorator keeps acting as the principal.
    with pytest.raises(mr.PermissionDeniedError):

        @alice.module(name="not-team")
        def nope(x: Any) -> Any:
            return x

    events = registry.audit_events()
    assert any(e.outcome == "denied" and e.principal == "alice" and e.module == "sha256" for e in events)
    assert events[-1].principal in {"alice", "root", "system", "bob", "stranger"}
    assert make_policy().allows("alice", "create", "text-x") and not make_policy().allows("bob", "create")
    with pytest.raises(mr.ValidationError):
        mr.AccessPolicy().grant("x", ["write"])


def test_audit_file_and_reading_it_back(tmp_path: Path) -> None:
    path = tmp_path / "audit.jsonl"
    registry = mr.ModuleRegistry()
    registry.set_audit_file(path)

    def work(t: int) -> None:
        for i in range(25):
            registry.register(mr.ModuleConfig(name=f"t{t}-{i}"), double)
            registry.create(f"t{t}-{i}")

    threads = [threading.Thread(target=work, args=(t,)) for t in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    with pytest.raises(mr.UnknownModuleError):
        registry.create("missing")
    registry.set_audit_file(None)
    lines = path.read_text().splitlines()
    assert len(lines) == 4 * 25 * 2 + 1
    first = json.loads(lines[0])
    assert set(first) >= {"operation", "principal", "module", "version", "outcome", "time"}
    events = mr.read_audit_file(path)
    assert [e.outcome for e in events].count("ok") == 200
    assert events[-1].operation == "create" and events[-1].outcome == "error" and events[-1].module == "missing"
    assert [e.sequence for e in events] == sorted(e.sequence for e in events)


def test_pinned_scripts(tmp_path: Path) -> None:
    import hashlib

    source = 'const MODULE = #{ name: "pinned" }; fn process(x) { x }'
    digest = hashlib.sha256(source.encode()).hexdigest()
    registry = mr.ModuleRegistry()
    with pytest.raises(mr.ValidationError, match="integrity"):
        registry.register_script(source, sha256="0" * 64)
    assert len(registry) == 0
    registry.register_script(source, sha256=digest)
    file = tmp_path / "pinned.rhai"
    file.write_text(source)
    other = mr.ModuleRegistry()
    with pytest.raises(mr.ValidationError, match="expected sha256"):
        other.load_script(file, sha256="f" * 64)
    assert len(other) == 0
    assert other.load_script(file, sha256=digest).name == "pinned"


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


def test_isolation_of_python_exceptions(registry: mr.ModuleRegistry) -> None:
    registry.register(mr.ModuleConfig(name="bad"), lambda x: 1 / 0)
    registry.register(mr.ModuleConfig(name="good"), double)
    bad, good = registry.create("bad"), registry.create("good")
    for i in range(3):
        with pytest.raises(mr.ModuleFailedError):
            bad.process(i)
        assert good.process(i) == 2 * i
    assert len(registry) == 2


# ----- properties ---------------------------------------------------------------

CAPS = [f"c{i}" for i in range(6)]


@settings(max_examples=60, deadline=None)
@given(
    st.lists(st.tuples(st.integers(0, 8), st.integers(0, 3), st.sets(st.sampled_from(CAPS))), max_size=30),
    st.sets(st.sampled_from(CAPS), max_size=2),
    st.sets(st.sampled_from(CAPS), max_size=2),
    st.sets(st.sampled_from(CAPS), max_size=1),
)
def test_discovery_matches_a_brute_force_filter(
    decls: list[tuple[int, int, set[str]]], required: set[str], any_of: set[str], excluded: set[str]
) -> None:
    registry = mr.ModuleRegistry()
    for name, major, caps in decls:
        try:
            registry.register(mr.ModuleConfig(name=f"m{name}", version=f"{major}.0.0", capabilities=sorted(caps)))
        except mr.AlreadyRegisteredError:
            pass
    found = [(i.name, i.version) for i in registry.discover(capabilities=sorted(required), any=sorted(any_of), exclude=sorted(excluded))]
    expected = [
        (i.name, i.version)
        for i in registry.list()
        if required <= i.capabilities and (not any_of or any_of & i.capabilities) and not excluded & i.capabilities
    ]
    assert found == expected


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
