"""Access control from Python: policies, principals, views; pinned scripts."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from hypothesis import settings

import module_registry as mr
from module_registry import _core


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
    assert (err.principal, err.operation, err.module) == ("alice", "register", "other-tool")
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


def test_a_scoped_admin_cannot_take_over_the_registry() -> None:
    registry = mr.ModuleRegistry(native_modules=True)
    policy = make_policy().grant("team-admin", ["admin"], modules="team-*").assign("carol", "team-admin")
    registry.set_policy(policy)
    carol = registry.as_principal("carol")
    carol.register(mr.ModuleConfig(name="team-tool"), lambda v: v)
    with pytest.raises(mr.PermissionDeniedError):
        carol.set_policy(None)
    with pytest.raises(mr.PermissionDeniedError):
        carol.set_script_limits(mr.ScriptLimits.unlimited())
    assert "sha256" not in registry.as_principal("nobody")
    assert "sha256" in registry


def test_system_is_reserved_and_the_audit_log_is_cleared_by_admins_only(tmp_path: Path) -> None:
    registry = mr.ModuleRegistry()
    for name in ("system", ""):
        with pytest.raises(mr.ValidationError, match="reserved"):
            registry.as_principal(name)
    with pytest.raises(mr.ValidationError, match="reserved"):
        registry.set_policy(mr.AccessPolicy().grant("root", ["admin"]).assign("system", "root"))
    registry.set_policy(
        mr.AccessPolicy().grant("root", ["admin"]).assign("ops", "root").grant("user", ["discover"]).assign("ann", "user")
    )
    registry.register(mr.ModuleConfig(name="m"))
    with pytest.raises(mr.PermissionDeniedError):
        registry.as_principal("ann").clear_audit()
    script = tmp_path / "s.rhai"
    script.write_text("1 + 1")
    with pytest.raises(mr.PermissionDeniedError):
        registry.as_principal("ann").run_script(script)
    assert registry.as_principal("ops").run_script(script) == 2
    registry.as_principal("ops").clear_audit()
    assert [e.operation for e in registry.audit_events()] == ["clear_audit"]


def test_the_reserved_principals_are_the_cores_rule_everywhere() -> None:
    # The rule lives once, in the core: the binding's call_as, the core's
    # check and views made directly all refuse "system" and "".
    registry = mr.ModuleRegistry()
    registry.register(mr.ModuleConfig(name="m"))
    for name in ("system", ""):
        with pytest.raises(mr.ValidationError, match="reserved"):
            _core.call_as(name, registry.register, mr.ModuleConfig(name="impostor"))
        with pytest.raises(mr.ValidationError, match="reserved"):
            _core.check_principal(name)
        with pytest.raises(mr.ValidationError, match="reserved"):
            mr.RegistryView(registry, name)
    # Nothing ran as "system": no audit event is attributed to it by a view.
    assert "impostor" not in registry
    assert _core.call_as("ann", registry.get, "m") is not None
    _core.check_principal("ann")
