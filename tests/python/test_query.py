"""Discovery queries from Python: a property against a brute-force filter."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

import module_registry as mr

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
